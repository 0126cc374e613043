"""Calibration of detection confidence: of the detections scored about 0.8, are about 80%
right?

A detection is right when it matches a ground-truth box of its class at IoU 0.5 (the match
table's `gt`), so calibration is precision against confidence (Küppers et al., 2020,
"Multivariate Confidence Calibration for Object Detection"). Detections are put in equal-width
confidence bins; the detection expected calibration error is
D-ECE = Σ_bins |B|/N · |precision(B) − mean confidence(B)| (equal to netcal's `ECE(detection=
True)`, a test). Re-calibration fits a map of the scores on half of the images (a seeded
split) and is measured on the other half: temperature scaling (one factor on the score's
logit: scikit-learn's logistic regression without intercept; it keeps 0.5 at 0.5), logistic
(Platt) scaling (a factor and a shift) or isotonic regression (scikit-learn). Each keeps the
ranking of scores (isotonic may merge neighbours into ties), so AP does not change; what
changes is what a threshold means, so F1 at the page's threshold is shown before and after.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from lib.core.errors import InputError
from lib.detection.matching import MatchTable

METHODS = ("temperature", "logistic", "isotonic")


@dataclass
class Reliability:
    bins: pd.DataFrame      # low, high, detections, confidence, precision (NaN when empty)
    d_ece: float
    detections: int


def reliability(score: np.ndarray, hit: np.ndarray, bins: int = 10) -> Reliability:
    score = np.clip(np.asarray(score, np.float64), 0.0, 1.0)
    hit = np.asarray(hit, bool)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(score, edges[1:-1], right=False), 0, bins - 1)
    count = np.bincount(which, minlength=bins)
    conf = np.bincount(which, score, minlength=bins)
    right = np.bincount(which, hit.astype(np.float64), minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        conf, precision = conf / count, right / count
    table = pd.DataFrame({"low": edges[:-1], "high": edges[1:], "detections": count,
                          "confidence": conf, "precision": precision})
    n = max(int(count.sum()), 1)
    d_ece = float(np.nansum(count / n * np.abs(precision - conf)))
    return Reliability(table, d_ece, int(count.sum()))


def _logit(s: np.ndarray) -> np.ndarray:
    s = np.clip(s, 1e-6, 1 - 1e-6)
    return np.log(s / (1 - s))


def fit(method: str, score: np.ndarray, hit: np.ndarray):
    """A map of scores to calibrated confidences, fitted on (score, hit)."""
    if method not in METHODS:
        raise InputError(f"Unknown calibration method '{str(method)[:40]}'.",
                         f"Choose one of {', '.join(METHODS)}.")
    hit = np.asarray(hit, bool)
    if len(hit) < 2 or hit.all() or not hit.any():
        raise InputError("Calibration needs both right and wrong detections to fit on.",
                         "Use a dataset where the model makes some of each.")
    if method == "isotonic":
        from sklearn.isotonic import IsotonicRegression  # heavy: imported on first use
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        iso.fit(score, hit.astype(np.float64))
        return iso.predict
    from sklearn.linear_model import LogisticRegression  # heavy: imported on first use
    lr = LogisticRegression(fit_intercept=method == "logistic", C=1e6)
    lr.fit(_logit(np.asarray(score))[:, None], hit)
    factor = float(lr.coef_[0, 0])                 # 1 / temperature
    shift = float(lr.intercept_[0]) if method == "logistic" else 0.0
    return lambda s: 1.0 / (1.0 + np.exp(-(factor * _logit(np.asarray(s, np.float64)) + shift)))


@dataclass
class Recalibration:
    method: str
    before: Reliability          # on the held-out images, raw scores
    after: Reliability           # on the held-out images, calibrated scores
    threshold: float
    f1_before: float
    f1_after: float
    held_out_images: int


def _f1(score: np.ndarray, hit: np.ndarray, n_gt: int, threshold: float) -> float:
    keep = score >= threshold
    tp = int(hit[keep].sum())
    precision = tp / max(int(keep.sum()), 1)
    recall = tp / max(n_gt, 1)
    return 0.0 if tp == 0 else 2 * precision * recall / (precision + recall)


def recalibrate(table: MatchTable, method: str, threshold: float = 0.5, seed: int = 0,
                bins: int = 10) -> Recalibration:
    """Fit on a seeded half of the images, measure on the other half."""
    rng = np.random.default_rng(seed)
    images = np.asarray(table.image_ids)
    fit_half = set(rng.permutation(images)[: len(images) // 2].tolist())
    det = table.det
    in_fit = det["image_id"].isin(fit_half).to_numpy()
    score, hit = det["score"].to_numpy(np.float64), (det["gt"] >= 0).to_numpy()
    mapping = fit(method, score[in_fit], hit[in_fit])
    held_score, held_hit = score[~in_fit], hit[~in_fit]
    calibrated = np.asarray(mapping(held_score), np.float64)
    n_gt = int((~table.gt["image_id"].isin(fit_half)).sum())
    return Recalibration(method, reliability(held_score, held_hit, bins),
                         reliability(calibrated, held_hit, bins), threshold,
                         _f1(held_score, held_hit, n_gt, threshold),
                         _f1(calibrated, held_hit, n_gt, threshold),
                         len(images) - len(fit_half))


def of_table(table: MatchTable, bins: int = 10) -> Reliability:
    """The reliability of every detection of a model (raw scores)."""
    return reliability(table.det["score"].to_numpy(np.float64),
                       (table.det["gt"] >= 0).to_numpy(), bins)
