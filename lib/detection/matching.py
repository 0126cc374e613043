"""The analyses' matching, made once: one table of every detection of a model on a dataset.
(COCO's own matching, per area range at ten IoUs, is the other one a report makes: the 12
numbers, PR curves, intervals and slices come from it, `lib.detection.metrics`.)

`match(dataset, dets)` walks the images once. Per image it computes the IoU matrix and, greedily
by score as COCO does, matches each detection to a ground-truth box of its class at IoU 0.5
(`gt`), and to one of any class (`agnostic_gt`, for the confusion matrix); it also keeps the
best IoU with boxes of the same and of other classes, from which the TIDE-style error kind of
every detection follows without another pass. Every analysis the detection page shows
(confusion, per-image counts, IoUs, F1, TIDE) is then a vectorised query of this table: a score
threshold is a filter, not a new evaluation. (Greedy matching by score means a detection's
match depends only on higher-scoring detections, so the matches of the detections above a
threshold are exactly the full table's.)

Ground truth: non-crowd boxes only (crowd regions are COCO's "ignore" areas).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from lib.detection.datasets import CocoDataset
from lib.detection.detections import Detections

T_FG, T_BG = 0.5, 0.1          # TIDE's foreground and background IoU thresholds
KINDS = ["TP", "duplicate", "class", "location", "both", "background"]


@dataclass
class MatchTable:
    """Every detection (rows of `det`) and every non-crowd ground truth (rows of `gt`)."""

    det: pd.DataFrame   # image_id, index (in its image's Detections), category_id, score,
    #                     gt, iou (class-aware match), agnostic_gt, same_iou, other_iou,
    #                     any_iou, kind (TIDE), target (ground truth the kind refers to)
    gt: pd.DataFrame    # image_id, index (in the image's non-crowd annotations), category_id
    image_ids: list[int]
    files: dict[int, str]

    # -- views at a score threshold (filters of the table) ----------------------------------
    def above(self, score_thr: float) -> pd.DataFrame:
        return self.det[self.det["score"] >= score_thr]

    def per_image_counts(self, score_thr: float = 0.5) -> pd.DataFrame:
        """TP, FP, FN per image (class-aware, detections at or above `score_thr`)."""
        d = self.above(score_thr)
        ids = pd.Index(self.image_ids, name="image_id")
        tp = (d["gt"] >= 0).groupby(d["image_id"]).sum().reindex(ids, fill_value=0)
        n = d.groupby("image_id").size().reindex(ids, fill_value=0)
        n_gt = self.gt.groupby("image_id").size().reindex(ids, fill_value=0)
        out = pd.DataFrame({"image_id": ids, "file": [self.files[i] for i in ids],
                            "TP": tp.to_numpy(int), "FP": (n - tp).to_numpy(int),
                            "FN": (n_gt - tp).to_numpy(int)})
        return out.reset_index(drop=True)

    def matched_ious(self, score_thr: float = 0.0) -> np.ndarray:
        d = self.above(score_thr)
        return d.loc[d["gt"] >= 0, "iou"].to_numpy(np.float32)

    def _cells(self, categories: dict[int, str], score_thr: float):
        """The confusion cell of every detection above the threshold (row: the true class of
        the box it matches regardless of class, else background; column: its class) and of
        every object none of them matches (column: background)."""
        cats = sorted(categories)
        index = pd.Series(np.arange(len(cats)), index=cats)
        bg = len(cats)
        d = self.above(score_thr)
        gt_cat = self.gt["category_id"].to_numpy()
        matched = d["agnostic_gt"].to_numpy()
        rows = np.where(matched >= 0, index.reindex(gt_cat[np.maximum(matched, 0)])
                        .fillna(bg).to_numpy(int), bg)
        cols = index.reindex(d["category_id"].to_numpy()).fillna(bg).to_numpy(int)
        found = np.zeros(len(self.gt), bool)
        found[matched[matched >= 0]] = True
        missed = index.reindex(gt_cat[~found]).to_numpy(int)
        return (rows, cols, d["image_id"].to_numpy(), missed,
                self.gt["image_id"].to_numpy()[~found], bg)

    def confusion(self, categories: dict[int, str], score_thr: float = 0.5
                  ) -> tuple[np.ndarray, list[str]]:
        """Rows: true class + background; columns: predicted class + background (matching
        by IoU regardless of class)."""
        rows, cols, _, missed, _, bg = self._cells(categories, score_thr)
        m = np.zeros((bg + 1, bg + 1), np.int64)
        np.add.at(m, (rows, cols), 1)
        np.add.at(m, (missed, np.full(len(missed), bg)), 1)
        return m, [categories[c] for c in sorted(categories)] + ["background"]

    def cell_images(self, categories: dict[int, str], score_thr: float, row: int,
                    col: int) -> list[int]:
        """The images behind one confusion cell (indices as in `confusion`), most of the
        cell's detections or missed objects first."""
        rows, cols, det_images, missed, missed_images, bg = self._cells(categories, score_thr)
        ids = det_images[(rows == row) & (cols == col)]
        if col == bg:
            ids = np.concatenate([ids, missed_images[missed == row]])
        counts = pd.Series(ids).value_counts(sort=False)
        return counts.sort_values(ascending=False, kind="stable").index.astype(int).tolist()

    def f1_vs_confidence(self) -> pd.DataFrame:
        """Precision, recall and F1 at every score threshold (class-aware)."""
        if not len(self.det):
            return pd.DataFrame(columns=["threshold", "precision", "recall", "F1"])
        order = np.argsort(-self.det["score"].to_numpy(), kind="stable")
        s = self.det["score"].to_numpy()[order]
        tp = np.cumsum((self.det["gt"].to_numpy() >= 0)[order])
        precision = tp / np.arange(1, len(s) + 1)
        recall = tp / max(len(self.gt), 1)
        f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-9)
        return pd.DataFrame({"threshold": s, "precision": precision, "recall": recall,
                             "F1": f1})


