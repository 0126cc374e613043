"""Detection benchmark command line; the detection page uses the same functions
(lib.detection.benchmark).

    python -m lib.detect evaluate --images DIR --annotations INSTANCES.json \
        --predictions RESULTS.json [--json] [--bootstrap N]
    python -m lib.detect run --model NAME --images DIR --annotations INSTANCES.json \
        --out RESULTS.json [--subset N --seed S --threshold T]
        [--engine ray [--address ADDR] [--workers N] [--gpus-per-worker G]]
    python -m lib.detect robustness --model NAME --images DIR --annotations INSTANCES.json \
        --out FILE [--corruptions fog snow ...] [--severities 1-5] [--bootstrap N]
        [--subset N --seed S --threshold T] [--engine ray ...]

`--engine ray` runs the detector on Ray Data: a local Ray with N workers, or the cluster at
`--address` (else RAY_ADDRESS / LENS_RAY_ADDRESS). Same results file, same resume.

`robustness` runs COCO-C: the model on the clean images and on every image under each
corruption (default the benchmark's 15) at each severity, made on the fly; it writes AP per
corruption and severity, mPC and rPC with 95% intervals (`--bootstrap` resamples, default
200) to FILE (JSON, or CSV when FILE ends in .csv) and prints mPC and rPC last. Killed, it
resumes where it stopped.

`evaluate --json` prints the 12 COCO metrics as one JSON object on its last line;
`--bootstrap N` adds a 95% interval `"<metric>_ci": [low, high]` for AP, AP50, AP75 and AR100
from N image resamples (seeded with `--seed`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from lib.core import command_line, journal, ray_cluster
from lib.core.progress import TerminalBar
from lib.detection import benchmark, datasets, intervals, robustness


@command_line.command
def main(argv: list[str] | None = None) -> int:
    parser, sub = command_line.with_commands("python -m lib.detect", __doc__)
    ev = sub.add_parser("evaluate", help="COCO metrics of a results JSON")
    run = sub.add_parser("run", help="run a model and write its COCO results JSON")
    rob = sub.add_parser("robustness", help="COCO-C: AP under corruptions, mPC and rPC")
    for p in (ev, run, rob):
        p.add_argument("--images", required=True)
        p.add_argument("--annotations", required=True)
        p.add_argument("--subset", type=int)
        p.add_argument("--seed", type=int, default=0)
    ev.add_argument("--predictions", required=True)
    ev.add_argument("--json", action="store_true", help="one JSON object on the last line")
    ev.add_argument("--bootstrap", type=int, metavar="N",
                    help="95%% intervals from N image resamples (e.g. 1000; seeded with --seed)")
    for p in (run, rob):
        p.add_argument("--model", required=True)
        p.add_argument("--out", required=True)
        p.add_argument("--threshold", type=float, default=0.05)
        ray_cluster.add_engine_flags(p)
    rob.add_argument("--corruptions", nargs="+", metavar="NAME",
                     help="default: the benchmark's 15 (" + ", ".join(robustness.BENCHMARK) + ")")
    rob.add_argument("--severities", default="1-5", help="e.g. 1-5 (default), 3, 1,3,5")
    rob.add_argument("--bootstrap", type=int, default=robustness.RESAMPLES, metavar="N")
    args = parser.parse_args(argv)
    if args.command == "evaluate":
        if args.bootstrap is not None:
            intervals.check_resamples(args.bootstrap)
        metrics, cis = benchmark.evaluate_files(args.images, args.annotations, args.predictions,
                                                args.subset, args.seed, args.bootstrap)
        if args.json:
            print(json.dumps({**metrics.stats, **(cis.as_json() if cis else {})}))
        else:
            for key, value in metrics.stats.items():
                span = cis.intervals.get(key) if cis else None
                print(f"{key:6s} {value:.4f}" + (f"  [{span[0]:.4f}, {span[1]:.4f}]"
                                                   if span else ""))
        return 0
    ray = ray_cluster.options_from_flags(args)
    if args.command == "robustness":
        chosen = robustness.conditions(args.corruptions, args.severities)
        intervals.check_resamples(args.bootstrap)
    dataset = datasets.load_coco(args.annotations, args.images).subset(args.subset, args.seed)
    if args.command == "robustness":
        result = benchmark.run_robustness(args.model, dataset, chosen, args.threshold, ray=ray,
                                          progress=TerminalBar("images"),
                                          resamples=args.bootstrap, seed=args.seed)
        out = Path(args.out)
        journal.write_atomic(out, result.grid.to_csv(index=False) if out.suffix == ".csv"
                             else json.dumps(result.as_json()))
        print(f"\nwrote AP under {len(chosen)} corruption x severity pairs to {args.out}",
              file=sys.stderr)
        (lo, hi), (rlo, rhi) = result.mpc_interval, result.rpc_interval
        print(f"clean AP {result.clean_ap:.4f}  mPC {result.mpc:.4f} [{lo:.4f}, {hi:.4f}]  "
              f"rPC {result.rpc:.4f} [{rlo:.4f}, {rhi:.4f}]  worst: {result.worst}")
        return 0
    job = benchmark.run_model(args.model, dataset, args.threshold, ray=ray,
                    progress=TerminalBar("images"))
    journal.write_atomic(Path(args.out), json.dumps(job.results()))
    print(f"\nwrote {len(job.results())} detections to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
