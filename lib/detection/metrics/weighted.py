"""COCO's evaluation under image weights: the accumulate recomputed for any weighting of the
images from the matching kept per detection (`coco_matching`), without matching
again.

`coco_matching.coco_matches(dataset, dets)` applies COCO's matching rules once, at the ten
IoU thresholds, and keeps two bits per detection and threshold: matched, ignored. Everything
else in COCO's `accumulate` (one ranking per class, precision envelope, 101 recall points)
depends on the images only through how often each is counted, so `weighted` computes COCO's
numbers for a whole block of image-weight vectors in one compiled pass. With every weight one
they are faster-coco-eval's numbers (tested to 1e-12). `lib.detection.intervals` (bootstrap)
and `lib.detection.slices` are built on it; `lib.detection.metrics.coco` accumulates the
same matching unweighted for the report's numbers and curves.
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from lib.core.compiled import njit
from lib.detection.metrics.coco_matching import RECALL_POINTS, CocoMatches

BLOCK = 16     # weightings computed together: one pass over the detections serves them all


@njit(cache=True, nogil=True)
def _accumulate(wt, det_image, tp, ign, class_start, last_tp, gt_image, gt_class, fp_scale,
                classes, recall_points, max_tp, ap, ap50, ap75, rec):
    """COCO's accumulate for each column of `wt` (n_images, B: image weights): per class, AP
    averaged over the thresholds, AP at 0.5 and 0.75, recall averaged over the thresholds
    (NaN for a class with no counted ground truth). Only true positives are kept as points:
    COCO's interpolated precision at a recall point is the highest precision at or after the
    first position reaching it, and precision only rises at a true positive. Weightings go
    BLOCK at a time through each class's detections (a detection that is a false positive at
    every threshold only adds its weights to one sum per weighting). Only `classes` are
    computed."""
    B, K, T, R = wt.shape[1], class_start.shape[0] - 1, 10, recall_points.shape[0]
    P = BLOCK
    eps = np.spacing(1.0)
    rbuf = np.zeros((P, T, max(max_tp, 1)))
    pbuf = np.zeros((P, T, max(max_tp, 1)))
    npig = np.zeros((P, K))
    tpc = np.zeros((P, T))
    fpc = np.zeros((P, T))           # false positives at some thresholds only
    fp_all = np.zeros(P)             # false positives at every threshold: one sum
    cnt = np.zeros((P, T), np.int64)
    for b0 in range(0, B, P):
        pn = min(P, B - b0)
        npig[:] = 0.0
        for i in range(gt_image.shape[0]):
            for p in range(pn):
                npig[p, gt_class[i]] += wt[gt_image[i], b0 + p]
        for k in classes:
            tpc[:] = 0.0
            fpc[:] = 0.0
            fp_all[:] = 0.0
            cnt[:] = 0
            fs = fp_scale[k]
            for j in range(class_start[k], last_tp[k]):   # later ones move no point
                img, tb, ib = det_image[j], tp[j], ign[j]
                if tb == 0 and ib == 0:
                    for p in range(pn):
                        fp_all[p] += wt[img, b0 + p] * fs
                    continue
                for p in range(pn):
                    wj = wt[img, b0 + p]
                    if wj == 0 or npig[p, k] == 0:
                        continue
                    for t in range(T):
                        bit = 1 << t
                        if ib & bit:
                            continue
                        if tb & bit:
                            tpc[p, t] += wj
                            c = cnt[p, t]
                            rbuf[p, t, c] = tpc[p, t] / npig[p, k]
                            pbuf[p, t, c] = tpc[p, t] / ((fpc[p, t] + fp_all[p]) + tpc[p, t]
                                                         + eps)
                            cnt[p, t] = c + 1
                        else:
                            fpc[p, t] += wj * fs
            for p in range(pn):
                b = b0 + p
                if npig[p, k] == 0:
                    ap[b, k] = ap50[b, k] = ap75[b, k] = rec[b, k] = np.nan
                    continue
                ap_sum, rec_sum = 0.0, 0.0
                for t in range(T):
                    c = cnt[p, t]
                    for i in range(c - 2, -1, -1):
                        if pbuf[p, t, i] < pbuf[p, t, i + 1]:
                            pbuf[p, t, i] = pbuf[p, t, i + 1]
                    s, i = 0.0, 0
                    for r in range(R):
                        while i < c and rbuf[p, t, i] < recall_points[r]:
                            i += 1
                        if i < c:
                            s += pbuf[p, t, i]
                    a = s / R
                    ap_sum += a
                    rec_sum += tpc[p, t] / npig[p, k]
                    if t == 0:
                        ap50[b, k] = a
                    elif t == 5:
                        ap75[b, k] = a
                ap[b, k] = ap_sum / T
                rec[b, k] = rec_sum / T


@dataclass
class Weighted:
    """COCO's numbers under each of B image weightings: per class (B, K), NaN where a class has
    no counted ground truth."""

    ap: np.ndarray
    ap50: np.ndarray
    ap75: np.ndarray
    recall: np.ndarray

    def headline(self) -> dict[str, np.ndarray]:
        """AP, AP50, AP75, AR100 per weighting (means over the classes present, COCO's -1 as
        NaN when no class is)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)     # a resample without a class
            return {"AP": np.nanmean(self.ap, 1), "AP50": np.nanmean(self.ap50, 1),
                    "AP75": np.nanmean(self.ap75, 1), "AR100": np.nanmean(self.recall, 1)}


def weighted(m: CocoMatches, weights: np.ndarray, threads: int | None = None,
             classes: np.ndarray | None = None) -> Weighted:
    """COCO's per-class numbers for each row of `weights` (B, n_images): one compiled pass per
    row, rows split over threads (the kernel releases the GIL). `classes`: class positions to
    compute (a category group); the others are NaN."""
    weights = np.ascontiguousarray(weights, np.float64).reshape(-1, m.n_images)
    B, K = weights.shape[0], len(m.categories)
    out = [np.full((B, K), np.nan) for _ in range(4)]
    classes = np.arange(K, dtype=np.int64) if classes is None else np.asarray(classes, np.int64)
    threads = max(1, min(threads or os.cpu_count() or 1, 4, B))
    bounds = np.linspace(0, B, threads + 1).astype(int)
    max_tp = m.max_tp
    fp_scale = np.ones(K) if m.fp_scale is None else m.fp_scale
    last_tp = m.last_tp

    def part(lo, hi):
        _accumulate(np.ascontiguousarray(weights[lo:hi].T), m.det_image, m.tp, m.ignored,
                    m.class_start, last_tp, m.gt_image, m.gt_class, fp_scale, classes,
                    RECALL_POINTS, max_tp, *(o[lo:hi] for o in out))

    if threads == 1:
        part(0, B)
    else:
        with ThreadPoolExecutor(threads, thread_name_prefix="lens-bootstrap") as pool:
            list(pool.map(part, bounds[:-1], bounds[1:]))
    return Weighted(*out)


