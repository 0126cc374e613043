"""The detection benchmark as the page and the command line run it: one model's report on one
dataset (metrics, TIDE-style errors, matching analyses), A/B comparison, running a registry
detector over a dataset, and logging a benchmark to W&B."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lib import cache, coco_eval, datasets, detectors, errors, registry, settings, tide
from lib.progress import Callback


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
    detections: dict[int, datasets.Detections]


def report(dataset: datasets.CocoDataset, dets: dict[int, datasets.Detections],
           score_thr: float = 0.5) -> Report:
    """Metrics, error buckets and matching analyses of one model's detections."""
    confusion, names = coco_eval.confusion_matrix(dataset, dets, score_thr)
    metrics = coco_eval.evaluate(dataset, datasets.to_coco_results(dets))
    return Report(metrics, tide.analyse(dataset, dets),
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
    dataset = datasets.load_coco(annotations, images).subset(subset, seed)
    results = datasets.read_results_json(Path(predictions), dataset)
    return coco_eval.evaluate(dataset, results)


def run_model(model: str, dataset: datasets.CocoDataset, threshold: float = 0.05,
              batch_size: int = 2, progress: Callback | None = None) -> detectors.InferenceJob:
    """Run a registry detector over a dataset (blocking); returns the finished job."""
    spec = registry.find(model, "detection")
    key = detectors.cache_key(spec.name, dataset, {"threshold": threshold})
    job = detectors.get_job(key, lambda: detectors.InferenceJob(
        key, dataset, lambda: cache.load(spec, "detection").model,
        lambda det: datasets.map_labels(det.labels, dataset.categories), threshold, batch_size))
    job.start()
    while job.running:
        time.sleep(0.5)
        if progress:
            progress(job.progress)
    if job.error:
        raise errors.ModelError(f"Inference failed: {job.error}")
    return job


def log_benchmark(model: str, dataset: datasets.CocoDataset, subset: int | None, seed: int,
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
