"""Mask operations shared by the segmentation viewer: overlays, effects, exports, GrabCut.

Masks are boolean `H x W` numpy arrays; images are `H x W x 3` uint8 RGB. Everything here is
model-free and pure (inputs are never modified), so it is tested on synthetic masks.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Sequence

import numpy as np
from PIL import Image

from lib.core.errors import InputError, PromptError

EFFECTS = ("blur", "pixelate", "fill", "cutout", "blur background")

# Distinct colours for object ids (Okabe-Ito, colour-blind safe), as RGB.
COLORS = [(230, 159, 0), (86, 180, 233), (0, 158, 115), (240, 228, 66), (0, 114, 178),
          (213, 94, 0), (204, 121, 167), (153, 153, 153)]


def color_for(obj_id: int) -> tuple[int, int, int]:
    return COLORS[(obj_id - 1) % len(COLORS)]


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 0.0


def box_intersection(a, b) -> float:
    """Area shared by two (x0, y0, x1, y1) boxes."""
    x0, y0, x1, y1 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    return max(0.0, x1 - x0) * max(0.0, y1 - y0)


def box_iou(a, b) -> float:
    """IoU of two (x0, y0, x1, y1) boxes."""
    inter = box_intersection(a, b)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1), exclusive end, of a mask's pixels; None when empty."""
    ys, xs = np.nonzero(mask)
    if not len(xs):
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def interior_point(mask: np.ndarray) -> tuple[float, float]:
    """The point of a mask farthest from its edge: where a user clicks on an object, and
    where a correction click goes in an error region."""
    import cv2  # heavy: imported on first use
    dist = cv2.distanceTransform(np.pad(mask, 1).astype(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1]
    y, x = np.unravel_index(np.argmax(dist), dist.shape)
    return float(x), float(y)


def stability_score(logits: np.ndarray, threshold: float = 0.0, offset: float = 1.0) -> float:
    """SAM's stability: IoU of the masks thresholded at `threshold +- offset`."""
    big = (logits > threshold - offset).sum()
    return float((logits > threshold + offset).sum() / big) if big else 0.0


def dedupe(masks: Sequence[np.ndarray], scores: Sequence[float], max_iou: float = 0.7
           ) -> list[int]:
    """Indices of masks kept by greedy mask-IoU suppression, best score first."""
    kept: list[int] = []
    for i in np.argsort(-np.asarray(scores, float), kind="stable"):
        if masks[i].any() and all(iou(masks[i], masks[j]) <= max_iou for j in kept):
            kept.append(int(i))
    return kept


# -- drawing ---------------------------------------------------------------------------------

def overlay(image: np.ndarray, layers: Sequence[tuple[np.ndarray, tuple[int, int, int]]],
            opacity: float = 0.5, outline: bool = True, width: int = 2) -> np.ndarray:
    """Colour each (mask, rgb) over the image; optionally draw its outline."""
    import cv2  # heavy: imported on first use
    out = image.astype(np.float32).copy()
    for mask, color in layers:
        m = mask.astype(bool)
        out[m] = out[m] * (1 - opacity) + np.asarray(color, np.float32) * opacity
    out = out.clip(0, 255).astype(np.uint8)
    if outline:
        for mask, color in layers:
            contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL,
                                           cv2.CHAIN_APPROX_NONE)
            cv2.drawContours(out, contours, -1, tuple(int(c) for c in color), width)
    return out


