"""The detection benchmark as the page and the command line run it: one model's report on one
dataset (metrics, TIDE-style errors, matching analyses), A/B comparison, running a registry
detector over a dataset, and logging a benchmark to W&B."""

from __future__ import annotations

import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from lib.core import errors, settings
from lib.core.progress import Callback
from lib.detection import (
    datasets,
    detections,
    intervals,
    jobs,
    matching,
    robustness,
    tide,
)
from lib.detection.metrics import coco, coco_matching
from lib.models import registry


@dataclass
class Report:
    """Everything the detection page shows about one model on one dataset. Built once per
    (model, dataset); every view at a score threshold is a filter of its match table."""

    metrics: coco.CocoMetrics
    errors: tide.ErrorReport
    table: matching.MatchTable
    f1: Any                   # DataFrame threshold, precision, recall, F1
    matches: coco_matching.CocoMatches   # COCO's matching at ten IoUs: intervals, slices
    detections: dict[int, detections.Detections]
    categories: dict[int, str]

    def confusion(self, score_thr: float = 0.5) -> tuple[Any, list[str]]:
        return self.table.confusion(self.categories, score_thr)

    def per_image(self, score_thr: float = 0.5) -> Any:
        """DataFrame image_id, file, TP, FP, FN."""
        return self.table.per_image_counts(score_thr)

    def ious(self, score_thr: float = 0.5) -> Any:
        """IoU of the matched true positives at or above the threshold."""
        return self.table.matched_ious(score_thr)


def report(dataset: datasets.CocoDataset, dets: dict[int, detections.Detections]) -> Report:
    """The COCO evaluation and one match table of one model's detections, and what follows.

    Two matchings, each made once: COCO's (per area range, ten IoU thresholds: the 12
    numbers, PR curves, and what the bootstrap and slices weigh) and the class-agnostic
    table at IoU 0.5 (confusion, TIDE, F1). Both are compiled and release the GIL, so the
    table is built in a second thread meanwhile."""

    def analysis():
        table = matching.match(dataset, dets)
        return table, tide.analyse(dataset, dets, table), table.f1_vs_confidence()

    with ThreadPoolExecutor(1, thread_name_prefix="lens-analysis") as pool:
        future = pool.submit(analysis)
        evaluation = coco.evaluation(dataset, dets)
        table, errors, f1 = future.result()
    return Report(evaluation.metrics, errors, table, f1, evaluation.matches, dets,
                  dataset.categories)


def leaderboard(reports: dict[str, Report],
                robust: dict[str, robustness.Robustness] | None = None) -> Any:
    """One row per model: the 12 COCO numbers and the ΔAP50 of each TIDE-style error type
    (n/a where COCO reports -1: no objects of that size); with `robust`, COCO-C's mPC and rPC
    and their 95% intervals (empty for a model not run under corruptions)."""
    rows = []
    for name, r in reports.items():
        row = {"model": name, **{k: (v if v >= 0 else float("nan"))
                                 for k, v in r.metrics.stats.items()}}
        if robust:
            c = robust.get(name)
            row.update({"mPC": c.mpc if c else float("nan"),
                        "mPC 95%": f"[{c.mpc_interval[0]:.4f}, {c.mpc_interval[1]:.4f}]"
                                   if c else "",
                        "rPC": c.rpc if c else float("nan"),
                        "rPC 95%": f"[{c.rpc_interval[0]:.4f}, {c.rpc_interval[1]:.4f}]"
                                   if c else ""})
        row.update({f"ΔAP {k}": v for k, v in r.errors.delta_ap.items()})
        rows.append(row)
    frame = pd.DataFrame(rows)
    return frame.sort_values("AP", ascending=False, kind="stable").reset_index(drop=True) \
        if len(frame) else frame


def compare_images(a: Report, b: Report, score_thr: float = 0.5) -> Any:
    """Per image: TP − FP of model A and B and the difference (B wins where positive)."""
    merged = a.per_image(score_thr).merge(b.per_image(score_thr), on=["image_id", "file"],
                                          suffixes=("_A", "_B"))
    merged["score_A"] = merged["TP_A"] - merged["FP_A"]
    merged["score_B"] = merged["TP_B"] - merged["FP_B"]
    merged["B_minus_A"] = merged["score_B"] - merged["score_A"]
    return merged.sort_values("B_minus_A", kind="stable")


def evaluate_files(images: str | Path, annotations: str | Path, predictions: str | Path,
                   subset: int | None = None, seed: int = 0, bootstrap: int | None = None
                   ) -> tuple[coco.CocoMetrics, intervals.Bootstrap | None]:
    """COCO metrics of a results file and, with `bootstrap` resamples, their intervals (from
    the same matching)."""
    dataset = datasets.load_coco(annotations, images).subset(subset, seed)
    results = detections.read_results_json(Path(predictions), dataset)
    evaluation = coco.evaluation(dataset, detections.from_coco_results(results))
    cis = intervals.bootstrap(evaluation.matches, bootstrap, seed) if bootstrap else None
    return evaluation.metrics, cis


