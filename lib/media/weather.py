"""The weather corruptions of `lib.media.corruptions` (snow, frost, fog, spatter), each as the
reference computes it (`imagecorruptions` 1.1.2; tested against it). Frost blends in the
reference's own frost photos (Apache-2.0), read from its wheel kept beside this module
(`REFERENCE_WHEEL`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lib.core.errors import InputError
from lib.media.blurs import clipped_zoom, motion


def _plasma_fractal(rng, mapsize: int = 256, wibbledecay: float = 3) -> np.ndarray:
    """A square heightmap in [0, 1] by the diamond-square algorithm (`mapsize` a power of 2)."""
    maparray = np.empty((mapsize, mapsize), dtype=np.float64)
    maparray[0, 0] = 0
    stepsize, wibble = mapsize, 100.0

    def wibbledmean(array):
        return array / 4 + wibble * rng.uniform(-wibble, wibble, array.shape)

    while stepsize >= 2:
        half = stepsize // 2
        corners = maparray[0:mapsize:stepsize, 0:mapsize:stepsize]
        squares = corners + np.roll(corners, shift=-1, axis=0)
        squares += np.roll(squares, shift=-1, axis=1)
        maparray[half:mapsize:stepsize, half:mapsize:stepsize] = wibbledmean(squares)
        dr = maparray[half:mapsize:stepsize, half:mapsize:stepsize]
        ul = maparray[0:mapsize:stepsize, 0:mapsize:stepsize]
        lt = (dr + np.roll(dr, 1, axis=0)) + (ul + np.roll(ul, -1, axis=1))   # its order
        maparray[0:mapsize:stepsize, half:mapsize:stepsize] = wibbledmean(lt)
        tt = (dr + np.roll(dr, 1, axis=1)) + (ul + np.roll(ul, -1, axis=0))
        maparray[half:mapsize:stepsize, 0:mapsize:stepsize] = wibbledmean(tt)
        stepsize //= 2
        wibble /= wibbledecay
    maparray -= maparray.min()
    return maparray / maparray.max()


FOG_MAP_MAX = 2048     # the largest fog map drawn; a larger image gets it resized


def fog(x: np.ndarray, severity: int, rng) -> np.ndarray:
    """A fractal haze. As the reference up to `FOG_MAP_MAX` px a side; past it (where the
    reference's square map would take gigabytes) the map is drawn at that size and resized."""
    import cv2  # heavy: imported on first use
    c = [(1.5, 2), (2., 2), (2.5, 1.7), (2.5, 1.5), (3., 1.4)][severity - 1]
    h, w = x.shape[:2]
    side = int(max(x.shape))
    mapsize = max(2, 2 ** (side - 1).bit_length())
    haze = _plasma_fractal(rng, min(mapsize, FOG_MAP_MAX), c[1])
    haze = haze[:h, :w] if mapsize <= FOG_MAP_MAX else cv2.resize(haze, (w, h))
    x = x / 255.
    max_val = x.max()
    x = x + c[0] * haze[..., np.newaxis]
    return np.clip(x * max_val / (max_val + c[0]), 0, 1) * 255


FROST_FILES = ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg",
               "frost6.jpg")


#: the reference's own wheel (Apache-2.0, unchanged; installing it would pull in GUI OpenCV):
#: frost reads its photos from it, and the tests import the reference from it
REFERENCE_WHEEL = Path(__file__).with_name("imagecorruptions-1.1.2-py3-none-any.whl")


def frost_texture(index: int) -> np.ndarray:
    """The reference's frost photo `index` (BGR, as `cv2.imread` gives it)."""
    import zipfile

    import cv2  # heavy: imported on first use
    try:
        with zipfile.ZipFile(REFERENCE_WHEEL) as wheel:
            data = wheel.read(f"imagecorruptions/frost/{FROST_FILES[index]}")
    except (OSError, KeyError, zipfile.BadZipFile):
        raise InputError("The frost corruption's photos are missing.",
                         f"Restore {REFERENCE_WHEEL.name} in lib/media from git.") from None
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


