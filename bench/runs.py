"""Run comparison at sweep scale: first load of a large offline W&B project, and a 1,000-run table.

    python bench/runs.py [--runs 200] [--steps 100000] [--distinct 2] [--compare 8]
                         [--table-runs 1000] [--table-steps 1000]

Writes `--distinct` real offline runs with wandb (each `--steps` steps of 3 metrics) and copies
them into `--runs` run folders (wandb logging 100k steps takes ~15 s a run here, so the project
is made of copies; every copy is read in full, nothing is shared between them). Then, in one
process, from an empty Lens cache (the logs themselves sit in the OS page cache, as on a server
that just wrote them; the reader's compiled code is loaded first, as on any running server):
  first load  = the run table (all runs) + full histories of `--compare` runs + their plotted
                series (smoothed, downsampled), what the Runs page does on opening the folder;
  cached load = the same again, served by the disk cache (a reload, or a new session);
  table       = the same first load of a `--table-runs`-run sweep (`--table-steps` each), then
                filtering and sorting its table as the page does.
Last line: `first load 200x100k: X s (cached Y s)`.
"""

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import make_project, options, written_runs  # bench/ is the script's own folder


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
    """What the Runs page does on opening a folder: table, then the compared runs' curves."""
    from lib import runs
    infos, problems = runs.load_offline(root)
    assert not problems, problems
    table = runs.runs_table(infos, ["lr"], ["val/acc"])
    histories = runs.read_histories(info.path for info in infos[:compare])
    points = 0
    for history in histories.values():
        for metric in ("train/loss", "val/acc"):
            x, _ = runs.series(history, metric, "_step", smoothing=0.6)
            points += len(x)
    return table, points


def main() -> None:
    args = options(runs=200, steps=100_000, distinct=2, compare=8, table_runs=1000,
                   table_steps=1000)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ["LENS_CACHE"] = str(tmp / "cache")
        t0 = time.perf_counter()
        made = written_runs(write_run, tmp / "real", args.distinct, args.steps)
        small = written_runs(write_run, tmp / "small", args.distinct, args.table_steps)
        make_project(tmp / "project", made, args.runs)
        make_project(tmp / "sweep", small, args.table_runs)
        size = sum(p.stat().st_size for p in (tmp / "project").rglob("*.wandb"))
        made_s = time.perf_counter() - t0
        # numba compiles the reader once per installation (cached in LENS_CACHE/numba): do
        # it here, on a small log outside both projects, as a server has done long before
        from lib import runs
        from lib.runs import scanner, summary
        warm = next(small[0].glob("*.wandb"))
        summary.summarize(runs.scan_log(warm, verify=scanner.METADATA))
        runs.history_frame(runs.scan_log(warm))

        t1 = time.perf_counter()
        table, points = load(tmp / "project", args.compare)
        first = time.perf_counter() - t1
        t2 = time.perf_counter()
        load(tmp / "project", args.compare)
        cached = time.perf_counter() - t2

        t3 = time.perf_counter()
        infos, _ = runs.load_offline(tmp / "sweep")
        big = runs.runs_table(infos, ["lr", "seed"], ["val/acc", "train/loss"])
        table_first = time.perf_counter() - t3
        t4 = time.perf_counter()
        shown = runs.filter_table(big, "bench-1", sort_by="val/acc", descending=True)
        shown = runs.filter_table(big, "", sort_by="config.lr")
        filter_sort = time.perf_counter() - t4
    print(f"project: {args.runs} runs x {args.steps} steps ({args.distinct} distinct logs, "
          f"{size / 1e9:.1f} GB), made in {made_s:.0f} s")
    print(f"table rows {len(table)}; {args.compare} runs compared, {points} plotted points "
          "(min/max-per-bucket downsampling, <= 2000 per curve)")
    print(f"first load:  {first:8.2f} s  (goal <= 10 s)")
    print(f"cached load: {cached:8.2f} s")
    print(f"table of {len(big)} runs x {args.table_steps} steps, first time: {table_first:.2f} s "
          f"(goal <= 5 s); filter + sort: {filter_sort:.3f} s (goal <= 0.5 s, {len(shown)} rows)")
    print(f"first load {args.runs}x{args.steps // 1000}k: {first:.1f} s (cached {cached:.1f} s)")


if __name__ == "__main__":
    main()
