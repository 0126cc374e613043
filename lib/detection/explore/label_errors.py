"""The annotations most likely wrong: a detector's predictions read against the ground truth.

The rule (per image; IoU between every prediction and every non-crowd ground-truth box;
s = a prediction's score):

- swapped class (a ground-truth box): the best prediction of another class at IoU ≥ 0.5,
  times 1 − the best prediction of the box's own class there: max s_other · (1 − max s_same);
- mislocated (a ground-truth box): a prediction of its class overlapping it at
  0.1 ≤ IoU < 0.5, times 1 − the best of its class at IoU ≥ 0.5: max s_near · (1 − max s_same);
- spurious (a ground-truth box): 1 − max s · min(1, IoU/0.5) over predictions of any class
  (nothing any model sees there);
- missing (a prediction, proposed as a new box): s · (1 − min(1, IoU_same/0.1)) ·
  (1 − min(1, IoU_any/0.5)), IoU_same against the box of its class it overlaps most (from
  0.1 that box is mislocated instead), IoU_any against any box (from 0.5 that box is a
  swapped class instead); predictions of several classes on one spot (IoU ≥ 0.5) count once,
  the best.

A box's score is its highest kind; with several models, each kind is the mean over models
(a missing box found by one model of two scores half). An image's score: 1 − Π(1 − score)
over its flagged boxes. Flags are ranked by score; `export` writes the flagged boxes as a
COCO file for re-annotation (each annotation naming its kind and score).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from lib.detection.datasets import CocoDataset
from lib.detection.detections import Detections
from lib.media.masks import box_iou

KINDS = ("missing", "spurious", "mislocated", "swapped")
T_MATCH, T_NEAR = 0.5, 0.1


@dataclass(frozen=True)
class Findings:
    """Flagged boxes (one row each: image_id, ann_id (-1 for a missing box), kind, score,
    x0, y0, x1, y1, category_id, and the four kind scores) ranked by score, and per image
    the combined score."""

    boxes: pd.DataFrame
    images: pd.DataFrame            # image_id, score, flags

    def top(self, n: int, min_score: float = 0.0) -> pd.DataFrame:
        return self.boxes[self.boxes["score"] >= min_score].head(n)


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Every box of `a` against every box of `b` (xyxy), by torchvision's `box_iou`."""
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)))
    import torch  # heavy: imported on first use
    from torchvision import ops  # heavy: imported on first use
    return ops.box_iou(torch.from_numpy(a), torch.from_numpy(b)).numpy()


def _one_model(dataset: CocoDataset, dets: dict[int, Detections]):
    """Per ground-truth box: (spurious, mislocated, swapped); per image: the missing
    candidates (xyxy, class, score)."""
    gt_scores, missing = {}, {}
    for image_id in dataset.image_ids:
        anns = [a for a in dataset.annotations(image_id) if not a.get("iscrowd")]
        g = np.array([a["bbox"] for a in anns], np.float64).reshape(-1, 4)
        g[:, 2:] += g[:, :2]
        gc = np.array([a["category_id"] for a in anns], np.int64)
        d = dets.get(image_id) or Detections(image_id)
        iou = _iou(d.xyxy.astype(np.float64), g)               # (P, G)
        s = d.scores[:, None]
        same = d.class_ids[:, None] == gc[None, :]
        best_same = np.where(same & (iou >= T_MATCH), s, 0).max(0, initial=0)
        swapped = np.where(~same & (iou >= T_MATCH), s, 0).max(0, initial=0) * (1 - best_same)
        near = np.where(same & (iou >= T_NEAR) & (iou < T_MATCH), s, 0).max(0, initial=0)
        mislocated = near * (1 - best_same)
        spurious = 1 - (s * np.clip(iou / T_MATCH, 0, 1)).max(0, initial=0)
        for k, a in enumerate(anns):
            gt_scores[a["id"]] = (spurious[k], mislocated[k], swapped[k])
        any_iou = iou.max(1, initial=0) if len(g) else np.zeros(len(d))
        same_iou = np.where(same, iou, 0).max(1, initial=0) if len(g) else np.zeros(len(d))
        score = (d.scores * np.clip(1 - same_iou / T_NEAR, 0, 1)
                 * np.clip(1 - any_iou / T_MATCH, 0, 1))
        cand = np.flatnonzero(score > 0)
        missing[image_id] = (d.xyxy[cand].astype(np.float64), d.class_ids[cand], score[cand])
    return gt_scores, missing


