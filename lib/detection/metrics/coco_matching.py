"""COCO's matching, kept per detection at all ten IoU thresholds: two bits per detection and
threshold (matched, ignored), by pycocotools' own rules (`evaluateImg`: per image and class,
detections by score, each takes the best-IoU ground truth still free; crowd regions, ground
truth outside the area range and LVIS's unjudged classes are "ignore"). What COCO's accumulate
needs besides is how often each image counts: `weighted` (under image weights) and `coco`
(unweighted: the 12 numbers and PR arrays).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from lib.core.compiled import njit
from lib.core.errors import InputError
from lib.detection.datasets import CocoDataset
from lib.detection.detections import Detections

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)        # COCO's, bit t of the match bits
RECALL_POINTS = np.linspace(0.0, 1.0, 101)         # COCO's, where precision is read
MAX_DETS = 100
ALL_AREAS = (0.0, 1e10)
#: COCO's area ranges (pixels²) by name; a slice may use any other.
AREAS = {"small": (0.0, 32.0 ** 2), "medium": (32.0 ** 2, 96.0 ** 2), "large": (96.0 ** 2, 1e10)}


@dataclass
class CocoMatches:
    """One model's detections on a dataset, matched as COCO matches them, at ten IoU thresholds.

    Detections are in the order COCO's `accumulate` ranks them: by class, then score (highest
    first), image id, position in the image; only each image's top 100 per class are kept."""

    n_images: int                 # positions 0 … n_images−1 follow dataset.image_ids
    categories: list[int]         # class positions → dataset category ids
    det_image: np.ndarray         # (n,) int64 image position
    tp: np.ndarray                # (n,) uint16, bit t: matched a counted ground truth at t
    ignored: np.ndarray           # (n,) uint16, bit t: ignored at t (neither TP nor FP)
    class_start: np.ndarray       # (K+1,) int64: class k's detections are [start[k], start[k+1])
    gt_image: np.ndarray          # (m,) int64 image position of each counted ground truth
    gt_class: np.ndarray          # (m,) int64 class position
    dataset_key: str              # the same images and ground truth ⇔ the same key
    fp_scale: np.ndarray | None = None   # (K,) weight of a false positive per class (slices)
    prepared: Prepared | None = field(default=None, repr=False)   # to match slices again

    def restricted(self, images: np.ndarray) -> CocoMatches:
        """The same matches with only these image positions' detections and ground truth (what
        a slice's bootstrap weighs: the cost follows the slice's size)."""
        inside = np.zeros(self.n_images, bool)
        inside[np.asarray(images, np.int64)] = True
        keep = inside[self.det_image]
        kept_before = np.r_[0, np.cumsum(keep)].astype(np.int64)
        gt = inside[self.gt_image]
        return CocoMatches(self.n_images, self.categories, self.det_image[keep], self.tp[keep],
                           self.ignored[keep], kept_before[self.class_start],
                           self.gt_image[gt], self.gt_class[gt], self.dataset_key,
                           self.fp_scale, self.prepared)

    @property
    def last_tp(self) -> np.ndarray:
        """Per class, one past its last detection that is a true positive at some threshold
        (the detections after it change no point of any curve)."""
        hit = np.flatnonzero(self.tp != 0)
        ends = np.searchsorted(hit, self.class_start[1:], "left")   # hits before class end
        last = np.where(ends > 0, hit[np.maximum(ends - 1, 0)] + 1 if len(hit) else 0, 0)
        return np.maximum(last, self.class_start[:-1]).astype(np.int64)

    @property
    def max_tp(self) -> int:
        """The most detections of one class matched at some threshold (a buffer size)."""
        hits = np.r_[0, np.cumsum(self.tp != 0)]
        return int(np.max(np.diff(hits[self.class_start]), initial=0))


def dataset_key(dataset: CocoDataset) -> str:
    """Images and ground truth (not files): two results are comparable when keys are equal."""
    h = hashlib.sha256(repr(dataset.image_ids).encode())
    for a in dataset.data["annotations"]:
        h.update(f"{a['image_id']}|{a['category_id']}|{a['bbox']}|{a.get('iscrowd', 0)}"
                 .encode())
    return h.hexdigest()[:16]


def _det_arrays(dataset: CocoDataset, dets: dict[int, Detections]):
    """Detections as COCO reads them from the results file Lens writes (`to_coco_results`)."""
    position = {i: k for k, i in enumerate(dataset.image_ids)}
    kept = [d for i, d in dets.items() if i in position and len(d)]
    if not kept:
        z = np.zeros(0, np.int64)
        return z, z, np.zeros((0, 4)), np.zeros(0), z, z
    xyxy = np.concatenate([d.xyxy for d in kept]).astype(np.float64)
    xywh = np.round(np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], 1), 2)
    image_id = np.concatenate([np.full(len(d), d.image_id, np.int64) for d in kept])
    image = np.concatenate([np.full(len(d), position[d.image_id], np.int64) for d in kept])
    index = np.concatenate([np.arange(len(d)) for d in kept])
    score = np.concatenate([d.scores for d in kept])
    cls = np.concatenate([d.class_ids for d in kept])
    return image_id, image, xywh, score, cls, index


