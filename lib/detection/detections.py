"""One `Detections` type for every model's boxes, and its converters: COCO results JSON (any
other model, e.g. a YOLO run, validated against the dataset), torchvision and transformers
outputs, model labels mapped to the dataset's categories. Everything downstream (metrics,
error analysis, plots) accepts only `Detections`, whose class ids are the dataset's."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lib.core.errors import DatasetError
from lib.core.paths import read_json
from lib.detection.datasets import CocoDataset, good_box, good_segmentation, is_int, is_number


@dataclass
class Detections:
    """Boxes of one image: xyxy pixels, confidence, dataset category id. Scores are kept
    at full precision: COCO ranks detections by score, and two scores that rounding made
    equal are ranked by image order instead (AP then differs from the file's)."""

    image_id: int
    xyxy: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))
    class_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def __post_init__(self):
        self.xyxy = np.asarray(self.xyxy, np.float32).reshape(-1, 4)
        self.scores = np.asarray(self.scores, np.float64).reshape(-1)
        self.class_ids = np.asarray(self.class_ids, np.int64).reshape(-1)
        if not (len(self.xyxy) == len(self.scores) == len(self.class_ids)):
            raise ValueError("xyxy, scores and class_ids must have the same length")

    def __len__(self) -> int:
        return len(self.scores)

    def above(self, threshold: float) -> Detections:
        keep = self.scores >= threshold
        return Detections(self.image_id, self.xyxy[keep], self.scores[keep], self.class_ids[keep])

    def to_coco(self) -> list[dict[str, Any]]:
        return to_coco_results([self])


def from_coco_results(results: list[dict[str, Any]]) -> dict[int, Detections]:
    """COCO results (`image_id, category_id, bbox [x,y,w,h], score`) grouped by image."""
    grouped: dict[int, list] = {}
    for r in results:
        grouped.setdefault(int(r["image_id"]), []).append(r)
    out = {}
    for image_id, rows in grouped.items():
        boxes = np.array([r["bbox"] for r in rows], np.float32)
        boxes[:, 2:] += boxes[:, :2]
        out[image_id] = Detections(image_id, boxes, [r["score"] for r in rows],
                                   [r["category_id"] for r in rows])
    return out


def digest(dets: dict[int, Detections]) -> str:
    """A content hash of a model's detections (for caching what is computed from them)."""
    h = hashlib.sha256()
    for image_id in sorted(dets):
        d = dets[image_id]
        h.update(f"{image_id}|{len(d)}|".encode())
        for arr in (d.xyxy, d.scores, d.class_ids):
            h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


def to_coco_results(dets: dict[int, Detections] | list[Detections]) -> list[dict[str, Any]]:
    """COCO results rows (boxes [x, y, w, h] to 0.01 px, scores exactly), as `to_coco`.
    Scores are not rounded: rounding made ties the detections did not have, and COCO breaks
    ties by image order, so AP from the file differed from AP of the detections."""
    items = [d for d in (dets.values() if isinstance(dets, dict) else dets) if len(d)]
    if not items:
        return []
    xyxy = np.concatenate([d.xyxy for d in items]).astype(np.float64)
    boxes = np.round(np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], 1), 2).tolist()
    scores = np.concatenate([d.scores for d in items]).tolist()
    classes = np.concatenate([d.class_ids for d in items]).tolist()
    ids = np.concatenate([np.full(len(d), d.image_id) for d in items]).tolist()
    return [{"image_id": i, "category_id": c, "bbox": b, "score": s}
            for i, c, b, s in zip(ids, classes, boxes, scores)]


@dataclass
class ResultsCheck:
    """An imported results file after validation: the usable rows and what was left out."""

    results: list[dict[str, Any]]
    refused: int = 0          # rows with empty, negative or non-finite boxes or scores
    other_images: int = 0     # rows for images not in this dataset (subset or another set)
    masks: int = 0            # rows that carry a usable mask ("segmentation")
    bad_masks: int = 0        # masks left out: malformed, or RLE of another size than the image

    @property
    def all_masks(self) -> bool:
        return bool(self.results) and self.masks == len(self.results)

    @property
    def detections(self) -> dict[int, Detections]:
        return from_coco_results(self.results)


