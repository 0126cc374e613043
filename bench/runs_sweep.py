"""A 10,000-run sweep on the Runs page's code paths: the run table, filtering, 1,000 curves.

    python bench/runs_sweep.py [--runs 10000] [--steps 1000] [--distinct 24] [--curves 1000]

Writes `--distinct` real offline runs with wandb (a sweep over lr, batch size, dropout and
optimizer, `--steps` steps of 3 metrics each) and copies them into `--runs` run folders
(wandb writing 10,000 runs takes hours here; each copy is a separate log, read in full).
Then, in one process, from an empty Lens cache (the reader's compiled code loaded first, as
on any running server):
  table        = the run table of the whole folder (every log scanned, config and summary
                 decoded), what the page shows on opening it;
  cached       = the same again from Lens's disk cache (a new session, or a server restart);
  filter+sort  = a text filter and a sort, then a brush on two parallel-coordinates axes (a
                 range of dropout, one optimizer) applied to the table and a sort;
  1000 curves  = the histories of `--curves` runs read, their curves of one metric reduced to
                 the bands the page draws (median, interquartile and min-max per step, by
                 optimizer) and the Plotly figure serialised as the browser receives it.
The server's resident memory is printed after all of it.
Last line: `10000 runs: table X s (cached Y s), filter+sort Z s, 1000 curves W s`.
"""

import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import make_project, options, written_runs  # bench/ is the script's own folder


def write_run(args):
    out, index, steps = args
    import math
    import random

    import wandb
    rng = random.Random(index)
    config = {"lr": 10 ** rng.uniform(-4, -1), "batch_size": rng.choice([16, 32, 64, 128]),
              "dropout": round(rng.uniform(0, 0.5), 3), "optimizer": rng.choice(["adam", "sgd"]),
              "seed": index}
    quality = 1 - abs(math.log10(config["lr"]) + 2.5) / 3 - config["dropout"] / 4
    run = wandb.init(mode="offline", dir=str(out), project="sweep", name=f"sweep-{index}",
                     config=config,
                     settings=wandb.Settings(silent=True, console="off", x_disable_stats=True))
    for s in range(steps):
        progress = 1 - math.exp(-s / (steps / 5))
        run.log({"train/loss": 2 * (1 - quality * progress) + 0.05 * rng.random(),
                 "val/acc": quality * progress + 0.02 * rng.random(), "epoch": s // 100},
                step=s)
    run.finish()
    return next((Path(out) / "wandb").glob(f"offline-run-*-{run.id}"))


def table(root: Path):
    from lib import runs
    infos, problems = runs.load_offline(root)
    assert not problems, problems[:3]
    infos = runs.disambiguate(infos)
    keys = ["lr", "batch_size", "dropout", "optimizer"]
    return infos, runs.runs_table(infos, keys, ["val/acc", "train/loss"])


def main() -> None:
    args = options(runs=10_000, steps=1000, distinct=24, curves=1000)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ["LENS_CACHE"] = str(tmp / "cache")
        t0 = time.perf_counter()
        made = written_runs(write_run, tmp / "real", args.distinct, args.steps)
        make_project(tmp / "sweep", made, args.runs)
        size = sum(p.stat().st_size for p in (tmp / "sweep").rglob("*.wandb"))
        made_s = time.perf_counter() - t0

        from lib import plots, runs
        from lib.runs import scanner, summary
        warm = next(made[0].glob("*.wandb"))     # numba's compiled reader, as on a server
        summary.summarize(runs.scan_log(warm, verify=scanner.METADATA))
        runs.history_frame(runs.scan_log(warm))

        t1 = time.perf_counter()
        infos, frame = table(tmp / "sweep")
        first = time.perf_counter() - t1
        t2 = time.perf_counter()
        table(tmp / "sweep")
        cached = time.perf_counter() - t2

        t3 = time.perf_counter()
        shown = runs.filter_table(frame, "sweep-1", sort_by="val/acc", descending=True)
        axes = runs.parallel_axes(infos, ["lr", "batch_size", "dropout", "optimizer"],
                                  "val/acc")
        brushed = axes.brushed({"dropout": [(0.1, 0.3)], "optimizer": [(0, 0)]})
        shown = runs.filter_table(frame, "", sort_by="config.lr", names=brushed)
        filter_sort = time.perf_counter() - t3

        t5 = time.perf_counter()                 # every run drawn on parallel coordinates
        parallel = plots.parallel_coordinates(axes.columns, "val/acc", axes.categories,
                                              log=axes.log)
        parallel_bytes = len(parallel.to_json())
        parallel_s = time.perf_counter() - t5

        chosen = infos[:args.curves]
        t4 = time.perf_counter()
        read = runs.read_histories((r.path for r in chosen), keys={"val/acc"})
        histories = {r.name: read[r.path] for r in chosen}
        bands = runs.grouped_bands(chosen, histories, "optimizer", "val/acc")
        fig = plots.curves([(f"{g} (mean of {n})", b["x"], b["mean"]) for g, n, b in bands],
                           "val/acc", "_step",
                           bands=[(g, b["x"], b["min"], b["max"]) for g, n, b in bands])
        sent = len(fig.to_json())
        drawn = time.perf_counter() - t4
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"sweep: {args.runs} runs x {args.steps} steps ({args.distinct} distinct logs, "
          f"{size / 1e9:.2f} GB), made in {made_s:.0f} s")
    print(f"table: {len(frame)} rows; filtered to {len(shown)}; {len(chosen)} curves as "
          f"{len(bands)} bands, {sent / 1e3:.0f} kB of figure JSON")
    print(f"parallel coordinates of all {len(frame)} runs: built in {parallel_s:.2f} s, "
          f"{parallel_bytes / 1e6:.1f} MB of figure JSON")
    print(f"server memory (peak resident): {rss:.0f} MB")
    print("goals: table <= 5 s, cached <= 0.5 s, filter+sort <= 0.3 s, 1000 curves <= 2 s")
    print(f"{args.runs} runs: table {first:.2f} s (cached {cached:.2f} s), filter+sort "
          f"{filter_sort:.3f} s, {args.curves} curves {drawn:.2f} s")


if __name__ == "__main__":
    main()