@dataclass
class Prepared:
    """What COCO's matching needs that no slice changes: ground truth as arrays, detections
    grouped per image and class by score (top 100), and their accumulate order."""

    categories: list[int]
    n_images: int
    key: str
    g_ok: np.ndarray
    g_img: np.ndarray
    g_cls: np.ndarray
    g_box: np.ndarray
    g_crowd: np.ndarray
    g_area: np.ndarray
    box: np.ndarray               # grouped detections' xywh
    group_keys: np.ndarray
    group_lo: np.ndarray
    group_hi: np.ndarray
    rank: np.ndarray              # grouped order → accumulate order
    det_image: np.ndarray         # in accumulate order
    class_start: np.ndarray
    unlabelled: np.ndarray        # grouped: unmatched is ignored, not false (LVIS)
    score: np.ndarray             # in accumulate order
    group_rank: np.ndarray        # in accumulate order: place by score in its image and class


def prepare(dataset: CocoDataset, dets: dict[int, Detections],
            key: str | None = None) -> Prepared:
    cats = sorted(dataset.categories)
    class_of = {c: k for k, c in enumerate(cats)}
    position = {i: k for k, i in enumerate(dataset.image_ids)}
    K = len(cats)
    anns = dataset.data["annotations"]
    g_ok = np.array([a["image_id"] in position and a["category_id"] in class_of for a in anns],
                    bool)
    g_img = np.array([position.get(a["image_id"], 0) for a in anns], np.int64)
    g_cls = np.array([class_of.get(a["category_id"], 0) for a in anns], np.int64)
    g_box = np.array([a["bbox"] for a in anns], np.float64).reshape(-1, 4)
    g_crowd = np.array([bool(a.get("iscrowd")) for a in anns], bool)
    g_area = np.array([a.get("area", a["bbox"][2] * a["bbox"][3]) for a in anns], np.float64)
    image_id, image, xywh, score, cls, index = _det_arrays(dataset, dets)
    cat_array = np.array(cats, np.int64)
    d_cls = np.minimum(np.searchsorted(cat_array, cls), max(K - 1, 0)).astype(np.int64)
    if len(cls) and (not K or (cat_array[d_cls] != cls).any()):
        raise InputError("Detections use category ids the dataset does not have.",
                         "Map the model's labels to the dataset's.")
    d_key = image * K + d_cls
    unlabelled = np.zeros(len(d_key), bool)     # LVIS: not exhaustive, unmatched: ignored
    if dataset.federated:
        # LVIS's federated rule: a class is judged in an image only where it is present or
        # checked absent; other detections are dropped
        def keys(field):
            return np.array([position[im["id"]] * K + class_of[c] for im in dataset.data[
                "images"] for c in im.get(field, []) if im["id"] in position], np.int64)
        judged = np.union1d(g_img[g_ok] * K + g_cls[g_ok], keys("neg_category_ids"))
        keep = np.isin(d_key, judged)
        unlabelled = np.isin(d_key, keys("not_exhaustive_category_ids"))[keep]
        image_id, image, xywh, score, cls, index, d_cls, d_key = (
            a[keep] for a in (image_id, image, xywh, score, cls, index, d_cls, d_key))
    by_group = np.lexsort((index, image_id, -score, d_key))
    d_key = d_key[by_group]
    start = np.r_[True, d_key[1:] != d_key[:-1]] if len(d_key) else np.zeros(0, bool)
    first = np.maximum.accumulate(np.where(start, np.arange(len(d_key)), 0))
    place = np.arange(len(d_key)) - first
    top = place < MAX_DETS
    by_group, d_key, place = by_group[top], d_key[top], place[top]
    unlabelled = unlabelled[by_group]
    group_keys, group_lo = np.unique(d_key, return_index=True)
    group_hi = np.r_[group_lo[1:], len(d_key)].astype(np.int64)
    # COCO's accumulate order: class, score, image id, position in the image
    rank = np.lexsort((index[by_group], image_id[by_group], -score[by_group], d_cls[by_group]))
    class_start = np.searchsorted(d_cls[by_group][rank], np.arange(K + 1)).astype(np.int64)
    return Prepared(cats, len(position), key or dataset_key(dataset), g_ok, g_img, g_cls,
                    g_box, g_crowd, g_area, np.ascontiguousarray(xywh[by_group]), group_keys,
                    group_lo.astype(np.int64), group_hi, rank, image[by_group][rank],
                    class_start, unlabelled, score[by_group][rank].astype(np.float64),
                    place[rank].astype(np.int64))


