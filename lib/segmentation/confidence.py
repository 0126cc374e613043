"""How far to trust a segmenter's mask: its predicted IoU calibrated on held-out masks
(`IouCalibration`, a manifest's `iou_calibration`), whether an image looks like anything it
was trained on (`FeatureStats`, a manifest's `familiar`), and the words the page shows beside
a mask (`confidence`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class IouCalibration:
    """A monotone map from a model's predicted IoU to the IoU measured on held-out masks
    (the points of an isotonic fit, as a manifest stores them)."""

    predicted: tuple[float, ...]
    measured: tuple[float, ...]

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        return np.interp(scores, self.predicted, self.measured).astype(np.float32)

    @classmethod
    def from_manifest(cls, value: Any) -> IouCalibration | None:
        """The manifest's `iou_calibration` ({"predicted": [...], "measured": [...]},
        increasing, in [0, 1]), or None when absent or malformed (a manifest is input)."""
        if not isinstance(value, dict):
            return None
        try:
            xs = tuple(float(v) for v in value["predicted"])
            ys = tuple(float(v) for v in value["measured"])
        except (KeyError, TypeError, ValueError):
            return None
        ok = (2 <= len(xs) == len(ys) <= 1000 and all(map(math.isfinite, xs + ys))
              and all(0 <= v <= 1 for v in xs + ys)
              and all(a < b for a, b in zip(xs, xs[1:]))
              and all(a <= b for a, b in zip(ys, ys[1:])))
        return cls(xs, ys) if ok else None


@dataclass(frozen=True)
class FeatureStats:
    """The per-channel mean and spread of a model's pooled image embedding over its training
    images, and the largest distance any of them had: an image farther than that looks unlike
    anything it was trained on."""

    mean: np.ndarray
    std: np.ndarray
    limit: float

    def distance(self, pooled: np.ndarray) -> float:
        """Root-mean-square z-score of a pooled embedding."""
        return float(np.sqrt(np.mean(((pooled - self.mean) / self.std) ** 2)))

    def as_manifest(self) -> dict:
        return {"mean": [round(float(v), 5) for v in self.mean],
                "std": [round(float(v), 5) for v in self.std], "limit": round(self.limit, 4)}

    @classmethod
    def from_manifest(cls, value: Any) -> FeatureStats | None:
        """The manifest's `familiar`, or None when absent or malformed."""
        if not isinstance(value, dict):
            return None
        try:
            mean = np.asarray(value["mean"], float)
            std = np.asarray(value["std"], float)
            limit = float(value["limit"])
        except (KeyError, TypeError, ValueError):
            return None
        ok = (mean.ndim == 1 and mean.shape == std.shape and 0 < len(mean) <= 4096
              and np.isfinite(mean).all() and np.isfinite(std).all() and (std > 0).all()
              and math.isfinite(limit) and limit > 0)
        return cls(mean, std, limit) if ok else None


#: below this (calibrated) predicted IoU the page calls a mask unsure and suggests a click
UNSURE_IOU = 0.6


@dataclass(frozen=True)
class Confidence:
    """How sure a shown mask is, in words the page shows beside it."""

    score: float                 # predicted IoU (NaN: the model predicts none)
    calibrated: bool             # mapped to IoU measured on held-out masks
    unsure: bool

    @property
    def text(self) -> str:
        if math.isnan(self.score):
            return "no predicted IoU (a classical method)"
        what = "calibrated predicted IoU" if self.calibrated else "predicted IoU (uncalibrated)"
        return f"{what} {self.score:.2f}"


def confidence(segmenter, result, choice: int) -> Confidence:
    """How sure the shown candidate `choice` of a `segment.MaskResult` is."""
    score = float(result.scores[min(choice, len(result.scores) - 1)])
    return Confidence(score, segmenter.calibration is not None,
                      not math.isnan(score) and score < UNSURE_IOU)
