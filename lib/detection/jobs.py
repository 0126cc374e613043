"""The inference job: a detector over a dataset in a background thread (on this server or on
Ray), with progress, cancel and resume. One JSON line per finished image goes to a partial
shard (`lib.core.journal`: a torn last line is cut before resuming); the COCO results file is
written in one step once every image is done, and is cached on disk per (model, dataset
subset, settings), so reloading never recomputes.

A job can also run over corrupted copies of the images (`corruptions`: (name, severity)
pairs, `lib.media.corruptions`): each image is corrupted on the fly as it is read, never
written, seeded by its image id so that every engine and every resume makes the same
pixels; its unit of work is then one image under one corruption, and each result row names
the corruption and severity it was made under."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lib.core import journal, settings
from lib.core.errors import LensError
from lib.core.progress import Progress
from lib.detection import ray_inference
from lib.detection.datasets import CocoDataset
from lib.detection.detections import Detections, from_coco_results, map_labels
from lib.detection.detectors import Detector
from lib.media import corruptions
from lib.models import cache, registry
from lib.serving import fair_queue


@dataclass
class SpeedStats:
    latencies_s: list[float] = field(default_factory=list)   # per image
    peak_memory_mb: float = 0.0
    device: str = "cpu"

    def summary(self) -> dict[str, float]:
        lat = np.asarray(self.latencies_s) if self.latencies_s else np.zeros(1)
        return {"latency_median_ms": float(np.median(lat) * 1000),
                "latency_p90_ms": float(np.percentile(lat, 90) * 1000),
                "images_per_s": float(len(self.latencies_s) / max(lat.sum(), 1e-9)),
                "peak_memory_mb": self.peak_memory_mb}


def cache_key(model_name: str, dataset: CocoDataset, settings: dict[str, Any],
              fingerprint: str | None = None) -> str:
    """Identifies a model's results on a dataset subset (`fingerprint`: the dataset's, when
    the caller already has it: it stats every image)."""
    blob = json.dumps({"model": model_name, "data": fingerprint or dataset.fingerprint,
                       **settings}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


class InferenceJob:
    """Run a detector over a dataset in a thread (on this server or on Ray); resumable,
    cancellable, cached on disk: one JSON line per finished image in a partial shard, merged
    into the results file when every image is done."""

    def __init__(self, key: str, dataset: CocoDataset, make_detector: Callable[[], Detector],
                 label_map: Callable[[Detector], dict[int, int]], threshold: float = 0.05,
                 batch_size: int = 2, cache_dir: Path | None = None,
                 spec: registry.ModelSpec | None = None, map_by: str = "name",
                 corruptions: tuple[tuple[str, int], ...] = ()):
        self.key, self.dataset = key, dataset
        self.threshold, self.batch_size = threshold, batch_size
        self._make, self._label_map = make_detector, label_map
        self.spec, self.map_by = spec, map_by     # what a Ray worker needs to load and map
        self.device = "cpu"
        root = cache_dir or settings.cache_dir("detections")
        self.results_path = root / f"{key}.json"
        self.partial_path = root / f"{key}.partial.jsonl"
        self.speed_path = root / f"{key}.speed.json"
        self.failed_path = root / f"{key}.failed.json"
        self.corruptions = tuple((str(c), int(s)) for c, s in corruptions)
        self.total = len(self._items())
        self.done = 0
        self.error: str | None = None
        self.started = 0.0
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def finished(self) -> bool:
        return self.results_path.is_file()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, ray=None) -> None:
        """Run (or resume) in a background thread: on this server, or on Ray when given
        `ray_cluster.RayOptions`. The results are the same either way."""
        if self.finished or self.running:
            return
        if ray is not None and self.spec is None:
            raise registry.ModelCreateError("This job has no model spec to send to Ray.")
        self._cancel.clear()
        self.error = None
        self._thread = threading.Thread(target=self._run, args=(ray,), daemon=True,
                                        name=f"lens-{self.key}")
        self._thread.start()

    def cancel(self) -> None:
        self._cancel.set()

    def wait(self, timeout: float | None = None) -> None:
        if self._thread:
            self._thread.join(timeout)

    @property
    def progress(self) -> Progress:
        """Images done of the total, and the time this run has taken so far."""
        elapsed = time.time() - self.started if self.running and self.started else 0.0
        return Progress(self.done, self.total, elapsed)

    def results(self) -> list[dict[str, Any]]:
        """The finished job's COCO results JSON (the file format; for writing it out)."""
        return json.loads(self.results_path.read_text()) if self.finished else []

    def detections(self) -> dict[int, Detections]:
        """The finished job's detections per image."""
        return from_coco_results(self.results())

    def speed(self) -> dict[str, float]:
        return json.loads(self.speed_path.read_text()) if self.speed_path.is_file() else {}

    def failed(self) -> dict[int, str]:
        """Images that could not be read: image id -> reason (they count as no detections)."""
        if self.failed_path.is_file():
            return {int(k): v for k, v in json.loads(self.failed_path.read_text()).items()}
        return self._partial()[2]

    def _ray_worker(self) -> dict:
        """The Ray actor class and its arguments (a detector's, unless a subclass says)."""
        return {}

    def _items(self) -> list[Item]:
        """The units of work: every image, under each corruption when there are any."""
        return [(i, c, s) for c, s in self.corruptions or (("", 0),)
                for i in self.dataset.image_ids]

    def _partial(self) -> tuple[set[Item], list[dict], dict[int, str]]:
        """The items the shard holds (a torn last line is skipped: that image is redone;
        an item written twice, by a run that resumed, counts once, its last record)."""
        latest: dict[Item, dict] = {}
        for rec in journal.read(self.partial_path).records:
            if isinstance(rec.get("image_id"), int) and isinstance(rec.get("results"), list):
                latest[_item(rec)] = rec
        rows = [row for rec in latest.values() for row in rec["results"]]
        failed = {i: rec["failed"] for (i, _, _), rec in latest.items() if rec.get("failed")}
        return set(latest), rows, failed

    def _read(self, item: Item):
        """The item's image as RGB (corrupted as it says), or the reason it cannot be used."""
        image_id, name, severity = item
        try:
            return corruptions.load(self.dataset.image_path(image_id), name, severity,
                                    seed=image_id)
        except LensError as exc:
            return str(exc)

    def _local_batches(self, todo: list[Item]):
        """This server's engine: the detector in this thread, batch by batch."""
        detector = self._make()
        label_map = self._label_map(detector)
        self.device = detector.device
        for start in range(0, len(todo), self.batch_size):
            if self._cancel.is_set():
                return
            batch = [(item, self._read(item)) for item in todo[start:start + self.batch_size]]
            records = [record(item, [], im, 0.0) for item, im in batch if isinstance(im, str)]
            good = [(item, im) for item, im in batch if not isinstance(im, str)]
            if good:
                with fair_queue.HEAVY.slot():       # a batch waits its turn with the visitors
                    t0 = time.perf_counter()
                    dets = detector.predict([im for _, im in good], [i for (i, _, _), _ in good],
                                            label_map, self.threshold)
                    per_image = (time.perf_counter() - t0) / len(good)
                records += [record(item, d.to_coco(), "", per_image)
                            for (item, _), d in zip(good, dets)]
            yield records

    def _run(self, ray_options=None) -> None:
        import psutil  # heavy: imported on first use
        try:
            self.results_path.parent.mkdir(parents=True, exist_ok=True)
            journal.repair(self.partial_path)   # a torn last line: the next record starts clean
            done, _, _ = self._partial()
            items = self._items()
            self.done = len(done & set(items))
            todo = [item for item in items if item not in done]
            if ray_options is not None:
                self.device = f"ray ({ray_options.workers} workers)"
                batches = ([record(_item(r), r["results"], r["failed"], r["seconds"])
                            for r in records]
                           for records in ray_inference.run(
                               ray_options, self.spec, self.dataset, todo, self.map_by,
                               self.threshold, self.batch_size, self._cancel.is_set,
                               **self._ray_worker()))
            else:
                batches = self._local_batches(todo)
            speed = SpeedStats(device=self.device)
            process = psutil.Process()
            peak = process.memory_info().rss
            self.started = time.time() - 1e-9
            with self.partial_path.open("a", encoding="utf-8") as out:
                for records in batches:
                    # one line per image: a shard a resume can trust
                    journal.append(self.partial_path, [
                        {k: v for k, v in rec.items() if k != "seconds" and v != ""}
                        for rec in records], out)
                    speed.latencies_s += [rec["seconds"] for rec in records if not rec["failed"]]
                    self.done += len(records)
                    peak = max(peak, process.memory_info().rss)
                    if self._cancel.is_set():
                        return
            if self._cancel.is_set():
                return
            done, rows, failed = self._partial()
            missing = [item for item in items if item not in done]
            if missing:    # never call a run finished with images missing: a resume redoes them
                self.done = len(items) - len(missing)
                self.error = (f"{len(missing)} of {self.total} images have no results yet "
                              f"(first: image id {missing[0][0]}); run again to finish them.")
                return
            speed.device = self.device
            if self.device == "cuda":
                import torch  # heavy: imported on first use
                speed.peak_memory_mb = torch.cuda.max_memory_allocated() / 2**20
            else:
                speed.peak_memory_mb = peak / 2**20
            journal.write_atomic(self.failed_path, json.dumps(failed))
            journal.write_atomic(self.speed_path,
                                 json.dumps({**speed.summary(), "device": speed.device}))
            journal.write_atomic(self.results_path, json.dumps(rows))   # last: now finished
            self.partial_path.unlink(missing_ok=True)
        except Exception as exc:  # noqa: BLE001 - shown on the page; partial results are kept
            self.error = str(exc)


