"""The field's COCO evaluators, the references Lens's own evaluation is checked against
(tests and `bench/detect_eval.py`): faster-coco-eval and pycocotools on a results list."""

from __future__ import annotations

import contextlib
import copy
import io
from dataclasses import dataclass

import numpy as np
import pandas as pd

from lib.detection.datasets import CocoDataset
from lib.detection.metrics.coco import LVIS_KEYS, METRIC_KEYS


@dataclass
class Reference:
    stats: dict[str, float]
    precision: np.ndarray        # [T, R, K, A, M]
    scores: np.ndarray
    recall: np.ndarray           # [T, K, A, M]
    category_ids: list[int]

    @property
    def per_class(self) -> pd.DataFrame:
        """category_id, AP (all areas, 100 detections; NaN without counted ground truth)."""
        rows = []
        for k, cid in enumerate(self.category_ids):
            p = self.precision[:, :, k, 0, -1]
            rows.append({"category_id": cid,
                         "AP": float(p[p > -1].mean()) if (p > -1).any() else float("nan")})
        return pd.DataFrame(rows)


def faster_coco_eval(dataset: CocoDataset, results: list[dict]) -> Reference:
    """faster-coco-eval's box evaluation (LVIS-style on a federated dataset)."""
    from faster_coco_eval import COCO, COCOeval_faster
    gt = COCO()
    gt.dataset = copy.deepcopy(dataset.data)
    gt.createIndex()
    dt = gt.loadRes(copy.deepcopy(results))
    ev = COCOeval_faster(gt, dt, iouType="bbox", print_function=lambda *a, **k: None,
                         lvis_style=dataset.federated)
    ev.params.imgIds = dataset.image_ids
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    stats = {k: float(v) for k, v in zip(METRIC_KEYS, ev.stats[:12])}
    if dataset.federated:
        stats.update({k: float(ev.stats_as_dict[k]) for k in LVIS_KEYS})
    return Reference(stats, np.asarray(ev.eval["precision"]), np.asarray(ev.eval["scores"]),
                     np.asarray(ev.eval["recall"]), sorted(dataset.categories))


def pycocotools(dataset: CocoDataset, results: list[dict], iou_type: str = "bbox"
                ) -> dict[str, float]:
    """pycocotools' 12 numbers."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
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
