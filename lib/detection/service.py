"""The detection benchmark for one visitor: `DetectionBenchmark` owns what the Detection page
shows (the dataset, every model's report on it, the leaderboard, intervals, the paired
comparison, calibration, slices and COCO-C robustness), the process-wide cache keys they are
kept under, the visitor's imported results, and the page's link. The page reads widgets,
calls it, renders.

Reports and statistics are read-only and shared by every visitor (`cache.shared`, under the
memory budget): a key names the dataset's fingerprint and the detections' digest, so two
visitors on the same data and models share one evaluation. What is the visitor's alone (the
results files they imported) lives on the object and goes with their session.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from lib.core import links, paths
from lib.core.progress import Busy, idle
from lib.detection import (
    benchmark,
    calibration,
    coco_eval,
    datasets,
    detections,
    intervals,
    jobs,
    robustness,
    slices,
    whatif,
)
from lib.models import cache, registry


@dataclass(frozen=True)
class Slices:
    """Slices of one model's detections: every slice's AP, the worst five with intervals,
    and what could not be sliced."""
    table: object
    worst: list
    skipped: dict


class DetectionBenchmark:
    """One visitor's detection benchmark. `busy(what)` wraps heavy work that is not cached
    yet (the page passes a spinner with the fair queue; scripts pass nothing)."""

    def __init__(self, busy: Busy = idle):
        self.busy = busy
        self.dataset: datasets.CocoDataset | None = None
        self._imported: dict[str, dict[str, dict]] = {}   # fingerprint -> name -> detections

    # -- data --------------------------------------------------------------------------------
    def open(self, annotations: Path, images: Path, subset: int | None = None,
             seed: int = 0) -> datasets.CocoDataset:
        """A COCO dataset (annotations and images already resolved by the caller), read
        once per process and shared read-only; becomes this benchmark's dataset."""
        annotations, images = Path(annotations), Path(images)
        stamp = annotations.stat().st_mtime
        self.dataset = cache.shared(
            f"dataset: {annotations}|{images}|{stamp}|{subset}|{seed}",
            lambda: datasets.load_coco(annotations, images).subset(subset, seed))
        return self.dataset

    def open_typed(self, annotations: str, images: str, subset: int | None = None,
                   seed: int = 0) -> datasets.CocoDataset:
        """`open` for paths a visitor typed (or a link carried): resolved and contained."""
        return self.open(paths.data_path(annotations, "file"), paths.data_path(images, "dir"),
                         subset, seed)

    def open_zip(self, data: bytes, subset: int | None = None,
                 seed: int = 0) -> datasets.CocoDataset:
        """`open` for an uploaded zip holding an instances JSON and its images."""
        with self.busy("Unpacking the archive…"):
            annotations, images = datasets.find_coco_in(paths.extract_zip(data))
        return self.open(annotations, images, subset, seed)

    @property
    def fingerprint(self) -> str:
        return self.dataset.fingerprint

    # -- reports -----------------------------------------------------------------------------
    def report(self, dets: dict) -> benchmark.Report:
        """One model's report on the dataset: evaluated and matched once per (dataset,
        detections) and shared; the score threshold only filters it."""
        def build():
            with self.busy("Evaluating the detections…"):
                return benchmark.report(self.dataset, dets)
        return cache.shared(f"detection report: {self.fingerprint}|{detections.digest(dets)}",
                            build)

    def remember_import(self, name: str, dets: dict) -> None:
        """An imported results file stays on this visitor's leaderboard for the dataset."""
        self._imported.setdefault(self.fingerprint, {})[name] = dets

    def finished_detections(self, results: Path) -> dict:
        """A registry detector's finished results file, checked against the dataset."""
        results = Path(results)
        return cache.shared(
            f"finished detections: {self.fingerprint}|{results}|{results.stat().st_mtime}",
            lambda: detections.from_coco_results(
                detections.check_results(results, self.dataset).results))

    def board(self, reports: dict[str, benchmark.Report], specs: list[registry.ModelSpec],
              map_by: str) -> dict[str, benchmark.Report]:
        """Every model evaluated on this dataset: the slots' reports first, then registry
        detectors already run on it (by anyone), then this visitor's imported files."""
        board = dict(reports)
        for name, path in benchmark.finished_runs(specs, self.dataset, map_by,
                                                  self.fingerprint).items():
            if name not in board:
                board[name] = self.report(self.finished_detections(path))
        for name, dets in self._imported.get(self.fingerprint, {}).items():
            if name not in board:
                board[name] = self.report(dets)
        return board

    def mask_metrics(self, results: list[dict], content: bytes) -> dict[str, object]:
        """Mask and boundary IoU metrics of imported results with a mask on every
        prediction, once per file content."""
        key = hashlib.sha256(content).hexdigest()[:16]

        def build():
            with self.busy("Scoring the masks (mask and boundary IoU)…"):
                return {t: coco_eval.evaluate_masks(self.dataset, results, t)
                        for t in coco_eval.MASK_TYPES}
        return cache.shared(f"mask metrics: {self.fingerprint}|{key}", build)

    # -- statistics --------------------------------------------------------------------------
    def bootstrap(self, report: benchmark.Report, resamples: int = 1000,
                  seed: int = 0) -> intervals.Bootstrap:
        """One model's intervals (the Metrics tab's defaults: 1,000 resamples, seed 0)."""
        return cache.shared(
            f"bootstrap: {self.fingerprint}|{_digest(report)}|{resamples}|{seed}",
            lambda: intervals.bootstrap(report.matches, resamples, seed))

    def paired(self, a: tuple[str, benchmark.Report], b: tuple[str, benchmark.Report],
               resamples: int, seed: int) -> intervals.Paired:
        """Is B really better than A: a paired bootstrap of the two (name, report)."""
        (name_a, ra), (name_b, rb) = a, b
        return cache.shared(
            f"paired: {self.fingerprint}|{_digest(ra)}|{_digest(rb)}|{resamples}|{seed}",
            lambda: intervals.paired(ra.matches, rb.matches, name_a, name_b, resamples, seed))

    def calibration(self, report: benchmark.Report, method: str, score_thr: float,
                    seed: int) -> calibration.Recalibration:
        """The model's scores re-calibrated on half the images, measured on the other."""
        return cache.shared(
            f"calibration: {self.fingerprint}|{_digest(report)}|{method}|{score_thr}|{seed}",
            lambda: calibration.recalibrate(report.table, method, score_thr, seed))

    def slices(self, report: benchmark.Report, min_objects: int, areas, groups,
               resamples: int, seed: int) -> Slices:
        """Every slice with at least `min_objects` objects and the worst five."""
        def build():
            slicer = slices.Slicer(self.dataset, report.detections, report.matches)
            cands, skipped = slices.candidates(self.dataset, min_objects, areas=areas,
                                               groups=groups)
            table = slices.table(slicer, cands)
            return Slices(table, slices.worst(slicer, cands, 5, resamples, seed, table),
                          skipped)
        return cache.shared(f"slices: {self.fingerprint}|{_digest(report)}|{min_objects}|"
                            f"{areas}|{groups}|{resamples}|{seed}", build)

    def slice_intervals(self, report: benchmark.Report, min_objects: int, areas, groups,
                        resamples: int, seed: int, progress=None):
        """Every slice's table with an interval each (one bootstrap per slice)."""
        return cache.shared(
            f"slice intervals: {self.fingerprint}|{_digest(report)}|{min_objects}|{areas}"
            f"|{groups}|{resamples}|{seed}",
            lambda: slices.with_intervals(
                slices.Slicer(self.dataset, report.detections, report.matches),
                slices.candidates(self.dataset, min_objects, areas=areas, groups=groups)[0],
                resamples, seed, progress))

    # -- what-if on one image -----------------------------------------------------------------
    def whatif_sweep(self, name: str, picture, sha: str, threshold: float,
                     progress=None) -> whatif.Sweep:
        """A registry detector on one uploaded image under all 19 × 5 corruptions: how many
        of its clean detections each keeps (once per process per image, model, threshold)."""
        def build():
            det = cache.load(name, "detection").model
            with self.busy("Sweep"):
                return whatif.sweep(det, picture, {i: i for i in det.labels}, threshold,
                                    progress=progress)
        return cache.shared(f"detection sweep: {sha}|{name}|{threshold}", build)

    # -- robustness (COCO-C) ------------------------------------------------------------------
    def robustness_jobs(self, spec: registry.ModelSpec, chosen: tuple, map_by: str
                        ) -> tuple[jobs.InferenceJob, jobs.InferenceJob]:
        """The clean job and the corrupted one of a registry detector on this dataset (shared
        by every visitor and the command line; resumable)."""
        return (jobs.job_for(spec, self.dataset, map_by, fingerprint=self.fingerprint),
                robustness.job_for(spec, self.dataset, chosen, map_by,
                                   fingerprint=self.fingerprint))

    def robustness(self, specs: list[registry.ModelSpec], chosen: tuple, map_by: str
                   ) -> dict[str, robustness.Robustness]:
        """mPC and rPC of every detector whose clean and corrupted runs on this data are
        finished (by anyone), each evaluated once per process."""
        out = {}
        for spec in specs:
            clean, corrupted = self.robustness_jobs(spec, chosen, map_by)
            if not (clean.finished and corrupted.finished):
                continue

            def build(clean=clean, corrupted=corrupted, name=spec.name):
                with self.busy("Evaluating COCO-C…"):
                    return robustness.evaluate(
                        name, self.dataset, clean.detections(),
                        robustness.by_condition(corrupted.results(), chosen))
            out[spec.name] = cache.shared(f"robustness: {corrupted.key}|{clean.key}", build)
        return out

    # -- links -------------------------------------------------------------------------------
    @staticmethod
    def read_link(query) -> links.DetectionLink:
        """The benchmark a page URL asks for (visitor input: checked field by field)."""
        return links.DetectionLink.parse(query)


def _digest(report: benchmark.Report) -> str:
    return detections.digest(report.detections)
