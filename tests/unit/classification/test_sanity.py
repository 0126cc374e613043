"""Sanity checks: cascading model randomisation and data randomisation (Adebayo et al.)."""

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.stats import spearmanr
from skimage import data
from skimage.metrics import structural_similarity

from lib.classification import cam, classify, sanity
from lib.models import registry
from tests.unit.classification.test_cam import tiny


def test_steps_go_from_the_classifier_down():
    lm = tiny("test_efficientnet")
    order = sanity.steps(lm.model)
    assert order[0] == "classifier" and order[-1] == "conv_stem"
    assert order.index("conv_head") < order.index("blocks.0")
    vit = sanity.steps(tiny("test_vit", size=160).model)
    assert vit[:2] == ["head", "norm"] and "patch_embed" in vit and "pos_embed" in vit


def test_similarity_is_spearman_and_ssim():
    rng = np.random.default_rng(0)
    a, b = rng.random((56, 56), dtype=np.float32), rng.random((56, 56), dtype=np.float32)
    rho, ssim = sanity.similarity(a, b)
    assert rho == pytest.approx(spearmanr(a.ravel(), b.ravel()).statistic)
    assert ssim == pytest.approx(structural_similarity(a, b, data_range=1.0))
    assert sanity.similarity(a, a) == pytest.approx((1.0, 1.0))
    assert all(np.isnan(sanity.similarity(a, np.zeros_like(a))))
    assert all(np.isnan(sanity.similarity(None, a)))


def test_cascade_leaves_the_model_alone_and_destroys_gradient_maps():
    lm = tiny("test_efficientnet", size=64)
    before = {k: v.clone() for k, v in lm.model.state_dict().items()}
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    seen = []
    casc = sanity.model_randomisation(lm, x, ["GradCAM", "EigenCAM"], 2, "conv_head",
                                      progress=seen.append)
    assert all(torch.equal(before[k], v) for k, v in lm.model.state_dict().items())
    assert [s.randomised for s in casc.steps] == sanity.steps(lm.model)
    assert seen[-1].done == len(casc.steps)
    again = sanity.model_randomisation(lm, x, ["GradCAM"], 2, "conv_head")
    assert np.array_equal(again.steps[-1].maps["GradCAM"], casc.steps[-1].maps["GradCAM"])
    rows = casc.rows()
    assert len(rows) == 2 * len(casc.steps) and {"spearman", "ssim"} <= set(rows[0])


def test_a_model_independent_map_is_flagged():
    """A 'method' that returns the same map whatever the model is what the check must catch."""
    same = np.linspace(0, 1, 64 * 64, dtype=np.float32).reshape(64, 64)
    noise = np.random.default_rng(1).random((64, 64), dtype=np.float32)
    step = sanity.Step("classifier", {"edges": same, "GradCAM": noise},
                       *[dict(zip(("edges", "GradCAM"), v)) for v in zip(
                           sanity.similarity(same, same), sanity.similarity(same, noise))])
    casc = sanity.Cascade(("edges", "GradCAM"), {"edges": same, "GradCAM": same}, (step,))
    assert casc.still_similar() == ["edges"]


@pytest.fixture(scope="module")
def demo():
    return registry.build(registry.find("demo-classifier"), device="cpu")


def test_demo_pack_twin_trained_on_shuffled_labels(demo):
    specs = registry.all_specs("classification")
    twin_name = sanity.shuffled_twin(demo.spec, specs)
    assert twin_name == "demo-classifier-shuffled"
    twin = registry.build(registry.find(twin_name), device="cpu")
    assert twin.spec.manifest["metrics"]["train_accuracy_on_shuffled_labels"] >= 0.95
    assert twin.spec.manifest["metrics"]["val_accuracy"] < 0.5      # it learned noise
    x = classify.to_tensor(demo, Image.fromarray(data.astronaut()).resize((128, 128)))
    result = sanity.data_randomisation(demo, twin, x, ["GradCAM", "EigenCAM"], 0,
                                       cam.default_target_layer(demo.model))
    assert set(result.spearman) == {"GradCAM", "EigenCAM"}
    assert all(-1 <= v <= 1 for v in result.spearman.values() if np.isfinite(v))
