"""Label errors put into a COCO file on purpose, to measure a finder that should find them.

`inject(data, fraction, seed)` changes a seeded `fraction` of the annotations, in equal
parts: a box shifted to IoU 0.3 with where it was, a class swapped for another, a box
deleted, and a spurious box added (random place and size, a random class). It returns the
new COCO dict and the list of what it did. `recall(flagged, injected)` scores a ranked list
of flagged boxes against that list."""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass

from lib.media.masks import box_iou

KINDS = ("mislocated", "swapped", "missing", "spurious")
SHIFT_IOU = 0.3


@dataclass(frozen=True)
class Injected:
    kind: str                 # mislocated | swapped | missing (deleted) | spurious (added)
    image_id: int
    ann_id: int               # the changed, deleted or added annotation
    box: tuple[float, ...]    # xyxy of the true box (deleted), else of the annotation now


def _shifted(bbox, width, height, rng) -> list[float]:
    """The box moved along one axis so its IoU with where it was is `SHIFT_IOU`."""
    x, y, w, h = bbox
    frac = (1 - SHIFT_IOU) / (1 + SHIFT_IOU)          # (w - d) / (w + d) = IoU
    if rng.random() < 0.5:
        d = frac * w * rng.choice((-1, 1))
        x = x + d if 0 <= x + d <= width - w else x - d
    else:
        d = frac * h * rng.choice((-1, 1))
        y = y + d if 0 <= y + d <= height - h else y - d
    return [x, y, w, h]


def inject(data: dict, fraction: float = 0.1, seed: int = 0) -> tuple[dict, list[Injected]]:
    """A copy of a COCO dict with `fraction` of its annotations made wrong (see the module)."""
    rng = random.Random(seed)
    data = copy.deepcopy(data)
    anns = [a for a in data["annotations"] if not a.get("iscrowd")]
    images = {im["id"]: im for im in data["images"]}
    cats = [c["id"] for c in data["categories"]]
    n = max(len(KINDS), round(fraction * len(anns)))
    chosen = rng.sample(anns, min(len(anns), n - n // len(KINDS)))
    done: list[Injected] = []
    gone = set()
    for k, ann in enumerate(chosen):
        kind = KINDS[k % 3]
        im = images[ann["image_id"]]
        if kind == "mislocated":
            ann["bbox"] = _shifted(ann["bbox"], im.get("width", 1e9), im.get("height", 1e9), rng)
        elif kind == "swapped" and len(cats) > 1:
            ann["category_id"] = rng.choice([c for c in cats if c != ann["category_id"]])
        elif kind == "missing":
            gone.add(ann["id"])
        x, y, w, h = ann["bbox"]
        done.append(Injected(kind, ann["image_id"], ann["id"], (x, y, x + w, y + h)))
    data["annotations"] = [a for a in data["annotations"] if a["id"] not in gone]
    next_id = max((a["id"] for a in data["annotations"]), default=0) + 1 + len(gone)
    for k in range(n // len(KINDS)):
        im = rng.choice(data["images"])
        width, height = im.get("width", 640), im.get("height", 480)
        w, h = rng.uniform(0.1, 0.3) * width, rng.uniform(0.1, 0.3) * height
        x, y = rng.uniform(0, width - w), rng.uniform(0, height - h)
        data["annotations"].append({"id": next_id + k, "image_id": im["id"],
                                    "category_id": rng.choice(cats), "bbox": [x, y, w, h],
                                    "area": w * h, "iscrowd": 0})
        done.append(Injected("spurious", im["id"], next_id + k, (x, y, x + w, y + h)))
    return data, done


def recall(flagged: list[dict], injected: list[Injected]) -> tuple[float, float, dict]:
    """Of the injected errors, the share found among `flagged` (rows with image_id, ann_id
    (-1 for a proposed missing box), x0, y0, x1, y1): an annotation flagged by id, a deleted
    box by a proposed box at IoU ≥ 0.5. Returns (recall, precision of the flagged rows, recall
    by kind)."""
    ids = {int(r["ann_id"]) for r in flagged if int(r["ann_id"]) >= 0}
    proposed = [r for r in flagged if int(r["ann_id"]) < 0]
    found, hits = {}, set()
    for e in injected:
        if e.kind == "missing":
            match = [k for k, r in enumerate(proposed) if int(r["image_id"]) == e.image_id and
                     box_iou((r["x0"], r["y0"], r["x1"], r["y1"]), e.box) >= 0.5]
            found[e] = bool(match)
            hits.update(("p", k) for k in match)
        else:
            found[e] = e.ann_id in ids
            if found[e]:
                hits.add(("a", e.ann_id))
    by_kind = {k: sum(found[e] for e in injected if e.kind == k) /
               max(1, sum(e.kind == k for e in injected)) for k in KINDS}
    share = sum(found.values()) / max(1, len(injected))
    return share, len(hits) / max(1, len(flagged)), by_kind