def check_results(data: bytes | str | Path | Any, dataset: CocoDataset) -> ResultsCheck:
    """Parse and validate an imported COCO results file against the dataset."""
    results = read_json(data, "the predictions file") if isinstance(
        data, (bytes, str, Path)) else data
    if isinstance(results, dict) and "annotations" in results:
        results = results["annotations"]
    if not isinstance(results, list):
        raise DatasetError("A COCO results file is a JSON list of {image_id, category_id, bbox, "
                           "score} objects.")
    ids, cats = set(dataset.image_ids), set(dataset.categories)
    rows, refused, other, masks, bad_masks = [], 0, 0, 0, 0
    for i, r in enumerate(results):
        if not isinstance(r, dict):
            raise DatasetError(f"Prediction #{i} is not an object.")
        image_id, category_id = _whole(r.get("image_id")), _whole(r.get("category_id"))
        if image_id is None or category_id is None:
            raise DatasetError(f"Prediction #{i} needs integer 'image_id' and 'category_id'.")
        good = good_box(r.get("bbox"))
        if good is None:
            raise DatasetError(f"Prediction #{i}: 'bbox' must be [x, y, width, height] numbers.")
        score = r.get("score")
        if not is_number(score):
            raise DatasetError(f"Prediction #{i}: 'score' must be a number.")
        if not good or not math.isfinite(score):
            refused += 1
            continue
        if image_id not in ids:
            other += 1
            continue
        row = {"image_id": image_id, "category_id": category_id,
               "bbox": [float(v) for v in r["bbox"]], "score": float(score)}
        if r.get("segmentation") is not None:
            info = dataset.image_info(image_id)
            size = [info.get("height"), info.get("width")]
            seg = r["segmentation"]
            if good_segmentation(seg) and None not in size and (
                    not isinstance(seg, dict) or seg["size"] == size):
                row["segmentation"] = seg
                masks += 1
            else:
                bad_masks += 1
        rows.append(row)
    if results and not rows and other:
        raise DatasetError("None of the predictions' image ids is in this dataset: the results "
                           "file is for another dataset.")
    unknown_cats = sorted({r["category_id"] for r in rows} - cats)
    if unknown_cats:
        raise DatasetError(f"Predictions use category ids the dataset does not have: "
                           f"{unknown_cats[:10]}.", "Map the model's labels to the dataset's.")
    return ResultsCheck(rows, refused, other, masks, bad_masks)


def _whole(v: Any) -> int | None:
    """An integer id (a float with no fraction counts)."""
    if is_int(v):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return None


def read_results_json(data: bytes | str | Path, dataset: CocoDataset) -> list[dict[str, Any]]:
    """The usable rows of an imported COCO results file (see `check_results`)."""
    return check_results(data, dataset).results


def _norm(name: str) -> str:
    return " ".join(name.lower().replace("_", " ").replace("-", " ").split())


def map_labels(model_labels: dict[int, str], categories: dict[int, str],
               by: str = "name") -> dict[int, int]:
    """Model label index -> dataset category id, by name (default) or by id.

    COCO models number their 80 classes on ids 1..90 with gaps; mapping by name handles
    datasets that renumber them, and `by="id"` keeps ids as they are.
    """
    if by == "id":
        return {i: i for i in model_labels if i in categories}
    names = {_norm(n): cid for cid, n in categories.items()}
    return {i: names[_norm(n)] for i, n in model_labels.items() if _norm(n) in names}


def from_torchvision(image_id: int, output: dict[str, Any],
                     label_map: dict[int, int]) -> Detections:
    """A torchvision detector's output dict (boxes xyxy, scores, labels) for one image."""
    labels = output["labels"].cpu().numpy()
    keep = np.array([int(lbl) in label_map for lbl in labels], bool)
    return Detections(image_id, output["boxes"].detach().cpu().numpy()[keep],
                      output["scores"].detach().cpu().numpy()[keep],
                      [label_map[int(lbl)] for lbl in labels[keep]])


def from_transformers(image_id: int, result: dict[str, Any],
                      label_map: dict[int, int]) -> Detections:
    """A transformers `post_process_object_detection` result for one image."""
    return from_torchvision(image_id, result, label_map)
