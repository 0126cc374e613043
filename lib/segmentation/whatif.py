"""What-if for one prompted object: the mask from the same prompt on the clean and on a
corrupted image, their IoU, and the sweep of that IoU over every corruption and severity
(`lib.media.corruptions`, seeded: the same every time). The mask compared is the one the
segmenter ranks best on each image."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lib.core.progress import Callback, Ticker
from lib.media import corruptions, masks


def best_mask(seg, image: np.ndarray, points, box) -> np.ndarray:
    """The segmenter's best mask for the prompt on `image`."""
    result = seg.predict(image, points, box, multimask=True)
    return result.masks[result.best]


@dataclass(frozen=True)
class Sweep:
    """Mask IoU against the clean mask, per (corruption, severity)."""

    names: tuple[str, ...]
    severities: tuple[int, ...]
    iou: np.ndarray                # (corruptions, severities)

    @property
    def mean(self) -> float:
        return float(self.iou.mean())


def sweep(seg, image: np.ndarray, points, box, names=None, severities=None, seed: int = 0,
          progress: Callback | None = None) -> Sweep:
    """The same prompt on the image under each corruption × severity (default 19 × 5)."""
    chosen = corruptions.conditions(names, severities)
    names = tuple(dict.fromkeys(n for n, _ in chosen))
    sevs = tuple(dict.fromkeys(s for _, s in chosen))
    clean = best_mask(seg, image, points, box)
    out = np.zeros((len(names), len(sevs)))
    tick = Ticker(len(chosen), progress)
    for k, (n, s) in enumerate(chosen):
        altered = corruptions.corrupt(image, n, s, seed)
        out[names.index(n), sevs.index(s)] = masks.iou(clean, best_mask(seg, altered, points,
                                                                          box))
        tick(k + 1)
    return Sweep(names, sevs, out)
