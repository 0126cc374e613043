"""Helpers the benchmark scripts share."""

import argparse
import shutil
import statistics
import time
from pathlib import Path


def median_time(fn, repeats: int) -> float:
    """Median wall time of `fn()` over `repeats` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def make_project(root: Path, made: list[Path], runs: int) -> None:
    """`runs` run folders under root/wandb, each a copy of one of the `made` runs' logs in
    turn (a sweep made of a few real wandb runs: every copy is read in full)."""
    for i in range(runs):
        src = made[i % len(made)]
        dst = root / "wandb" / f"offline-run-20260101_000000-r{i:05d}"
        dst.mkdir(parents=True)
        shutil.copy(next(src.glob("*.wandb")), dst / f"run-r{i:05d}.wandb")


def options(**defaults) -> argparse.Namespace:
    """The script's command line: one `--name` per keyword (underscores written as dashes),
    typed by its default."""
    parser = argparse.ArgumentParser()
    for name, default in defaults.items():
        parser.add_argument("--" + name.replace("_", "-"), type=type(default), default=default)
    return parser.parse_args()


def written_runs(write_run, folder: Path, distinct: int, steps: int) -> list[Path]:
    """`distinct` real wandb runs of `steps` steps each, written by `write_run` two at a time
    (the run folders under `folder`)."""
    from multiprocessing import Pool
    with Pool(2) as pool:
        return pool.map(write_run, [(folder, i, steps) for i in range(distinct)])