def run_model(model: str, dataset: datasets.CocoDataset, threshold: float = 0.05,
              batch_size: int = 2, progress: Callback | None = None,
              ray=None) -> jobs.InferenceJob:
    """Run a registry detector over a dataset (blocking), on this machine or on Ray
    (`ray_cluster.RayOptions`); returns the finished job."""
    spec = registry.find(model, "detection")
    job = jobs.job_for(spec, dataset, threshold=threshold, batch_size=batch_size)
    _finish(job, progress, ray)
    return job


def run_robustness(model: str, dataset: datasets.CocoDataset,
                   chosen: tuple[robustness.Condition, ...], threshold: float = 0.05,
                   batch_size: int = 2, progress: Callback | None = None, ray=None,
                   resamples: int = robustness.RESAMPLES, seed: int = 0
                   ) -> robustness.Robustness:
    """COCO-C for a registry detector (blocking): its clean run, then every image under each
    chosen corruption; returns AP per corruption and severity, mPC and rPC."""
    clean = run_model(model, dataset, threshold, batch_size, progress, ray)
    spec = registry.find(model, "detection")
    job = robustness.job_for(spec, dataset, chosen, threshold=threshold, batch_size=batch_size)
    _finish(job, progress, ray)
    return robustness.evaluate(model, dataset, clean.detections(),
                               robustness.by_condition(job.results(), chosen), resamples, seed)


def _finish(job: jobs.InferenceJob, progress: Callback | None, ray) -> None:
    """Run a job to its end, reporting progress; a clear error if it did not finish."""
    job.start(ray=ray)
    while job.running:
        time.sleep(0.5)
        if progress:
            progress(job.progress)
    if job.error:
        raise errors.ModelError(f"Inference failed: {job.error}")
    if not job.finished:
        raise errors.ModelError("Inference stopped before every image was done.",
                                "Run the same command again: it resumes where it stopped.")


def log_benchmark(model: str, dataset: datasets.CocoDataset, subset: int | None, seed: int,
                  threshold: float, metrics: dict[str, float], speed: dict[str, Any] | None = None,
                  out_dir: Path | None = None, data: str = "path",
                  models: list[str] | None = None, map_by: str = "name") -> str:
    """Log one benchmark as a W&B run (offline unless WANDB_API_KEY is set); returns its dir.

    The config records what reopens it on the Detection page (`runs.detection_link`): the
    data source (`demo`, `path` or `upload`), both paths, subset, seed, label mapping and
    the models compared in the same session (`models`, this one first).
    """
    import wandb  # heavy: imported on first use
    out_dir = out_dir or settings.get().wandb_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    mode = "online" if os.environ.get("WANDB_API_KEY") else "offline"
    compared = [model] + [m for m in (models or []) if m != model]
    run = wandb.init(mode=mode, dir=str(out_dir), project="lens-detection-benchmarks",
                     name=f"{model} on {dataset.annotations_path.stem}", job_type="benchmark",
                     config={"model": model, "dataset": str(dataset.annotations_path),
                             "images_dir": str(dataset.images_dir), "data": data,
                             "images": len(dataset.image_ids), "subset": subset, "seed": seed,
                             "score_threshold": threshold, "map_by": map_by,
                             "models": compared}, tags=["benchmark", "detection"],
                     settings=wandb.Settings(silent=True, console="off"))
    for key, value in {**metrics, **(speed or {})}.items():
        if isinstance(value, (int, float)):
            run.summary[key] = value
    path = run.dir
    run.finish()
    return str(Path(path).parent)


# -- the page's two model slots and its leaderboard -----------------------------------------

def linked_slots(linked: str, choices: list[str], defaults: list[str], imported: str
                 ) -> tuple[list[str], dict[int, str]]:
    """The two slots' choices when a logged benchmark's link names its models (`linked`,
    comma-separated, visitor input): names in `choices` are chosen; any other was an imported
    results file (`imported` is chosen, and its plain name is returned per slot so the page
    can ask for the file again)."""
    if not linked:
        return defaults, {}
    names = linked.split(",")[:2]
    chosen = [m if m in choices else imported for m in names]
    plain = {k: re.sub(r"[^\w.\- ]", "", m)[:100] for k, m in enumerate(names)
             if m not in choices}
    return chosen + defaults[len(chosen):], plain


def finished_runs(specs: list[registry.ModelSpec], dataset: datasets.CocoDataset, map_by: str,
                  fingerprint: str) -> dict[str, Path]:
    """The results file of every registry detector already run on this dataset subset
    (by this page, another visitor or the command line): the leaderboard's other rows."""
    out = {}
    for spec in specs:
        path = jobs.job_for(spec, dataset, map_by, fingerprint=fingerprint).results_path
        if path.is_file():
            out[spec.name] = path
    return out