def frost(x: np.ndarray, severity: int, rng) -> np.ndarray:
    import cv2  # heavy: imported on first use
    c = [(1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75)][severity - 1]
    idx = rng.randint(5) if hasattr(rng, "randint") else int(rng.integers(5))
    texture = frost_texture(int(idx))
    th, tw = texture.shape[:2]
    h, w = x.shape[:2]
    scale = max(1.0, h / th, w / tw) * 1.1
    texture = cv2.resize(texture, dsize=(int(np.ceil(tw * scale)), int(np.ceil(th * scale))),
                         interpolation=cv2.INTER_CUBIC)
    draw = rng.randint if hasattr(rng, "randint") else rng.integers
    top, left = draw(0, texture.shape[0] - h), draw(0, texture.shape[1] - w)
    texture = texture[top:top + h, left:left + w][..., [2, 1, 0]]
    return np.clip(c[0] * x + c[1] * texture, 0, 255)


def snow(x: np.ndarray, severity: int, rng) -> np.ndarray:
    import cv2  # heavy: imported on first use
    c = [(0.1, 0.3, 3, 0.5, 10, 4, 0.8), (0.2, 0.3, 2, 0.5, 12, 4, 0.7),
         (0.55, 0.3, 4, 0.9, 12, 8, 0.7), (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65),
         (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55)][severity - 1]
    x = np.array(x, dtype=np.float32) / 255.
    layer = rng.normal(size=x.shape[:2], loc=c[0], scale=c[1])
    layer = clipped_zoom(layer[..., np.newaxis], c[2])
    layer[layer < c[3]] = 0
    layer = np.clip(layer.squeeze(-1), 0, 1)
    layer = motion(layer, radius=c[4], sigma=c[5], angle=rng.uniform(-135, -45))
    layer = (np.round(layer * 255).astype(np.uint8) / 255.)[..., np.newaxis]
    layer = layer[:x.shape[0], :x.shape[1], :]
    gray = cv2.cvtColor(x, cv2.COLOR_RGB2GRAY).reshape(x.shape[0], x.shape[1], 1)
    x = c[6] * x + (1 - c[6]) * np.maximum(x, gray * 1.5 + 0.5)
    out = x.astype(np.float64)
    out[:layer.shape[0], :layer.shape[1]] += layer + np.rot90(layer, k=2)
    return np.clip(out, 0, 1) * 255


def spatter(x: np.ndarray, severity: int, rng) -> np.ndarray:
    import cv2  # heavy: imported on first use
    from skimage.filters import gaussian  # heavy: imported on first use
    c = [(0.65, 0.3, 4, 0.69, 0.6, 0), (0.65, 0.3, 3, 0.68, 0.6, 0),
         (0.65, 0.3, 2, 0.68, 0.5, 0), (0.65, 0.3, 1, 0.65, 1.5, 1),
         (0.67, 0.4, 1, 0.65, 1.5, 1)][severity - 1]
    x = np.array(x, dtype=np.float32) / 255.
    liquid = gaussian(rng.normal(size=x.shape[:2], loc=c[0], scale=c[1]), sigma=c[2])
    liquid[liquid < c[3]] = 0
    if c[5] == 0:                                             # water: pale turquoise
        liquid = (liquid * 255).astype(np.uint8)
        dist = cv2.distanceTransform(255 - cv2.Canny(liquid, 50, 150), cv2.DIST_L2, 5)
        _, dist = cv2.threshold(dist, 20, 20, cv2.THRESH_TRUNC)
        dist = cv2.equalizeHist(cv2.blur(dist, (3, 3)).astype(np.uint8))
        dist = cv2.filter2D(dist, cv2.CV_8U, np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]]))
        dist = cv2.blur(dist, (3, 3)).astype(np.float32)
        m = cv2.cvtColor(liquid * dist, cv2.COLOR_GRAY2BGRA)
        with np.errstate(invalid="ignore", divide="ignore"):  # no drop at all: 0/0
            m = np.nan_to_num(m / np.max(m, axis=(0, 1))) * c[4]
        color = np.concatenate([v / 255. * np.ones_like(m[..., :1]) for v in (175, 238, 238)],
                               axis=2)
        color = cv2.cvtColor(color, cv2.COLOR_BGR2BGRA)
        x = cv2.cvtColor(x, cv2.COLOR_BGR2BGRA)
        return cv2.cvtColor(np.clip(x + m * color, 0, 1), cv2.COLOR_BGRA2BGR) * 255
    m = gaussian(np.where(liquid > c[3], 1, 0).astype(np.float32), sigma=c[4])  # mud
    m[m < 0.8] = 0
    color = np.concatenate([v / 255. * np.ones(x.shape[:2] + (1,)) for v in (63, 42, 20)],
                           axis=2)
    color *= m[..., np.newaxis]
    x *= (1 - m[..., np.newaxis])
    return np.clip(x + color, 0, 1) * 255