def draw_prompts(image: np.ndarray, points: Sequence[tuple[float, float, int]],
                 boxes: Sequence[tuple[float, float, float, float]],
                 color: tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:
    """Points (green positive, red negative, with a white ring) and boxes over the image."""
    import cv2  # heavy: imported on first use
    out = image.copy()
    r = max(4, round(min(image.shape[:2]) / 100))
    for x, y, label in points:
        c = (0, 200, 0) if label == 1 else (220, 0, 0)
        cv2.circle(out, (round(x), round(y)), r + 2, (255, 255, 255), -1)
        cv2.circle(out, (round(x), round(y)), r, c, -1)
    for x0, y0, x1, y1 in boxes:
        cv2.rectangle(out, (round(x0), round(y0)), (round(x1), round(y1)), color, 2)
    return out


# -- effects ---------------------------------------------------------------------------------

def union(masks: Sequence[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    out = np.zeros(shape, bool)
    for m in masks:
        out |= m.astype(bool)
    return out


def _blurred(image: np.ndarray, strength: int) -> np.ndarray:
    import cv2  # heavy: imported on first use
    k = max(3, int(strength) | 1)  # odd kernel
    return cv2.GaussianBlur(image, (k, k), 0)


def _pixelated(image: np.ndarray, block: int) -> np.ndarray:
    import cv2  # heavy: imported on first use
    h, w = image.shape[:2]
    block = max(2, int(block))
    small = cv2.resize(image, (max(1, w // block), max(1, h // block)),
                       interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)


def apply_effect(image: np.ndarray, masks: Sequence[np.ndarray], effect: str,
                 strength: int = 25, color: tuple[int, int, int] = (0, 0, 0)) -> np.ndarray:
    """The image with `effect` applied to the union of `masks`.

    blur / pixelate / fill change the pixels inside the masks; "blur background" blurs
    everything outside them; "cutout" returns RGBA with a transparent background.
    """
    if effect not in EFFECTS:
        raise InputError(f"Unknown effect '{effect}'. Choose one of: {', '.join(EFFECTS)}.")
    region = union(masks, image.shape[:2])
    out = image.copy()
    if effect == "blur":
        out[region] = _blurred(image, strength)[region]
    elif effect == "pixelate":
        out[region] = _pixelated(image, max(2, strength // 2))[region]
    elif effect == "fill":
        out[region] = np.asarray(color, np.uint8)
    elif effect == "blur background":
        out[~region] = _blurred(image, strength)[~region]
    else:  # cutout
        out = np.dstack([image, np.where(region, 255, 0).astype(np.uint8)])
    return out


# -- export ----------------------------------------------------------------------------------

def png_bytes(array: np.ndarray) -> bytes:
    """PNG of an RGB/RGBA image, or of a mask (0/255)."""
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def to_rle(mask: np.ndarray) -> dict:
    """COCO RLE (compressed, `counts` as str) of a boolean mask, via pycocotools."""
    from pycocotools import mask as mask_utils  # heavy: imported on first use
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


def from_rle(rle: dict) -> np.ndarray:
    from pycocotools import mask as mask_utils  # heavy: imported on first use
    counts = rle["counts"]
    return mask_utils.decode({"size": rle["size"], "counts": counts.encode("ascii")
                              if isinstance(counts, str) else counts}).astype(bool)


def rle_annotation(rle: dict, ann_id: int, image_id: int, category_id: int,
                   score: float | None = None) -> dict:
    """A COCO annotation of one RLE mask, its area and box computed by pycocotools."""
    from pycocotools import mask as mask_utils  # heavy: imported on first use
    enc = {"size": rle["size"], "counts": rle["counts"].encode("ascii")
           if isinstance(rle["counts"], str) else rle["counts"]}
    ann = {"id": ann_id, "image_id": image_id, "category_id": int(category_id),
           "segmentation": rle, "area": float(mask_utils.area(enc)),
           "bbox": [float(v) for v in mask_utils.toBbox(enc)], "iscrowd": 0}
    if score is not None:
        ann["score"] = float(score)
    return ann


def coco_annotations(masks: Sequence[np.ndarray], image_id: int, category_ids: Sequence[int],
                     scores: Sequence[float] | None = None, start_id: int = 1) -> list[dict]:
    return [rle_annotation(to_rle(m), start_id + k, image_id, cat,
                           None if scores is None else scores[k])
            for k, (m, cat) in enumerate(zip(masks, category_ids))]


def coco_json(frames: Sequence[tuple[str, int, int, Sequence[np.ndarray], Sequence[int]]],
              names: dict[int, str]) -> str:
    """COCO JSON with RLE masks. `frames`: (file name, width, height, masks, object ids);
    each object id becomes a category named `names[id]`."""
    images, anns = [], []
    for image_id, (file_name, w, h, masks, ids) in enumerate(frames, start=1):
        images.append({"id": image_id, "file_name": file_name, "width": int(w),
                       "height": int(h)})
        anns += coco_annotations(masks, image_id, ids, start_id=len(anns) + 1)
    cats = [{"id": int(i), "name": n} for i, n in sorted(names.items())]
    return json.dumps({"images": images, "annotations": anns, "categories": cats})


def png_zip(frames: Sequence[tuple[str, np.ndarray]]) -> bytes:
    """A zip of (name, mask) PNGs."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, mask in frames:
            z.writestr(name, png_bytes(mask))
    return buf.getvalue()


# -- classical fallback ----------------------------------------------------------------------

def grabcut(image: np.ndarray, box: tuple[float, float, float, float],
            points: Sequence[tuple[float, float, int]] = (), iterations: int = 5) -> np.ndarray:
    """OpenCV GrabCut inside a box; positive/negative points become sure fore/background.

    A classical colour-model segmentation, not a learned one: the viewer labels it so.
    """
    import cv2  # heavy: imported on first use
    h, w = image.shape[:2]
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if x1 - x0 < 2 or y1 - y0 < 2:
        raise PromptError("The box has (almost) no area: drag a larger rectangle.")
    mask = np.full((h, w), cv2.GC_BGD, np.uint8)
    mask[y0:y1, x0:x1] = cv2.GC_PR_FGD
    if (mask == cv2.GC_BGD).sum() < GRABCUT_MIN_BACKGROUND * h * w:
        # a box (almost) as large as the image leaves no background to learn colours from:
        # the image's outer band becomes probable background, as a user's box would leave it
        band = max(2, round(GRABCUT_BAND * min(h, w)))
        edge = np.ones((h, w), bool)
        edge[band:h - band, band:w - band] = False
        mask[edge & (mask == cv2.GC_PR_FGD)] = cv2.GC_PR_BGD
    r = max(2, round(min(h, w) / 100))
    for x, y, label in points:
        cv2.circle(mask, (round(x), round(y)), r, cv2.GC_FGD if label == 1 else cv2.GC_BGD, -1)
    if not ((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)).any():
        raise PromptError("The clicks leave nothing inside the box to segment: drag a larger "
                          "box, or click on the object.")
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    cv2.setRNGSeed(0)
    cv2.grabCut(bgr, mask, None, bgd, fgd, iterations, cv2.GC_INIT_WITH_MASK)
    return (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)


#: GrabCut needs background colours: below this share of the image outside the box, the
#: image's outer band (this share of its shorter side) is taken as probable background
GRABCUT_MIN_BACKGROUND = 0.02
GRABCUT_BAND = 0.03


def refine_edges(image: np.ndarray, mask: np.ndarray, band: int = 4,
                 iterations: int = 3) -> np.ndarray:
    """A mask's edges snapped to the image's colours: GrabCut initialised from the mask
    itself (sure foreground `band` pixels inside it, sure background `band` outside, the band
    between left to the colour models), on the region around it only. A learned segmenter's
    coarse mask (upsampled from a quarter of its input) gains its fine edges this way; the
    mask is returned unchanged when it is too thin to have an inside."""
    import cv2  # heavy: imported on first use
    if not mask.any():
        return mask
    h, w = mask.shape
    ys, xs = np.nonzero(mask)
    pad = 4 * band
    y0, y1 = max(0, ys.min() - pad), min(h, ys.max() + 1 + pad)
    x0, x1 = max(0, xs.min() - pad), min(w, xs.max() + 1 + pad)
    crop = mask[y0:y1, x0:x1].astype(np.uint8)
    kernel = np.ones((3, 3), np.uint8)
    inside = cv2.erode(crop, kernel, iterations=band).astype(bool)
    near = cv2.dilate(crop, kernel, iterations=band).astype(bool)
    if inside.sum() < 10 or (~near).sum() < 10:
        return mask
    init = np.full(crop.shape, cv2.GC_BGD, np.uint8)
    init[near] = cv2.GC_PR_BGD
    init[crop.astype(bool)] = cv2.GC_PR_FGD
    init[inside] = cv2.GC_FGD
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)                       # GrabCut's k-means: the same mask every time
    try:
        cv2.grabCut(np.ascontiguousarray(cv2.cvtColor(image[y0:y1, x0:x1], cv2.COLOR_RGB2BGR)),
                    init, None, bgd, fgd, iterations, cv2.GC_INIT_WITH_MASK)
    except cv2.error:                       # a colour model it cannot fit: keep the mask
        return mask
    out = np.zeros_like(mask)
    out[y0:y1, x0:x1] = (init == cv2.GC_FGD) | (init == cv2.GC_PR_FGD)
    return out
