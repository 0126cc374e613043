"""The image intake, one row per kind of input a user may upload."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from lib.media.images import ImageError, load_image


def _save(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _rgb(size=(8, 6), color=(200, 30, 40)):
    return Image.new("RGB", size, color)


def _exif_rotated_jpeg() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    return _save(_rgb((20, 10)), "JPEG", exif=exif.tobytes())


def _animated_gif() -> bytes:
    frames = [_rgb(color=(255, 0, 0)), _rgb(color=(0, 0, 255))]
    return _save(frames[0], "GIF", save_all=True, append_images=frames[1:])


def _png_16bit() -> bytes:
    return _save(Image.fromarray(np.full((4, 4), 65535, dtype=np.uint16)), "PNG")


def _tiff_float() -> bytes:
    return _save(Image.fromarray(np.full((4, 4), 0.5, dtype=np.float32), mode="F"), "TIFF")


def _palette_transparent() -> bytes:
    img = Image.new("P", (4, 4), 0)
    img.putpalette([0, 0, 0] + [255, 0, 0] * 255)
    return _save(img, "PNG", transparency=0)


def _rgba_transparent() -> bytes:
    return _save(Image.new("RGBA", (4, 4), (10, 20, 30, 0)), "PNG")


def _bomb_png(width=100_000, height=100_000) -> bytes:
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


# (case id, bytes, expected size, expected centre pixel or None)
GOOD = [
    ("png", lambda: _save(_rgb(), "PNG"), (8, 6), (200, 30, 40)),
    ("jpeg", lambda: _save(_rgb(), "JPEG", quality=100), (8, 6), None),
    ("webp", lambda: _save(_rgb(), "WEBP", lossless=True), (8, 6), (200, 30, 40)),
    ("bmp", lambda: _save(_rgb(), "BMP"), (8, 6), (200, 30, 40)),
    ("tiff", lambda: _save(_rgb(), "TIFF"), (8, 6), (200, 30, 40)),
    ("gif-first-frame", _animated_gif, (8, 6), (255, 0, 0)),
    ("exif-orientation", _exif_rotated_jpeg, (10, 20), None),
    ("cmyk", lambda: _save(Image.new("CMYK", (4, 4), (0, 0, 0, 0)), "JPEG", quality=100),
     (4, 4), (255, 255, 255)),
    ("16-bit", _png_16bit, (4, 4), (255, 255, 255)),
    ("float", _tiff_float, (4, 4), (128, 128, 128)),
    ("palette-transparency", _palette_transparent, (4, 4), (255, 255, 255)),
    ("rgba-alpha", _rgba_transparent, (4, 4), (255, 255, 255)),
    ("grayscale", lambda: _save(Image.new("L", (4, 4), 77), "PNG"), (4, 4), (77, 77, 77)),
    ("gray-alpha", lambda: _save(Image.new("LA", (4, 4), (77, 255)), "PNG"), (4, 4), (77, 77, 77)),
]


@pytest.mark.parametrize("case,make,size,pixel", GOOD, ids=[g[0] for g in GOOD])
def test_accepted_inputs_become_rgb(case, make, size, pixel):
    out = load_image(make(), name=f"{case}.img")
    assert out.image.mode == "RGB"
    assert out.size == size
    if pixel is not None:
        w, h = out.size
        assert out.image.getpixel((w // 2, h // 2)) == pixel
    assert len(out.sha256) == 64


def _truncated_jpeg() -> bytes:
    data = _save(Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3),
                                                                     dtype=np.uint8)), "JPEG")
    return data[: len(data) // 2]


BAD = [
    ("zero-byte", lambda: b"", "empty"),
    ("truncated", _truncated_jpeg, "truncated or corrupt"),
    ("corrupt", lambda: b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "corrupt"),
    ("text", lambda: b"hello, this is a text file\n", "text file"),
    ("html", lambda: b"<!DOCTYPE html><html><body>hi</body></html>", "HTML page"),
    ("svg", lambda: b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"></svg>',
     "SVG"),
    ("json-renamed", lambda: b'{"not": "an image"}', "JSON"),
    ("random-binary", lambda: bytes([0, 159, 146, 150]) * 64, "not an image"),
    ("other-format", lambda: _save(_rgb(), "ICO"), "ICO image"),
    ("decompression-bomb", _bomb_png, "decompression bomb"),
]


@pytest.mark.parametrize("case,make,message", BAD, ids=[b[0] for b in BAD])
def test_refused_inputs_say_what_was_wrong(case, make, message):
    with pytest.raises(ImageError, match=message) as info:
        load_image(make(), name=f"{case}.png")
    assert f"{case}.png" in str(info.value)


def test_pixel_limit_is_configurable():
    data = _save(_rgb((100, 100)), "PNG")
    assert load_image(data, max_pixels=10_000).size == (100, 100)
    with pytest.raises(ImageError, match="over the limit"):
        load_image(data, max_pixels=9_999)


def test_path_input_and_missing_file(tmp_path):
    path = tmp_path / "x.png"
    path.write_bytes(_save(_rgb(), "PNG"))
    assert load_image(path).name == "x.png"
    with pytest.raises(ImageError, match="Cannot read"):
        load_image(tmp_path / "missing.png")


@pytest.mark.parametrize("shape,width,expect", [
    ((3, 20000, 3), 720, (1, 720, 3)),       # a strip: never 0 px high
    ((20000, 3, 3), 720, (20000, 3, 3)),     # narrower than the width: unchanged
    ((480, 1440, 3), 720, (240, 720, 3)),
])
def test_fit_width_keeps_a_pixel_of_height(shape, width, expect):
    from lib.media.images import fit_width
    assert fit_width(np.zeros(shape, np.uint8), width).shape == expect
