"""Slices of a detection benchmark, each with its own COCO metrics and interval, and the worst
ones found automatically.

A slice is a subset of the dataset defined by:
  image field        images whose field has a value (weather = fog): the other images weigh 0;
  annotation field   objects whose field has a value (occluded = 1): the other objects are
                     ignored like crowd regions (detections matching them count neither way);
                     a detection that matches no object has no attribute, so it counts as a
                     false positive at the slice's share of its class's objects (the
                     normalisation of Hoiem et al., "Diagnosing error in object detectors");
  box size           COCO's area ranges or any other (objects outside ignored, and unmatched
                     detections outside too, as COCO does for small/medium/large);
  category group     the mean AP over a group's classes (COCO's supercategory, or a named list).
Numeric fields with many values are cut at their quartiles; text fields with more than
MAX_VALUES values are not sliced (the reason is listed). `worst` ranks every single-field slice
and every pair of two fields' values with at least `min_objects` objects by how far its AP
falls below the whole set's, and gives the top ones bootstrap intervals.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from lib.core.errors import InputError
from lib.core.progress import Callback, Ticker
from lib.detection import intervals
from lib.detection.datasets import CocoDataset
from lib.detection.detections import Detections
from lib.detection.metrics import coco_matching, weighted

MAX_VALUES = 20          # a field with more distinct values is cut into quartiles (numbers)
MAX_SLICES = 400         # candidates ranked at most (pairs included)


@dataclass(frozen=True)
class Slice:
    name: str                                  # "weather = fog", "area 0–256"
    kind: str                                  # image | annotation | area | group
    objects: int                               # counted ground truth in the slice
    images: tuple[int, ...] | None = None      # image positions (image slices and pairs)
    counted: tuple[int, ...] | None = None     # annotation indices counted (annotation)
    area: tuple[float, float] | None = None
    classes: tuple[int, ...] | None = None     # class positions (category groups)


@dataclass
class Fields:
    """The sliceable fields of a dataset, and the ones left out with the reason."""

    image: pd.DataFrame          # one row per image position
    annotation: pd.DataFrame     # one row per annotation (dataset.data order)
    skipped: dict[str, str] = field(default_factory=dict)


def fields(dataset: CocoDataset) -> Fields:
    position = {i: k for k, i in enumerate(dataset.image_ids)}
    images = sorted(dataset.data["images"], key=lambda im: position[im["id"]])
    image = pd.DataFrame([{**im.get("attributes", {})} for im in images],
                         index=range(len(images)))
    anns = dataset.data["annotations"]
    annotation = pd.DataFrame([a.get("attributes", {}) for a in anns], index=range(len(anns)))
    skipped = dict(dataset.data.get("skipped_fields", {}))
    return Fields(image, annotation, skipped)


def _levels(column: pd.Series, name: str, skipped: dict[str, str]) -> list[tuple[str, np.ndarray]]:
    """(label, boolean mask) per value of a field, or per quartile of a numeric one."""
    values = column.dropna()
    if not len(values):
        skipped[name] = "no values"
        return []
    numeric = pd.to_numeric(values, errors="coerce")
    distinct = values.nunique()
    if distinct <= 1:
        skipped[name] = "one value only"
        return []
    if distinct <= MAX_VALUES:
        return [(f"{name} = {_short(v)}", (column == v).to_numpy())
                for v in sorted(values.unique(), key=str)]
    if numeric.notna().all():
        try:
            bins = pd.qcut(pd.to_numeric(column, errors="coerce"), 4, duplicates="drop")
        except ValueError:
            skipped[name] = "cannot be cut into quartiles"
            return []
        return [(f"{name} in {_interval(b)}", (bins == b).to_numpy())
                for b in bins.cat.categories]
    skipped[name] = f"{distinct:,} distinct values (at most {MAX_VALUES} are sliced)"
    return []


def _short(v) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)[:40]


def _interval(b) -> str:
    return f"[{b.left:.4g}, {b.right:.4g}]"


def check_area(low: float, high: float) -> tuple[float, float]:
    if not (math.isfinite(low) and math.isfinite(high)) or low < 0 or high <= low:
        raise InputError(f"An area range needs 0 ≤ low < high, finite; got {low}–{high}.",
                         "Write ranges as low-high in pixels², e.g. 0-256 for objects under 16².")
    return float(low), float(high)


def parse_areas(text: str) -> list[tuple[str, tuple[float, float]]]:
    """User area ranges, "0-256, 256-1024": (name, (low, high)) each."""
    out = []
    for part in [p.strip() for p in text.split(",") if p.strip()][:10]:
        try:
            low, high = (float(x) for x in part.split("-", 1))
        except ValueError:
            raise InputError(f"'{part[:40]}' is not an area range.",
                             "Write ranges as low-high in pixels², e.g. 0-256.") from None
        out.append((f"area {low:g}–{high:g} px²", check_area(low, high)))
    return out


def parse_groups(text: str) -> dict[str, list[int]]:
    """User category groups, "animals: 16 17 18; vehicles: 2 3": {name: category ids}."""
    hint = "Write groups as name: id id id; e.g. animals: 16 17 18."
    out: dict[str, list[int]] = {}
    for part in [p.strip() for p in text.split(";") if p.strip()][:20]:
        name, _, listed = part.partition(":")
        name = name.strip()[:40] or f"group {len(out) + 1}"
        try:
            ids = [int(x) for x in listed.replace(",", " ").split()][:1000]
        except ValueError:
            raise InputError(f"'{part[:40]}' is not a category group.", hint) from None
        if not ids:
            raise InputError(f"Category group '{name}' lists no ids.", hint)
        out[name] = ids
    return out


def category_groups(dataset: CocoDataset, named: dict[str, list[int]] | None = None
                    ) -> list[tuple[str, list[int]]]:
    """COCO's supercategories (when they group more than one class) and named groups of
    category ids (unknown ids refused)."""
    groups: dict[str, list[int]] = {}
    for c in dataset.data["categories"]:
        if c.get("supercategory"):
            groups.setdefault(c["supercategory"], []).append(c["id"])
    out = [(f"group {n}", ids) for n, ids in groups.items() if 1 < len(ids) < len(
        dataset.categories)]
    for name, ids in (named or {}).items():
        unknown = sorted(set(ids) - set(dataset.categories))
        if unknown:
            raise InputError(f"Category group '{name[:40]}' names ids the dataset does not "
                             f"have: {unknown[:10]}.", "Use ids from the dataset's categories.")
        out.append((f"group {name[:40]}", list(ids)))
    return out


def candidates(dataset: CocoDataset, min_objects: int = 30, pairs: bool = True,
               areas: list[tuple[str, tuple[float, float]]] | None = None,
               groups: dict[str, list[int]] | None = None) -> tuple[list[Slice], dict[str, str]]:
    """Every slice with at least `min_objects` counted objects, and the fields not sliced."""
    f = fields(dataset)
    skipped = dict(f.skipped)
    anns = dataset.data["annotations"]
    position = {i: k for k, i in enumerate(dataset.image_ids)}
    crowd = np.array([bool(a.get("iscrowd")) for a in anns], bool)
    ann_image = np.array([position[a["image_id"]] for a in anns], np.int64)
    per_image = np.bincount(ann_image[~crowd], minlength=len(position))
    image_levels = [(lbl, m) for c in f.image.columns
                    for lbl, m in _levels(f.image[c], c, skipped)]
    ann_levels = [(lbl, m) for c in f.annotation.columns
                  for lbl, m in _levels(f.annotation[c], c, skipped)]
    out: list[Slice] = []

    def add_images(name, mask):
        objects = int(per_image[mask].sum())
        if objects >= min_objects:
            out.append(Slice(name, "image", objects, images=tuple(np.flatnonzero(mask))))

    def add_annotations(name, mask, images=None):
        mask = mask & ~crowd
        if int(mask.sum()) >= min_objects:
            out.append(Slice(name, "annotation", int(mask.sum()),
                             counted=tuple(np.flatnonzero(mask)),
                             images=None if images is None else tuple(np.flatnonzero(images))))

    for name, mask in image_levels:
        add_images(name, mask)
    for name, mask in ann_levels:
        add_annotations(name, mask)
    if pairs:
        field_of = lambda label: label.split(" ", 1)[0]   # noqa: E731
        for i, (n1, m1) in enumerate(image_levels):
            for n2, m2 in image_levels[i + 1:]:
                if field_of(n1) != field_of(n2):
                    add_images(f"{n1} & {n2}", m1 & m2)
        for i, (n1, m1) in enumerate(ann_levels):
            for n2, m2 in ann_levels[i + 1:]:
                if field_of(n1) != field_of(n2):
                    add_annotations(f"{n1} & {n2}", m1 & m2)
        for n1, m1 in image_levels:          # an image field with an annotation field
            for n2, m2 in ann_levels:
                add_annotations(f"{n1} & {n2}", m1[ann_image] & m2, images=m1)
    area_ok = np.array([a.get("area", 0.0) for a in anns], np.float64)
    for name, (low, high) in [(f"COCO {k}", v) for k, v in coco_matching.AREAS.items()] + \
            (areas or []):
        objects = int(((area_ok >= low) & (area_ok <= high) & ~crowd).sum())
        if objects >= min_objects:
            out.append(Slice(name, "area", objects, area=(low, high)))
    cats = sorted(dataset.categories)
    ann_cat = np.array([a["category_id"] for a in anns], np.int64)
    for name, ids in category_groups(dataset, groups):
        objects = int((np.isin(ann_cat, ids) & ~crowd).sum())
        if objects >= min_objects:
            out.append(Slice(name, "group", objects,
                             classes=tuple(cats.index(c) for c in ids)))
    if len(out) > MAX_SLICES:
        skipped["(pairs)"] = f"{len(out):,} slices; the {MAX_SLICES} largest are ranked"
        out = sorted(out, key=lambda s: -s.objects)[:MAX_SLICES]
    return out, skipped


@dataclass
class SliceResult:
    slice: Slice
    ap: float
    low: float = float("nan")
    high: float = float("nan")


class Slicer:
    """One model's detections on a dataset: the AP of any slice (re-matching only where a
    slice changes what COCO ignores), with intervals on request."""

    def __init__(self, dataset: CocoDataset, dets: dict[int, Detections],
                 base: coco_matching.CocoMatches | None = None):
        self.dataset, self.dets = dataset, dets
        self.prepared = (base.prepared if base is not None and base.prepared is not None
                         else coco_matching.prepare(dataset, dets,
                                                    base.dataset_key if base else None))
        self.base = base or coco_matching.coco_matches(dataset, prepared=self.prepared)
        self._matched: dict[Slice, coco_matching.CocoMatches] = {}     # the last few slices

    def matches(self, s: Slice) -> coco_matching.CocoMatches:
        if s.kind in ("image", "group"):
            return self.base
        if s not in self._matched:
            n = len(self.dataset.data["annotations"])
            counted = None
            if s.counted is not None:
                counted = np.zeros(n, bool)
                counted[list(s.counted)] = True
            if len(self._matched) >= 4:
                self._matched.pop(next(iter(self._matched)))
            self._matched[s] = coco_matching.coco_matches(
                None, area=s.area or coco_matching.ALL_AREAS, gt_counted=counted,
                prepared=self.prepared)
        return self._matched[s]

    def _ap(self, s: Slice, w: weighted.Weighted) -> np.ndarray:
        per_class = w.ap if s.classes is None else w.ap[:, list(s.classes)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)     # a weighting without a class
            return np.nanmean(per_class, 1)

    def ap(self, s: Slice) -> float:
        m = self.matches(s)
        return float(self._ap(s, weighted.weighted(m, intervals.point_weights(
            m.n_images, s.images), classes=s.classes))[0])

    def with_interval(self, s: Slice, resamples: int = 1000, seed: int = 0) -> SliceResult:
        m = self.matches(s)
        if s.images is not None:
            m = m.restricted(s.images)         # the cost follows the slice's size
        point = self.ap(s)
        samples = np.concatenate([self._ap(s, weighted.weighted(m, w, classes=s.classes))
                                  for w in
                                  intervals.weight_chunks(m.n_images, resamples, seed,
                                                          s.images)])
        return SliceResult(s, point, *intervals.interval(samples, point))


def images_of(dataset: CocoDataset, s: Slice) -> list[int]:
    """The dataset image ids a slice covers (for the gallery)."""
    ids = dataset.image_ids
    if s.images is not None:
        return [ids[k] for k in s.images]
    anns = dataset.data["annotations"]
    if s.counted is not None:
        return sorted({anns[k]["image_id"] for k in s.counted})
    if s.area is not None:
        low, high = s.area
        return sorted({a["image_id"] for a in anns if low <= a.get("area", 0) <= high})
    cats = sorted(dataset.categories)
    wanted = {cats[k] for k in s.classes or ()}
    return sorted({a["image_id"] for a in anns if a["category_id"] in wanted})


def table(slicer: Slicer, slices: list[Slice]) -> pd.DataFrame:
    """Every slice's AP and its gap to the whole set's (point estimates), worst first."""
    whole = slicer.ap(Slice("all", "image", 0))
    rows = [{"slice": s.name, "kind": s.kind, "objects": s.objects, "AP": slicer.ap(s)}
            for s in slices]
    frame = pd.DataFrame(rows, columns=["slice", "kind", "objects", "AP"])
    frame["ΔAP"] = frame["AP"] - whole
    return frame.sort_values("ΔAP", kind="stable", na_position="last").reset_index(drop=True)


def worst(slicer: Slicer, slices: list[Slice], top: int = 5, resamples: int = 1000,
          seed: int = 0, ranked: pd.DataFrame | None = None) -> list[SliceResult]:
    """The `top` slices whose AP falls furthest below the whole set's (none above it), with
    intervals."""
    ranked = table(slicer, slices) if ranked is None else ranked    # `table`, if made already
    ap = dict(zip(ranked["slice"], ranked["AP"]))
    by_name = {s.name: s for s in slices}
    # a pair is news only where it is worse than each of its two fields' slices alone
    below = dict(zip(ranked["slice"], ranked["ΔAP"] < 0))
    news = [n for n in ranked["slice"] if np.isfinite(ap[n]) and below[n] and not (
        " & " in n and ap[n] >= min(ap.get(p, np.inf) for p in n.split(" & ")))]
    picked = [by_name[n] for n in news[:top]]
    return [slicer.with_interval(s, resamples, seed) for s in picked]


def with_intervals(slicer: Slicer, slices: list[Slice], resamples: int = 1000, seed: int = 0,
                   progress: Callback | None = None) -> pd.DataFrame:
    """Every slice's AP with its interval and its gap to the whole set's (slower than
    `table`: one bootstrap per slice)."""
    whole = slicer.ap(Slice("all", "image", 0))
    tick = Ticker(len(slices), progress)
    rows = []
    for k, s in enumerate(slices):
        r = slicer.with_interval(s, resamples, seed)
        rows.append({"slice": s.name, "kind": s.kind, "objects": s.objects, "AP": r.ap,
                     "low": r.low, "high": r.high, "ΔAP": r.ap - whole})
        tick(k + 1)
    frame = pd.DataFrame(rows, columns=["slice", "kind", "objects", "AP", "low", "high", "ΔAP"])
    return frame.sort_values("ΔAP", kind="stable", na_position="last").reset_index(drop=True)
