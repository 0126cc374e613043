"""Embedding a dataset as a job of the inference engine (`lib.detection.jobs.InferenceJob`):
batched, in a background thread with progress and cancel, resumable, cached on disk by
content (the model, the dataset's fingerprint, the level and a digest of the boxes).

Each batch's vectors go to a part file (`<key>.parts/*.npy`, float16, written in one step)
before the journal line that names it, so a run killed at any instant resumes with only the
images no journal line names; the engine writes the results file (the rows pointing into
the parts) once every image is done. On Ray (`start(ray=RayOptions)`) each actor loads the
model once and writes its batches' parts itself (the cache folder must be on a disk the
cluster shares, as the images must be); the driver journals the records as they arrive.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np

from lib.core import journal, settings
from lib.core.errors import LensError
from lib.detection import jobs
from lib.detection.datasets import CocoDataset
from lib.detection.explore.embeddings import (
    DIMS,
    GROUND_TRUTH,
    SAMPLE,
    Basis,
    Embedder,
    Embeddings,
    boxes_digest,
    normalised,
)
from lib.serving import fair_queue

#: per image: (ids, xyxy boxes, category ids) of the boxes to embed
Boxes = dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]


class EmbeddingJob(jobs.InferenceJob):
    """Every image (and its boxes) of a dataset through an `Embedder`."""

    def __init__(self, key: str, dataset: CocoDataset, make_embedder: Callable[[], Embedder],
                 boxes: Boxes, model: str, source: str = GROUND_TRUTH, batch_size: int = 4,
                 cache_dir: Path | None = None, spec=None, task: str = "classification"):
        root = cache_dir or settings.cache_dir("embeddings")
        super().__init__(key, dataset, make_embedder, lambda _: {}, 0.0, batch_size, root,
                         spec=spec)
        self.boxes, self.model, self.source, self.task = boxes, model, source, task
        self.parts = root / f"{key}.parts"

    def _local_batches(self, todo):
        embedder = self._make()
        self.device = embedder.handle.device
        for start in range(0, len(todo), self.batch_size):
            if self._cancel.is_set():
                return
            batch = [(item, self._read(item)) for item in todo[start:start + self.batch_size]]
            yield embed_batch(embedder, batch, self.boxes, self.parts)

    def _ray_worker(self) -> dict:
        """Ray actors that embed and write their parts on the shared disk themselves."""
        return {"worker": EmbedWorker,
                "worker_kwargs": {"spec": self.spec, "task": self.task, "boxes": self.boxes,
                                  "parts": str(self.parts)}}

    def embeddings(self, level: str, basis: Basis | None = None) -> Embeddings:
        """The finished job's vectors at one level, "image" or "object", projected on their
        first `DIMS` principal components (fitted on a sample of at most `SAMPLE` rows, or the
        `basis` of another set, so two splits share one space) and normalised. Parts are read
        one at a time: memory holds the projections, not the full vectors. Rows with
        non-finite values are dropped and counted."""
        spans, image_ids, ann_ids, boxes, labels = [], [], [], [], []
        for row in sorted(self.results(), key=lambda r: r["image_id"]):
            image_id, start = int(row["image_id"]), int(row["row"])
            if level == "image":
                spans.append((row["part"], start, start + 1))
                image_ids.append([image_id])
                ann_ids.append([-1])
                boxes.append(np.zeros((1, 4), np.float32))
                labels.append([0])
                continue
            ids, xyxy, cats = self.boxes.get(image_id, _NONE)
            spans.append((row["part"], start + 1, start + int(row["count"])))
            image_ids.append(np.full(len(ids), image_id))
            ann_ids.append(ids)
            boxes.append(np.asarray(xyxy, np.float32).reshape(-1, 4))
            labels.append(cats)
        total = sum(b - a for _, a, b in spans)
        if not total:
            none = np.zeros(0, np.int64)
            return Embeddings(level, self.model, np.zeros((0, DIMS), np.float32), none, none,
                              np.zeros((0, 4), np.float32), none, 0, self.failed(),
                              np.zeros((0, 2), np.float32), basis, self.source)
        if basis is None:
            step = max(1, total // SAMPLE)
            blocks = list(self._blocks(spans, step))
            sample = np.concatenate(blocks) if blocks else np.zeros((0, 1), np.float32)
            basis = Basis.fit(normalised(sample)[0])
        projected, keep = [], []
        for block in self._blocks(spans):
            unit, ok = normalised(block)
            projected.append(basis.project(unit))
            keep.append(ok)
        cat = np.concatenate
        keep, coords = cat(keep), cat(projected)
        vectors = coords / np.maximum(np.linalg.norm(coords, axis=1, keepdims=True), 1e-12)
        return Embeddings(level, self.model, vectors.astype(np.float32),
                          cat(image_ids).astype(np.int64)[keep],
                          cat(ann_ids).astype(np.int64)[keep], cat(boxes)[keep],
                          cat(labels).astype(np.int64)[keep], int((~keep).sum()),
                          self.failed(), coords[:, :2].copy(), basis, self.source)

    def _blocks(self, spans, step: int = 1):
        """The float32 rows of each span (every `step`-th), each part file memory-mapped
        once."""
        part, data = None, None
        for name, start, stop in spans:
            if name != part:
                part, data = name, np.load(self.parts / Path(name).name, mmap_mode="r")
            yield np.asarray(data[start:stop:step], np.float32)


_NONE = (np.zeros(0, np.int64), np.zeros((0, 4), np.float32), np.zeros(0, np.int64))


def embed_batch(embedder: Embedder, batch: list, boxes: Boxes, parts: Path) -> list[dict]:
    """One batch of (item, image or the reason it cannot be read) embedded: its vectors in
    one part file (written in one step), one record per image pointing into it."""
    records, vectors = [], []
    for item, picture in batch:
        t0 = time.perf_counter()
        if isinstance(picture, str):
            records.append(jobs.record(item, [], picture, 0.0))
            continue
        with fair_queue.HEAVY.slot():
            whole, per_box = embedder.embed(picture, boxes.get(item[0], _NONE)[1])
        rows = np.concatenate([whole[None], per_box]).astype(np.float16)
        row = {"image_id": item[0], "row": sum(map(len, vectors)), "count": len(rows)}
        records.append(jobs.record(item, [row], "", time.perf_counter() - t0))
        vectors.append(rows)
    if vectors:
        parts.mkdir(parents=True, exist_ok=True)
        name = f"{batch[0][0][0]}-{uuid.uuid4().hex[:12]}.npy"
        with journal.atomic_path(parts / name) as tmp, open(tmp, "wb") as fh:
            np.save(fh, np.concatenate(vectors))
        for rec in records:
            for row in rec["results"]:
                row["part"] = name
    return records


class EmbedWorker:
    """One Ray actor of an embedding job: loads the model once (the page's loader), reads,
    embeds and writes each batch's part on the shared disk; returns the batch's records in
    the detector worker's columns."""

    def __init__(self, spec, task: str, boxes: Boxes, parts: str, threads: int):
        import torch  # heavy: imported on first use

        from lib.detection.explore.embeddings import embedder_for
        from lib.models import cache
        torch.set_num_threads(threads)
        self.embedder = embedder_for(cache.load(spec, task).model, spec.name)
        self.boxes, self.parts = boxes, Path(parts)

    def __call__(self, batch: dict) -> dict:
        import json

        from lib.media import corruptions
        items, read = [], []
        for i, path, failed in zip(batch["image_id"], batch["path"], batch["failed"]):
            item = (int(i), "", 0)
            try:
                picture = str(failed) or corruptions.load(str(path), "", 0, seed=int(i))
            except LensError as exc:
                picture = str(exc)
            items.append(item)
            read.append((item, picture))
        records = {r["image_id"]: r for r in embed_batch(self.embedder, read, self.boxes,
                                                          self.parts)}
        out = [records[i] for i, _, _ in items]
        return {"image_id": [r["image_id"] for r in out],
                "results": [json.dumps(r["results"]) if r["results"] else "" for r in out],
                "failed": [r["failed"] for r in out], "seconds": [r["seconds"] for r in out],
                "corruption": ["" for _ in out], "severity": [0 for _ in out]}


def ground_truth_boxes(dataset: CocoDataset) -> Boxes:
    """Every non-crowd annotation of the dataset, by image (annotation ids, xyxy, classes)."""
    out = {}
    for image_id in dataset.image_ids:
        anns = [a for a in dataset.annotations(image_id) if not a.get("iscrowd")]
        xyxy = np.array([a["bbox"] for a in anns], np.float32).reshape(-1, 4)
        xyxy[:, 2:] += xyxy[:, :2]
        out[image_id] = (np.array([a.get("id", k) for k, a in enumerate(anns)], np.int64),
                         xyxy, np.array([a["category_id"] for a in anns], np.int64))
    return out


def predicted_boxes(dets: dict, threshold: float) -> Boxes:
    """A model's detections at or above `threshold`, by image (index in the image's
    detections, xyxy, classes)."""
    out = {}
    for image_id, d in dets.items():
        keep = np.flatnonzero(d.scores >= threshold)
        out[image_id] = (keep.astype(np.int64), d.xyxy[keep], d.class_ids[keep])
    return out


def job_for(dataset: CocoDataset, model: str, make_embedder: Callable[[], Embedder],
            boxes: Boxes, source: str = GROUND_TRUTH, fingerprint: str | None = None,
            cap: int | None = None, spec=None, task: str = "classification") -> EmbeddingJob:
    """The one job (and disk cache entry) embedding `boxes` of a dataset with `model`.
    More objects than `cap` (`LENS_EMBED_MAX_OBJECTS`) are refused before any work."""
    cap = cap or settings.get().embed_max_objects
    count = sum(len(b[0]) for b in boxes.values())
    if count > cap:
        raise LensError(f"{count} objects to embed is more than this server embeds at once "
                        f"({cap}); take a subset of the images (the sidebar), or raise "
                        "LENS_EMBED_MAX_OBJECTS.")
    key = "emb-" + jobs.cache_key(model, dataset, {"boxes": boxes_digest(boxes)}, fingerprint)
    return jobs.get_job(key, lambda: EmbeddingJob(key, dataset, make_embedder, boxes, model,
                                                  source, spec=spec, task=task))