def _pair_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes a[i] and b[i] (both (P, 4) xyxy)."""
    lt = np.maximum(a[:, :2], b[:, :2])
    rb = np.minimum(a[:, 2:], b[:, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area_a = (a[:, 2:] - a[:, :2]).clip(0).prod(-1)
    area_b = (b[:, 2:] - b[:, :2]).clip(0).prod(-1)
    return inter / np.maximum(area_a + area_b - inter, 1e-9)


def _segment_best(values: np.ndarray, starts: np.ndarray, counts: np.ndarray,
                  within: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per segment (a detection's pairs): the largest value and its first position."""
    n = len(counts)
    best, arg = np.full(n, -1.0, np.float32), np.zeros(n, np.int64)
    has = counts > 0
    if not has.any():
        return best, arg
    best[has] = np.maximum.reduceat(values, starts[has])
    at_best = values == np.repeat(best, counts)
    big = np.iinfo(np.int64).max
    arg[has] = np.minimum.reduceat(np.where(at_best, within, big), starts[has])
    return best, arg


def match(dataset: CocoDataset, dets: dict[int, Detections], chunk: int = 8192) -> MatchTable:
    """The match table of one model's detections on a dataset.

    Every (detection, ground truth of the same image) pair is scored at once; best IoUs per
    class relation and TIDE kinds follow with segment reductions, and only detections that
    overlap a box at IoU 0.5 go through the greedy loop, image by image in score order.
    """
    image_ids = dataset.image_ids
    gts = [dataset.gt_boxes(i) for i in image_ids]
    n_gt = np.array([len(b) for b, _ in gts], np.int64)
    offset = np.r_[0, np.cumsum(n_gt)[:-1]].astype(np.int64)
    gt_box = np.concatenate([b for b, _ in gts]) if gts else np.zeros((0, 4), np.float32)
    gt_cls = np.concatenate([c for _, c in gts]) if gts else np.zeros(0, np.int64)
    kept = [(k, dets[i]) for k, i in enumerate(image_ids) if i in dets and len(dets[i])]
    if kept:
        img = np.concatenate([np.full(len(d), k, np.int64) for k, d in kept])
        index = np.concatenate([np.arange(len(d)) for _, d in kept])
        xyxy = np.concatenate([d.xyxy for _, d in kept])
        score = np.concatenate([d.scores for _, d in kept])
        cls = np.concatenate([d.class_ids for _, d in kept])
    else:
        img = index = cls = np.zeros(0, np.int64)
        xyxy, score = np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
    n = len(score)
    counts = n_gt[img] if n else np.zeros(0, np.int64)
    cols = {f"{name}_iou": np.full(n, -1.0, np.float32) for name in ("same", "other", "any")}
    args = {name: np.zeros(n, np.int64) for name in ("same", "other", "any")}
    hot_parts = []
    for lo in range(0, n, chunk):   # in chunks that stay in the CPU's cache
        hi = min(n, lo + chunk)
        # every (detection, ground truth of its image) pair, grouped by detection
        c = counts[lo:hi]
        starts = np.r_[0, np.cumsum(c)[:-1]].astype(np.int64)
        pair_det = np.repeat(np.arange(lo, hi), c)
        within = np.arange(len(pair_det)) - np.repeat(starts, c)
        pair_gt = offset[img[pair_det]] + within
        ious = _pair_iou(xyxy[pair_det], gt_box[pair_gt]).astype(np.float32)
        same = cls[pair_det] == gt_cls[pair_gt]
        for name, sel in (("same", same), ("other", ~same), ("any", None)):
            values = ious if sel is None else np.where(sel, ious, np.float32(-1.0))
            cols[f"{name}_iou"][lo:hi], args[name][lo:hi] = _segment_best(values, starts, c,
                                                                          within)
        hot = np.flatnonzero(ious >= T_FG)
        hot_parts.append((pair_det[hot], within[hot], ious[hot], same[hot]))
    # greedy matching by score (COCO's), only where some pair reaches IoU 0.5
    gt_local, agn_local = np.full(n, -1, np.int64), np.full(n, -1, np.int64)
    iou = np.zeros(n, np.float32)
    if hot_parts and sum(len(h[0]) for h in hot_parts):
        p_det, p_gt, p_iou, p_same = (np.concatenate([h[i] for h in hot_parts])
                                      for i in range(4))
        # pairs per image, detections by score, each detection's pairs by IoU (best first)
        order = np.lexsort((p_gt, -p_iou, p_det, -score[p_det], img[p_det]))
        taken_same: set[tuple[int, int]] = set()
        taken_any: set[tuple[int, int]] = set()
        current, found_same, found_any = -1, False, False
        for d, k, g, v, sm in zip(p_det[order].tolist(), img[p_det[order]].tolist(),
                                  p_gt[order].tolist(), p_iou[order].tolist(),
                                  p_same[order].tolist()):
            if d != current:
                current, found_same, found_any = d, False, False
            if not found_same and sm and (k, g) not in taken_same:
                taken_same.add((k, g))
                gt_local[d], iou[d], found_same = g, v, True
            if not found_any and (k, g) not in taken_any:
                taken_any.add((k, g))
                agn_local[d], found_any = g, True
    # TIDE kinds, in TIDE's order of precedence
    kind = np.full(n, 5, np.int8)                                            # background
    kind[cols["any_iou"] >= T_BG] = 4                                        # both
    kind[cols["same_iou"] >= T_BG] = 3                                       # location
    kind[cols["other_iou"] >= T_FG] = 2                                      # class
    kind[cols["same_iou"] >= T_FG] = 1                                       # duplicate
    kind[gt_local >= 0] = 0                                                  # TP
    target = np.full(n, -1, np.int64)   # the ground truth each kind refers to
    for code, source in ((0, gt_local), (1, args["same"]), (2, args["other"]),
                         (3, args["same"]), (4, args["any"])):
        target[kind == code] = source[kind == code]
    base = offset[img] if n else np.zeros(0, np.int64)

    def to_global(a):               # an image's local indices to the table's, -1 kept
        return np.where(a >= 0, a + base, -1)
    ids = np.asarray(image_ids, np.int64)
    det = pd.DataFrame({"image_id": ids[img], "index": index, "category_id": cls,
                        "score": score, "gt": to_global(gt_local), "iou": iou,
                        "agnostic_gt": to_global(agn_local), **cols, "kind": kind,
                        "target": to_global(target)})
    gt = pd.DataFrame({"image_id": np.repeat(ids, n_gt),
                       "index": np.arange(len(gt_cls)) - np.repeat(offset, n_gt),
                       "category_id": gt_cls})
    files = {im["id"]: im["file_name"] for im in dataset.data["images"]}
    return MatchTable(det, gt, image_ids, files)


