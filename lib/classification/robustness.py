"""Classification robustness over a labelled folder: ImageNet-C's corruption error (Hendrycks &
Dietterich 2019).

Every image under each corruption at each severity (made on the fly, seeded by its position
in the folder's sorted list, never written) through the model: top-1 error per corruption
and severity, and the flip rate (how often the top-1 class differs from the clean image's).
Against a baseline model the user picks (ImageNet-C normalises by AlexNet; here any listed
model), per corruption c:

    CE_c = Σ_s E_{s,c} / Σ_s E^base_{s,c}
    relative CE_c = Σ_s (E_{s,c} − E_clean) / Σ_s (E^base_{s,c} − E^base_clean)

and mCE, relative mCE are their means over the corruptions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from lib.classification.classify import match_classes, probabilities, to_tensor
from lib.core.errors import InputError
from lib.core.progress import Callback, Ticker
from lib.media import corruptions
from lib.media.images import ImageError, load_image
from lib.models.registry import LoadedModel

BATCH = 16
BENCHMARK = corruptions.PROTOCOL[:15]


@dataclass(frozen=True)
class FolderRobustness:
    """One model on one labelled folder under corruptions."""

    model: str
    images: int
    clean_error: float
    errors: pd.DataFrame           # corruption, severity, error, flip rate
    skipped: tuple[tuple[str, str], ...] = ()

    @property
    def flip_rate(self) -> float:
        return float(self.errors["flip rate"].mean())

    def table(self) -> pd.DataFrame:
        """Top-1 error as corruption × severity."""
        return self.errors.pivot(index="corruption", columns="severity", values="error")


def evaluate(lm: LoadedModel, items: list[tuple[Path, str]], names=None, severities=None,
             progress: Callback | None = None) -> FolderRobustness:
    """Top-1 error and flip rate of the model on `items` (path, class) under each corruption
    (default ImageNet-C's 15) and severity (default 1-5); `progress` counts images."""
    chosen = corruptions.conditions(names, severities, default=BENCHMARK)
    classes = sorted({c for _, c in items})
    mapping = match_classes(classes, lm.labels)
    good, truth, skipped = [], [], []
    for path, cls in items:
        try:
            good.append(np.asarray(load_image(path).image))
            truth.append(mapping[cls])
        except ImageError as exc:
            skipped.append((str(path), str(exc)))
    if not good:
        raise InputError("No readable images in the folder.", "Check the folder's files.")
    truth_arr = np.asarray(truth)
    tick = Ticker(len(good) * (len(chosen) + 1), progress)
    done = 0

    def top1(pictures: list[np.ndarray]) -> np.ndarray:
        nonlocal done
        out = []
        for lo in range(0, len(pictures), BATCH):
            batch = [Image.fromarray(p) for p in pictures[lo:lo + BATCH]]
            out.append(np.argmax(probabilities(lm, to_tensor(lm, batch)), 1))
            done += len(batch)
            tick(done)
        return np.concatenate(out)

    clean = top1(good)
    rows = []
    for name, severity in chosen:
        pred = top1([corruptions.corrupt(p, name, severity, seed=k) for k, p in enumerate(good)])
        rows.append({"corruption": name, "severity": severity,
                     "error": float(np.mean(pred != truth_arr)),
                     "flip rate": float(np.mean(pred != clean))})
    return FolderRobustness(lm.spec.name, len(good), float(np.mean(clean != truth_arr)),
                            pd.DataFrame(rows), tuple(skipped))


@dataclass(frozen=True)
class CorruptionError:
    """A model's corruption errors against a baseline's on the same folder and corruptions."""

    per_corruption: pd.DataFrame   # corruption, CE, relative CE
    mce: float
    relative_mce: float


def corruption_error(model: FolderRobustness, baseline: FolderRobustness) -> CorruptionError:
    """CE and relative CE per corruption, and their means (see the module docstring); NaN
    where the baseline makes no error (or no more than on clean images) to divide by."""
    a = model.errors.set_index(["corruption", "severity"])["error"]
    b = baseline.errors.set_index(["corruption", "severity"])["error"]
    if set(a.index) != set(b.index):
        raise InputError("The model and the baseline were run under different corruptions.",
                         "Run both with the same corruptions and severities.")
    rows = []
    for name in dict.fromkeys(model.errors["corruption"]):
        ea, eb = a.loc[name], b.loc[name]
        rows.append({"corruption": name,
                     "CE": ea.sum() / eb.sum() if eb.sum() > 0 else float("nan"),
                     "relative CE": ((ea - model.clean_error).sum()
                                     / (eb - baseline.clean_error).sum())
                     if (eb - baseline.clean_error).sum() > 0 else float("nan")})
    frame = pd.DataFrame(rows)
    return CorruptionError(frame, float(frame["CE"].mean()), float(frame["relative CE"].mean()))
