"""Detectors (torchvision Faster R-CNN, transformers DETR family) and the inference job.

The builders (`build_torchvision`, `build_transformers`, `build_checkpoint`, called through
`lib.models.cache.load`) load real weights or raise `WeightsMissingError` naming the fetch command;
they never fall back to random weights. `InferenceJob` runs a detector over a dataset in a
background thread with progress, cancel and resume; its COCO results JSON is cached on disk
per (model, dataset subset, settings), so reloading never recomputes.
"""

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
from PIL import Image

from lib.core import journal, settings
from lib.core.errors import LensError
from lib.core.progress import Progress
from lib.detection import ray_inference
from lib.detection.architectures import (
    build_conditional_detr,
    build_fasterrcnn_timm,
    detr_processor,
)
from lib.detection.datasets import CocoDataset
from lib.detection.detections import Detections, from_coco_results, from_torchvision, map_labels
from lib.media.images import load_image
from lib.models import cache, registry
from lib.models import checkpoints as ckpts
from lib.models.build import builder
from lib.models.spec import Source, Task
from lib.serving import fair_queue


@dataclass
class Detector:
    name: str
    kind: str                      # torchvision | transformers
    model: Any
    labels: dict[int, str]         # model label index -> name
    processor: Any = None
    device: str = "cpu"
    untrained: bool = False        # tiny test models only: never shown as a benchmark
    #: held by every forward pass (an EigenCAM hooks the shared model)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)

    @property
    def label(self) -> str:
        return self.name

    def predict(self, images: list[Image.Image], image_ids: list[int], label_map: dict[int, int],
                threshold: float = 0.05) -> list[Detections]:
        """Detections for a batch of RGB images, class ids mapped to dataset categories."""
        import torch  # heavy: imported on first use
        with self.lock, torch.inference_mode():
            if self.kind == "torchvision":
                from torchvision.transforms.functional import (
                    to_tensor,  # heavy: imported on first use
                )
                outs = self.model([to_tensor(im).to(self.device) for im in images])
            else:
                inputs = self.processor(images=images, return_tensors="pt").to(self.device)
                raw = self.model(**inputs)
                outs = self.processor.post_process_object_detection(
                    raw, threshold=threshold, target_sizes=[(im.height, im.width) for im in images])
        dets = []
        for image_id, out in zip(image_ids, outs):
            det = from_torchvision(image_id, out, label_map)
            dets.append(det.above(threshold))
        return dets


def _torchvision_weights(spec: registry.ModelSpec):
    import torchvision.models.detection as det  # heavy: imported on first use
    cls_name, member = spec.weights.split(".")
    return getattr(getattr(det, cls_name), member)


@builder(Task.DETECTION, Source.TORCHVISION)
def build_torchvision(spec: registry.ModelSpec, device: str) -> Detector:
    """A torchvision detector with its COCO weights, or `WeightsMissingError`."""
    import torchvision.models.detection as det  # heavy: imported on first use
    weights = _torchvision_weights(spec)
    if not registry.availability(spec).ready and not registry.hub_reachable():
        raise registry.weights_missing(spec, "no access to download.pytorch.org")
    try:
        state = weights.get_state_dict(progress=False)
    except Exception as exc:
        raise registry.weights_missing(spec, type(exc).__name__) from exc
    model = getattr(det, spec.arch)(weights=None, weights_backbone=None,
                                    num_classes=len(weights.meta["categories"]))
    model.load_state_dict(state)
    labels = dict(enumerate(weights.meta["categories"]))
    return Detector(spec.name, "torchvision", model.eval().to(device), labels, device=device)


