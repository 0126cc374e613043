"""The demo segmenter's data: synthetic images and clip frames with their true masks, and
prompts sampled from those masks as the page makes them (a click, a box, both, clicks)."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lib.core import settings
from lib.demo import synth
from lib.training.sam_model import SIZE

VAL_CLIPS = {"count": 20, "frames": 30, "size": 128, "seed": 0}   # the measured clips


TRAIN_CLIP_SEED = 1000


@dataclass
class ImageSet:
    pixels: "object"          # N x 3 x S x S float16 (processor output)
    masks: list               # per image: list of S x S bool masks (at model resolution)


CLIP_IMAGE_FRAMES = 8


def make_images(count: int, seed: int, proc, log=print) -> ImageSet:
    """`count` synthetic images (half at 128 px, half at 256 px, as the page meets them),
    through the saved processor, with their object masks at the model's input size. Every
    third is a frame of a `lib.synth.make_clip` clip: trained on still images alone, the
    model segmented clip frames (smaller sprites, occlusions) at IoU 0.4-0.8 from a box,
    and the tracker starts from those masks."""
    import cv2  # heavy: imported on first use
    import torch  # heavy: imported on first use

    rng = np.random.default_rng(seed)
    pix, masks = [], []
    for i in range(count):
        native = 128 if i % 2 == 0 else 256
        objects = []
        if i % 3 == 2:        # a frame of a clip: smaller sprites, partly hidden behind others
            frames, visible, _ = synth.make_clip(rng, CLIP_IMAGE_FRAMES, native)
            f = int(rng.integers(CLIP_IMAGE_FRAMES))
            img = frames[f]
            objects = [m for m in visible[f].values() if m.sum() >= 30]
        if not objects:
            img, shapes = synth.make_image(rng, native, int(rng.integers(1, 4)))
            objects = [m for _, m in shapes]
        pix.append(proc.image_processor(images=np.array(img),
                                        return_tensors="pt").pixel_values[0].half())
        masks.append([cv2.resize(m.astype(np.uint8), (SIZE, SIZE),
                                 interpolation=cv2.INTER_NEAREST).astype(bool)
                      for m in objects])
        if log and (i + 1) % 1000 == 0:
            log(f"images: {i + 1}/{count}")
    return ImageSet(torch.stack(pix), masks)


PROMPT_KINDS = ("click", "box", "box+click", "clicks")


def _inside_point(mask: np.ndarray, rng) -> tuple[float, float]:
    ys, xs = np.nonzero(mask)
    k = rng.integers(len(xs))
    return float(xs[k]), float(ys[k])


def _outside_point(mask: np.ndarray, rng) -> tuple[float, float]:
    """A background point near the object (within its box grown by half)."""
    ys, xs = np.nonzero(mask)
    x0, x1, y0, y1 = xs.min(), xs.max(), ys.min(), ys.max()
    gx, gy = (x1 - x0) // 2 + 4, (y1 - y0) // 2 + 4
    for _ in range(50):
        x = int(rng.integers(max(0, x0 - gx), min(mask.shape[1], x1 + gx + 1)))
        y = int(rng.integers(max(0, y0 - gy), min(mask.shape[0], y1 + gy + 1)))
        if not mask[y, x]:
            return float(x), float(y)
    ys, xs = np.nonzero(~mask)
    k = rng.integers(len(xs))
    return float(xs[k]), float(ys[k])


def _box(mask: np.ndarray, rng, jitter: float) -> list[tuple[float, float, int]]:
    """A box as SAM's two corner points (labels 2 and 3), jittered by up to `jitter` of its
    side, as a user's drag is."""
    ys, xs = np.nonzero(mask)
    x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    w, h = x1 - x0, y1 - y0
    d = rng.uniform(-jitter, jitter, 4) * np.array([w, h, w, h])
    s = mask.shape[0]
    x0, y0, x1, y1 = np.clip(np.array([x0, y0, x1, y1]) + d, 0, s)
    return [(float(x0), float(y0), 2), (float(x1), float(y1), 3)]


def sample_prompts(mask: np.ndarray, kind: str, rng, n_clicks: int = 3):
    """Prompt points (x, y, label) for one object, in model-input pixels; a box is its two
    corners with SAM's labels 2 and 3."""
    if kind == "click":
        return [(*_inside_point(mask, rng), 1)]
    if kind == "box":
        return _box(mask, rng, 0.06)
    if kind == "box+click":
        extra = (*_inside_point(mask, rng), 1) if rng.random() < 0.5 else \
            (*_outside_point(mask, rng), 0)
        return [extra] + _box(mask, rng, 0.1)
    points = [(*_inside_point(mask, rng), 1)]
    for _ in range(n_clicks - 1):
        points.append((*_inside_point(mask, rng), 1) if rng.random() < 0.5 else
                      (*_outside_point(mask, rng), 0))
    return points


@dataclass
class ClipSet:
    feats: list               # per clip: [frames x ... per level] float16 (frozen encoder)
    masks: list               # per clip: per frame {object: S x S bool}
    first: list               # per clip: {object: first frame}
    size: list                # per clip: native side


def make_clips(count: int, seed: int, model, proc, frames: int = 30, log=print) -> ClipSet:
    """`count` synthetic clips (`lib.synth.make_clip`, half at 128 px, half at 256 px) with
    the frozen image encoder's features of every frame and every object's visible mask."""
    import cv2  # heavy: imported on first use
    import torch  # heavy: imported on first use

    rng = np.random.default_rng(seed)
    out = ClipSet([], [], [], [])
    for c in range(count):
        native = 128 if c % 2 == 0 else 256
        clip, masks, objects = synth.make_clip(rng, frames, native)
        pix = proc.video_processor(videos=[np.stack(clip)], return_tensors="pt"
                                   ).pixel_values_videos[0]
        with torch.inference_mode():
            feats = model.get_image_features(pix, return_dict=True).fpn_hidden_states
        out.feats.append([f.half() for f in feats])
        out.masks.append([{k: cv2.resize(m.astype(np.uint8), (SIZE, SIZE),
                                         interpolation=cv2.INTER_NEAREST).astype(bool)
                           for k, m in fm.items()} for fm in masks])
        out.first.append({k: f0 for k, (_, f0) in objects.items()})
        out.size.append(native)
        if log and (c + 1) % 50 == 0:
            log(f"clips: {c + 1}/{count}")
    return out


def val_clips(cache_root: str | Path | None = None) -> Path:
    """The 20 validation clips the manifest's J is measured on (generated once into the
    cache; training clips use other seeds)."""

    root = Path(cache_root or settings.get().cache)
    folder = root / ("synth-val-clips-" + "-".join(f"{k}{v}" for k, v in VAL_CLIPS.items()))
    if not (folder / "clips.json").is_file():
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=root, prefix=".clips-"))
        synth.write_clips(tmp, VAL_CLIPS["count"], VAL_CLIPS["frames"], VAL_CLIPS["size"],
                          VAL_CLIPS["seed"])
        shutil.rmtree(folder, ignore_errors=True)
        tmp.rename(folder)
    return folder