def coco_matches(dataset: CocoDataset | None, dets: dict[int, Detections] | None = None,
                 area: tuple[float, float] = ALL_AREAS,
                 gt_counted: np.ndarray | None = None, key: str | None = None,
                 prepared: Prepared | None = None) -> CocoMatches:
    """COCO's matching of one model's detections, kept per detection and IoU threshold.

    `area`: ground truth whose annotated area is outside it is ignored, and so are unmatched
    detections whose box area is (COCO's area ranges). `gt_counted`: a boolean per annotation
    of `dataset.data["annotations"]`; the others are ignored like crowd regions (an annotation
    slice). Detections matched to ignored ground truth are neither true nor false positives.
    `prepared`: `prepare(dataset, dets)` done once for many slices.
    """
    p = prepared or prepare(dataset, dets, key)
    K = len(p.categories)
    g_ignore = p.g_crowd | (p.g_area < area[0]) | (p.g_area > area[1])
    fp_scale = None
    if gt_counted is not None:
        # a detection that matches no object has no attribute: in an annotation slice it
        # counts at the slice's share of its class's objects (Hoiem et al.'s normalisation)
        base = ~g_ignore & p.g_ok
        g_ignore = g_ignore | ~np.asarray(gt_counted, bool)
        n_all = np.bincount(p.g_cls[base], minlength=K)
        n_in = np.bincount(p.g_cls[base & ~g_ignore], minlength=K)
        fp_scale = np.where(n_all > 0, n_in / np.maximum(n_all, 1), 0.0)
    g_key = p.g_img * K + p.g_cls
    order = np.lexsort((np.arange(len(g_key)), g_ignore, g_key))   # non-ignored first
    order = order[p.g_ok[order]]
    g_key, g_ignore = g_key[order], g_ignore[order]
    counted = ~g_ignore
    gt_lo = np.searchsorted(g_key, p.group_keys, "left").astype(np.int64)
    gt_hi = np.searchsorted(g_key, p.group_keys, "right").astype(np.int64)
    tp, ign = _match(p.box, p.box[:, 2] * p.box[:, 3], p.unlabelled, p.group_lo, p.group_hi,
                     gt_lo, gt_hi, np.ascontiguousarray(p.g_box[order]), p.g_crowd[order],
                     g_ignore, IOU_THRESHOLDS, float(area[0]), float(area[1]))
    return CocoMatches(p.n_images, p.categories, p.det_image, tp[p.rank], ign[p.rank],
                       p.class_start, p.g_img[order][counted], p.g_cls[order][counted],
                       p.key, fp_scale, p)


@njit(cache=True, nogil=True)
def _match(box, area, unlabelled, group_lo, group_hi, gt_lo, gt_hi, gt_box, gt_crowd, gt_ignore,
           thresholds, area_lo, area_hi):
    """pycocotools' evaluateImg per (image, class) group, at every threshold: two bit sets."""
    n, T = box.shape[0], thresholds.shape[0]
    tp = np.zeros(n, np.uint16)
    ign = np.zeros(n, np.uint16)
    every = np.uint16((1 << T) - 1)
    most_pairs, most_gt = 1, 1
    for g in range(group_lo.shape[0]):
        most_pairs = max(most_pairs, (group_hi[g] - group_lo[g]) * (gt_hi[g] - gt_lo[g]))
        most_gt = max(most_gt, gt_hi[g] - gt_lo[g])
    pairs = np.zeros(most_pairs)          # scratch, reused by every group
    taken = np.zeros(most_gt, np.bool_)
    for g in range(group_lo.shape[0]):
        d0, d1, g0, g1 = group_lo[g], group_hi[g], gt_lo[g], gt_hi[g]
        nd, ng = d1 - d0, g1 - g0
        if ng == 0:                              # nothing to match: false, or ignored
            for i in range(nd):
                if area[d0 + i] < area_lo or area[d0 + i] > area_hi or unlabelled[d0 + i]:
                    ign[d0 + i] = every
            continue
        ious = pairs[:nd * ng].reshape((nd, ng))
        ious[:] = 0.0
        for j in range(ng):                      # pycocotools' bbIou, operation for operation
            gx, gy, gw, gh = gt_box[g0 + j, 0], gt_box[g0 + j, 1], gt_box[g0 + j, 2], \
                gt_box[g0 + j, 3]
            ga = gw * gh
            for i in range(nd):
                dx, dy, dw, dh = box[d0 + i, 0], box[d0 + i, 1], box[d0 + i, 2], box[d0 + i, 3]
                w = min(dw + dx, gw + gx) - max(dx, gx)
                if w <= 0:
                    continue
                h = min(dh + dy, gh + gy) - max(dy, gy)
                if h <= 0:
                    continue
                inter = w * h
                union = dw * dh if gt_crowd[g0 + j] else dw * dh + ga - inter
                ious[i, j] = inter / union
        for t in range(T):
            bit = np.uint16(1 << t)
            taken[:ng] = False
            for i in range(nd):
                best = min(thresholds[t], 1 - 1e-10)
                m = -1
                for j in range(ng):
                    if taken[j] and not gt_crowd[g0 + j]:
                        continue
                    if m > -1 and not gt_ignore[g0 + m] and gt_ignore[g0 + j]:
                        break
                    if ious[i, j] < best:
                        continue
                    best = ious[i, j]
                    m = j
                if m == -1:
                    if area[d0 + i] < area_lo or area[d0 + i] > area_hi or unlabelled[d0 + i]:
                        ign[d0 + i] |= bit
                    continue
                taken[m] = True
                if gt_ignore[g0 + m]:
                    ign[d0 + i] |= bit
                else:
                    tp[d0 + i] |= bit
    return tp, ign
