"""Video scene timelines: classify sampled frames, merge them into scene segments."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from lib.classification import classify
from lib.core.progress import Callback, Ticker
from lib.media.video import VideoInfo, iter_frames
from lib.models.registry import LoadedModel


@dataclass(frozen=True)
class FramePrediction:
    index: int            # frame index in the clip
    time_s: float
    label: str
    class_index: int
    probability: float


@dataclass(frozen=True)
class Segment:
    start_s: float
    end_s: float
    label: str
    class_index: int
    keyframe_index: int       # the frame of the segment most confident in its label
    keyframe_time_s: float
    mean_probability: float

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


def classify_frames(lm: LoadedModel, info: VideoInfo, every_s: float, batch_size: int = 8,
                    progress: Callback | None = None) -> list[FramePrediction]:
    """Top-1 class of one frame every `every_s` seconds (frames streamed, not kept)."""
    expected = max(1, int(info.duration_s / every_s) + 1)
    tick = Ticker(expected, progress)
    out: list[FramePrediction] = []
    batch: list = []

    def flush():
        probs = classify.probabilities(lm, classify.to_tensor(
            lm, [Image.fromarray(f.rgb) for f in batch]))
        for frame, row in zip(batch, probs):
            idx = int(np.argmax(row))
            out.append(FramePrediction(frame.index, frame.time_s, lm.labels[idx], idx,
                                       float(row[idx])))
        batch.clear()
        tick(len(out), max(expected, len(out)))

    for frame in iter_frames(info, every_s=every_s):
        batch.append(frame)
        if len(batch) == batch_size:
            flush()
    if batch:
        flush()
    return out


def merge_segments(preds: list[FramePrediction], min_duration_s: float,
                   clip_end_s: float | None = None) -> list[Segment]:
    """Merge consecutive frames of one class into segments; absorb segments shorter than
    `min_duration_s` into their longer neighbour, then join equal neighbours again."""
    if not preds:
        return []
    end = clip_end_s if clip_end_s is not None else preds[-1].time_s
    runs: list[list[FramePrediction]] = []
    for p in preds:
        if runs and runs[-1][-1].class_index == p.class_index:
            runs[-1].append(p)
        else:
            runs.append([p])

    def span(i: int) -> float:
        stop = runs[i + 1][0].time_s if i + 1 < len(runs) else end
        return stop - runs[i][0].time_s

    changed = True
    while changed and len(runs) > 1:
        changed = False
        shortest = min(range(len(runs)), key=lambda i: (span(i), i))
        if span(shortest) < min_duration_s:
            if shortest == 0:
                target = 1
            elif shortest == len(runs) - 1:
                target = shortest - 1
            else:
                target = shortest - 1 if span(shortest - 1) >= span(shortest + 1) else shortest + 1
            # the short run's frames take the neighbour's label
            relabelled = [FramePrediction(p.index, p.time_s, runs[target][0].label,
                                          runs[target][0].class_index, 0.0)
                          for p in runs[shortest]]
            lo, hi = sorted((shortest, target))
            merged = ((relabelled + runs[target]) if target > shortest
                      else (runs[target] + relabelled))
            runs[lo:hi + 1] = [merged]
            runs = _join_equal(runs)
            changed = True

    segments = []
    for i, run in enumerate(runs):
        own = [p for p in run if p.probability > 0] or run
        key = max(own, key=lambda p: p.probability)
        stop = runs[i + 1][0].time_s if i + 1 < len(runs) else end
        segments.append(Segment(run[0].time_s, stop, run[0].label, run[0].class_index,
                                key.index, key.time_s,
                                float(np.mean([p.probability for p in own]))))
    return segments


def _join_equal(runs: list[list[FramePrediction]]) -> list[list[FramePrediction]]:
    out: list[list[FramePrediction]] = []
    for run in runs:
        if out and out[-1][0].class_index == run[0].class_index:
            out[-1] = out[-1] + run
        else:
            out.append(run)
    return out
