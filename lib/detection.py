"""Detection data: COCO-format datasets, one `Detections` type, converters per source.

Everything downstream (metrics, error analysis, plots) accepts only `Detections`, whose
class ids are always the dataset's category ids. Converters: COCO results JSON (any other
model, e.g. a YOLO run), torchvision detector outputs, transformers post-processed outputs.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image


class DatasetError(ValueError):
    """A dataset or predictions file that cannot be used; the message says why."""


# -- datasets ---------------------------------------------------------------------------------

@dataclass
class CocoDataset:
    """A COCO instances file plus its images folder (validated)."""

    annotations_path: Path
    images_dir: Path
    data: dict[str, Any]
    missing_images: list[str] = field(default_factory=list)

    @property
    def categories(self) -> dict[int, str]:
        return {c["id"]: c["name"] for c in self.data["categories"]}

    @property
    def image_ids(self) -> list[int]:
        return sorted(im["id"] for im in self.data["images"])

    def image_info(self, image_id: int) -> dict[str, Any]:
        return self._images[image_id]

    def image_path(self, image_id: int) -> Path:
        return self.images_dir / self._images[image_id]["file_name"]

    def annotations(self, image_id: int) -> list[dict[str, Any]]:
        return self._by_image.get(image_id, [])

    def __post_init__(self):
        self._images = {im["id"]: im for im in self.data["images"]}
        self._by_image: dict[int, list] = {}
        for ann in self.data["annotations"]:
            self._by_image.setdefault(ann["image_id"], []).append(ann)

    def subset(self, size: int | None, seed: int = 0) -> CocoDataset:
        """A random subset of `size` images (all when None), deterministic by seed."""
        ids = self.image_ids
        if size is None or size >= len(ids):
            return self
        keep = set(random.Random(seed).sample(ids, size))
        data = {**self.data, "images": [im for im in self.data["images"] if im["id"] in keep],
                "annotations": [a for a in self.data["annotations"] if a["image_id"] in keep]}
        return CocoDataset(self.annotations_path, self.images_dir, data,
                           [m for m in self.missing_images])

    @property
    def fingerprint(self) -> str:
        """Identifies (file, subset) for caching predictions."""
        import hashlib
        ids = ",".join(map(str, self.image_ids))
        return hashlib.sha256(f"{self.annotations_path.resolve()}|{ids}".encode()).hexdigest()[:16]


def load_coco(annotations: str | Path, images_dir: str | Path | None = None) -> CocoDataset:
    """Read and validate a COCO instances JSON; images are looked up in `images_dir`."""
    annotations = Path(annotations)
    images_dir = Path(images_dir) if images_dir else annotations.parent.parent / "images"
    try:
        data = json.loads(annotations.read_text())
    except FileNotFoundError as exc:
        raise DatasetError(f"Annotations file '{annotations}' not found.") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"'{annotations.name}' is not valid JSON ({exc}).") from exc
    if not isinstance(data, dict) or not all(k in data for k in ("images", "annotations",
                                                                    "categories")):
        raise DatasetError(f"'{annotations.name}' is not a COCO instances file: it needs "
                           "'images', 'annotations' and 'categories'.")
    if not data["images"]:
        raise DatasetError(f"'{annotations.name}' lists no images.")
    if not data["categories"]:
        raise DatasetError(f"'{annotations.name}' has no categories.")
    image_ids = {im.get("id") for im in data["images"]}
    cat_ids = {c.get("id") for c in data["categories"]}
    for i, ann in enumerate(data["annotations"]):
        bbox = ann.get("bbox")
        if not (isinstance(bbox, list) and len(bbox) == 4):
            raise DatasetError(f"Annotation #{i} has no valid [x, y, w, h] bbox.")
        if ann.get("image_id") not in image_ids:
            raise DatasetError(f"Annotation #{i} points to image id {ann.get('image_id')}, "
                               "which is not in 'images'.")
        if ann.get("category_id") not in cat_ids:
            raise DatasetError(f"Annotation #{i} has category id {ann.get('category_id')}, "
                               "which is not in 'categories'.")
        ann.setdefault("iscrowd", 0)
        ann.setdefault("area", float(bbox[2] * bbox[3]))
        ann.setdefault("id", i + 1)
    if not images_dir.is_dir():
        raise DatasetError(f"Images folder '{images_dir}' not found.")
    missing = [im["file_name"] for im in data["images"]
               if not (images_dir / im["file_name"]).is_file()]
    if len(missing) == len(data["images"]):
        raise DatasetError(f"None of the {len(missing)} images listed in '{annotations.name}' "
                           f"is in '{images_dir}'.")
    return CocoDataset(annotations, images_dir, data, missing)


# -- detections -------------------------------------------------------------------------------

@dataclass
class Detections:
    """Boxes of one image: xyxy pixels, confidence, dataset category id."""

    image_id: int
    xyxy: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    class_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def __post_init__(self):
        self.xyxy = np.asarray(self.xyxy, np.float32).reshape(-1, 4)
        self.scores = np.asarray(self.scores, np.float32).reshape(-1)
        self.class_ids = np.asarray(self.class_ids, np.int64).reshape(-1)
        if not (len(self.xyxy) == len(self.scores) == len(self.class_ids)):
            raise ValueError("xyxy, scores and class_ids must have the same length")

    def __len__(self) -> int:
        return len(self.scores)

    def above(self, threshold: float) -> Detections:
        keep = self.scores >= threshold
        return Detections(self.image_id, self.xyxy[keep], self.scores[keep], self.class_ids[keep])

    def to_coco(self) -> list[dict[str, Any]]:
        out = []
        for (x1, y1, x2, y2), s, c in zip(self.xyxy.tolist(), self.scores.tolist(),
                                          self.class_ids.tolist()):
            out.append({"image_id": self.image_id, "category_id": int(c),
                        "bbox": [round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)],
                        "score": round(float(s), 5)})
        return out


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


def to_coco_results(dets: dict[int, Detections] | list[Detections]) -> list[dict[str, Any]]:
    items = dets.values() if isinstance(dets, dict) else dets
    return [row for d in items for row in d.to_coco()]


def read_results_json(data: bytes | str | Path, dataset: CocoDataset) -> list[dict[str, Any]]:
    """Parse and check an imported COCO results file against the dataset."""
    try:
        if isinstance(data, Path):
            data = data.read_bytes()
        results = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"The predictions file is not valid JSON ({exc}).") from exc
    if isinstance(results, dict) and "annotations" in results:
        results = results["annotations"]
    if not isinstance(results, list):
        raise DatasetError("A COCO results file is a JSON list of {image_id, category_id, bbox, "
                           "score} objects.")
    need = {"image_id", "category_id", "bbox", "score"}
    for i, r in enumerate(results):
        if not isinstance(r, dict) or not need <= set(r) or len(r.get("bbox") or []) != 4:
            raise DatasetError(f"Prediction #{i} lacks image_id, category_id, bbox [x,y,w,h] "
                               "or score.")
    ids, cats = set(dataset.image_ids), set(dataset.categories)
    known = [r for r in results if r["image_id"] in ids]
    if results and not known:
        raise DatasetError("None of the predictions' image ids is in this dataset: the results "
                           "file is for another dataset.")
    unknown_cats = sorted({r["category_id"] for r in known} - cats)
    if unknown_cats:
        raise DatasetError(f"Predictions use category ids the dataset does not have: "
                           f"{unknown_cats[:10]}. Map the model's labels to the dataset's.")
    return known


# -- label mapping ----------------------------------------------------------------------------

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


def from_torchvision(image_id: int, output: dict[str, Any], label_map: dict[int, int]) -> Detections:
    """A torchvision detector's output dict (boxes xyxy, scores, labels) for one image."""
    labels = output["labels"].cpu().numpy()
    keep = np.array([int(lbl) in label_map for lbl in labels], bool)
    return Detections(image_id, output["boxes"].detach().cpu().numpy()[keep],
                      output["scores"].detach().cpu().numpy()[keep],
                      [label_map[int(lbl)] for lbl in labels[keep]])


def from_transformers(image_id: int, result: dict[str, Any], label_map: dict[int, int]) -> Detections:
    """A transformers `post_process_object_detection` result for one image."""
    return from_torchvision(image_id, result, label_map)


# -- drawing ----------------------------------------------------------------------------------

PALETTE = {"gt": (60, 220, 120), "a": (255, 140, 0), "b": (80, 160, 255)}


def draw(image: Image.Image, boxes: list[tuple[np.ndarray, list[str], tuple[int, int, int]]],
         width: int = 3) -> Image.Image:
    """Draw (xyxy boxes, captions, colour) groups on a copy of an RGB image."""
    from PIL import ImageDraw
    out = image.convert("RGB").copy()
    pen = ImageDraw.Draw(out)
    for xyxy, captions, color in boxes:
        for box, caption in zip(np.asarray(xyxy).reshape(-1, 4).tolist(), captions):
            pen.rectangle(box, outline=color, width=width)
            if caption:
                x, y = box[0], max(0, box[1] - 12)
                pen.rectangle([x, y, x + 7 * len(caption) + 4, y + 12], fill=color)
                pen.text((x + 2, y), caption, fill=(0, 0, 0))
    return out
