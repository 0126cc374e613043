"""What-if edits of one image: rotate, scale, crop, flip, an occluding patch, JPEG quality,
brightness. `Edit` holds the settings (checked: a value out of range is one clear message),
`apply(image, edit)` returns the edited RGB array; the identity edit returns the image as is.
Applied in a fixed order: crop, scale, rotate, flip, brightness, patch, JPEG."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, fields

import numpy as np

from lib.core.errors import InputError

#: (low, high) of each number an edit takes
RANGES = {"rotate": (-180.0, 180.0), "scale": (0.1, 4.0), "crop": (0.1, 1.0),
          "brightness": (0.0, 3.0), "jpeg": (1, 100), "patch_size": (0.01, 1.0)}
MAX_SIDE = 8192            # an edit never makes an image larger than this on a side


@dataclass(frozen=True)
class Edit:
    """One what-if edit. `patch`: an occluding grey square centred at (x, y), as fractions of
    the width and height (where the visitor clicked), its side `patch_size` of the shorter
    side. `jpeg`: re-encode at that quality (None: not)."""

    rotate: float = 0.0
    scale: float = 1.0
    crop: float = 1.0
    flip: bool = False
    brightness: float = 1.0
    patch: tuple[float, float] | None = None
    patch_size: float = 0.2
    jpeg: int | None = None

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in RANGES and value is not None:
                lo, hi = RANGES[f.name]
                if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                        not math.isfinite(value) or not lo <= value <= hi:
                    raise InputError(f"The {f.name.replace('_', ' ')} must be from {lo} to "
                                     f"{hi}; got {str(value)[:20]}.")
        if self.patch is not None:
            x, y = self.patch
            if not all(isinstance(v, (int, float)) and math.isfinite(v) and 0 <= v <= 1
                       for v in (x, y)):
                raise InputError("The patch must be placed inside the image.",
                                 "Click on the image where it should go.")

    @property
    def identity(self) -> bool:
        return self == Edit()

    def describe(self) -> str:
        """The edit in words, e.g. "rotated 15°, JPEG q=20" ("no edit" for none)."""
        said = []
        if self.crop != 1:
            said.append(f"cropped to {self.crop:.0%}")
        if self.scale != 1:
            said.append(f"scaled ×{self.scale:g}")
        if self.rotate:
            said.append(f"rotated {self.rotate:g}°")
        if self.flip:
            said.append("flipped")
        if self.brightness != 1:
            said.append(f"brightness ×{self.brightness:g}")
        if self.patch is not None:
            said.append(f"patch at ({self.patch[0]:.0%}, {self.patch[1]:.0%})")
        if self.jpeg is not None:
            said.append(f"JPEG q={self.jpeg}")
        return ", ".join(said) or "no edit"


def apply(image, edit: Edit) -> np.ndarray:
    """`image` (an RGB array or PIL image) with `edit` applied, as an RGB uint8 array."""
    import cv2  # heavy: imported on first use
    x = np.ascontiguousarray(np.asarray(image.convert("RGB") if hasattr(image, "convert")
                                        else image, dtype=np.uint8))
    if edit.identity:
        return x
    h, w = x.shape[:2]
    if edit.crop < 1:
        ch, cw = max(1, round(h * edit.crop)), max(1, round(w * edit.crop))
        top, left = (h - ch) // 2, (w - cw) // 2
        x = x[top:top + ch, left:left + cw]
    if edit.scale != 1:
        h, w = x.shape[:2]
        factor = min(edit.scale, MAX_SIDE / max(h, w))
        size = (max(1, round(w * factor)), max(1, round(h * factor)))
        x = cv2.resize(x, size, interpolation=cv2.INTER_AREA if factor < 1 else
                       cv2.INTER_LINEAR)
    if edit.rotate:
        h, w = x.shape[:2]
        m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), edit.rotate, 1.0)
        x = cv2.warpAffine(x, m, (w, h), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    if edit.flip:
        x = x[:, ::-1]
    if edit.brightness != 1:
        x = np.clip(x.astype(np.float32) * edit.brightness, 0, 255).astype(np.uint8)
    if edit.patch is not None:
        h, w = x.shape[:2]
        side = max(1, round(min(h, w) * edit.patch_size))
        cx, cy = edit.patch[0] * w, edit.patch[1] * h
        top, left = int(np.clip(cy - side / 2, 0, h - 1)), int(np.clip(cx - side / 2, 0, w - 1))
        x = x.copy()
        x[top:top + side, left:left + side] = 128
    if edit.jpeg is not None:
        from PIL import Image  # heavy: imported on first use
        buf = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(x)).save(buf, format="JPEG", quality=int(edit.jpeg))
        x = np.asarray(Image.open(buf).convert("RGB"))
    return np.ascontiguousarray(x)
