"""COCO-format datasets: validated field by field at the boundary, images contained in
their folder, subsets by size and seed, and a fingerprint of every image file."""

from __future__ import annotations

import hashlib
import math
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lib.core import settings
from lib.core.errors import DatasetError
from lib.core.paths import contained, read_json, safe_relative
from lib.media.images import ACCEPTED_EXTENSIONS


@dataclass
class CocoDataset:
    """A validated COCO instances file plus its images folder.

    `data` is a clean copy holding only the fields Lens uses, every one checked. Images whose
    `file_name` would lead outside the images folder are in `refused_images`; files that are
    not there are in `missing_images`; annotations with empty, negative or non-finite boxes
    were left out and counted in `refused_boxes`.
    """

    annotations_path: Path
    images_dir: Path
    data: dict[str, Any]
    missing_images: list[str] = field(default_factory=list)
    refused_images: list[str] = field(default_factory=list)
    refused_boxes: int = 0

    @property
    def categories(self) -> dict[int, str]:
        return {c["id"]: c["name"] for c in self.data["categories"]}

    @property
    def federated(self) -> bool:
        """An LVIS-style dataset: images say which categories were checked absent
        (`neg_category_ids`) or not labelled exhaustively, and every category has a frequency
        (r, c, f). Evaluated federated, as LVIS is."""
        return all("frequency" in c for c in self.data["categories"]) and any(
            k in im for im in self.data["images"] for k in FEDERATED_KEYS)

    @property
    def image_ids(self) -> list[int]:
        return sorted(im["id"] for im in self.data["images"])

    def image_info(self, image_id: int) -> dict[str, Any]:
        return self._images[image_id]

    def image_path(self, image_id: int) -> Path:
        """The image's file, always inside the images folder (`DatasetError` otherwise)."""
        name = self._images[image_id]["file_name"]
        path = contained(self.images_dir / name, self.images_dir)
        if path is None:
            raise DatasetError(f"Image '{name}' leads outside the images folder and is not "
                               "read.")
        return path

    def annotations(self, image_id: int) -> list[dict[str, Any]]:
        return self._by_image.get(image_id, [])

    def gt_boxes(self, image_id: int) -> tuple[np.ndarray, np.ndarray]:
        """Non-crowd ground truth of one image: (xyxy boxes, category ids)."""
        anns = [a for a in self.annotations(image_id) if not a.get("iscrowd")]
        boxes = np.array([a["bbox"] for a in anns], np.float32).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]
        return boxes, np.array([a["category_id"] for a in anns], np.int64)

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
        return self.only(random.Random(seed).sample(ids, size))

    def only(self, image_ids) -> CocoDataset:
        """The dataset restricted to these images (ids it does not have are ignored)."""
        keep = set(image_ids)
        data = {**self.data, "images": [im for im in self.data["images"] if im["id"] in keep],
                "annotations": [a for a in self.data["annotations"] if a["image_id"] in keep]}
        return CocoDataset(self.annotations_path, self.images_dir, data,
                           list(self.missing_images), list(self.refused_images),
                           self.refused_boxes)

    @property
    def fingerprint(self) -> str:
        """Identifies what a model reads: the annotations file, the images folder, the subset,
        and each image file's name, size and modification time.

        The detection page asks on every rerun: one listing of the folder and one stat per
        image. Only a name that is not a plain file directly in the folder (a link, a path
        into a subfolder) has its path resolved and checked (`image_path`)."""
        h = hashlib.sha256(f"{self.annotations_path.resolve()}|{self.images_dir.resolve()}"
                           .encode())
        try:
            with os.scandir(self.images_dir) as entries:
                listing = {e.name: e for e in entries}
        except OSError:
            listing = {}
        for image_id in self.image_ids:
            name = self._images[image_id]["file_name"]
            entry = listing.get(name)
            try:
                st = entry.stat(follow_symlinks=False) if entry and not entry.is_symlink() \
                    else self.image_path(image_id).stat()
                stamp = f"{st.st_size}:{st.st_mtime_ns}"
            except (OSError, DatasetError):
                stamp = "-"
            h.update(f"|{image_id}:{name}:{stamp}".encode())
        return h.hexdigest()[:16]


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def good_box(b: Any) -> bool | None:
    """True for 4 finite numbers with positive width and height; False for 4 numbers that are
    not (negative, zero or NaN); None when it is not 4 numbers at all."""
    if not (isinstance(b, (list, tuple)) and len(b) == 4 and all(is_number(v) for v in b)):
        return None
    return all(math.isfinite(v) for v in b) and b[2] > 0 and b[3] > 0


