"""What-if edits against the libraries' own operations, and odd settings refused."""

import io

import numpy as np
import pytest
from PIL import Image

from lib.core.errors import InputError
from lib.media.edits import Edit, apply


@pytest.fixture
def photo():
    from skimage import data
    return data.astronaut()[::2, ::3]          # 256 x 171: not square


def test_identity_returns_the_image(photo):
    assert Edit().identity and np.array_equal(apply(photo, Edit()), photo)
    assert np.array_equal(apply(Image.fromarray(photo), Edit()), photo)


def test_each_edit_matches_the_plain_operation(photo):
    assert np.array_equal(apply(photo, Edit(flip=True)), photo[:, ::-1])
    h, w = photo.shape[:2]
    ch, cw = round(h * 0.5), round(w * 0.5)
    assert np.array_equal(apply(photo, Edit(crop=0.5)),
                          photo[(h - ch) // 2:(h - ch) // 2 + ch, (w - cw) // 2:(w - cw) // 2 + cw])
    buf = io.BytesIO()
    Image.fromarray(photo).save(buf, format="JPEG", quality=20)
    assert np.array_equal(apply(photo, Edit(jpeg=20)), np.asarray(Image.open(buf)))
    bright = apply(photo, Edit(brightness=1.5))
    assert np.array_equal(bright, np.clip(photo.astype(np.float32) * 1.5, 0, 255).astype(np.uint8))
    assert apply(photo, Edit(scale=0.5)).shape[:2] == (round(h * 0.5), round(w * 0.5))
    turned = apply(photo, Edit(rotate=180))
    assert np.array_equal(turned, photo[::-1, ::-1])       # about the centre pixel


def test_the_patch_covers_where_it_was_placed(photo):
    out = apply(photo, Edit(patch=(0.0, 0.0), patch_size=0.2))     # a corner: clipped inside
    side = round(min(photo.shape[:2]) * 0.2)
    assert (out[:side // 2, :side // 2] == 128).all()
    assert np.array_equal(out[side + 1:, side + 1:], photo[side + 1:, side + 1:])


@pytest.mark.parametrize("kwargs, message", [
    ({"rotate": float("nan")}, "rotate"), ({"scale": 0}, "scale"), ({"scale": 1e9}, "scale"),
    ({"crop": 1.5}, "crop"), ({"jpeg": 0}, "jpeg"), ({"brightness": -1}, "brightness"),
    ({"patch": (1.5, 0.5)}, "inside the image"), ({"patch": (float("nan"), 0)}, "inside"),
    ({"patch_size": 0}, "patch size"), ({"rotate": True}, "rotate")])
def test_odd_settings_are_refused_with_one_message(kwargs, message):
    with pytest.raises(InputError, match=message):
        Edit(**kwargs)


@pytest.mark.parametrize("shape", [(1, 1, 3), (20000, 3, 3), (5, 7)])
def test_tiny_and_huge_images(shape):
    x = np.full(shape, 200, np.uint8)
    if x.ndim == 2:
        x = np.stack([x] * 3, -1)
    out = apply(x, Edit(rotate=30, scale=4.0, crop=0.5, patch=(0.5, 0.5), jpeg=50))
    assert out.dtype == np.uint8 and out.ndim == 3 and max(out.shape[:2]) <= 8192
