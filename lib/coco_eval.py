"""COCO metrics (faster-coco-eval) and the analyses built on box matching.

`evaluate` gives the 12 COCO numbers, per-class AP and the precision arrays behind PR curves.
The rest (confusion matrix with background, IoU of matched true positives, TP/FP/FN per image,
F1 against confidence) match detections to ground truth greedily by score, as COCO does.
"""

from __future__ import annotations

import contextlib
import copy
import io
from dataclasses import dataclass

import numpy as np
import pandas as pd

from lib.datasets import CocoDataset, Detections, from_coco_results

METRIC_KEYS = ["AP", "AP50", "AP75", "APs", "APm", "APl",
               "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"]


@dataclass
class CocoMetrics:
    stats: dict[str, float]          # the 12 COCO numbers, keys METRIC_KEYS
    per_class: pd.DataFrame          # category_id, name, objects, AP, AP50
    precision: np.ndarray            # [T, R, K, A, M] from COCOeval.accumulate
    scores: np.ndarray               # [T, R, K, A, M] score at each recall point
    category_ids: list[int]


def _gt_coco(dataset: CocoDataset):
    from faster_coco_eval import COCO
    gt = COCO()
    gt.dataset = copy.deepcopy(dataset.data)
    gt.createIndex()
    return gt


def evaluate(dataset: CocoDataset, results: list[dict]) -> CocoMetrics:
    """The 12 COCO box metrics with faster-coco-eval (all zeros for empty predictions)."""
    from faster_coco_eval import COCOeval_faster
    cats = sorted(dataset.categories)
    if not results:
        zeros = np.full((10, 101, len(cats), 4, 3), -1.0)
        per = _per_class(dataset, cats, zeros)
        return CocoMetrics({k: 0.0 for k in METRIC_KEYS}, per, zeros, zeros, cats)
    gt = _gt_coco(dataset)
    dt = gt.loadRes(copy.deepcopy(results))
    ev = COCOeval_faster(gt, dt, iouType="bbox", print_function=lambda *a, **k: None)
    ev.params.imgIds = dataset.image_ids
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    stats = {k: float(v) for k, v in zip(METRIC_KEYS, ev.stats[:12])}
    precision = np.asarray(ev.eval["precision"])
    return CocoMetrics(stats, _per_class(dataset, cats, precision), precision,
                       np.asarray(ev.eval["scores"]), cats)


def evaluate_pycocotools(dataset: CocoDataset, results: list[dict]) -> dict[str, float]:
    """The same 12 numbers with pycocotools (the reference; used by tests and the benchmark)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = copy.deepcopy(dataset.data)
        gt.createIndex()
        dt = gt.loadRes(copy.deepcopy(results))
        ev = COCOeval(gt, dt, "bbox")
        ev.params.imgIds = dataset.image_ids
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return {k: float(v) for k, v in zip(METRIC_KEYS, ev.stats)}


def _mean_valid(a: np.ndarray) -> float:
    valid = a[a > -1]
    return float(valid.mean()) if valid.size else float("nan")


def _per_class(dataset: CocoDataset, cats: list[int], precision: np.ndarray) -> pd.DataFrame:
    counts = pd.Series([a["category_id"] for a in dataset.data["annotations"]
                        if not a.get("iscrowd")]).value_counts()
    rows = []
    for k, cid in enumerate(cats):
        rows.append({"category_id": cid, "name": dataset.categories[cid],
                     "objects": int(counts.get(cid, 0)),
                     "AP": _mean_valid(precision[:, :, k, 0, 2]),
                     "AP50": _mean_valid(precision[0, :, k, 0, 2])})
    return pd.DataFrame(rows)


def pr_curve(metrics: CocoMetrics, category_id: int | None = None,
             iou_index: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(recall, precision) at IoU 0.5 (index 0), all areas, 100 detections; mean over classes
    when `category_id` is None."""
    recall = np.linspace(0, 1, 101)
    p = metrics.precision[iou_index, :, :, 0, 2]
    if category_id is not None:
        col = p[:, metrics.category_ids.index(category_id)]
        return recall, np.where(col > -1, col, np.nan)
    p = np.where(p > -1, p, np.nan)
    with np.errstate(all="ignore"):
        return recall, np.nanmean(p, axis=1) if p.size else p


# -- matching-based analyses ------------------------------------------------------------------

