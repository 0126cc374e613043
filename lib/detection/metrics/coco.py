"""COCO's box evaluation from Lens's own matching: the 12 COCO numbers, per-class AP, and the
precision and score arrays behind PR curves (LVIS's APr/APc/APf on federated datasets).

One AP path: `coco_matching` matches each model's detections once per COCO area range (all,
small, medium, large) at the ten IoU thresholds, and `accumulate` here is COCO's
`accumulate` over that matching (101 recall points, precision envelope, 1/10/100 detections
per image and class). The same matching, weighted, gives the bootstrap and slices
(`weighted`). faster-coco-eval and pycocotools are the tests' references (`tests/reference.py`):
equal to 1e-12.

The analyses built on one class-agnostic matching at IoU 0.5 (confusion, per-image counts,
IoUs, F1, TIDE-style errors) are queries of `lib.detection.matching`'s table.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from lib.core.compiled import njit
from lib.detection.datasets import CocoDataset
from lib.detection.detections import Detections
from lib.detection.metrics.coco_matching import (
    ALL_AREAS,
    AREAS,
    IOU_THRESHOLDS,
    RECALL_POINTS,
    CocoMatches,
    Prepared,
    coco_matches,
    prepare,
)

METRIC_KEYS = ["AP", "AP50", "AP75", "APs", "APm", "APl",
               "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"]
LVIS_KEYS = ["APr", "APc", "APf"]          # added on federated (LVIS-style) datasets
#: COCO's area ranges in its order (A axis of the arrays) and detections kept (M axis)
AREA_RANGES = (ALL_AREAS, AREAS["small"], AREAS["medium"], AREAS["large"])
MAX_DETS = (1, 10, 100)


@dataclass
class CocoMetrics:
    stats: dict[str, float]          # the 12 COCO numbers, keys METRIC_KEYS (+ LVIS_KEYS)
    per_class: pd.DataFrame          # category_id, name, objects, AP, AP50
    precision: np.ndarray            # [T, R, K, A, M] as COCOeval.accumulate gives it
    scores: np.ndarray               # [T, R, K, A, M] score at each recall point
    category_ids: list[int]
    recall: np.ndarray               # [T, K, A, M]


@dataclass
class Evaluation:
    """A model's COCO evaluation and the matching it came from (all areas: what the
    bootstrap and slices weigh)."""

    metrics: CocoMetrics
    matches: CocoMatches


def evaluate(dataset: CocoDataset, dets: dict[int, Detections]) -> CocoMetrics:
    """The 12 COCO box metrics of `dets` (all zeros when there are none)."""
    return evaluation(dataset, dets).metrics


def evaluation(dataset: CocoDataset, dets: dict[int, Detections],
               prepared: Prepared | None = None) -> Evaluation:
    """COCO's matching of `dets` at each area range, accumulated as COCO does."""
    p = prepared or prepare(dataset, dets)
    by_area = [coco_matches(None, area=area, prepared=p) for area in AREA_RANGES]
    cats = p.categories
    precision, scores, recall = accumulate(by_area, p)
    stats = summarize(precision, recall)
    if dataset.federated:                      # LVIS: AP of rare, common, frequent classes
        frequency = _frequencies(dataset, cats)
        for key, label in zip(LVIS_KEYS, "rcf"):
            group = [k for k, f in enumerate(frequency) if f == label]
            stats[key] = _mean(precision[:, :, group, 0, -1])
    if not len(p.score):                       # nothing detected: zeros, as Lens always said
        stats = dict.fromkeys(stats, 0.0)
    metrics = CocoMetrics(stats, _per_class(dataset, cats, precision), precision, scores,
                          cats, recall)
    return Evaluation(metrics, by_area[0])


def _frequencies(dataset: CocoDataset, cats: list[int]) -> list[str | None]:
    by_id = {c["id"]: c.get("frequency") for c in dataset.data["categories"]}
    return [by_id.get(c) for c in cats]


