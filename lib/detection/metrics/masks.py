"""Mask and boundary AP with faster-coco-eval (mask IoU, or boundary IoU: Cheng et al. 2021).
Lens matches boxes itself (`coco`); masks it leaves to the library, which matches them on
RLE."""

from __future__ import annotations

import copy

from lib.core.errors import DatasetError
from lib.detection.datasets import CocoDataset
from lib.detection.metrics.coco import METRIC_KEYS

MASK_TYPES = ("segm", "boundary")


def evaluate_masks(dataset: CocoDataset, results: list[dict], iou_type: str = "segm"
                   ) -> dict[str, float]:
    """The 12 COCO numbers of predicted masks (`segmentation` on every result)."""
    from faster_coco_eval import COCO, COCOeval_faster  # heavy: imported on first use
    if iou_type not in MASK_TYPES:
        raise DatasetError(f"Unknown mask evaluation '{str(iou_type)[:20]}'.")
    if not results or not all("segmentation" in r for r in results):
        raise DatasetError("Mask metrics need a mask ('segmentation') on every prediction.")
    unmasked = sum(1 for a in dataset.data["annotations"] if "segmentation" not in a)
    if unmasked:
        raise DatasetError(f"{unmasked} ground-truth objects have no mask, so predicted masks "
                           "cannot be scored.", "Use a dataset whose annotations carry "
                           "'segmentation'.")
    gt = COCO()   # the library marks annotations (ignore flags): give it its own dicts
    gt.dataset = {key: [dict(x) for x in value] if isinstance(value, list) else value
                  for key, value in dataset.data.items()}
    gt.createIndex()
    dt = gt.loadRes(copy.deepcopy(results))
    ev = COCOeval_faster(gt, dt, iouType=iou_type, print_function=lambda *a, **k: None)
    ev.params.imgIds = dataset.image_ids
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    return {k: float(v) for k, v in zip(METRIC_KEYS, ev.stats[:12])}
