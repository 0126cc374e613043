"""What-if for one image on a detector: its detections on the clean and the corrupted image,
matched, and the sweep over every corruption and severity.

Two detections match when they name the same class and their boxes overlap at IoU ≥ 0.5;
the pairing maximises the total IoU (Hungarian, scipy's `linear_sum_assignment`, on
torchvision's `box_iou`). Matched ones are *kept* (and *moved* when their IoU is under 0.8),
clean ones left unmatched are *lost*, corrupted ones left unmatched are *gained*.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from PIL import Image

from lib.core.progress import Callback, Ticker
from lib.detection.detections import Detections
from lib.media import corruptions

MATCH_IOU = 0.5
MOVED_IOU = 0.8
BATCH = 4


@dataclass(frozen=True)
class Change:
    """Clean detections against altered ones: index pairs (clean, altered) and their IoU."""

    pairs: tuple[tuple[int, int], ...]
    ious: tuple[float, ...]
    lost: tuple[int, ...]          # clean detections with no match
    gained: tuple[int, ...]        # altered detections with no match

    @property
    def moved(self) -> tuple[int, ...]:
        """Clean detections matched to a box that moved (IoU under MOVED_IOU)."""
        return tuple(a for (a, _), iou in zip(self.pairs, self.ious) if iou < MOVED_IOU)

    def counts(self) -> dict[str, int]:
        return {"kept": len(self.pairs), "moved": len(self.moved), "lost": len(self.lost),
                "gained": len(self.gained)}


def compare(clean: Detections, altered: Detections) -> Change:
    """Match the altered image's detections to the clean one's (see the module docstring)."""
    import torch  # heavy: imported on first use
    from scipy.optimize import linear_sum_assignment  # heavy: imported on first use
    from torchvision.ops import box_iou  # heavy: imported on first use
    if len(clean) and len(altered):
        iou = box_iou(torch.from_numpy(clean.xyxy), torch.from_numpy(altered.xyxy)).numpy()
        iou[clean.class_ids[:, None] != altered.class_ids[None, :]] = 0.0
        rows, cols = linear_sum_assignment(-iou)
        good = iou[rows, cols] >= MATCH_IOU
        rows, cols = rows[good], cols[good]
    else:
        iou, rows, cols = np.zeros((len(clean), len(altered))), np.zeros(0, int), np.zeros(0, int)
    return Change(tuple(zip(rows.tolist(), cols.tolist())),
                  tuple(float(iou[r, c]) for r, c in zip(rows, cols)),
                  tuple(sorted(set(range(len(clean))) - set(rows.tolist()))),
                  tuple(sorted(set(range(len(altered))) - set(cols.tolist()))))


@dataclass(frozen=True)
class Pair:
    """One detector on one image, clean and altered: both images' detections, their change."""

    altered_image: Image.Image
    clean: Detections
    altered: Detections
    change: Change
    labels: dict[int, str]         # the detector's class names
    untrained: bool = False        # an untrained test model: a plumbing check, never real


def pair(detector, image, corruption: str | None, severity: int, threshold: float,
         seed: int = 0) -> Pair:
    """The image and its corrupted copy (`corruption` None: the image itself) through the
    detector in one batch, matched."""
    rgb = np.asarray(image.convert("RGB") if hasattr(image, "convert") else image, np.uint8)
    clean_image = Image.fromarray(rgb)
    altered_image = clean_image if not corruption else Image.fromarray(
        corruptions.corrupt(rgb, corruption, severity, seed))
    clean, altered = detector.predict([clean_image, altered_image], [0, 1],
                                      {i: i for i in detector.labels}, threshold)
    return Pair(altered_image, clean, altered, compare(clean, altered), dict(detector.labels),
                bool(getattr(detector, "untrained", False)))


@dataclass(frozen=True)
class Sweep:
    """How many of the clean detections each corruption and severity keeps."""

    clean: int
    names: tuple[str, ...]
    severities: tuple[int, ...]
    kept: np.ndarray               # (corruptions, severities)
    gained: np.ndarray

    @property
    def kept_share(self) -> np.ndarray:
        return self.kept / self.clean if self.clean else np.ones_like(self.kept, float)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame([{"corruption": n, "severity": s, "kept": int(self.kept[r, c]),
                              "of clean": self.clean, "gained": int(self.gained[r, c])}
                             for r, n in enumerate(self.names)
                             for c, s in enumerate(self.severities)])


def sweep(detector, image, label_map: dict, threshold: float,
          names: tuple[str, ...] | None = None, severities=None, seed: int = 0,
          progress: Callback | None = None) -> Sweep:
    """The image under each corruption × severity (default all 19 × 5) through the detector;
    per pair, how many clean detections are kept and how many new ones appear."""
    chosen = corruptions.conditions(names, severities)
    names = tuple(dict.fromkeys(n for n, _ in chosen))
    sevs = tuple(dict.fromkeys(s for _, s in chosen))
    rgb = np.asarray(image.convert("RGB") if hasattr(image, "convert") else image, np.uint8)
    clean = detector.predict([Image.fromarray(rgb)], [0], label_map, threshold)[0]
    kept = np.zeros((len(names), len(sevs)), np.int64)
    gained = np.zeros_like(kept)
    tick = Ticker(len(chosen), progress)
    for lo in range(0, len(chosen), BATCH):
        part = chosen[lo:lo + BATCH]
        batch = [Image.fromarray(corruptions.corrupt(rgb, n, s, seed)) for n, s in part]
        for (n, s), dets in zip(part, detector.predict(batch, list(range(len(part))),
                                                       label_map, threshold)):
            change = compare(clean, dets)
            kept[names.index(n), sevs.index(s)] = len(change.pairs)
            gained[names.index(n), sevs.index(s)] = len(change.gained)
        tick(lo + len(part))
    return Sweep(len(clean), names, sevs, kept, gained)
