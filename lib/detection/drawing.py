"""Boxes drawn on an image, in one palette: ground truth, model A, model B."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

PALETTE = {"gt": (60, 220, 120), "a": (255, 140, 0), "b": (80, 160, 255),
           "kept": (60, 220, 120), "moved": (255, 220, 0), "lost": (255, 60, 60),
           "gained": (200, 90, 255)}


def draw(image: Image.Image, boxes: list[tuple[np.ndarray, list[str], tuple[int, int, int]]],
         width: int = 3) -> Image.Image:
    """Draw (xyxy boxes, captions, colour) groups on a copy of an RGB image."""
    out = image.convert("RGB").copy()
    pen = ImageDraw.Draw(out)
    for xyxy, captions, color in boxes:
        for box, caption in zip(np.asarray(xyxy).reshape(-1, 4).tolist(), captions):
            pen.rectangle(box, outline=color, width=width)
            if caption:
                x, y = box[0], max(0, box[1] - 12)
                pen.rectangle([x, y, x + 7 * len(caption) + 4, y + 12], fill=color)
                pen.text((x + 2, y), caption, fill=(0, 0, 0))
    return out