def good_segmentation(seg: Any) -> bool:
    """COCO RLE ({size: [h, w], counts}) or polygons (lists of numbers); kept for exports."""
    if isinstance(seg, dict):
        size, counts = seg.get("size"), seg.get("counts")
        return (isinstance(size, list) and len(size) == 2 and all(is_int(v) for v in size)
                and (isinstance(counts, str) or (isinstance(counts, list)
                                                 and all(is_int(v) for v in counts))))
    return isinstance(seg, list) and all(
        isinstance(p, list) and all(is_number(v) and math.isfinite(v) for v in p) for p in seg)


def _objects(data: dict, key: str, name: str) -> list[dict]:
    items = data.get(key)
    if not isinstance(items, list) or not all(isinstance(x, dict) for x in items):
        raise DatasetError(f"'{name}': '{key}' must be a list of objects.",
                           "Export the dataset in COCO instances format.")
    return items


def validate_coco(data: Any, name: str) -> tuple[dict[str, Any], int]:
    """A clean copy of a COCO instances object, every field Lens uses checked, and the number
    of annotations left out for empty, negative or non-finite boxes. `DatasetError` names the
    first structural problem and its field."""
    if not isinstance(data, dict) or not all(k in data for k in ("images", "annotations",
                                                                    "categories")):
        raise DatasetError(f"'{name}' is not a COCO instances file: it needs 'images', "
                           "'annotations' and 'categories'.")
    raw_cats, raw_images = _objects(data, "categories", name), _objects(data, "images", name)
    raw_anns = _objects(data, "annotations", name)
    if not raw_images:
        raise DatasetError(f"'{name}' lists no images.")
    if not raw_cats:
        raise DatasetError(f"'{name}' has no categories.")
    limit = settings.get().max_categories
    if len(raw_cats) > limit:
        raise DatasetError(f"'{name}' has {len(raw_cats)} categories, over the limit of {limit}.",
                           "Raise LENS_MAX_CATEGORIES if it is genuine.")
    cats = []
    for i, c in enumerate(raw_cats):
        if not is_int(c.get("id")) or not isinstance(c.get("name"), str):
            raise DatasetError(f"categories[{i}] needs an integer 'id' and a text 'name'.")
        cats.append({"id": c["id"], "name": c["name"][:200],
                     "supercategory": str(c.get("supercategory", ""))[:200],
                     **({"frequency": c["frequency"]} if c.get("frequency") in ("r", "c", "f")
                        else {})})
    if len({c["id"] for c in cats}) != len(cats):
        raise DatasetError(f"'{name}': category ids are not unique.")
    images, skipped = [], {}
    for i, im in enumerate(raw_images):
        if not is_int(im.get("id")):
            raise DatasetError(f"images[{i}] needs an integer 'id'.")
        if not safe_relative(im.get("file_name")):
            raise DatasetError(f"images[{i}].file_name must be a relative path inside the "
                               "images folder (no '..', not absolute).")
        clean = {"id": im["id"], "file_name": im["file_name"].replace("\\", "/")}
        for k in ("width", "height"):
            if is_number(im.get(k)) and math.isfinite(im[k]) and im[k] > 0:
                clean[k] = im[k]
        for k in FEDERATED_KEYS:          # LVIS: categories checked absent / not exhaustive
            ids = im.get(k)
            if ids is None:
                continue
            if not isinstance(ids, list) or not all(is_int(v) for v in ids) or len(ids) > limit:
                raise DatasetError(f"images[{i}].{k} must be a list of category ids.")
            clean[k] = ids
        extra = _attributes(im, IMAGE_KEYS, skipped)
        if extra:
            clean["attributes"] = extra
        images.append(clean)
    if len({im["id"] for im in images}) != len(images):
        raise DatasetError(f"'{name}': image ids are not unique.")
    image_ids, cat_ids = {im["id"] for im in images}, {c["id"] for c in cats}
    for im in images:
        for k in FEDERATED_KEYS:
            unknown = set(im.get(k, [])) - cat_ids
            if unknown:
                raise DatasetError(f"Image {im['id']}: {k} names category ids not in "
                                   f"'categories': {sorted(unknown)[:10]}.")
    anns, refused, used_ids = [], 0, set()
    for i, ann in enumerate(raw_anns):
        if not is_int(ann.get("image_id")) or ann["image_id"] not in image_ids:
            raise DatasetError(f"annotations[{i}].image_id {str(ann.get('image_id'))[:40]} is "
                               "not an image id in 'images'.")
        if not is_int(ann.get("category_id")) or ann["category_id"] not in cat_ids:
            raise DatasetError(f"annotations[{i}].category_id {str(ann.get('category_id'))[:40]}"
                               " is not a category id in 'categories'.")
        good = good_box(ann.get("bbox"))
        if good is None:
            raise DatasetError(f"annotations[{i}].bbox must be [x, y, width, height] numbers.")
        if not good:
            refused += 1
            continue
        bbox = [float(v) for v in ann["bbox"]]
        crowd = ann.get("iscrowd", 0)
        area = ann.get("area")
        ann_id = ann.get("id")
        if not is_int(ann_id) or ann_id in used_ids:
            ann_id = None
        anns.append({"id": ann_id, "image_id": ann["image_id"], "category_id": ann["category_id"],
                     "bbox": bbox, "iscrowd": 1 if crowd in (1, True) else 0,
                     **({"segmentation": ann["segmentation"]}
                        if good_segmentation(ann.get("segmentation")) else {}),
                     "area": float(area) if is_number(area) and math.isfinite(area) and area >= 0
                     else bbox[2] * bbox[3],
                     **({"attributes": extra} if (extra := _attributes(ann, ANNOTATION_KEYS,
                                                                       skipped)) else {})})
        if ann_id is not None:
            used_ids.add(ann_id)
    next_id = max(used_ids, default=0) + 1
    for ann in anns:   # ids missing or repeated: new unique ones
        if ann["id"] is None:
            ann["id"], next_id = next_id, next_id + 1
    clean = {"images": images, "annotations": anns, "categories": cats}
    if skipped:
        clean["skipped_fields"] = dict(list(skipped.items())[:50])
    return clean, refused


