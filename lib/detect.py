"""Detection benchmark command line; the detection page uses the same functions.

    python -m lib.detect evaluate --images DIR --annotations INSTANCES.json \
        --predictions RESULTS.json [--json]
    python -m lib.detect run --model NAME --images DIR --annotations INSTANCES.json \
        --out RESULTS.json [--subset N --seed S --threshold T]

`evaluate --json` prints the 12 COCO metrics as one JSON object on its last line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from dataclasses import dataclass

from lib import cli, coco_eval, detection, detectors, errors, registry, settings
from lib import tide



@dataclass
class Report:
    """Everything the detection page shows about one model on one dataset."""

    metrics: coco_eval.CocoMetrics
    errors: tide.ErrorReport
    confusion: Any
    confusion_names: list[str]
    per_image: Any            # DataFrame image_id, file, TP, FP, FN
    ious: Any                 # IoU of matched TPs
    f1: Any                   # DataFrame threshold, precision, recall, F1
    detections: dict[int, detection.Detections]


def report(dataset: detection.CocoDataset, results: list[dict], score_thr: float = 0.5) -> Report:
    """Metrics, error buckets and matching analyses of one set of results."""
    dets = detection.from_coco_results(results)
    confusion, names = coco_eval.confusion_matrix(dataset, dets, score_thr)
    return Report(coco_eval.evaluate(dataset, results), tide.analyse(dataset, dets),
                  confusion, names, coco_eval.per_image_counts(dataset, dets, score_thr),
                  coco_eval.matched_ious(dataset, dets, score_thr),
                  coco_eval.f1_vs_confidence(dataset, dets), dets)


def compare_images(a: Report, b: Report) -> Any:
    """Per image: TP − FP of model A and B and the difference (B wins where positive)."""
    merged = a.per_image.merge(b.per_image, on=["image_id", "file"], suffixes=("_A", "_B"))
    merged["score_A"] = merged["TP_A"] - merged["FP_A"]
    merged["score_B"] = merged["TP_B"] - merged["FP_B"]
    merged["B_minus_A"] = merged["score_B"] - merged["score_A"]
    return merged.sort_values("B_minus_A", kind="stable")


def evaluate_files(images: str | Path, annotations: str | Path, predictions: str | Path,
                   subset: int | None = None, seed: int = 0) -> coco_eval.CocoMetrics:
    dataset = detection.load_coco(annotations, images).subset(subset, seed)
    results = detection.read_results_json(Path(predictions), dataset)
    return coco_eval.evaluate(dataset, results)


def run_model(model: str, dataset: detection.CocoDataset, threshold: float = 0.05,
              batch_size: int = 2, progress=None) -> detectors.InferenceJob:
    """Run a registry detector over a dataset (blocking); returns the finished job."""
    spec = registry.find(model)
    key = detectors.cache_key(spec.name, dataset, {"threshold": threshold})
    job = detectors.get_job(key, lambda: detectors.InferenceJob(
        key, dataset, lambda: detectors.load_detector(spec),
        lambda det: detection.map_labels(det.labels, dataset.categories), threshold, batch_size))
    job.start()
    while job.running:
        time.sleep(0.5)
        if progress:
            progress(job.done, job.total)
    if job.error:
        raise errors.ModelError(f"Inference failed: {job.error}")
    return job


def log_benchmark(model: str, dataset: detection.CocoDataset, subset: int | None, seed: int,
                  threshold: float, metrics: dict[str, float], speed: dict[str, Any] | None = None,
                  out_dir: Path | None = None) -> str:
    """Log one benchmark as a W&B run (offline unless WANDB_API_KEY is set); returns its dir."""
    import wandb
    out_dir = out_dir or settings.get().wandb_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    mode = "online" if os.environ.get("WANDB_API_KEY") else "offline"
    run = wandb.init(mode=mode, dir=str(out_dir), project="lens-detection-benchmarks",
                     name=f"{model} on {dataset.annotations_path.stem}", job_type="benchmark",
                     config={"model": model, "dataset": str(dataset.annotations_path),
                             "images": len(dataset.image_ids), "subset": subset, "seed": seed,
                             "score_threshold": threshold}, tags=["benchmark", "detection"],
                     settings=wandb.Settings(silent=True, console="off"))
    for key, value in {**metrics, **(speed or {})}.items():
        if isinstance(value, (int, float)):
            run.summary[key] = value
    path = run.dir
    run.finish()
    return str(Path(path).parent)


@cli.command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lib.detect", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    ev = sub.add_parser("evaluate", help="COCO metrics of a results JSON")
    run = sub.add_parser("run", help="run a model and write its COCO results JSON")
    for p in (ev, run):
        p.add_argument("--images", required=True)
        p.add_argument("--annotations", required=True)
        p.add_argument("--subset", type=int)
        p.add_argument("--seed", type=int, default=0)
    ev.add_argument("--predictions", required=True)
    ev.add_argument("--json", action="store_true", help="one JSON object on the last line")
    run.add_argument("--model", required=True)
    run.add_argument("--out", required=True)
    run.add_argument("--threshold", type=float, default=0.05)
    args = parser.parse_args(argv)
    if args.command == "evaluate":
        metrics = evaluate_files(args.images, args.annotations, args.predictions,
                                 args.subset, args.seed)
        if args.json:
            print(json.dumps(metrics.stats))
        else:
            for key, value in metrics.stats.items():
                print(f"{key:6s} {value:.4f}")
        return 0
    dataset = detection.load_coco(args.annotations, args.images).subset(args.subset, args.seed)
    job = run_model(args.model, dataset, args.threshold,
                    progress=lambda d, n: print(f"\r{d}/{n} images", end="", file=sys.stderr))
    Path(args.out).write_text(json.dumps(job.results()))
    print(f"\nwrote {len(job.results())} detections to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