Item = tuple[int, str, int]      # image id, corruption ("" for none), severity (0 for none)


def _item(rec: dict) -> Item:
    return rec["image_id"], str(rec.get("corruption", "")), int(rec.get("severity", 0))


def record(item: Item, results: list[dict], failed: str, seconds: float) -> dict:
    """One image's record; a corrupted one names its corruption in the record and each row."""
    image_id, name, severity = item
    if name:
        results = [{**row, "corruption": name, "severity": severity} for row in results]
    return {"image_id": image_id, "results": results, "failed": failed, "seconds": seconds,
            **({"corruption": name, "severity": severity} if name else {})}


_JOBS: dict[str, InferenceJob] = {}


_JOBS_LOCK = threading.Lock()


def get_job(key: str, factory: Callable[[], InferenceJob]) -> InferenceJob:
    """One job per cache key, shared by every session of the process."""
    with _JOBS_LOCK:
        if key not in _JOBS:
            _JOBS[key] = factory()
        return _JOBS[key]


def job_for(spec: registry.ModelSpec, dataset: CocoDataset, map_by: str = "name",
            threshold: float = 0.05, batch_size: int = 2,
            fingerprint: str | None = None) -> InferenceJob:
    """The one job (and cache entry) for a registry detector on a dataset subset: the page,
    the command line and the leaderboard all find the same results."""
    key = cache_key(spec.name, dataset, {"threshold": threshold, "map_by": map_by}, fingerprint)
    return get_job(key, lambda: InferenceJob(
        key, dataset, lambda: cache.load(spec, "detection").model,
        lambda det: map_labels(det.labels, dataset.categories, by=map_by), threshold,
        batch_size, spec=spec, map_by=map_by))
