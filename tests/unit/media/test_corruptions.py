"""Lens' corruptions against the reference, `imagecorruptions` 1.1.2 itself (test-only shims
for what changed since its release: `pkg_resources`, scikit-image's `multichannel`,
NumPy's `np.float_`): equal outputs for the deterministic corruptions, equal outputs for the
random ones given the same draws (the reference draws from NumPy's global state; Lens from the
`RandomState` it is handed, seeded alike), and for salt-and-pepper noise, whose draws
scikit-image makes itself, the same share and kind of changed pixels."""

import numpy as np
import pytest

from lib.core.errors import InputError
from lib.media import corruptions
from tests.helpers import imagecorruptions_reference


@pytest.fixture(scope="module")
def reference():
    return imagecorruptions_reference()


@pytest.fixture(scope="module")
def photo():
    """A real photo (scikit-image's), 120×160, with its own edges and flat areas."""
    from PIL import Image
    from skimage import data
    return np.asarray(Image.fromarray(data.astronaut()).resize((160, 120)))


DETERMINISTIC = ["defocus_blur", "zoom_blur", "brightness", "contrast", "pixelate",
                 "jpeg_compression", "gaussian_blur", "saturate"]
SAME_DRAWS = ["gaussian_noise", "shot_noise", "speckle_noise", "motion_blur", "glass_blur",
              "snow", "frost", "fog", "spatter", "elastic_transform"]


@pytest.mark.parametrize("severity", corruptions.SEVERITIES)
@pytest.mark.parametrize("name", DETERMINISTIC)
def test_a_deterministic_corruption_equals_the_reference(reference, photo, name, severity):
    ours = corruptions.corrupt(photo, name, severity)
    theirs = reference(photo, severity=severity, corruption_name=name)
    assert ours.shape == theirs.shape and ours.dtype == np.uint8
    assert np.array_equal(ours, theirs)


@pytest.mark.parametrize("severity", corruptions.SEVERITIES)
@pytest.mark.parametrize("name", SAME_DRAWS)
def test_a_random_corruption_equals_the_reference_given_the_same_draws(reference, photo,
                                                                      name, severity):
    np.random.seed(severity)
    theirs = reference(photo, severity=severity, corruption_name=name)
    ours = corruptions.corrupt(photo, name, severity, rng=np.random.RandomState(severity))
    assert np.array_equal(ours, theirs)
    assert not np.array_equal(ours, photo)


@pytest.mark.parametrize("severity", corruptions.SEVERITIES)
def test_salt_and_pepper_changes_as_many_pixels_the_same_way(reference, photo, severity):
    """The share of values changed agrees within what two independent draws of that many
    values can differ by (6 standard deviations of the difference of two binomial shares);
    the reference draws from numpy's global generator, seeded here so the test repeats."""
    ours = corruptions.corrupt(photo, "impulse_noise", severity, seed=3)
    np.random.seed(severity)
    theirs = reference(photo, severity=severity, corruption_name="impulse_noise")
    share_ours, share_theirs = (np.mean(out != photo) for out in (ours, theirs))
    sd = np.sqrt(2 * share_theirs * (1 - share_theirs) / photo.size)
    assert abs(share_ours - share_theirs) <= 6 * sd
    for out in (ours, theirs):                 # every changed value is black or white
        assert set(np.unique(out[out != photo])) <= {0, 255}


def test_seeded_corruptions_repeat_and_differ_by_seed(photo):
    for name in ("gaussian_noise", "impulse_noise", "motion_blur", "glass_blur", "frost"):
        a, b = (corruptions.corrupt(photo, name, 3, seed=7) for _ in range(2))
        assert np.array_equal(a, b)
        assert not np.array_equal(a, corruptions.corrupt(photo, name, 3, seed=8))


@pytest.mark.parametrize("shape", [(1, 1, 3), (5, 7), (31, 2, 1), (40, 33, 4),
                                   pytest.param((20000, 3), marks=pytest.mark.slow)])
def test_any_image_size_and_channels_the_reference_refuses(shape):
    image = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    for name in corruptions.NAMES:
        out = corruptions.corrupt(image, name, 5)
        assert out.shape == (*shape[:2], 3) and out.dtype == np.uint8


def test_bad_input_is_a_clear_message(photo):
    with pytest.raises(InputError, match="Unknown corruption"):
        corruptions.corrupt(photo, "<b>hail</b>", 1)
    for severity in (0, 6, float("nan"), "3"):
        with pytest.raises(InputError, match="1–5"):
            corruptions.corrupt(photo, "contrast", severity)
    with pytest.raises(InputError, match="8-bit"):
        corruptions.corrupt(photo.astype(np.float32), "contrast", 1)
    with pytest.raises(InputError, match="8-bit"):
        corruptions.corrupt(np.zeros((0, 4, 3), np.uint8), "contrast", 1)


def test_the_protocol_names_match_the_reference_s(reference):
    from imagecorruptions import get_corruption_names
    assert tuple(get_corruption_names("all")) == corruptions.PROTOCOL
    assert tuple(get_corruption_names("validation")) == corruptions.HELD_OUT
    assert set(corruptions.CORRUPTIONS) == set(corruptions.NAMES) == set(corruptions.PROTOCOL)
