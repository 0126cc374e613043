"""CAMs: equality with pytorch_grad_cam, target layers, thread safety, real-weight checks."""

import threading

import numpy as np
import pytest
import timm
import torch
from PIL import Image

from lib.classification import cam, classify
from lib.core.errors import ExplainError
from lib.models import registry

FAST = sorted(cam.FAST_METHODS)


def tiny(arch: str, classes: int = 10, size: int = 64):
    torch.manual_seed(0)
    model = timm.create_model(arch, pretrained=False, num_classes=classes)
    pre = registry.Preprocess(input_size=(3, size, size), mean=(0.5,) * 3, std=(0.5,) * 3)
    return registry.from_module(model, [f"c{i}" for i in range(classes)], name=arch,
                                preprocess=pre)


@pytest.fixture(scope="module")
def lite0():
    return registry.build(registry.find(registry.DEFAULT_CLASSIFIER), device="cpu")


@pytest.fixture(scope="module")
def photos():
    from skimage import data
    return {n: Image.fromarray(getattr(data, n)()) for n in ("chelsea", "coffee", "astronaut",
                                                             "rocket")}


@pytest.mark.parametrize("arch,size", [("test_efficientnet", 64), ("test_vit", 160),
                                       ("resnet18", 64)])
@pytest.mark.parametrize("method", FAST)
def test_heatmaps_equal_pytorch_grad_cam(arch, size, method):
    lm = tiny(arch, size=size)
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(1))
    layer = cam.default_target_layer(lm.model)
    ours = cam.compute_cam(lm, x, method, target_index=3, layer_name=layer)
    ref = cam.library_cam(lm, x, method, 3, layer)
    assert ours.heatmap.shape == (size, size) == ref.shape
    assert np.abs(ours.heatmap - ref).max() <= 1e-5
    assert ours.heatmap.max() > 0.99 or ours.heatmap.max() == 0  # scaled to [0, 1]
    assert all(not p.requires_grad for p in lm.model.parameters())  # frozen afterwards


LIBRARY = ["ShapleyCAM", "FinerCAM", "RefineCAM", "FullGrad"]


@pytest.mark.parametrize("method", LIBRARY)
def test_library_path_methods_equal_pytorch_grad_cam(method):
    lm = tiny("test_efficientnet", size=64)
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    layer = cam.default_target_layer(lm.model)
    ours = cam.compute_cam(lm, x, method, target_index=2, layer_name=layer).heatmap
    ref = cam.library_cam(lm, x, method, 2, layer)
    assert ours.shape == (64, 64) and np.abs(ours - ref).max() <= 1e-5
    assert all(not p.requires_grad for p in lm.model.parameters())
    assert not any(m._forward_hooks or m._backward_hooks for m in lm.model.modules())


def test_options_reach_the_library_and_bad_values_are_refused():
    lm = tiny("test_efficientnet", size=64)
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(4))
    layer = cam.default_target_layer(lm.model)
    rbf = cam.compute_cam(lm, x, "KPCA-CAM", 1, layer, options={"kernel": "rbf"}).heatmap
    assert np.abs(rbf - cam.library_cam(lm, x, "KPCA-CAM", 1, layer, options={
        "kernel": "rbf"})).max() <= 1e-5
    assert not np.array_equal(rbf, cam.compute_cam(lm, x, "KPCA-CAM", 1, layer).heatmap)
    fem = cam.compute_cam(lm, x, "FEM", 1, layer, options={"k": 0.5}).heatmap
    assert np.abs(fem - cam.library_cam(lm, x, "FEM", 1, layer, options={"k": 0.5})).max() <= 1e-5
    with pytest.raises(ExplainError, match="must be one of"):
        cam.compute_cam(lm, x, "KPCA-CAM", 1, layer, options={"kernel": "<b>x</b>"})
    with pytest.raises(ExplainError, match="between"):
        cam.compute_cam(lm, x, "FEM", 1, layer, options={"k": 1e9})


def test_every_installed_class_is_offered_and_a_missing_one_is_hidden(monkeypatch):
    import pytorch_grad_cam
    names = {m.cls for m in cam.CATALOGUE if m.cls}
    library = {n for n in dir(pytorch_grad_cam) if n.endswith(("CAM", "_CAM", "Grad", "FEM",
                                                               "SESS"))}
    # every CAM class of the installed library is in the catalogue (RandomCAM is the baseline)
    assert library - names <= {"RandomCAM", "AblationCAM"} | names
    assert set(cam.installed()) == {m.name for m in cam.CATALOGUE}
    monkeypatch.delattr(pytorch_grad_cam, "ShapleyCAM")
    assert "ShapleyCAM" not in cam.installed()
    assert "ShapleyCAM" not in cam.applicable(tiny("test_efficientnet").model)
    with pytest.raises(ExplainError, match="Unknown CAM method"):
        cam.method("ShapleyCAM")


def test_hostile_method_class_and_models_get_clear_messages():
    lm = tiny("test_efficientnet")
    x = torch.randn(1, 3, 64, 64)
    with pytest.raises(ExplainError, match="Unknown CAM method 'that name'"):
        cam.compute_cam(lm, x, "<script>alert(1)</script>" * 3, 0)
    with pytest.raises(ExplainError, match="out of range"):
        cam.compute_cam(lm, x, "GradCAM", 10)
    with pytest.raises(ExplainError, match="out of range"):
        cam.compute_cam(lm, x, "GradCAM", -1)
    with pytest.raises(ExplainError, match="no layer named '<b>'"):
        cam.compute_cam(lm, x, "GradCAM", 0, "<b>")
    mlp = registry.from_module(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3)),
                               ["a", "b", "c"], preprocess=registry.Preprocess(
                                   input_size=(3, 2, 2), mean=(0.5,) * 3, std=(0.5,) * 3))
    assert cam.applicable(mlp.model) == []
    with pytest.raises(ExplainError, match="No convolutional or transformer layer"):
        cam.compute_cam(mlp, torch.randn(1, 3, 2, 2), "GradCAM", 0)