class AP50:
    """COCO's AP at IoU 0.5 (all areas, the 100 best detections per image and class, 101-point
    interpolated precision, mean over classes with ground truth) from per-detection
    true-positive flags, for a table and variants of it: sorted once, each call is then one
    pass per class. Variants that drop detections keep the base's 100-per-image cut."""

    def __init__(self, image_id: np.ndarray, category_id: np.ndarray, score: np.ndarray,
                 max_dets: int = 100):
        self.category_id, self.score = category_id, score
        self.top = np.ones(len(score), bool)
        classes = np.unique(category_id)
        _, image_pos = np.unique(image_id, return_inverse=True)
        group = image_pos * len(classes) + np.searchsorted(classes, category_id)
        if len(score) and np.bincount(group).max() > max_dets:   # else nothing to cut
            order = np.lexsort((-score, category_id, image_id))
            img, cat = image_id[order], category_id[order]
            start = np.r_[True, (img[1:] != img[:-1]) | (cat[1:] != cat[:-1])]
            group_start = np.maximum.accumulate(np.where(start, np.arange(len(order)), 0))
            self.top[order[np.arange(len(order)) - group_start >= max_dets]] = False
        # COCO's order: by class, highest score first; ties keep image then detection order
        self.order = np.lexsort((-score, category_id))

    def __call__(self, hits: np.ndarray, totals: dict[int, int],
                 keep: np.ndarray | None = None, category_id: np.ndarray | None = None
                 ) -> float:
        mask = self.top if keep is None else self.top & keep
        if category_id is None:
            order = self.order[mask[self.order]]
            category_id = self.category_id
        else:                                         # classes changed: sort again
            order = np.flatnonzero(mask)
            order = order[np.lexsort((-self.score[order], category_id[order]))]
        cats, found_all = category_id[order], hits[order]
        classes = sorted(totals)
        bounds = np.searchsorted(cats, classes, side="left")
        ends = np.searchsorted(cats, classes, side="right")
        recall_points = np.linspace(0, 1, 101)
        aps = []
        for cat, lo, hi in zip(classes, bounds, ends):
            total = totals[cat]
            if total <= 0:
                continue
            found = np.cumsum(found_all[lo:hi])
            if not len(found):
                aps.append(0.0)
                continue
            precision = found / np.arange(1, len(found) + 1)
            envelope = np.maximum.accumulate(precision[::-1])[::-1]
            idx = np.searchsorted(found / total, recall_points, side="left")
            aps.append(float(np.where(idx < len(envelope),
                                      envelope[np.minimum(idx, len(envelope) - 1)], 0.0).mean()))
        return float(np.mean(aps)) if aps else 0.0


def ap50(image_id: np.ndarray, category_id: np.ndarray, score: np.ndarray, tp: np.ndarray,
         n_gt: dict[int, int], max_dets: int = 100) -> float:
    """COCO's AP at IoU 0.5 of one set of detections (see `AP50`)."""
    return AP50(image_id, category_id, score, max_dets)(tp, n_gt)
