"""What-if for one image: the prediction under a corruption or an edit, and the sweep.

`sweep` runs the image under every corruption and severity asked for (19 × 5 by default,
`lib.media.corruptions`), in batches, and keeps the original top class's probability and
the top-1 class of each; `Sweep.flip_points()` is, per corruption, the smallest severity at
which top-1 changes (None: it never does). Corruptions are seeded, so a sweep is the same
every time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from PIL import Image

from lib.classification.classify import probabilities, to_tensor
from lib.core.progress import Callback, Ticker
from lib.media import corruptions
from lib.models.registry import LoadedModel

BATCH = 16


@dataclass(frozen=True)
class Sweep:
    """One image under each corruption and severity: the clean top-1 class's probability
    and the top-1 class, per (corruption, severity)."""

    clean_index: int
    clean_label: str
    clean_probability: float
    names: tuple[str, ...]
    severities: tuple[int, ...]
    probability: np.ndarray        # (corruptions, severities): P(clean top-1 class)
    top1: np.ndarray               # (corruptions, severities): top-1 class index
    labels: tuple[str, ...]        # the model's class names

    def flip_points(self) -> dict[str, int | None]:
        """Per corruption, the smallest severity whose top-1 differs from the clean one."""
        out: dict[str, int | None] = {}
        for r, name in enumerate(self.names):
            flipped = np.flatnonzero(self.top1[r] != self.clean_index)
            out[name] = int(self.severities[flipped[0]]) if len(flipped) else None
        return out

    @property
    def flip_rate(self) -> float:
        """The share of (corruption, severity) pairs whose top-1 differs from the clean one."""
        return float(np.mean(self.top1 != self.clean_index))

    def frame(self) -> pd.DataFrame:
        """One row per (corruption, severity): probability, top-1 label, flipped."""
        rows = [{"corruption": n, "severity": s, "probability": float(self.probability[r, c]),
                 "top-1": self.labels[int(self.top1[r, c])],
                 "flipped": bool(self.top1[r, c] != self.clean_index)}
                for r, n in enumerate(self.names) for c, s in enumerate(self.severities)]
        return pd.DataFrame(rows)


def sweep(lm: LoadedModel, image, names: tuple[str, ...] | list[str] | None = None,
          severities: tuple[int, ...] | str | None = None, seed: int = 0,
          progress: Callback | None = None) -> Sweep:
    """The image under each corruption × severity (default all 19 × 5), classified in
    batches (`progress` counts images)."""
    chosen = corruptions.conditions(names, severities)
    names = tuple(dict.fromkeys(n for n, _ in chosen))
    sevs = tuple(dict.fromkeys(s for _, s in chosen))
    rgb = np.asarray(image.convert("RGB") if hasattr(image, "convert") else image, np.uint8)
    clean = probabilities(lm, to_tensor(lm, Image.fromarray(rgb)))[0]
    target = int(np.argmax(clean))
    prob = np.zeros((len(names), len(sevs)))
    top1 = np.zeros((len(names), len(sevs)), np.int64)
    tick = Ticker(len(chosen), progress)
    for lo in range(0, len(chosen), BATCH):
        part = chosen[lo:lo + BATCH]
        batch = [Image.fromarray(corruptions.corrupt(rgb, n, s, seed)) for n, s in part]
        probs = probabilities(lm, to_tensor(lm, batch))
        for (n, s), row in zip(part, probs):
            r, c = names.index(n), sevs.index(s)
            prob[r, c], top1[r, c] = row[target], int(np.argmax(row))
        tick(lo + len(part))
    return Sweep(target, lm.labels[target], float(clean[target]), names, sevs, prob, top1,
                 tuple(lm.labels))