def test_applicable_methods_follow_the_architecture():
    cnn = cam.applicable(tiny("test_efficientnet").model)
    vit = cam.applicable(tiny("test_vit", size=160).model)
    assert "Attention rollout" in vit and "Attention rollout" not in cnn
    assert "FullGrad" in cnn and "FullGrad" not in vit
    assert set(cam.FAST_METHODS) <= set(cnn) & set(vit)


def test_gradient_free_library_methods_run_on_frozen_model():
    lm = tiny("test_efficientnet", classes=4, size=32)
    x = torch.randn(1, 3, 32, 32)
    import pytorch_grad_cam
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    layer = cam.get_layer(lm.model, cam.default_target_layer(lm.model))
    for method in ("ScoreCAM", "AblationCAM"):
        out = cam.compute_cam(lm, x, method, target_index=1)
        assert out.heatmap.shape == (32, 32) and np.isfinite(out.heatmap).all()
        # Lens' smaller batches give the library's own map (its default batch sizes)
        with getattr(pytorch_grad_cam, method)(lm.model, [layer]) as ref:
            expected = ref(input_tensor=x, targets=[ClassifierOutputTarget(1)])[0]
        assert np.abs(out.heatmap - expected).max() <= 1e-5
    assert all(not p.requires_grad for p in lm.model.parameters())


@pytest.mark.parametrize("arch,expected", [
    ("tf_efficientnet_lite0", "conv_head"), ("resnet18", "layer4"),
    ("convnext_atto", "stages.3"), ("test_vit", "blocks.5.norm1"),
    ("deit_tiny_patch16_224", "blocks.11.norm1"),
    ("swin_tiny_patch4_window7_224", "layers.3.blocks.1.norm1"),
])
def test_default_target_layer(arch, expected):
    model = timm.create_model(arch, pretrained=False)
    assert cam.default_target_layer(model) == expected
    assert cam.layer_choices(model)[0] == expected


def test_swin_reshape_gives_equal_heatmaps():
    lm = tiny("swin_tiny_patch4_window7_224", size=224)
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(2))
    layer = cam.default_target_layer(lm.model)
    ours = cam.compute_cam(lm, x, "GradCAM", 2, layer).heatmap
    assert np.abs(ours - cam.library_cam(lm, x, "GradCAM", 2, layer)).max() <= 1e-5


def test_unknown_layer_and_method_are_clear():
    lm = tiny("test_efficientnet")
    x = torch.randn(1, 3, 64, 64)
    with pytest.raises(ExplainError, match="no layer named 'nope'"):
        cam.compute_cam(lm, x, "GradCAM", 0, "nope")
    with pytest.raises(ExplainError, match="Unknown CAM method"):
        cam.compute_cam(lm, x, "MagicCAM", 0)


def test_eight_threads_get_what_each_gets_alone():
    lm = tiny("test_efficientnet", size=64)
    lock = threading.RLock()
    gen = torch.Generator().manual_seed(5)
    jobs = [(torch.randn(1, 3, 64, 64, generator=gen), i % 10, m)
            for i, m in enumerate(["GradCAM", "GradCAM++", "LayerCAM", "HiResCAM"] * 2)]
    alone = [cam.compute_cam(lm, x, m, t, lock=lock).heatmap for x, t, m in jobs]
    together: dict[int, np.ndarray] = {}
    barrier = threading.Barrier(len(jobs))

    def work(i):
        x, t, m = jobs[i]
        barrier.wait()
        for _ in range(3):
            together[i] = cam.compute_cam(lm, x, m, t, lock=lock).heatmap

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(jobs))]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for i, ref in enumerate(alone):
        assert np.array_equal(together[i], ref)
    assert not lm.model._forward_hooks and not any(m._forward_hooks for m in lm.model.modules())


def test_real_weights_cat_and_coffee(lite0, photos):
    cat = classify.classify(lite0, photos["chelsea"], k=3)[0]
    assert {"tiger cat", "Egyptian cat", "tabby, tabby cat"} & {p.label for p in cat.top}
    coffee = classify.classify(lite0, photos["coffee"], k=1)[0]
    assert coffee.best.label == "espresso" and coffee.best.probability > 0.9


def test_real_cat_cam_peaks_on_the_head(lite0, photos):
    """Map the CAM peak back to the original photo: it must fall on the cat's face."""
    image = photos["chelsea"]                       # 451 x 300
    ex = cam.explain(lite0, image, "GradCAM", target_index=285)
    assert ex.target_label == "Egyptian cat"
    row, col = np.unravel_index(np.argmax(ex.heatmap), ex.heatmap.shape)
    # timm eval transform: resize the short side to 224 / crop_pct, then centre-crop 224.
    scale = image.height / (224 / lite0.preprocess.crop_pct)
    x0 = (image.width - 224 * scale) / 2
    y0 = (image.height - 224 * scale) / 2
    x, y = x0 + col * scale, y0 + row * scale
    face = (100, 50, 350, 290)                      # eyes, cheeks, nose and mouth
    assert face[0] <= x <= face[2] and face[1] <= y <= face[3], (x, y)


def test_overlay_blends():
    rgb = np.zeros((4, 4, 3), np.uint8)
    heat = np.ones((4, 4), np.float32)
    assert np.array_equal(cam.overlay(rgb, heat, "jet", 0.0), rgb)
    full = cam.overlay(rgb, heat, "jet", 1.0)
    assert full.shape == (4, 4, 3) and full[..., 0].mean() > 100  # jet's hot end is red
