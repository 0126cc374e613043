"""Common image corruptions (ImageNet-C / COCO-C, Hendrycks & Dietterich; Michaelis et al.) at
five severities, for what-if views and robustness benchmarks.

Each corruption follows the reference implementation (`imagecorruptions` 1.1.2) step by step,
with its parameters per severity, so that its output equals the reference's for the same
image (the deterministic ones) or for the same random draws (the random ones, given a
`numpy.random.RandomState` seeded as the reference's global one; tested). Differences from the
reference, on purpose: any image size is taken (the reference refuses sides under 32 px),
every random draw comes from a seeded generator (`seed`, or `rng`), and the library calls
that changed since 2020 are the current ones (scikit-image's `channel_axis`).

`corrupt(image, name, severity, seed)` takes and returns an RGB uint8 array. `NAMES` lists
the 19 corruptions in the reference's order; `HELD_OUT` are the four the protocol keeps for
validation. The noise and digital corruptions are here, the blurs in `lib.media.blurs`, the
weather in `lib.media.weather`.
"""

from __future__ import annotations

import io
import re

import numpy as np

from lib.core.errors import InputError
from lib.media import blurs, weather

#: the protocol's 15 corruptions then its 4 held-out ones, as the reference orders them
PROTOCOL = ("gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur",
            "motion_blur", "zoom_blur", "snow", "frost", "fog", "brightness", "contrast",
            "elastic_transform", "pixelate", "jpeg_compression", "speckle_noise",
            "gaussian_blur", "spatter", "saturate")
HELD_OUT = ("speckle_noise", "gaussian_blur", "spatter", "saturate")
SEVERITIES = (1, 2, 3, 4, 5)


# -- noise ------------------------------------------------------------------------------------

def gaussian_noise(x: np.ndarray, severity: int, rng) -> np.ndarray:
    c = [.08, .12, 0.18, 0.26, 0.38][severity - 1]
    x = x / 255.
    return np.clip(x + rng.normal(size=x.shape, scale=c), 0, 1) * 255


def shot_noise(x: np.ndarray, severity: int, rng) -> np.ndarray:
    c = [60, 25, 12, 5, 3][severity - 1]
    x = x / 255.
    return np.clip(rng.poisson(x * c) / float(c), 0, 1) * 255


def impulse_noise(x: np.ndarray, severity: int, rng) -> np.ndarray:
    """Salt and pepper, through scikit-image's own `random_noise` (seeded here)."""
    from skimage.util import random_noise  # heavy: imported on first use
    c = [.03, .06, .09, 0.17, 0.27][severity - 1]
    seed = int(rng.randint(2**31)) if hasattr(rng, "randint") else rng
    return np.clip(random_noise(x / 255., mode="s&p", amount=c, rng=seed), 0, 1) * 255


def speckle_noise(x: np.ndarray, severity: int, rng) -> np.ndarray:
    c = [.15, .2, 0.35, 0.45, 0.6][severity - 1]
    x = x / 255.
    return np.clip(x + x * rng.normal(size=x.shape, scale=c), 0, 1) * 255


# -- digital ----------------------------------------------------------------------------------

def brightness(x: np.ndarray, severity: int, rng=None) -> np.ndarray:
    from skimage.color import hsv2rgb, rgb2hsv  # heavy: imported on first use
    c = [.1, .2, .3, .4, .5][severity - 1]
    hsv = rgb2hsv(x / 255.)
    hsv[:, :, 2] = np.clip(hsv[:, :, 2] + c, 0, 1)
    return np.clip(hsv2rgb(hsv), 0, 1) * 255


def contrast(x: np.ndarray, severity: int, rng=None) -> np.ndarray:
    c = [0.4, .3, .2, .1, .05][severity - 1]
    x = x / 255.
    means = np.mean(x, axis=(0, 1), keepdims=True)
    return np.clip((x - means) * c + means, 0, 1) * 255


def saturate(x: np.ndarray, severity: int, rng=None) -> np.ndarray:
    from skimage.color import hsv2rgb, rgb2hsv  # heavy: imported on first use
    c = [(0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2)][severity - 1]
    hsv = rgb2hsv(x / 255.)
    hsv[:, :, 1] = np.clip(hsv[:, :, 1] * c[0] + c[1], 0, 1)
    return np.clip(hsv2rgb(hsv), 0, 1) * 255


def jpeg_compression(x: np.ndarray, severity: int, rng=None) -> np.ndarray:
    from PIL import Image  # heavy: imported on first use
    c = [25, 18, 15, 10, 7][severity - 1]
    buf = io.BytesIO()
    Image.fromarray(x).save(buf, "JPEG", quality=c)
    return np.asarray(Image.open(buf).convert("RGB"))


def pixelate(x: np.ndarray, severity: int, rng=None) -> np.ndarray:
    from PIL import Image  # heavy: imported on first use
    c = [0.6, 0.5, 0.4, 0.3, 0.25][severity - 1]
    h, w = x.shape[:2]
    small = Image.fromarray(x).resize((max(1, int(w * c)), max(1, int(h * c))), Image.BOX)
    return np.asarray(small.resize((w, h), Image.NEAREST))


