"""Real-texture clips: real objects, cut out of photos by their own masks, moving over a
slowly panning real photo; one passes in front of another, one leaves the frame and comes
back. Every object's visible mask is known on every frame, so trackers can be scored on real
textures (`lib.segmentation.quality` reads the clips.json this writes, as for `lib.synth`
clips).

The cut-outs and backgrounds are given (RGB arrays and masks): Lens makes its figures from
the held-out images of the real COCO sample (`bench/seg_quality.py`), and the clips are fixed
by their seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lib.core.errors import InputError
from lib.demo import synth


@dataclass
class Cutout:
    """An object cut out of a photo: its pixels and mask (cropped to the mask's box)."""

    rgb: np.ndarray
    alpha: np.ndarray
    category: str


def _resized(cut: Cutout, side: float) -> Cutout:
    import cv2  # heavy: imported on first use
    h, w = cut.alpha.shape
    scale = side / max(h, w)
    size = (max(2, round(w * scale)), max(2, round(h * scale)))
    rgb = cv2.resize(cut.rgb, size, interpolation=cv2.INTER_AREA if scale < 1
                     else cv2.INTER_LINEAR)
    alpha = cv2.resize(cut.alpha.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
    return Cutout(rgb, alpha, cut.category)


def _place(frame: np.ndarray, cut: Cutout, cx: float, cy: float) -> np.ndarray:
    """Draw `cut` centred at (cx, cy); returns its full mask on the frame."""
    h, w = frame.shape[:2]
    ch, cw = cut.alpha.shape
    x0, y0 = int(round(cx - cw / 2)), int(round(cy - ch / 2))
    xa, ya, xb, yb = max(0, x0), max(0, y0), min(w, x0 + cw), min(h, y0 + ch)
    full = np.zeros((h, w), bool)
    if xb <= xa or yb <= ya:
        return full
    part = cut.alpha[ya - y0:yb - y0, xa - x0:xb - x0]
    frame[ya:yb, xa:xb][part] = cut.rgb[ya - y0:yb - y0, xa - x0:xb - x0][part]
    full[ya:yb, xa:xb] = part
    return full


def iter_clip(rng: np.random.Generator, cutouts: list[Cutout], background: np.ndarray,
              frames: int = 90, width: int = 480, height: int = 360):
    """Three of `cutouts` over `background` panning slowly: object 1 crosses in front of
    object 0 mid-clip, object 2 leaves the frame by a side and comes back. First yields
    {obj: (category, first frame)}, then per frame (frame, {obj: visible mask})."""
    import cv2  # heavy: imported on first use
    picks = rng.choice(len(cutouts), size=3, replace=len(cutouts) < 3)
    objs = [_resized(cutouts[int(i)], rng.uniform(0.28, 0.42) * height) for i in picks]
    pan = 0.35 * width
    bh, bw = background.shape[:2]
    scale = max((width + pan) / bw, height / bh)
    bg = cv2.resize(background, (int(np.ceil(bw * scale)), int(np.ceil(bh * scale))),
                    interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    mid, y = frames // 2, rng.uniform(0.4, 0.6) * height
    start = [np.array([rng.uniform(0.35, 0.5) * width, y]),
             np.array([rng.uniform(0.05, 0.15) * width, y + rng.uniform(-0.05, 0.05) * height]),
             np.array([rng.uniform(0.6, 0.75) * width, rng.uniform(0.25, 0.75) * height])]
    speed = [rng.uniform(-0.4, 0.4, 2), np.zeros(2), np.zeros(2)]
    speed[1] = (start[0] + speed[0] * mid - start[1]) / mid        # 1 meets 0 mid-clip
    leave = max(4, frames // 10)                 # object 2 leaves by the right...
    gone = max(4, frames // 6)                   # ...stays out this many frames, comes back
    out_at = width + objs[2].alpha.shape[1] / 2 + 2
    v2 = (out_at - start[2][0]) / leave
    yield {k: (objs[k].category, 0) for k in range(3)}
    for f in range(frames):
        x = min(pan, f * pan / max(1, frames - 1))
        frame = bg[:height, int(x):int(x) + width].copy()
        pos = [start[k] + speed[k] * f for k in range(2)]
        if f <= leave:
            p2 = start[2] + [v2 * f, 0]
        elif f <= leave + gone:
            p2 = np.array([out_at, start[2][1]])
        else:
            p2 = np.array([max(start[2][0], out_at - v2 * (f - leave - gone)), start[2][1]])
        layers = [(k, _place(frame, objs[k], *p)) for k, p in ((2, p2), (0, pos[0]),
                                                               (1, pos[1]))]
        visible = {}
        for i, (k, full) in enumerate(layers):         # later layers are drawn on top
            shown = full.copy()
            for _, other in layers[i + 1:]:
                shown &= ~other
            if shown.sum() >= 16:
                visible[k] = shown
        yield frame, visible


def write_clips(out: str | Path, cutouts: list[Cutout], backgrounds: list[np.ndarray],
                count: int, frames: int = 90, width: int = 480, height: int = 360,
                seed: int = 0, fps: int = 15) -> Path:
    """`count` clips as OUT/clipNNN.mp4 and OUT/clips.json (every object's visible mask per
    frame as RLE), the layout `lib.segmentation.quality.load_clips` reads."""
    if count < 1 or frames < 8 or width < 64 or height < 64 or not cutouts or not backgrounds:
        raise InputError("Real-texture clips need cut-outs, backgrounds, count >= 1, "
                         "frames >= 8 and a side of at least 64 px.")
    rng = np.random.default_rng(seed)
    clips = (iter_clip(rng, cutouts, backgrounds[int(rng.integers(len(backgrounds)))], frames,
                       width, height) for _ in range(count))
    return synth.write_clip_set(out, clips, seed, frames, width, height, fps, crf=12)
