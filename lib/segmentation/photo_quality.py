"""How well a segmenter segments objects whose true masks are known, prompted as a user
prompts (through `Segmenter.predict`, as the page calls it: several candidates, the one with
the highest predicted IoU shown):

- **box**: the object's true box;
- **1 click**: one positive click at the point farthest from the object's edge;
- **3 clicks**: that click and two corrections, each at the point farthest from the edge of
  the larger error region of the mask shown (positive where the mask missed the object,
  negative where it spilled), the standard interactive-segmentation protocol;
- **IoU ECE**: expected calibration error of the shown mask's predicted IoU against its true
  IoU, over every prediction above (10 equal-width bins).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from lib.core.progress import Callback, Ticker
from lib.media import masks as mask_ops

CLICKS = 3
ECE_BINS = 10


@dataclass
class PhotoFigures:
    """Mean IoU per prompt kind, and the (predicted, true) IoU of every shown mask."""

    box: list[float] = field(default_factory=list)
    click: list[float] = field(default_factory=list)
    clicks: list[float] = field(default_factory=list)
    predicted: list[float] = field(default_factory=list)
    measured: list[float] = field(default_factory=list)

    @property
    def objects(self) -> int:
        return len(self.box)

    @property
    def box_miou(self) -> float:
        return _mean(self.box)

    @property
    def click_miou(self) -> float:
        return _mean(self.click)

    @property
    def clicks_miou(self) -> float:
        return _mean(self.clicks)

    @property
    def ece(self) -> float:
        return expected_calibration_error(self.predicted, self.measured)

    def as_dict(self) -> dict:
        return {"objects": self.objects, "box_miou": self.box_miou,
                "click_miou": self.click_miou, f"clicks{CLICKS}_miou": self.clicks_miou,
                "iou_ece": self.ece}


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def expected_calibration_error(predicted, measured, bins: int = ECE_BINS) -> float:
    """Σ_b (n_b / N) |mean predicted IoU - mean true IoU| over equal-width bins of the
    predicted IoU (clipped to [0, 1])."""
    p = np.clip(np.asarray(predicted, float), 0, 1)
    t = np.asarray(measured, float)
    ok = np.isfinite(p) & np.isfinite(t)
    p, t = p[ok], t[ok]
    if not len(p):
        return float("nan")
    which = np.minimum((p * bins).astype(int), bins - 1)
    return float(sum(abs(p[which == b].mean() - t[which == b].mean()) * (which == b).sum()
                     for b in range(bins) if (which == b).any()) / len(p))


def correction_click(shown: np.ndarray, truth: np.ndarray) -> tuple[float, float, int]:
    """The next click a user makes: inside the larger error region, at its point farthest
    from the region's edge; positive where the mask missed the object, negative where it
    spilled onto the background."""
    import cv2  # heavy: imported on first use
    best = None
    for region, label in ((truth & ~shown, 1), (shown & ~truth, 0)):
        if not region.any():
            continue
        dist = cv2.distanceTransform(np.pad(region, 1).astype(np.uint8), cv2.DIST_L2, 5)
        d = float(dist.max())
        if best is None or d > best[0]:
            x, y = mask_ops.interior_point(region)
            best = (d, (x, y, label))
    return best[1] if best else (*mask_ops.interior_point(truth), 1)


def measure(segmenter, objects: Iterable[tuple[np.ndarray, np.ndarray]], total: int,
            clicks: int = CLICKS, progress: Callback | None = None) -> PhotoFigures:
    """The figures over `objects`, each (RGB image, true mask), prompted as the module
    docstring says."""
    out = PhotoFigures()
    tick = Ticker(total, progress)
    for n, (image, truth) in enumerate(objects, 1):
        x0, y0, x1, y1 = mask_ops.bbox(truth)
        res = segmenter.predict(image, box=(x0, y0, x1, y1))
        _shown(out, out.box, res, truth)
        points = [(*mask_ops.interior_point(truth), 1)]
        res = segmenter.predict(image, points=points)
        shown = _shown(out, out.click, res, truth)
        for _ in range(clicks - 1):
            points.append(correction_click(shown, truth))
            res = segmenter.predict(image, points=points)
            shown = res.masks[res.best]
        _shown(out, out.clicks, res, truth)
        tick(n)
    return out


def _shown(out: PhotoFigures, into: list, res, truth) -> np.ndarray:
    shown = res.masks[res.best]
    into.append(iou(shown, truth))
    out.predicted.append(float(res.scores[res.best]))
    out.measured.append(into[-1])
    return shown