def accumulate(by_area: list[CocoMatches], p: Prepared
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """COCO's `accumulate` of one matching per area range: precision and scores [T, R, K, A,
    M], recall [T, K, A, M] (-1 where a class has no counted ground truth)."""
    T, R, K = len(IOU_THRESHOLDS), len(RECALL_POINTS), len(p.categories)
    A, M = len(by_area), len(MAX_DETS)
    precision = np.full((T, R, K, A, M), -1.0)
    scores = np.full((T, R, K, A, M), -1.0)
    recall = np.full((T, K, A, M), -1.0)
    for a, m in enumerate(by_area):
        counted = np.bincount(m.gt_class, minlength=K).astype(np.int64)
        for j, most in enumerate(MAX_DETS):
            _accumulate(m.tp, m.ignored, p.group_rank < most, m.class_start, counted, p.score,
                        RECALL_POINTS, T, precision[:, :, :, a, j], scores[:, :, :, a, j],
                        recall[:, :, a, j])
    return precision, scores, recall


@njit(cache=True, nogil=True)
def _accumulate(tp, ign, kept, class_start, counted, score, recall_points, T, precision,
                scores, recall):
    """pycocotools' accumulate for one area range and detection limit, every class and IoU
    threshold: cumulative true and false positives in COCO's order, the precision envelope,
    the first point reaching each recall level."""
    eps = np.spacing(1.0)
    R = recall_points.shape[0]
    for k in range(class_start.shape[0] - 1):
        npig = counted[k]
        if npig == 0:
            continue
        lo, hi = class_start[k], class_start[k + 1]
        rows = np.empty(hi - lo, np.int64)
        nd = 0
        for i in range(lo, hi):
            if kept[i]:
                rows[nd] = i
                nd += 1
        rc = np.empty(nd)
        pr = np.empty(nd)
        for t in range(T):
            bit = np.uint16(1 << t)
            tps = 0.0
            fps = 0.0
            for n in range(nd):
                i = rows[n]
                if tp[i] & bit:
                    tps += 1.0
                elif not ign[i] & bit:
                    fps += 1.0
                rc[n] = tps / npig
                pr[n] = tps / (fps + tps + eps)
            recall[t, k] = rc[nd - 1] if nd else 0.0
            for n in range(nd - 1, 0, -1):
                if pr[n] > pr[n - 1]:
                    pr[n - 1] = pr[n]
            n = 0
            for r in range(R):
                while n < nd and rc[n] < recall_points[r]:
                    n += 1
                if n >= nd:
                    for rest in range(r, R):
                        precision[t, rest, k] = 0.0
                        scores[t, rest, k] = 0.0
                    break
                precision[t, r, k] = pr[n]
                scores[t, r, k] = score[rows[n]]


def summarize(precision: np.ndarray, recall: np.ndarray) -> dict[str, float]:
    """COCO's 12 numbers from the accumulated arrays (its `summarize`)."""
    ap = [precision[..., 0, 2], precision[0, ..., 0, 2], precision[5, ..., 0, 2],
          precision[..., 1, 2], precision[..., 2, 2], precision[..., 3, 2]]
    ar = [recall[:, :, 0, 0], recall[:, :, 0, 1], recall[:, :, 0, 2],
          recall[:, :, 1, 2], recall[:, :, 2, 2], recall[:, :, 3, 2]]
    return {k: _mean(v) for k, v in zip(METRIC_KEYS, ap + ar)}


def _mean(a: np.ndarray, empty: float = -1.0) -> float:
    """The mean of the entries COCO counts (> -1); `empty` when there are none."""
    valid = a[a > -1]
    return float(np.mean(valid)) if valid.size else empty


def _per_class(dataset: CocoDataset, cats: list[int], precision: np.ndarray) -> pd.DataFrame:
    counts = pd.Series([a["category_id"] for a in dataset.data["annotations"]
                        if not a.get("iscrowd")]).value_counts()
    rows = []
    for k, cid in enumerate(cats):
        rows.append({"category_id": cid, "name": dataset.categories[cid],
                     "objects": int(counts.get(cid, 0)),
                     "AP": _mean(precision[:, :, k, 0, 2], float("nan")),
                     "AP50": _mean(precision[0, :, k, 0, 2], float("nan"))})
    return pd.DataFrame(rows)


def pr_curve(metrics: CocoMetrics, category_id: int | None = None,
             iou_index: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(recall, precision) at IoU 0.5 (index 0), all areas, 100 detections; mean over classes
    when `category_id` is None."""
    p = metrics.precision[iou_index, :, :, 0, 2]
    if category_id is not None:
        col = p[:, metrics.category_ids.index(category_id)]
        return RECALL_POINTS, np.where(col > -1, col, np.nan)
    p = np.where(p > -1, p, np.nan)
    with np.errstate(all="ignore"):
        return RECALL_POINTS, np.nanmean(p, axis=1) if p.size else p
