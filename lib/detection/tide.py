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
are removed from the ground truth. Both come from one match table (`lib.detection.matching`): the
labels are columns of it, and each AP50 is computed from its per-detection flags as COCO
computes AP at IoU 0.5 (equal to COCO's where the dataset has no crowd regions), so the
whole analysis is one pass over the images and seven vectorised AP computations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lib.detection import matching
from lib.detection.datasets import CocoDataset
from lib.detection.detections import Detections

ERROR_TYPES = ["class", "location", "both", "duplicate", "background", "missed"]
T_FG, T_BG = matching.T_FG, matching.T_BG
_CODE = {k: i for i, k in enumerate(matching.KINDS)}


@dataclass(frozen=True)
class LabelledDetection:
    image_id: int
    index: int            # index in that image's Detections
    kind: str             # TP or one of ERROR_TYPES (not "missed")
    target: int           # ground-truth index (in the image's non-crowd boxes), -1 if none
    score: float = 0.0


@dataclass
class ErrorReport:
    ap50: float
    delta_ap: dict[str, float]
    counts: dict[str, int]
    table: matching.MatchTable

    @property
    def labels(self) -> list[LabelledDetection]:
        """Every detection's label, per image, highest score first."""
        d = self.table.det.sort_values(["score"], ascending=False, kind="stable")
        order = {i: k for k, i in enumerate(self.table.image_ids)}
        d = d.iloc[np.argsort(d["image_id"].map(order).to_numpy(), kind="stable")]
        return self._labelled(d)

    def errors(self, limit: int = 200) -> list[LabelledDetection]:
        """The highest-scoring detections that are not true positives."""
        d = self.table.det[self.table.det["kind"] != _CODE["TP"]]
        return self._labelled(d.nlargest(limit, "score"))

    def _labelled(self, d) -> list[LabelledDetection]:
        gt_index = self.table.gt["index"].to_numpy()
        return [LabelledDetection(int(i), int(x), matching.KINDS[int(k)],
                                  int(gt_index[t]) if t >= 0 else -1, float(s))
                for i, x, k, t, s in zip(d["image_id"], d["index"], d["kind"], d["target"],
                                         d["score"])]

    @property
    def missed(self) -> list[tuple[int, int]]:
        """(image_id, ground-truth index) of every missed object."""
        gt = self.table.gt[_missed(self.table)]
        return list(zip(gt["image_id"].tolist(), gt["index"].tolist()))

    def images_with(self, kind: str) -> list[int]:
        if kind == "missed":
            ids = self.table.gt.loc[_missed(self.table), "image_id"]
        else:
            ids = self.table.det.loc[self.table.det["kind"] == _CODE[kind], "image_id"]
        return sorted(set(ids.tolist()))


def _missed(table: matching.MatchTable) -> np.ndarray:
    """Ground truth that no TP, class or location error points at."""
    d = table.det
    pointing = d["kind"].isin([_CODE["TP"], _CODE["class"], _CODE["location"]])
    pointed = np.zeros(len(table.gt), bool)
    pointed[d.loc[pointing, "target"].to_numpy()] = True
    return ~pointed


def analyse(dataset: CocoDataset, dets: dict[int, Detections],
            table: matching.MatchTable | None = None) -> ErrorReport:
    """Label every detection and compute ΔAP50 per error type (from one match table)."""
    t = table if table is not None else matching.match(dataset, dets)
    d = t.det
    image, cat = d["image_id"].to_numpy(), d["category_id"].to_numpy()
    score, kind = d["score"].to_numpy(), d["kind"].to_numpy()
    target, tp = d["target"].to_numpy(), (d["gt"] >= 0).to_numpy()
    gt_cat = t.gt["category_id"].to_numpy()
    n_gt = {c: int((gt_cat == c).sum()) for c in sorted(dataset.categories)}

    ap50 = matching.AP50(image, cat, score)

    def ap(keep=None, category=None, hits=tp, totals=n_gt) -> float:
        return ap50(hits, totals, keep, category)

    base = ap()
    delta = {}
    for name in ERROR_TYPES[:-1]:
        code = _CODE[name]
        keep = kind != code
        if name in ("class", "location"):      # the oracle fixes them, once per object
            fixed_cat, hits = cat.copy(), tp.copy()
            taken = np.zeros(len(gt_cat), bool)
            taken[target[tp]] = True
            for i in np.flatnonzero(kind == code)[np.argsort(-score[kind == code],
                                                             kind="stable")]:
                if not taken[target[i]]:
                    taken[target[i]] = keep[i] = hits[i] = True
                    fixed_cat[i] = gt_cat[target[i]]
            delta[name] = ap(keep, fixed_cat, hits) - base
        else:                                   # dropped
            delta[name] = ap(keep) - base
    missed = _missed(t)
    left = {c: n - int((gt_cat[missed] == c).sum()) for c, n in n_gt.items()}
    delta["missed"] = ap(totals=left) - base
    counts = {k: int((kind == _CODE[k]).sum()) for k in ERROR_TYPES[:-1]}
    counts["missed"] = int(missed.sum())
    return ErrorReport(base, delta, counts, t)