def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix of xyxy boxes a (N,4) and b (M,4)."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), np.float32)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area_a = (a[:, 2:] - a[:, :2]).clip(0).prod(-1)
    area_b = (b[:, 2:] - b[:, :2]).clip(0).prod(-1)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def gt_arrays(dataset: CocoDataset, image_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Non-crowd ground truth of one image: (xyxy boxes, category ids)."""
    anns = [a for a in dataset.annotations(image_id) if not a.get("iscrowd")]
    boxes = np.array([a["bbox"] for a in anns], np.float32).reshape(-1, 4)
    boxes[:, 2:] += boxes[:, :2]
    return boxes, np.array([a["category_id"] for a in anns], np.int64)


def match(gt_boxes: np.ndarray, gt_cls: np.ndarray, det: Detections, iou_thr: float = 0.5,
          class_aware: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Greedy by score: for each detection, the matched ground-truth index (or -1) and IoU."""
    order = np.argsort(-det.scores, kind="stable")
    ious = box_iou(det.xyxy, gt_boxes)
    taken = np.zeros(len(gt_boxes), bool)
    matched = np.full(len(det), -1)
    matched_iou = np.zeros(len(det), np.float32)
    for d in order:
        cand = ious[d].copy() if len(gt_boxes) else np.zeros(0)
        if class_aware:
            cand[gt_cls != det.class_ids[d]] = -1
        cand[taken] = -1
        if cand.size and cand.max() >= iou_thr:
            g = int(cand.argmax())
            taken[g], matched[d], matched_iou[d] = True, g, cand[g]
    return matched, matched_iou


def per_image_counts(dataset: CocoDataset, dets: dict[int, Detections],
                     score_thr: float = 0.5, iou_thr: float = 0.5) -> pd.DataFrame:
    """TP, FP, FN per image (class-aware, detections at or above `score_thr`)."""
    rows = []
    for image_id in dataset.image_ids:
        gt_b, gt_c = gt_arrays(dataset, image_id)
        det = dets.get(image_id, Detections(image_id)).above(score_thr)
        matched, _ = match(gt_b, gt_c, det, iou_thr)
        tp = int((matched >= 0).sum())
        rows.append({"image_id": image_id, "file": dataset.image_info(image_id)["file_name"],
                     "TP": tp, "FP": len(det) - tp, "FN": len(gt_b) - tp})
    return pd.DataFrame(rows)


def matched_ious(dataset: CocoDataset, dets: dict[int, Detections], score_thr: float = 0.0,
                 iou_thr: float = 0.5) -> np.ndarray:
    """IoU of every true positive (class-aware match at `iou_thr`)."""
    out = []
    for image_id in dataset.image_ids:
        gt_b, gt_c = gt_arrays(dataset, image_id)
        det = dets.get(image_id, Detections(image_id)).above(score_thr)
        matched, ious = match(gt_b, gt_c, det, iou_thr)
        out.extend(ious[matched >= 0].tolist())
    return np.asarray(out, np.float32)


def confusion_matrix(dataset: CocoDataset, dets: dict[int, Detections], score_thr: float = 0.5,
                     iou_thr: float = 0.5) -> tuple[np.ndarray, list[str]]:
    """Rows: true class + background; columns: predicted class + background.

    Detections are matched to ground truth by IoU regardless of class; an unmatched detection
    counts as (background, predicted), a missed object as (true, background).
    """
    cats = sorted(dataset.categories)
    index = {c: i for i, c in enumerate(cats)}
    bg = len(cats)
    m = np.zeros((bg + 1, bg + 1), np.int64)
    for image_id in dataset.image_ids:
        gt_b, gt_c = gt_arrays(dataset, image_id)
        det = dets.get(image_id, Detections(image_id)).above(score_thr)
        matched, _ = match(gt_b, gt_c, det, iou_thr, class_aware=False)
        for d, g in enumerate(matched):
            row = index[int(gt_c[g])] if g >= 0 else bg
            m[row, index.get(int(det.class_ids[d]), bg)] += 1
        for g in set(range(len(gt_b))) - set(matched[matched >= 0].tolist()):
            m[index[int(gt_c[g])], bg] += 1
    names = [dataset.categories[c] for c in cats] + ["background"]
    return m, names


def f1_vs_confidence(dataset: CocoDataset, dets: dict[int, Detections],
                     iou_thr: float = 0.5) -> pd.DataFrame:
    """Precision, recall and F1 for every score threshold (class-aware, greedy matching)."""
    scores, hits = [], []
    n_gt = 0
    for image_id in dataset.image_ids:
        gt_b, gt_c = gt_arrays(dataset, image_id)
        n_gt += len(gt_b)
        det = dets.get(image_id, Detections(image_id))
        matched, _ = match(gt_b, gt_c, det, iou_thr)
        scores.extend(det.scores.tolist())
        hits.extend((matched >= 0).tolist())
    if not scores:
        return pd.DataFrame(columns=["threshold", "precision", "recall", "F1"])
    order = np.argsort(-np.asarray(scores), kind="stable")
    s, h = np.asarray(scores)[order], np.asarray(hits)[order]
    tp = np.cumsum(h)
    precision = tp / np.arange(1, len(h) + 1)
    recall = tp / max(n_gt, 1)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-9)
    return pd.DataFrame({"threshold": s, "precision": precision, "recall": recall, "F1": f1})


def detections_by_image(results: list[dict]) -> dict[int, Detections]:
    return from_coco_results(results)