def elastic_transform(x: np.ndarray, severity: int, rng) -> np.ndarray:
    """Pixels moved by a smooth random field (a uniform one blurred), bilinear, reflected at
    the borders."""
    from scipy.ndimage import map_coordinates  # heavy: imported on first use
    from skimage.filters import gaussian  # heavy: imported on first use
    image = np.array(x, dtype=np.float32) / 255.
    shape = image.shape
    sigma = np.array(shape[:2]) * 0.01
    alpha = [250 * 0.05, 250 * 0.065, 250 * 0.085, 250 * 0.1, 250 * 0.12][severity - 1]
    most = shape[0] * 0.005
    dx = (gaussian(rng.uniform(-most, most, size=shape[:2]), sigma, mode="reflect",
                   truncate=3) * alpha).astype(np.float32)[..., np.newaxis]
    dy = (gaussian(rng.uniform(-most, most, size=shape[:2]), sigma, mode="reflect",
                   truncate=3) * alpha).astype(np.float32)[..., np.newaxis]
    cols, rows, chans = np.meshgrid(np.arange(shape[1]), np.arange(shape[0]),
                                    np.arange(shape[2]))
    indices = (np.reshape(rows + dy, (-1, 1)), np.reshape(cols + dx, (-1, 1)),
               np.reshape(chans, (-1, 1)))
    return np.clip(map_coordinates(image, indices, order=1, mode="reflect").reshape(shape),
                   0, 1) * 255


CORRUPTIONS = {f.__name__: f for f in (
    gaussian_noise, shot_noise, impulse_noise, blurs.defocus_blur, blurs.glass_blur,
    blurs.motion_blur, blurs.zoom_blur, weather.snow, weather.frost, weather.fog, brightness,
    contrast, elastic_transform, pixelate, jpeg_compression, speckle_noise,
    blurs.gaussian_blur, weather.spatter, saturate)}
NAMES = PROTOCOL          # every one is here (tested)


def corrupt(image: np.ndarray, name: str, severity: int, seed: int = 0,
            rng=None) -> np.ndarray:
    """`image` (HxW, HxWx1, HxWx3 or HxWx4 uint8; any size) with corruption `name` at
    `severity` 1–5, as RGB uint8. Random corruptions draw from `np.random.default_rng(seed)`,
    or from `rng` when given (a seeded `RandomState` reproduces the reference's draws)."""
    if name not in CORRUPTIONS:
        known = ", ".join(NAMES)
        raise InputError(f"Unknown corruption '{str(name)[:40]}'.",
                         f"Available: {known}.")
    if severity not in SEVERITIES:
        raise InputError(f"Severity {severity!r} is not one of 1–5.")
    x = np.asarray(image)
    if x.dtype != np.uint8 or x.ndim not in (2, 3) or 0 in x.shape[:2] or \
            (x.ndim == 3 and x.shape[2] not in (1, 3, 4)):
        raise InputError("A corruption needs an 8-bit image with 1, 3 or 4 channels.")
    if x.ndim == 2:
        x = x[:, :, None]
    x = np.repeat(x, 3, axis=2) if x.shape[2] == 1 else x[:, :, :3]
    rng = np.random.default_rng(seed) if rng is None else rng
    out = CORRUPTIONS[name](np.ascontiguousarray(x), severity, rng)
    return np.uint8(out)


def conditions(names: list[str] | tuple[str, ...] | None = None,
               severities: str | list[int] | tuple[int, ...] | None = None,
               default: tuple[str, ...] = NAMES) -> tuple[tuple[str, int], ...]:
    """The (corruption, severity) pairs asked for: `names` (default `default`; each one of
    the 19, each once) times `severities` (default 1-5; "1-5", "1,3,5" or a list)."""
    if names is not None and len(names) > 4 * len(NAMES):
        raise InputError(f"{len(names):,} corruptions asked for; there are {len(NAMES)}.")
    names = list(names) if names else list(default)
    for name in names:
        if name not in CORRUPTIONS:
            raise InputError(f"Unknown corruption '{str(name)[:40]}'.",
                             f"Available: {', '.join(NAMES)}.")
    return tuple((n, s) for n in dict.fromkeys(names) for s in parse_severities(severities))


def parse_severities(text: str | list[int] | tuple[int, ...] | None) -> tuple[int, ...]:
    """Severities written as "1-5", "2", "1,3,5" (or given as a list): each from 1 to 5."""
    if text is None:
        return SEVERITIES
    if isinstance(text, str):
        parts: list[int] = []
        for part in text.replace(" ", "").split(","):
            m = re.fullmatch(r"(\d)(?:-(\d))?", part)
            if not m:
                raise InputError(f"Severities '{text[:40]}' are not like 1-5 or 1,3,5.")
            lo, hi = int(m[1]), int(m[2] or m[1])
            parts += range(lo, hi + 1) if lo <= hi else [0]
        text = parts
    values = sorted(set(text))
    if not values or any(isinstance(s, bool) or s not in SEVERITIES for s in values):
        raise InputError(f"Severities must be from 1 to 5; got {list(text)[:10]}.")
    return tuple(int(s) for s in values)


def load(path, name: str = "", severity: int = 0, seed: int = 0):
    """The image file at `path`, read as every upload is (`images.load_image`: validated,
    RGB), then corrupted with `name` at `severity`; no corruption (`name` empty): the clean
    image as read. A PIL image either way, as detectors take it. `seed`: any integer (an
    image id)."""
    from PIL import Image

    from lib.media.images import load_image
    image = load_image(path).image
    return Image.fromarray(corrupt(np.asarray(image), name, severity, seed=seed % 2**32)) \
        if name else image
