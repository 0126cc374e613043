"""Detection errors in the manner of TIDE (Bolya et al., 2020), computed by Lens.

Each detection is labelled, greedily by score, with IoU thresholds t_f = 0.5 (foreground)
and t_b = 0.1 (background):
  TP          IoU >= t_f with an unmatched ground truth of its class
  duplicate   IoU >= t_f with a ground truth of its class already matched by a higher score
  class       IoU >= t_f with a ground truth of another class
  location    t_b <= IoU < t_f with a ground truth of its class
  both        t_b <= IoU < t_f with a ground truth of another class only
  background  IoU < t_b with every ground truth
Ground truth that no TP, class or location error points at is "missed".
Each error type's ΔAP is AP50 after an oracle fixes only that type, minus AP50 as is:
class errors take their object's class, location errors its box (or are dropped when the
object is already found), duplicate/both/background detections are dropped, missed objects
are removed from the ground truth. AP50 comes from the same COCO evaluation as the metrics.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from lib import coco_eval
from lib.datasets import CocoDataset, Detections

ERROR_TYPES = ["class", "location", "both", "duplicate", "background", "missed"]
T_FG, T_BG = 0.5, 0.1


@dataclass(frozen=True)
class LabelledDetection:
    image_id: int
    index: int            # index in that image's Detections
    kind: str             # TP or one of ERROR_TYPES (not "missed")
    target: int           # ground-truth index the label refers to (-1 if none)


@dataclass
class ErrorReport:
    ap50: float
    delta_ap: dict[str, float]
    counts: dict[str, int]
    labels: list[LabelledDetection]
    missed: list[tuple[int, int]]          # (image_id, ground-truth index)

    def images_with(self, kind: str) -> list[int]:
        ids = ([i for i, _ in self.missed] if kind == "missed"
               else [lab.image_id for lab in self.labels if lab.kind == kind])
        return sorted(set(ids))


def label_image(gt_boxes: np.ndarray, gt_cls: np.ndarray, det: Detections):
    """Labels for one image's detections and the indices of its missed ground truth."""
    ious = coco_eval.box_iou(det.xyxy, gt_boxes)
    matched = np.zeros(len(gt_boxes), bool)
    pointed = np.zeros(len(gt_boxes), bool)
    labels = []
    for d in np.argsort(-det.scores, kind="stable"):
        row = ious[d] if len(gt_boxes) else np.zeros(0)
        same = gt_cls == det.class_ids[d]
        same_iou = np.where(same, row, -1.0)
        other_iou = np.where(~same, row, -1.0)
        free_same = np.where(same & ~matched, row, -1.0)
        if free_same.size and free_same.max() >= T_FG:
            g = int(free_same.argmax())
            matched[g] = pointed[g] = True
            labels.append((int(d), "TP", g))
        elif same_iou.size and same_iou.max() >= T_FG:
            labels.append((int(d), "duplicate", int(same_iou.argmax())))
        elif other_iou.size and other_iou.max() >= T_FG:
            g = int(other_iou.argmax())
            pointed[g] = True
            labels.append((int(d), "class", g))
        elif same_iou.size and same_iou.max() >= T_BG:
            g = int(same_iou.argmax())
            pointed[g] = True
            labels.append((int(d), "location", g))
        elif row.size and row.max() >= T_BG:
            labels.append((int(d), "both", int(row.argmax())))
        else:
            labels.append((int(d), "background", -1))
    missed = [int(g) for g in np.flatnonzero(~pointed)]
    return labels, missed


def analyse(dataset: CocoDataset, dets: dict[int, Detections]) -> ErrorReport:
    """Label every detection and compute ΔAP50 per error type."""
    labels: list[LabelledDetection] = []
    missed: list[tuple[int, int]] = []
    gts = {i: coco_eval.gt_arrays(dataset, i) for i in dataset.image_ids}
    for image_id in dataset.image_ids:
        det = dets.get(image_id, Detections(image_id))
        lab, miss = label_image(*gts[image_id], det)
        labels += [LabelledDetection(image_id, d, k, g) for d, k, g in lab]
        missed += [(image_id, g) for g in miss]

    def ap50(fixed: dict[int, Detections], data: CocoDataset = dataset) -> float:
        results = [r for d in fixed.values() for r in d.to_coco()]
        return coco_eval.evaluate(data, results).stats["AP50"]

    base = ap50(dets)
    delta = {}
    for kind in ERROR_TYPES:
        if kind == "missed":
            drop = {(i, g) for i, g in missed}
            data = copy.deepcopy(dataset.data)
            keep_ids = set()
            for image_id in dataset.image_ids:
                anns = [a for a in dataset.annotations(image_id) if not a.get("iscrowd")]
                keep_ids |= {a["id"] for g, a in enumerate(anns) if (image_id, g) not in drop}
            data["annotations"] = [a for a in data["annotations"]
                                   if a.get("iscrowd") or a["id"] in keep_ids]
            fixed_ds = CocoDataset(dataset.annotations_path, dataset.images_dir, data)
            delta[kind] = ap50(dets, fixed_ds) - base
        else:
            delta[kind] = ap50(_fix(dets, labels, kind, gts)) - base
    counts = {k: sum(lab.kind == k for lab in labels) for k in ERROR_TYPES[:-1]}
    counts["missed"] = len(missed)
    return ErrorReport(base, delta, counts, labels, missed)


def _fix(dets: dict[int, Detections], labels: list[LabelledDetection], kind: str,
         gts: dict) -> dict[int, Detections]:
    """The detections after an oracle fixes every error of one kind."""
    out = {}
    by_image: dict[int, list[LabelledDetection]] = {}
    for lab in labels:
        by_image.setdefault(lab.image_id, []).append(lab)
    for image_id, det in dets.items():
        xyxy, cls, keep = det.xyxy.copy(), det.class_ids.copy(), np.ones(len(det), bool)
        taken = {lab.target for lab in by_image.get(image_id, []) if lab.kind == "TP"}
        for lab in sorted(by_image.get(image_id, []), key=lambda x: -det.scores[x.index]):
            if lab.kind != kind:
                continue
            if kind in ("class", "location"):
                if lab.target in taken:
                    keep[lab.index] = False       # the object is already found: drop
                else:
                    boxes, classes = gts[image_id]
                    if kind == "class":
                        cls[lab.index] = classes[lab.target]
                    else:
                        xyxy[lab.index] = boxes[lab.target]
                    taken.add(lab.target)
            else:
                keep[lab.index] = False
        out[image_id] = Detections(image_id, xyxy[keep], det.scores[keep], cls[keep])
    return out