@builder(Task.DETECTION, Source.TRANSFORMERS)
def build_transformers(spec: registry.ModelSpec, device: str) -> Detector:
    """Any transformers object detector id (DETR, RT-DETR, ...), or `WeightsMissingError`."""
    from transformers import (  # heavy: imported on first use
        AutoImageProcessor,
        AutoModelForObjectDetection,
    )
    offline = not registry.hub_reachable()
    try:
        model = AutoModelForObjectDetection.from_pretrained(spec.arch, local_files_only=offline)
        processor = AutoImageProcessor.from_pretrained(spec.arch, local_files_only=offline)
    except OSError as exc:
        raise registry.weights_missing(spec, "not in the Hugging Face cache") from exc
    except ValueError as exc:   # an id that is not an object detector
        raise registry.ModelCreateError(f"'{spec.name}' is not an object detector "
                                        f"transformers can load.") from exc
    return Detector(spec.name, "transformers", model.eval().to(device),
                    {int(k): v for k, v in model.config.id2label.items()}, processor, device)


def is_faster_rcnn(spec: registry.ModelSpec) -> bool:
    """torchvision's Faster R-CNN, built in or trained by Lens (EigenCAM works on both)."""
    return spec.source == "torchvision" or (
        spec.source == "checkpoint" and (spec.manifest or {}).get("architecture")
        == "fasterrcnn_timm")


def tiny_detector(kind: str, labels: dict[int, str]) -> Detector:
    """A randomly initialised small detector for plumbing tests; marked untrained."""
    import torch  # heavy: imported on first use
    torch.manual_seed(0)
    if kind == "torchvision":
        from torchvision.models.detection import (
            fasterrcnn_mobilenet_v3_large_320_fpn,  # heavy: imported on first use
        )
        model = fasterrcnn_mobilenet_v3_large_320_fpn(weights=None, weights_backbone=None,
                                                      num_classes=max(labels) + 1,
                                                      box_score_thresh=0.0)
        return Detector("tiny-fasterrcnn", kind, model.eval(), labels, untrained=True)
    from transformers import (  # heavy: imported on first use
        DetrConfig,
        DetrForObjectDetection,
        DetrImageProcessor,
    )
    labels = {i: labels.get(i, "N/A") for i in range(max(labels) + 1)}  # DETR: contiguous ids
    config = DetrConfig(use_timm_backbone=True, backbone="resnet18", use_pretrained_backbone=False,
                        d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
                        num_queries=10, id2label=labels, label2id={v: k for k, v in labels.items()})
    processor = DetrImageProcessor(size={"shortest_edge": 128, "longest_edge": 160})
    return Detector("tiny-detr", "transformers", DetrForObjectDetection(config).eval(), labels,
                    processor, untrained=True)


