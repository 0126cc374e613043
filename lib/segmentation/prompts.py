"""Prompts as a visitor makes them: clicks and drags on the shown image turned into points and
boxes in image pixels, typed edits parsed, and every prompt checked against the image before
a model sees it (`PromptError` with what to do)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from lib.core.errors import PromptError

#: a drag shorter than this (displayed pixels, both ways) is a click
CLICK_SLOP_PX = 4

Point = tuple[float, float, int]              # x, y, 1 positive / 0 negative
Box = tuple[float, float, float, float]       # x0, y0, x1, y1


def click_event(value: Mapping[str, Any] | None, image_width: int, last_seen: Any
                ) -> tuple[tuple[str, tuple[float, ...]] | None, Any]:
    """A new click ("point", (x, y)) or drag ("box", (x0, y0, x1, y1)) from the clickable
    image widget's `value`, in image pixels (the widget reports displayed pixels and its
    width), or None when the value is the one already seen; and the stamp to remember."""
    if not value or value.get("unix_time") == last_seen:
        return None, last_seen
    scale = image_width / (value.get("width") or image_width)   # displayed -> image pixels
    x1, y1 = value.get("x1", value.get("x")), value.get("y1", value.get("y"))
    x2, y2 = value.get("x2", x1), value.get("y2", y1)
    if abs(x2 - x1) < CLICK_SLOP_PX and abs(y2 - y1) < CLICK_SLOP_PX:
        return ("point", (x1 * scale, y1 * scale)), value.get("unix_time")
    return ("box", (x1 * scale, y1 * scale, x2 * scale, y2 * scale)), value.get("unix_time")


def parse_edits(rows: Iterable[tuple[Any, Any, Any]], box_text: str, width: int, height: int
                ) -> tuple[list[Point], Box | None]:
    """Points (x, y, positive) and a box typed as "x0, y0, x1, y1" (empty: none), checked
    against a `width` x `height` image; `PromptError` says what is wrong."""
    try:
        points = [(float(x), float(y), int(bool(positive))) for x, y, positive in rows]
        values = [float(v) for v in box_text.replace(" ", "").split(",") if v]
    except (TypeError, ValueError):
        raise PromptError("Points and the box must be numbers.") from None
    if values and len(values) != 4:
        raise PromptError("A box needs four numbers: x0, y0, x1, y1.")
    box = clip_box(values, width, height) if values else None
    if points or box:
        check_prompts(points, box, width, height)
    return points, box


def check_prompts(points, box, width: int, height: int) -> None:
    """Raise `PromptError` for prompts outside the image or a zero-area box."""
    if not points and box is None:
        raise PromptError("No prompt yet: click on the object, or drag a box around it.")
    if not all(math.isfinite(float(v)) for p in points for v in p[:2]) or (
            box is not None and not all(math.isfinite(float(v)) for v in box)):
        raise PromptError("Prompts must be finite numbers.")
    for x, y, _ in points:
        if not (0 <= x < width and 0 <= y < height):
            raise PromptError(f"The point ({x:.0f}, {y:.0f}) is outside the "
                              f"{width} x {height} image.")
    if box is not None:
        x0, y0, x1, y1 = box
        if x1 - x0 < 2 or y1 - y0 < 2:
            raise PromptError("The box has (almost) no area: drag a larger rectangle.")
        if x1 <= 0 or y1 <= 0 or x0 >= width or y0 >= height:
            raise PromptError("The box lies outside the image.")


def clip_box(box, width: int, height: int) -> tuple[float, float, float, float]:
    """Order a dragged box's corners and clip it to the image."""
    x0, y0, x1, y1 = box
    x0, x1 = sorted((x0, x1))
    y0, y1 = sorted((y0, y1))
    return (max(0.0, x0), max(0.0, y0), min(float(width), x1), min(float(height), y1))


def processor_inputs(points: Iterable[Point], box: Box | None) -> dict[str, Any]:
    """Points and a box as SAM 2's processors take them for one object (nested per image,
    object and point), for an image prompt and for a video session alike."""
    points = list(points)
    out: dict[str, Any] = {}
    if points:
        out["input_points"] = [[[[float(x), float(y)] for x, y, _ in points]]]
        out["input_labels"] = [[[int(lab) for _, _, lab in points]]]
    if box is not None:
        out["input_boxes"] = [[[float(v) for v in box]]]
    return out


#: a zoom window is never smaller than this (image pixels): tiny objects keep some context
MIN_ZOOM_SIDE = 48


def zoom_window(box: Box, width: int, height: int, context: float) -> tuple[int, int, int, int]:
    """The square window (x0, y0, x1, y1, in image pixels) a zooming segmenter looks through
    around `box`: the box's longer side times `context`, centred on the box and shifted to
    stay inside the image where the image is large enough (it may reach past an edge of a
    smaller image; `crop_window` pads there)."""
    x0, y0, x1, y1 = box
    side = max(MIN_ZOOM_SIDE, round(max(x1 - x0, y1 - y0) * context))
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2

    def place(c: float, extent: int) -> int:
        lo = round(c - side / 2)
        if side <= extent:
            lo = min(max(lo, 0), extent - side)
        return int(lo)

    wx, wy = place(cx, width), place(cy, height)
    return wx, wy, wx + side, wy + side


PAD_VALUE = 128   # what a window shows beyond the image's edge (mid-grey: zero after normalising)


def crop_window(image, window: tuple[int, int, int, int]):
    """The pixels of `image` (H x W x C) inside `window`, padded with `PAD_VALUE` where the
    window reaches past the image."""
    x0, y0, x1, y1 = window
    h, w = image.shape[:2]
    out = np.full((y1 - y0, x1 - x0, *image.shape[2:]), PAD_VALUE, dtype=image.dtype)
    sx0, sy0, sx1, sy1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = image[sy0:sy1, sx0:sx1]
    return out


def paste_window(masks, window: tuple[int, int, int, int], height: int, width: int):
    """Masks made inside `window` (k x side x side) placed back into k x height x width."""
    x0, y0, x1, y1 = window
    out = np.zeros((len(masks), height, width), dtype=bool)
    sx0, sy0, sx1, sy1 = max(0, x0), max(0, y0), min(width, x1), min(height, y1)
    if sx1 > sx0 and sy1 > sy0:
        out[:, sy0:sy1, sx0:sx1] = masks[:, sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0]
    return out
