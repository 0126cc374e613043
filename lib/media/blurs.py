"""The blur corruptions of `lib.media.corruptions` (defocus, glass, motion, zoom, Gaussian) and
the kernels the weather ones share (`motion`, `clipped_zoom`), each as the reference computes
it (`imagecorruptions` 1.1.2; tested against it)."""

from __future__ import annotations

import math

import numpy as np


def _disk(radius: float, alias_blur: float = 0.1) -> np.ndarray:
    import cv2  # heavy: imported on first use
    if radius <= 8:
        span, ksize = np.arange(-8, 8 + 1), (3, 3)
    else:
        span, ksize = np.arange(-radius, radius + 1), (5, 5)
    xx, yy = np.meshgrid(span, span)
    disk = np.array((xx ** 2 + yy ** 2) <= radius ** 2, dtype=np.float32)
    disk /= np.sum(disk)
    return cv2.GaussianBlur(disk, ksize=ksize, sigmaX=alias_blur)


def defocus_blur(x: np.ndarray, severity: int, rng=None) -> np.ndarray:
    import cv2  # heavy: imported on first use
    c = [(3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)][severity - 1]
    kernel = _disk(radius=c[0], alias_blur=c[1])
    x = x / 255.
    out = np.stack([cv2.filter2D(x[:, :, d], -1, kernel) for d in range(3)], axis=2)
    return np.clip(out, 0, 1) * 255


def _swap_pixels(x: np.ndarray, moves: np.ndarray, delta: int) -> None:
    """The reference's local shuffle, in its order: each pixel (bottom-right first) takes the
    value of the one `moves` says (dx, dy) away. The reference means to swap the two, but its
    NumPy tuple assignment copies one way only; kept as it is so the figures agree with
    ImageNet-C's. Compiled (the reference's loop takes seconds per image)."""
    h, w = x.shape[:2]
    k = 0
    for _ in range(moves.shape[0] // max(1, (h - 2 * delta) * (w - 2 * delta))):
        for i in range(h - delta, delta, -1):
            for j in range(w - delta, delta, -1):
                i2, j2 = i + moves[k, 1], j + moves[k, 0]
                k += 1
                for ch in range(x.shape[2]):
                    x[i, j, ch] = x[i2, j2, ch]


def glass_blur(x: np.ndarray, severity: int, rng) -> np.ndarray:
    from skimage.filters import gaussian  # heavy: imported on first use
    sigma, delta, iterations = [(0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2),
                                (1.5, 4, 2)][severity - 1]
    x = np.uint8(gaussian(x / 255., sigma=sigma, channel_axis=-1) * 255)
    h, w = x.shape[:2]
    n = max(0, h - 2 * delta) * max(0, w - 2 * delta)
    draw = rng.randint if hasattr(rng, "randint") else rng.integers
    moves = np.concatenate([draw(-delta, delta, size=(n, 2)) for _ in range(iterations)]) \
        if n else np.zeros((0, 2), np.int64)
    _swapper()(x, moves.reshape(-1, 2).astype(np.int64), delta)
    return np.clip(gaussian(x / 255., sigma=sigma, channel_axis=-1), 0, 1) * 255


def _swapper():
    """`_swap_pixels` compiled once per process (numba, cached with Lens' caches)."""
    global _SWAP
    if _SWAP is None:
        from lib.core.compiled import njit
        _SWAP = njit(cache=True, nogil=True)(_swap_pixels)
    return _SWAP


_SWAP = None


def _shifted(image: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """`image` moved by (dx, dy), the edge row or column repeated into the gap."""
    out = image
    if dx < 0:
        out = np.roll(image, shift=image.shape[1] + dx, axis=1)
        out[:, dx:] = out[:, dx - 1:dx]
    elif dx > 0:
        out = np.roll(image, shift=dx, axis=1)
        out[:, :dx] = out[:, dx:dx + 1]
    if dy < 0:
        out = np.roll(out, shift=image.shape[0] + dy, axis=0)
        out[dy:, :] = out[dy - 1:dy, :]
    elif dy > 0:
        out = np.roll(out, shift=dy, axis=0)
        out[:dy, :] = out[dy:dy + 1, :]
    return out


def motion(x: np.ndarray, radius: int, sigma: float, angle: float) -> np.ndarray:
    """The image averaged along a line at `angle` with a half-Gaussian weight."""
    width = radius * 2 + 1
    kernel = np.exp(-np.arange(width) ** 2 / (2 * sigma ** 2)) / (np.sqrt(2 * np.pi) * sigma)
    kernel = kernel / np.sum(kernel)
    point = (width * np.sin(np.deg2rad(angle)), width * np.cos(np.deg2rad(angle)))
    hypot = math.hypot(point[0], point[1])
    blurred = np.zeros_like(x, dtype=np.float32)
    for i in range(width):
        dy = -math.ceil(((i * point[0]) / hypot) - 0.5)
        dx = -math.ceil(((i * point[1]) / hypot) - 0.5)
        if abs(dy) >= x.shape[0] or abs(dx) >= x.shape[1]:
            break                                   # the motion left the image
        blurred = blurred + kernel[i] * _shifted(x, dx, dy)
    return blurred


def motion_blur(x: np.ndarray, severity: int, rng) -> np.ndarray:
    c = [(10, 3), (15, 5), (15, 8), (15, 12), (20, 15)][severity - 1]
    angle = rng.uniform(-45, 45)
    return np.clip(motion(x, radius=c[0], sigma=c[1], angle=angle), 0, 255)


def clipped_zoom(img: np.ndarray, factor: float) -> np.ndarray:
    from scipy.ndimage import zoom  # heavy: imported on first use
    h = int(np.ceil(img.shape[0] / float(factor)))
    w = int(np.ceil(img.shape[1] / float(factor)))
    top, left = (img.shape[0] - h) // 2, (img.shape[1] - w) // 2
    return zoom(img[top:top + h, left:left + w], (factor, factor, 1), order=1)


def zoom_blur(x: np.ndarray, severity: int, rng=None) -> np.ndarray:
    c = [np.arange(1, 1.11, 0.01), np.arange(1, 1.16, 0.01), np.arange(1, 1.21, 0.02),
         np.arange(1, 1.26, 0.02), np.arange(1, 1.31, 0.03)][severity - 1]
    from concurrent.futures import ThreadPoolExecutor
    x = (x / 255.).astype(np.float32)
    out = np.zeros_like(x)
    with ThreadPoolExecutor(2, thread_name_prefix="lens-zoom") as pool:   # SciPy frees the GIL
        layers = pool.map(lambda f: clipped_zoom(x, f)[:x.shape[0], :x.shape[1], :], c)
        for layer in layers:                  # summed in order: the reference's result
            out[:layer.shape[0], :layer.shape[1]] += layer
    return np.clip((x + out) / (len(c) + 1), 0, 1) * 255


def gaussian_blur(x: np.ndarray, severity: int, rng=None) -> np.ndarray:
    from skimage.filters import gaussian  # heavy: imported on first use
    c = [1, 2, 3, 4, 6][severity - 1]
    return np.clip(gaussian(x / 255., sigma=c, channel_axis=-1), 0, 1) * 255
