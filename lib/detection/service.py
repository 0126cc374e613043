"""The detection benchmark for one visitor: `DetectionBenchmark` owns what the Detection page
shows (the dataset, every model's report on it, the leaderboard, intervals, the paired
comparison, calibration, slices, COCO-C robustness, and the Dataset tab's embeddings, map,
neighbours and label errors, with the map's selection that every report then follows),
the process-wide cache keys they are kept under, the visitor's imported results, and the
page's link. The page reads widgets, calls it, renders.

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
    datasets,
    detections,
    intervals,
    jobs,
    robustness,
    slices,
    whatif,
)
from lib.detection.explore import embedding_job, embeddings, exploration, label_errors
from lib.detection.explore.embedding_job import EmbeddingJob
from lib.detection.explore.embeddings import GROUND_TRUTH
from lib.detection.metrics import masks
from lib.models import cache, registry
from lib.models.spec import Task


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
        self.selection: tuple[int, ...] = ()    # images the Dataset tab's map selected
        self._data_key = ""
        self._linked: tuple[str, ...] = ()
        self.detections_of: dict[str, dict] = {}   # model name -> its detections, all images

    # -- data --------------------------------------------------------------------------------
    def open(self, annotations: Path, images: Path, subset: int | None = None,
             seed: int = 0) -> datasets.CocoDataset:
        """A COCO dataset (annotations and images already resolved by the caller), read
        once per process and shared read-only; becomes this benchmark's dataset."""
        annotations, images = Path(annotations), Path(images)
        stamp = annotations.stat().st_mtime
        key = f"{annotations}|{images}|{stamp}|{subset}|{seed}"
        self.dataset = cache.shared(
            "dataset", key, lambda: datasets.load_coco(annotations, images).subset(subset, seed))
        if key != self._data_key:       # another dataset: the selection was of the last one
            self.selection, self._data_key, self.detections_of = (), key, {}
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

    # -- the selection: reports and statistics of the images picked on the map ---------------
    def select(self, image_ids) -> list[int]:
        """Restrict reports and statistics to these images (none, or every one: the whole
        dataset); returns the ids asked for that the dataset does not have (left out)."""
        known = set(self.dataset.image_ids)
        asked = {int(i) for i in image_ids}
        picked = tuple(sorted(asked & known))
        self.selection = picked if 0 < len(picked) < len(known) else ()
        return sorted(asked - known)

    def follow_link(self, link: links.DetectionLink) -> list[str]:
        """The link's selection, applied when the link changed (a selection made on the map
        stays while the link is the one it wrote); returns what it names that the dataset
        does not have."""
        if link.selected == self._linked:
            return []
        self._linked = link.selected
        ids = [int(t) for t in link.selected if t.strip().isdigit()]
        bad = [t for t in link.selected if not t.strip().isdigit()]
        return bad + [str(i) for i in self.select(ids)]

    @property
    def scope(self) -> datasets.CocoDataset:
        """The dataset reports are made on: the selection's images, else all."""
        if not self.selection:
            return self.dataset
        return cache.shared("dataset selection", self.scope_key,
                            lambda: self.dataset.only(self.selection))

    @property
    def scope_key(self) -> str:
        if not self.selection:
            return self.fingerprint
        ids = ",".join(map(str, self.selection)).encode()
        return f"{self.fingerprint}|sel:{hashlib.sha256(ids).hexdigest()[:16]}"

    # -- reports -----------------------------------------------------------------------------
    def report(self, dets: dict, name: str = "") -> benchmark.Report:
        """One model's report on the dataset (on the selection's images when there is one):
        evaluated and matched once per (images, detections) and shared; the score threshold
        only filters it. `name`: the model's, whose whole detections `detections_of` then
        keeps for this visitor (the Dataset tab embeds them whatever is selected)."""
        if name:
            self.detections_of[name] = dets
        if self.selection:
            keep = set(self.selection)
            dets = {i: d for i, d in dets.items() if i in keep}
        scope = self.scope

        def build():
            with self.busy("Evaluating the detections…"):
                return benchmark.report(scope, dets)
        return cache.shared("detection report", f"{self.scope_key}|{detections.digest(dets)}",
                            build)

    def remember_import(self, name: str, dets: dict) -> None:
        """An imported results file stays on this visitor's leaderboard for the dataset."""
        self._imported.setdefault(self.fingerprint, {})[name] = dets

    def finished_detections(self, results: Path) -> dict:
        """A registry detector's finished results file, checked against the dataset."""
        results = Path(results)
        return cache.shared(
            "finished detections", f"{self.fingerprint}|{results}|{results.stat().st_mtime}",
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
                board[name] = self.report(self.finished_detections(path), name)
        for name, dets in self._imported.get(self.fingerprint, {}).items():
            if name not in board:
                board[name] = self.report(dets, name)
        return board

    def mask_metrics(self, results: list[dict], content: bytes) -> dict[str, object]:
        """Mask and boundary IoU metrics of imported results with a mask on every
        prediction, once per file content."""
        key = hashlib.sha256(content).hexdigest()[:16]

        def build():
            with self.busy("Scoring the masks (mask and boundary IoU)…"):
                return {t: masks.evaluate_masks(self.dataset, results, t)
                        for t in masks.MASK_TYPES}
        return cache.shared("mask metrics", f"{self.fingerprint}|{key}", build)

    # -- statistics --------------------------------------------------------------------------
    def bootstrap(self, report: benchmark.Report, resamples: int = 1000,
                  seed: int = 0) -> intervals.Bootstrap:
        """One model's intervals (the Metrics tab's defaults: 1,000 resamples, seed 0)."""
        return cache.shared(
            "bootstrap", f"{self.scope_key}|{_digest(report)}|{resamples}|{seed}",
            lambda: intervals.bootstrap(report.matches, resamples, seed))

    def paired(self, a: tuple[str, benchmark.Report], b: tuple[str, benchmark.Report],
               resamples: int, seed: int) -> intervals.Paired:
        """Is B really better than A: a paired bootstrap of the two (name, report)."""
        (name_a, ra), (name_b, rb) = a, b
        return cache.shared(
            "paired", f"{self.scope_key}|{_digest(ra)}|{_digest(rb)}|{resamples}|{seed}",
            lambda: intervals.paired(ra.matches, rb.matches, name_a, name_b, resamples, seed))

    def calibration(self, report: benchmark.Report, method: str, score_thr: float,
                    seed: int) -> calibration.Recalibration:
        """The model's scores re-calibrated on half the images, measured on the other."""
        return cache.shared(
            "calibration", f"{self.scope_key}|{_digest(report)}|{method}|{score_thr}|{seed}",
            lambda: calibration.recalibrate(report.table, method, score_thr, seed))

    def slices(self, report: benchmark.Report, min_objects: int, areas, groups,
               resamples: int, seed: int) -> Slices:
        """Every slice with at least `min_objects` objects and the worst five."""
        def build():
            slicer = slices.Slicer(self.scope, report.detections, report.matches)
            cands, skipped = slices.candidates(self.scope, min_objects, areas=areas,
                                               groups=groups)
            table = slices.table(slicer, cands)
            return Slices(table, slices.worst(slicer, cands, 5, resamples, seed, table),
                          skipped)
        return cache.shared("slices", f"{self.scope_key}|{_digest(report)}|{min_objects}|"
                            f"{areas}|{groups}|{resamples}|{seed}", build)

    def slice_intervals(self, report: benchmark.Report, min_objects: int, areas, groups,
                        resamples: int, seed: int, progress=None):
        """Every slice's table with an interval each (one bootstrap per slice)."""
        return cache.shared(
            "slice intervals", f"{self.scope_key}|{_digest(report)}|{min_objects}|{areas}"
            f"|{groups}|{resamples}|{seed}",
            lambda: slices.with_intervals(
                slices.Slicer(self.scope, report.detections, report.matches),
                slices.candidates(self.scope, min_objects, areas=areas, groups=groups)[0],
                resamples, seed, progress))

    # -- what-if on one image -----------------------------------------------------------------
    def whatif(self, name: str, picture, sha: str, corruption: str | None, severity: int,
               threshold: float) -> whatif.Pair:
        """A registry detector on one uploaded image, clean and corrupted, matched (once per
        process per image, model, corruption, severity and threshold)."""
        def build():
            det = cache.load(name, "detection").model
            with self.busy(f"Detecting with {name}…"):
                return whatif.pair(det, picture, corruption, severity, threshold)
        return cache.shared("detection what-if",
                            f"{sha}|{name}|{corruption}|{severity}|{threshold}", build)

    def whatif_sweep(self, name: str, picture, sha: str, threshold: float,
                     progress=None) -> whatif.Sweep:
        """A registry detector on one uploaded image under all 19 × 5 corruptions: how many
        of its clean detections each keeps (once per process per image, model, threshold)."""
        def build():
            det = cache.load(name, "detection").model
            with self.busy("Sweep"):
                return whatif.sweep(det, picture, {i: i for i in det.labels}, threshold,
                                    progress=progress)
        return cache.shared("detection sweep", f"{sha}|{name}|{threshold}", build)

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
            out[spec.name] = cache.shared("robustness", f"{corrupted.key}|{clean.key}", build)
        return out

    # -- the whole dataset (the Dataset tab) --------------------------------------------------
    def embedding_job(self, spec: registry.ModelSpec, source: str = GROUND_TRUTH,
                      dets: dict | None = None, score_thr: float = 0.5,
                      dataset: datasets.CocoDataset | None = None) -> EmbeddingJob:
        """The job embedding this dataset's images and boxes (the ground truth, or `dets` of
        the model `source` at `score_thr`) with a registry classifier or detector; shared
        by every visitor, resumable, cached on disk. `dataset`: another split (leaks)."""
        data = dataset or self.dataset
        fingerprint = data.fingerprint if dataset else self.fingerprint
        if source == GROUND_TRUTH:
            boxes = cache.shared("ground-truth boxes", fingerprint,
                                 lambda: embedding_job.ground_truth_boxes(data))
        else:
            boxes = embedding_job.predicted_boxes(dets or {}, score_thr)
        task = "classification" if spec.task == Task.CLASSIFICATION else "detection"
        return embedding_job.job_for(
            data, spec.name, lambda: embeddings.embedder_for(cache.load(spec, task).model,
                                                             spec.name),
            boxes, source, fingerprint, spec=spec, task=task)

    def exploration(self, job: EmbeddingJob, level: str) -> exploration.Exploration:
        """A finished job's vectors at one level with their index and scores (once per
        process)."""
        def build():
            with self.busy("Indexing the embeddings…"):
                return exploration.explore(job.embeddings(level))
        return cache.shared("exploration", f"{job.key}|{level}", build)

    def map(self, ex: exploration.Exploration, method: str):
        """The 2-D map of an exploration (UMAP waits its turn with the heavy work)."""
        if ex.mapped(method):
            return ex.map(method)
        with self.busy(f"Mapping {len(ex.emb)} points by {method}…"):
            return ex.map(method)

    def open_split(self, annotations: str, images: str) -> datasets.CocoDataset:
        """Another split (typed paths, resolved and contained) to check for leaks."""
        annotations_path = paths.data_path(annotations, "file")
        images_path = paths.data_path(images, "dir")
        stamp = annotations_path.stat().st_mtime
        return cache.shared("dataset", f"{annotations_path}|{images_path}|{stamp}|None|0",
                            lambda: datasets.load_coco(annotations_path, images_path))

    def label_errors(self, models: dict[str, dict]) -> label_errors.Findings:
        """The annotations most likely wrong on the images in view, from these models'
        detections (once per process per dataset, selection and detections)."""
        keep = set(self.scope.image_ids)
        chosen = {n: {i: d for i, d in dets.items() if i in keep} for n, dets in models.items()}
        digest = "|".join(f"{n}:{detections.digest(d)}" for n, d in sorted(chosen.items()))

        def build():
            with self.busy("Scoring every annotation…"):
                return label_errors.find(self.scope, chosen)
        return cache.shared("label errors", f"{self.scope_key}|{digest}", build)

    # -- links -------------------------------------------------------------------------------
    @staticmethod
    def read_link(query) -> links.DetectionLink:
        """The benchmark a page URL asks for (visitor input: checked field by field)."""
        return links.DetectionLink.parse(query)


def _digest(report: benchmark.Report) -> str:
    return detections.digest(report.detections)
