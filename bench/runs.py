"""Run comparison at scale: first load and cached load of a large offline W&B project.

    python bench/runs.py [--runs 200] [--steps 100000] [--distinct 2] [--compare 8]

Writes `--distinct` real offline runs with wandb (each `--steps` steps of 3 metrics), copies
them into `--runs` run folders (wandb logging 100k steps takes ~40 s a run here, so the
project is made of copies), then times, in one process:
  first load  = the run table (all runs) + full histories of `--compare` runs + their plotted
                series (downsampled), from an empty cache;
  cached load = the same again, served by the disk cache (what a reload or a new session pays).
The last line prints `cached/first load ratio: X`.
"""

import argparse
import shutil
import sys
import os
import tempfile
import time
from multiprocessing import Pool
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def write_run(args):
    out, index, steps = args
    import math

    import wandb
    run = wandb.init(mode="offline", dir=str(out), project="bench", name=f"bench-{index}",
                     config={"lr": 0.001 * (index + 1), "seed": index},
                     settings=wandb.Settings(silent=True, console="off", x_disable_stats=True))
    for s in range(steps):
        run.log({"train/loss": 1 / (s + 1) + 0.01 * math.sin(s / 50 + index),
                 "val/acc": 1 - 1 / (s + 2), "lr": 0.001 * 0.99999 ** s}, step=s)
    run.finish()
    return next((Path(out) / "wandb").glob(f"offline-run-*-{run.id}"))


def load(root: Path, compare: int):
    from lib import runs
    infos, problems = runs.load_offline(root)
    assert not problems, problems
    table = runs.runs_table(infos, ["lr"], ["val/acc"])
    points = 0
    for info in infos[:compare]:
        history = runs.read_history(Path(info.path))
        for metric in ("train/loss", "val/acc"):
            x, _ = runs.series(history, metric, "_step", smoothing=0.6)
            points += len(x)
    return len(table), points


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--distinct", type=int, default=2)
    parser.add_argument("--compare", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root, real = Path(tmp) / "project", Path(tmp) / "real"
        os.environ["LENS_CACHE"] = str(Path(tmp) / "cache")
        t0 = time.perf_counter()
        with Pool(2) as pool:
            made = pool.map(write_run, [(real, i, args.steps) for i in range(args.distinct)])
        for i in range(args.runs):
            src = made[i % len(made)]
            dst = root / "wandb" / f"offline-run-20260101_000000-r{i:05d}"
            dst.mkdir(parents=True)
            shutil.copy(next(src.glob("*.wandb")), dst / f"run-r{i:05d}.wandb")
        made_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        rows, points = load(root, args.compare)
        first = time.perf_counter() - t1
        t2 = time.perf_counter()
        load(root, args.compare)
        cached = time.perf_counter() - t2
    print(f"project: {args.runs} runs x {args.steps} steps ({args.distinct} distinct logs), "
          f"made in {made_s:.0f} s")
    print(f"table rows {rows}; {args.compare} runs compared, {points} plotted points "
          "(min/max-per-bucket downsampling, <= 2000 per curve)")
    print(f"first load:  {first:8.2f} s")
    print(f"cached load: {cached:8.2f} s")
    print(f"cached/first load ratio: {cached / first:.4f}")


if __name__ == "__main__":
    main()
