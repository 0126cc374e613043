"""The committed demo pack, measured by the project's own code on regenerated data."""

import json

import numpy as np
import pytest

from lib import cam, checkpoints, classify, registry, synth
from tests.conftest import ROOT

DEMO = ROOT / "checkpoints" / "demo-classifier"


@pytest.fixture(scope="module")
def demo():
    manifest = json.loads((DEMO / "model.json").read_text())
    lm = registry.create(registry.find("demo-classifier"), "cpu")
    return manifest, lm


@pytest.fixture(scope="module")
def val_split(tmp_path_factory, demo):
    """The synthetic val split the demo was measured on (same generator, seed and size)."""
    data = demo[0]["synth"]
    out = synth.generate(tmp_path_factory.mktemp("synth"), seed=data["seed"], train=data["train"],
                         val=data["val"], size=data["size"], splits=("val",))
    return out / "classification" / "val"


def test_demo_classifier_is_listed_and_small(demo):
    manifest, lm = demo
    assert registry.find("demo-classifier").source == "checkpoint"
    assert lm.labels == sorted(synth.CLASSES)
    total = sum(p.stat().st_size for p in (ROOT / "checkpoints").rglob("*") if p.is_file())
    assert total <= 30 * 2**20
    assert manifest["init"].startswith("packaged ImageNet weights")


def test_demo_accuracy_recorded_and_reproduced(demo, val_split):
    manifest, lm = demo
    result = classify.evaluate(lm, classify.find_labelled_images(val_split))
    assert manifest["metrics"]["val_accuracy"] >= 0.95
    assert result.accuracy == pytest.approx(manifest["metrics"]["val_accuracy"], abs=1e-9)


def test_demo_gradcam_peaks_inside_the_object(demo, val_split):
    _, lm = demo
    boxes = json.loads((val_split / "boxes.json").read_text())
    hits = 0
    for rel, (x, y, w, h) in boxes.items():
        from lib.images import load_image
        image = load_image(val_split / rel).image
        ex = cam.explain(lm, image, "GradCAM", lm.labels.index(rel.split("/")[0]))
        row, col = np.unravel_index(np.argmax(ex.cam.heatmap), ex.cam.heatmap.shape)
        scale = image.width / ex.cam.heatmap.shape[1]  # crop_pct 1.0: the whole image is seen
        hits += (x <= (col + 0.5) * scale <= x + w) and (y <= (row + 0.5) * scale <= y + h)
    assert hits / len(boxes) >= 0.9, f"{hits}/{len(boxes)}"
    assert checkpoints.read_checkpoint(DEMO).ok