#: Fields COCO defines (or Lens reads) on images and annotations; any other scalar field is
#: an attribute a slice can use (e.g. weather, occluded), nested objects one level deep.
FEDERATED_KEYS = ("neg_category_ids", "not_exhaustive_category_ids")
IMAGE_KEYS = {"id", "file_name", "license", "coco_url", "flickr_url", "date_captured",
              *FEDERATED_KEYS}
ANNOTATION_KEYS = {"id", "image_id", "category_id", "bbox", "segmentation", "area", "iscrowd",
                   "keypoints", "num_keypoints", "score"}
MAX_ATTRIBUTES = 32


def _attributes(obj: dict, known: set[str], skipped: dict[str, str]) -> dict[str, Any]:
    """The object's other scalar fields (text cut to 100 characters, NaN and infinity as
    missing): what slices read. Lists and deeper objects are named in `skipped`."""
    out: dict[str, Any] = {}
    items = [(k, v) for k, v in obj.items() if k not in known]
    for key, value in items:
        if isinstance(value, dict):
            items.extend((f"{key}.{k}", v) for k, v in value.items() if not isinstance(v, dict))
            continue
        key = str(key)[:60]
        if len(out) >= MAX_ATTRIBUTES:
            skipped.setdefault(key, f"over {MAX_ATTRIBUTES} fields")
        elif isinstance(value, bool):
            out[key] = int(value)
        elif is_number(value):
            out[key] = float(value) if math.isfinite(value) else None
        elif isinstance(value, str):
            out[key] = value[:100]
        elif value is not None:
            skipped.setdefault(key, "holds lists or nested objects")
    return out


def load_coco(annotations: str | Path, images_dir: str | Path | None = None) -> CocoDataset:
    """Read and validate a COCO instances JSON; images are looked up in `images_dir`."""
    annotations = Path(annotations)
    images_dir = Path(images_dir) if images_dir else annotations.parent.parent / "images"
    if not annotations.is_file():
        raise DatasetError(f"Annotations file '{annotations.name}' not found.")
    data, refused_boxes = validate_coco(read_json(annotations), annotations.name)
    if not images_dir.is_dir():
        raise DatasetError(f"Images folder '{images_dir.name}' not found.")
    missing, refused = [], []
    for im in data["images"]:
        path = contained(images_dir / im["file_name"], images_dir)
        if path is None:
            refused.append(im["file_name"])   # a link leading out: never read, never probed
        elif not path.is_file():
            missing.append(im["file_name"])
    if len(missing) + len(refused) == len(data["images"]):
        raise DatasetError(f"None of the {len(data['images'])} images listed in "
                           f"'{annotations.name}' is in the folder '{images_dir.name}'.")
    return CocoDataset(annotations, images_dir, data, missing, refused, refused_boxes)


def find_coco_in(folder: Path) -> tuple[Path, Path]:
    """The instances JSON and images folder inside an unpacked zip."""
    jsons = sorted(folder.rglob("*.json"), key=lambda p: ("instances" not in p.name, p.name))
    if not jsons:
        raise DatasetError("The zip holds no annotations .json file.")
    pictures = [p for p in folder.rglob("*") if p.suffix.lower().lstrip(".")
                in ACCEPTED_EXTENSIONS]
    if not pictures:
        raise DatasetError("The zip holds no images.")
    return jsons[0], pictures[0].parent
