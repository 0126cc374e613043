"""COCO metrics with faster-coco-eval (pycocotools as the reference).

`evaluate` gives the 12 COCO numbers, per-class AP and the precision arrays behind PR curves.
The analyses built on box matching (confusion, per-image counts, IoUs, F1, TIDE-style errors)
are queries of one match table: `lib.detection.matching`.
"""

from __future__ import annotations

import contextlib
import copy
import io
from dataclasses import dataclass

import numpy as np
import pandas as pd

from lib.core.errors import DatasetError
from lib.detection.datasets import CocoDataset

METRIC_KEYS = ["AP", "AP50", "AP75", "APs", "APm", "APl",
               "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"]
LVIS_KEYS = ["APr", "APc", "APf"]          # added on federated (LVIS-style) datasets


@dataclass
class CocoMetrics:
    stats: dict[str, float]          # the 12 COCO numbers, keys METRIC_KEYS
    per_class: pd.DataFrame          # category_id, name, objects, AP, AP50
    precision: np.ndarray            # [T, R, K, A, M] from COCOeval.accumulate
    scores: np.ndarray               # [T, R, K, A, M] score at each recall point
    category_ids: list[int]


def _gt_coco(dataset: CocoDataset):
    from faster_coco_eval import COCO  # heavy: imported on first use
    gt = COCO()   # the library marks annotations (ignore flags): give it its own dicts
    gt.dataset = {key: [dict(x) for x in value] if isinstance(value, list) else value
                  for key, value in dataset.data.items()}
    gt.createIndex()
    return gt


def evaluate(dataset: CocoDataset, results: list[dict], owned: bool = False) -> CocoMetrics:
    """The 12 COCO box metrics with faster-coco-eval (all zeros for empty predictions).
    `owned`: the caller made `results` for this call, so the library may annotate them in
    place (no defensive copy)."""
    from faster_coco_eval import COCOeval_faster  # heavy: imported on first use
    cats = sorted(dataset.categories)
    if not results:
        zeros = np.full((10, 101, len(cats), 4, 3), -1.0)
        per = _per_class(dataset, cats, zeros)
        keys = METRIC_KEYS + (LVIS_KEYS if dataset.federated else [])
        return CocoMetrics({k: 0.0 for k in keys}, per, zeros, zeros, cats)
    gt = _gt_coco(dataset)
    dt = gt.loadRes(results if owned else copy.deepcopy(results))
    ev = COCOeval_faster(gt, dt, iouType="bbox", print_function=lambda *a, **k: None,
                         lvis_style=dataset.federated)
    ev.params.imgIds = dataset.image_ids
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    stats = {k: float(v) for k, v in zip(METRIC_KEYS, ev.stats[:12])}
    if dataset.federated:                      # LVIS: AP of rare, common, frequent classes
        stats.update({k: ev.stats_as_dict[k] for k in LVIS_KEYS})
    precision = np.asarray(ev.eval["precision"])
    return CocoMetrics(stats, _per_class(dataset, cats, precision), precision,
                       np.asarray(ev.eval["scores"]), cats)


MASK_TYPES = ("segm", "boundary")


def evaluate_masks(dataset: CocoDataset, results: list[dict], iou_type: str = "segm"
                   ) -> dict[str, float]:
    """The 12 COCO numbers of predicted masks (`segmentation` on every result) with
    faster-coco-eval: mask IoU ("segm") or boundary IoU ("boundary", Cheng et al. 2021)."""
    from faster_coco_eval import COCOeval_faster  # heavy: imported on first use
    if iou_type not in MASK_TYPES:
        raise DatasetError(f"Unknown mask evaluation '{str(iou_type)[:20]}'.")
    if not results or not all("segmentation" in r for r in results):
        raise DatasetError("Mask metrics need a mask ('segmentation') on every prediction.")
    unmasked = sum(1 for a in dataset.data["annotations"] if "segmentation" not in a)
    if unmasked:
        raise DatasetError(f"{unmasked} ground-truth objects have no mask, so predicted masks "
                           "cannot be scored.", "Use a dataset whose annotations carry "
                           "'segmentation'.")
    gt = _gt_coco(dataset)
    dt = gt.loadRes(copy.deepcopy(results))
    ev = COCOeval_faster(gt, dt, iouType=iou_type, print_function=lambda *a, **k: None)
    ev.params.imgIds = dataset.image_ids
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    return {k: float(v) for k, v in zip(METRIC_KEYS, ev.stats[:12])}


def evaluate_pycocotools(dataset: CocoDataset, results: list[dict], iou_type: str = "bbox"
                         ) -> dict[str, float]:
    """The same 12 numbers with pycocotools (the reference; used by tests and the benchmark)."""
    from pycocotools.coco import COCO  # heavy: imported on first use
    from pycocotools.cocoeval import COCOeval  # heavy: imported on first use
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = copy.deepcopy(dataset.data)
        gt.createIndex()
        dt = gt.loadRes(copy.deepcopy(results))
        ev = COCOeval(gt, dt, iou_type)
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