# -- the inference job ------------------------------------------------------------------------

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
                 spec: registry.ModelSpec | None = None, map_by: str = "name"):
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
        self.total = len(dataset.image_ids)
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
        `ray_inference.RayOptions`. The results are the same either way."""
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

    def _partial(self) -> tuple[set[int], list[dict], dict[int, str]]:
        """The images the shard holds (a torn last line is skipped: that image is redone;
        an image written twice, by a run that resumed, counts once, its last record)."""
        latest: dict[int, dict] = {}
        for rec in journal.read(self.partial_path).records:
            if isinstance(rec.get("image_id"), int) and isinstance(rec.get("results"), list):
                latest[rec["image_id"]] = rec
        rows = [row for rec in latest.values() for row in rec["results"]]
        failed = {i: rec["failed"] for i, rec in latest.items() if rec.get("failed")}
        return set(latest), rows, failed

    def _read(self, image_id: int):
        """The image as RGB, or the reason it cannot be used."""
        try:
            return load_image(self.dataset.image_path(image_id)).image
        except LensError as exc:
            return str(exc)

    def _local_batches(self, todo: list[int]):
        """This server's engine: the detector in this thread, batch by batch."""
        detector = self._make()
        label_map = self._label_map(detector)
        self.device = detector.device
        for start in range(0, len(todo), self.batch_size):
            if self._cancel.is_set():
                return
            batch = [(i, self._read(i)) for i in todo[start:start + self.batch_size]]
            records = [{"image_id": i, "results": [], "failed": im, "seconds": 0.0}
                       for i, im in batch if isinstance(im, str)]
            good = [(i, im) for i, im in batch if not isinstance(im, str)]
            if good:
                with fair_queue.HEAVY.slot():       # a batch waits its turn with the visitors
                    t0 = time.perf_counter()
                    dets = detector.predict([im for _, im in good], [i for i, _ in good],
                                            label_map, self.threshold)
                    per_image = (time.perf_counter() - t0) / len(good)
                records += [{"image_id": d.image_id, "results": d.to_coco(), "failed": "",
                             "seconds": per_image} for d in dets]
            yield records

    def _run(self, ray_options=None) -> None:
        import psutil  # heavy: imported on first use
        try:
            self.results_path.parent.mkdir(parents=True, exist_ok=True)
            journal.repair(self.partial_path)   # a torn last line: the next record starts clean
            done, _, _ = self._partial()
            self.done = len(done & set(self.dataset.image_ids))
            todo = [i for i in self.dataset.image_ids if i not in done]
            if ray_options is not None:
                self.device = f"ray ({ray_options.workers} workers)"
                batches = ray_inference.run(ray_options, self.spec, self.dataset, todo,
                                            self.map_by, self.threshold, self.batch_size,
                                            self._cancel.is_set)
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
                        {"image_id": rec["image_id"], "results": rec["results"],
                         **({"failed": rec["failed"]} if rec["failed"] else {})}
                        for rec in records], out)
                    speed.latencies_s += [rec["seconds"] for rec in records if not rec["failed"]]
                    self.done += len(records)
                    peak = max(peak, process.memory_info().rss)
                    if self._cancel.is_set():
                        return
            if self._cancel.is_set():
                return
            done, rows, failed = self._partial()
            missing = [i for i in self.dataset.image_ids if i not in done]
            if missing:    # never call a run finished with images missing: a resume redoes them
                self.done = len(self.dataset.image_ids) - len(missing)
                self.error = (f"{len(missing)} of {self.total} images have no results yet "
                              f"(first: image id {missing[0]}); run again to finish them.")
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


@builder(Task.DETECTION, Source.CHECKPOINT)
def build_checkpoint(spec: registry.ModelSpec, device: str | None = None) -> Detector:
    """A detector from a `checkpoints/<name>/` folder written by `lib.train detect`."""
    m = spec.manifest or {}
    folder = spec.folder
    labels = list(spec.labels)
    arch = m.get("architecture")
    if arch == "fasterrcnn_timm":
        model = build_fasterrcnn_timm(m["backbone"], len(labels), m.get("fpn_channels", 128),
                                      m.get("min_size", 128), m.get("max_size", 128))
        names = {0: "__background__", **{i + 1: n for i, n in enumerate(labels)}}
        kind, processor = "torchvision", None
    elif arch == "conditional_detr":
        d = m.get("detr", {})
        model = build_conditional_detr(m["backbone"], labels, d.get("d_model", 128),
                                       d.get("layers", 2), d.get("num_queries", 20),
                                       tuple(d.get("out_indices", (1, 2, 3))))
        names = dict(enumerate(labels))
        kind, processor = "transformers", detr_processor(m.get("img_size", 128))
    else:
        raise registry.ModelCreateError(f"Checkpoint '{spec.name}': unknown detection "
                                        f"architecture '{arch}'.")
    state = ckpts.load_state_dict(spec.weights, root=folder.parent)
    try:
        model.load_state_dict(state)  # fp16 on disk; copied into fp32 parameters
    except RuntimeError as exc:
        raise registry.ModelCreateError(f"Checkpoint '{spec.name}' does not fit its manifest: "
                                        f"{str(exc).splitlines()[0]}") from exc
    device = device or registry.best_device()
    return Detector(spec.name, kind, model.eval().to(device), names, processor, device)
