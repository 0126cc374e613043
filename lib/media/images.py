"""The one image intake used by every page.

`load_image` turns bytes or a path into an RGB `PIL.Image` or raises `ImageError` with a
message a user can act on. It applies EXIF orientation, takes the first frame of animations,
converts every pixel format (CMYK, 16-bit, float, palette, alpha, grayscale) to 8-bit RGB and
refuses decompression bombs and images over a pixel limit before decoding them.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from lib.core import settings
from lib.core.errors import ImageError

#: Formats Lens accepts (Pillow format names). MPO is how Pillow names some camera JPEGs.
ACCEPTED_FORMATS = {"PNG": "PNG", "JPEG": "JPEG", "MPO": "JPEG", "WEBP": "WebP", "BMP": "BMP",
                    "TIFF": "TIFF", "GIF": "GIF"}
ACCEPTED_EXTENSIONS = ["png", "jpg", "jpeg", "webp", "bmp", "tif", "tiff", "gif"]




@dataclass(frozen=True)
class IntakeImage:
    """A decoded upload: the RGB image plus what we learnt about the file."""

    image: Image.Image
    name: str
    format: str          # e.g. "JPEG"
    original_mode: str   # Pillow mode before conversion, e.g. "CMYK", "I;16"
    sha256: str          # content hash of the file's bytes, for caching

    @property
    def size(self) -> tuple[int, int]:
        return self.image.size


def _sniff_non_image(head: bytes) -> str | None:
    """Name the kind of a text file masquerading as an image, if it is one."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(b"<svg") or (text.startswith(b"<?xml") and b"<svg" in text):
        return "an SVG (vector) file"
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        return "an HTML page"
    if text.startswith(b"<"):
        return "an XML/HTML text file"
    if text.startswith((b"{", b"[")):
        return "a JSON text file"
    try:
        head.decode("utf-8")
        if head and all(c >= 9 for c in head[:512]):
            return "a text file"
    except UnicodeDecodeError:
        pass
    return None


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB; transparent areas become white."""
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        if mode.startswith("I;16"):
            arr = arr / 257.0
        elif mode == "I":
            arr = arr / 257.0 if arr.max(initial=0) > 255 else arr
        else:  # float: [0, 1] images are scaled, anything else clipped
            finite = arr[np.isfinite(arr)]
            if finite.size and finite.min() >= 0 and finite.max() <= 1.0:
                arr = arr * 255.0
            arr = np.nan_to_num(arr, nan=0.0, posinf=255.0, neginf=0.0)
        gray = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
        return Image.fromarray(gray, "L").convert("RGB")
    if mode == "P":
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV


def load_image(source: bytes | str | Path, name: str | None = None,
               max_pixels: int | None = None) -> IntakeImage:
    """Decode an upload (bytes) or a file path into an `IntakeImage`, or raise `ImageError`."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        name = name or path.name
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ImageError(f"Cannot read '{name}': {exc.strerror or exc}.") from exc
    else:
        data = bytes(source)
        name = name or "upload"
    limit = max_pixels or settings.get().max_image_pixels

    if not data:
        raise ImageError(f"'{name}' is empty (0 bytes).")
    kind = _sniff_non_image(data[:1024])
    if kind:
        raise ImageError(f"'{name}' is {kind}, not a raster image. Upload PNG, JPEG, WebP, BMP, "
                         "TIFF or GIF.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            fmt = img.format or "?"
            if fmt not in ACCEPTED_FORMATS:
                raise ImageError(f"'{name}' is a {fmt} image; Lens reads PNG, JPEG, WebP, BMP, "
                                 "TIFF and GIF.")
            width, height = img.size
            if width <= 0 or height <= 0:
                raise ImageError(f"'{name}' has no pixels ({width}x{height}).")
            if width * height > limit:
                raise ImageError(f"'{name}' is {width}x{height} = {width * height / 1e6:.1f} "
                                 f"megapixels, over the limit of {limit / 1e6:.0f} megapixels. "
                                 "Resize it and upload again.")
            original_mode = img.mode
            if getattr(img, "n_frames", 1) > 1:
                img.seek(0)
            img.load()
            img = ImageOps.exif_transpose(img) or img
            rgb = _to_rgb(img)
            rgb.load()
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"'{name}' looks like a decompression bomb (its header claims an "
                         f"enormous size) and was refused.") from exc
    except UnidentifiedImageError as exc:
        raise ImageError(f"'{name}' is not an image Lens can read (corrupt, or not PNG, JPEG, "
                         "WebP, BMP, TIFF or GIF).") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"'{name}' is truncated or corrupt and cannot be decoded "
                         f"({exc}).") from exc
    return IntakeImage(image=rgb, name=name, format=ACCEPTED_FORMATS[fmt],
                       original_mode=original_mode, sha256=hashlib.sha256(data).hexdigest())


def fit_width(image: np.ndarray, width: int) -> np.ndarray:
    """`image` (H×W×C array) scaled down to at most `width` pixels wide for display, keeping
    its aspect ratio; never to less than one pixel high (a 20000×3 strip stays 1 px high)."""
    h, w = image.shape[:2]
    if w <= width:
        return image
    import cv2  # heavy: imported on first use
    return cv2.resize(image, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA)
