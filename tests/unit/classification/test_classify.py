"""Classifiers: top-k, indoor/outdoor, folder evaluation and its bad inputs."""

import io
import zipfile

import numpy as np
import pytest
import timm
from PIL import Image

from lib.classification import classify
from lib.classification.classify import DatasetError
from lib.models import registry


@pytest.fixture(scope="module")
def lite0():
    return registry.build(registry.find(registry.DEFAULT_CLASSIFIER), device="cpu")


@pytest.fixture
def labelled_folder(tmp_path):
    """tiger cat/chelsea (right), espresso/coffee (right), tabby/chelsea (wrong, top-5 right),
    plus a corrupt file that must be skipped and counted."""
    from skimage import data
    root = tmp_path / "photos"
    for cls, name, arr in [("tiger cat", "chelsea.png", data.chelsea()),
                           ("espresso", "coffee.png", data.coffee()),
                           ("tabby", "chelsea2.png", data.chelsea())]:
        (root / cls).mkdir(parents=True, exist_ok=True)
        Image.fromarray(arr).save(root / cls / name)
    (root / "espresso" / "broken.jpg").write_bytes(b"\xff\xd8\xff" + b"\0" * 10)
    return root


def test_topk_is_sorted_and_sums_below_one(lite0):
    from skimage import data
    result = classify.classify(lite0, Image.fromarray(data.astronaut()), k=5)[0]
    probs = [p.probability for p in result.top]
    assert len(probs) == 5 and probs == sorted(probs, reverse=True) and sum(probs) <= 1.0 + 1e-6
    assert result.indoor_outdoor is None  # ImageNet model: no scene type


def test_indoor_outdoor_from_places_table():
    labels = [f"c{i}" for i in range(12)]
    io_flags = tuple(["outdoor"] * 6 + ["indoor"] * 6)
    lm = registry.from_module(timm.create_model("test_efficientnet", num_classes=12), labels)
    lm.spec = registry.ModelSpec(**{**lm.spec.__dict__, "indoor_outdoor": io_flags})
    probs = np.array([0.5] + [0.05] * 10 + [0.0])  # top-10 = classes 0..9: 6 outdoor, 4 indoor
    assert classify.top_k(lm, probs / probs.sum(), 3).indoor_outdoor == "outdoor"


def test_evaluation_numbers_and_determinism(lite0, labelled_folder):
    items = classify.find_labelled_images(labelled_folder)
    assert len(items) == 4
    seen = []
    first = classify.evaluate(lite0, items, batch_size=2,
                              progress=lambda p: seen.append((p.done, p.total)))
    second = classify.evaluate(lite0, items, batch_size=2)
    assert seen == [(2, 4), (4, 4)]
    assert first.accuracy == pytest.approx(2 / 3) and first.top5_accuracy == 1.0
    assert [s[0].endswith("broken.jpg") for s in first.skipped] == [True]
    assert first.classes == ("espresso", "tabby", "tiger cat")
    # tabby's image is predicted "tiger cat": row tabby, column tiger cat
    assert first.confusion.tolist() == [[1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 1, 0]]
    assert first.per_class() == [("espresso", 1, 1.0), ("tabby", 1, 0.0), ("tiger cat", 1, 1.0)]
    assert [m.true_label for m in first.confident_mistakes()] == ["tabby"]
    assert first.to_csv() == second.to_csv()
    assert np.array_equal(first.confusion, second.confusion)


@pytest.mark.parametrize("make,message", [
    (lambda root: root.mkdir(), "no class subfolders"),
    (lambda root: (root / "cat").mkdir(parents=True), "hold no images"),
])
def test_bad_folders(tmp_path, make, message):
    root = tmp_path / "data"
    make(root)
    with pytest.raises(DatasetError, match=message):
        classify.find_labelled_images(root)


def test_unknown_class_names_are_listed(lite0):
    with pytest.raises(DatasetError, match="not among the model's classes: spaceship"):
        classify.match_classes(["tabby", "spaceship"], lite0.labels)
    assert classify.match_classes(["Tiger_Cat", "tabby cat"], lite0.labels) == {
        "Tiger_Cat": 282, "tabby cat": 281}


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buf.getvalue()


def test_timm_models_are_built_at_the_checkpoint_input_size():
    """A ViT trained at 96 px has 36 position embeddings: it must be rebuilt at 96 px; a CNN
    takes any size and no such argument."""
    from lib.classification.classify import create_timm
    vit = create_timm("test_vit", 4, 96)
    assert vit.patch_embed.img_size == (96, 96) and vit.pos_embed.shape[1] == 36 + 1
    cnn = create_timm("test_efficientnet", 4, 96)
    assert cnn.num_classes == 4
    assert create_timm("test_vit", 4).patch_embed.img_size == (160, 160)
