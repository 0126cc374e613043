"""The sweep and its flip points against classifying each corrupted image one by one, and
occlusion sensitivity against a patch-by-patch computation."""

import numpy as np
import pytest
import torch
from PIL import Image

from lib.classification import cam, classify, occlusion, whatif
from lib.media import corruptions
from tests.unit.classification.test_cam import tiny


@pytest.fixture(scope="module")
def model():
    return tiny("resnet18", classes=5, size=64)


@pytest.fixture(scope="module")
def photo():
    from skimage import data
    return Image.fromarray(data.chelsea()[::4, ::4])


def test_the_sweep_is_each_corrupted_image_classified_alone(model, photo):
    seen = []
    sw = whatif.sweep(model, photo, ["fog", "pixelate", "gaussian_noise"], "1,3,5",
                      progress=seen.append)
    clean = classify.classify(model, photo, 5)[0].best
    assert (sw.clean_index, sw.clean_label) == (clean.index, clean.label)
    for r, name in enumerate(sw.names):
        for c, s in enumerate(sw.severities):
            one = Image.fromarray(corruptions.corrupt(np.asarray(photo), name, s, 0))
            probs = classify.probabilities(model, classify.to_tensor(model, one))[0]
            assert sw.probability[r, c] == pytest.approx(probs[clean.index], abs=1e-5)
            assert sw.top1[r, c] == int(np.argmax(probs))
        flips = [s for c, s in enumerate(sw.severities) if sw.top1[r, c] != clean.index]
        assert sw.flip_points()[name] == (flips[0] if flips else None)
    assert seen[-1].done == 9 and len(sw.frame()) == 9
    assert sw.flip_rate == pytest.approx(np.mean(sw.top1 != clean.index))


def test_occlusion_map_is_the_mean_drop_under_each_patch(model, photo):
    tensor = classify.to_tensor(model, photo)
    heat = occlusion.sensitivity(model.model, tensor, 2, patch=16, stride=16)
    with torch.inference_mode():
        base = torch.softmax(model.model(tensor), -1)[0, 2].item()
        want = np.zeros((64, 64))
        for y in range(0, 64, 16):
            for x in range(0, 64, 16):
                t = tensor.clone()
                t[0, :, y:y + 16, x:x + 16] = 0
                want[y:y + 16, x:x + 16] = base - torch.softmax(model.model(t), -1)[0, 2].item()
    want = np.clip(want, 0, None)
    assert np.allclose(heat, want / want.max(), atol=1e-4)


def test_occlusion_is_a_ranked_method_for_every_model(model, photo):
    assert "Occlusion" in cam.applicable(model.model)
    done = cam.explain(model, photo, "Occlusion", 1)
    assert done.heatmap.shape == (64, 64) and 0 <= done.heatmap.min() <= done.heatmap.max() <= 1


@pytest.mark.parametrize("shape", [(1, 1), (20000, 3, 3), (40, 30, 4), (40, 30)])
def test_odd_images_sweep_without_error(model, shape):
    """1×1, 20000×3, RGBA and grayscale: every corruption runs; the sweep classifies them."""
    x = np.random.default_rng(0).integers(0, 255, shape, dtype=np.uint8)
    for name in corruptions.NAMES:
        assert corruptions.corrupt(x, name, 5).shape == (*shape[:2], 3)
    sw = whatif.sweep(model, Image.fromarray(x).convert("RGB"), ["glass_blur", "zoom_blur"], "5")
    assert sw.probability.shape == (2, 1)


def test_a_billion_corruptions_are_refused_at_once():
    from lib.core.errors import InputError

    class Huge(list):
        def __len__(self):
            return 10**9
    with pytest.raises(InputError, match="1,000,000,000 corruptions"):
        corruptions.conditions(Huge(["fog"]))