def _merge_missing(per_model: list[dict], image_id: int, n_models: int):
    """Missing candidates of every model on one image: spots (IoU ≥ 0.5, any class) counted
    once per model, the group's score the sum of each model's best over the model count."""
    boxes = [(m, b, c, s) for m, found in enumerate(per_model)
             for b, c, s in zip(*found.get(image_id, ((), (), ())))]
    boxes.sort(key=lambda x: -x[3])
    groups: list[dict] = []
    for m, b, c, s in boxes:
        for grp in groups:
            if box_iou(b, grp["box"]) >= T_MATCH:
                grp["best"][m] = max(grp["best"].get(m, 0), s)
                break
        else:
            groups.append({"box": b, "category_id": int(c), "best": {m: s}})
    return [(g["box"], g["category_id"], sum(g["best"].values()) / n_models) for g in groups]


def find(dataset: CocoDataset, models: dict[str, dict[int, Detections]]) -> Findings:
    """Every ground-truth box and every proposed missing box scored by the rule above, from
    one or more models' detections (registry runs or imported files alike)."""
    per = [_one_model(dataset, dets) for dets in models.values()] if models else []
    n = max(1, len(per))
    anns = {a["id"]: a for a in dataset.data["annotations"] if not a.get("iscrowd")}
    rows = []
    for ann_id, a in anns.items():
        kinds = np.mean([p[0].get(ann_id, (1.0, 0.0, 0.0)) for p in per], axis=0) if per \
            else np.zeros(3)
        spurious, mislocated, swapped = (float(v) for v in kinds)
        x, y, w, h = a["bbox"]
        rows.append({"image_id": a["image_id"], "ann_id": ann_id, "x0": x, "y0": y,
                     "x1": x + w, "y1": y + h, "category_id": a["category_id"],
                     "missing": 0.0, "spurious": spurious, "mislocated": mislocated,
                     "swapped": swapped})
    for image_id in dataset.image_ids:
        for box, cat, score in _merge_missing([p[1] for p in per], image_id, n):
            rows.append({"image_id": image_id, "ann_id": -1, "x0": box[0], "y0": box[1],
                         "x1": box[2], "y1": box[3], "category_id": cat, "missing": score,
                         "spurious": 0.0, "mislocated": 0.0, "swapped": 0.0})
    frame = pd.DataFrame(rows, columns=["image_id", "ann_id", "x0", "y0", "x1", "y1",
                                        "category_id", *KINDS])
    scores = frame[list(KINDS)].to_numpy(float) if len(frame) else np.zeros((0, 4))
    frame["kind"] = [KINDS[k] for k in scores.argmax(1)] if len(frame) else []
    frame["score"] = scores.max(1) if len(frame) else []
    frame = frame.sort_values(["score", "image_id", "ann_id"], ascending=[False, True, True],
                              kind="stable").reset_index(drop=True)
    ids = pd.Index(dataset.image_ids, name="image_id")
    flagged = frame[frame["score"] > 0]
    combined = flagged.groupby("image_id")["score"].apply(
        lambda s: 1 - np.prod(1 - s.clip(0, 1))) if len(flagged) else pd.Series(dtype=float)
    images = pd.DataFrame({"image_id": ids,
                           "score": combined.reindex(ids, fill_value=0.0).to_numpy(float),
                           "flags": flagged.groupby("image_id").size().reindex(
                               ids, fill_value=0).to_numpy(int)})
    images = images.sort_values("score", ascending=False, kind="stable").reset_index(drop=True)
    return Findings(frame, images)


def export(dataset: CocoDataset, flagged: pd.DataFrame) -> str:
    """The flagged boxes as a COCO instances file (the images they are on, the dataset's
    categories; each annotation carries `lens_kind`, `lens_score` and, for a box already in
    the dataset, `lens_ann_id`) for a re-annotation tool."""
    ids = sorted(set(int(i) for i in flagged["image_id"]))
    anns = []
    for k, row in enumerate(flagged.itertuples(index=False), 1):
        w, h = float(row.x1 - row.x0), float(row.y1 - row.y0)
        anns.append({"id": k, "image_id": int(row.image_id), "category_id": int(row.category_id),
                     "bbox": [round(float(row.x0), 2), round(float(row.y0), 2), round(w, 2),
                              round(h, 2)],
                     "area": round(w * h, 2), "iscrowd": 0, "lens_kind": row.kind,
                     "lens_score": round(float(row.score), 4),
                     **({"lens_ann_id": int(row.ann_id)} if row.ann_id >= 0 else {})})
    return json.dumps({"images": [dataset.image_info(i) for i in ids], "annotations": anns,
                       "categories": dataset.data["categories"]})
