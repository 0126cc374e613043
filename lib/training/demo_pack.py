"""The demo pack (`checkpoints/demo-*`): its data recipe, and retraining the demo classifier
and detectors with their measured figures in the manifests."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

from lib.classification import cam
from lib.demo import synth
from lib.demo.synth import DEMO as DEMO_SYNTH  # the demo pack's data recipe
from lib.media import images
from lib.models import checkpoints, registry
from lib.training import options
from lib.training.classifier import train_classifier
from lib.training.detector import train_detector

DEMO_CLASSIFIER_ARGS = ["--model", "tf_efficientnet_lite0", "--init", "package", "--epochs", "12",
                        "--patience", "4", "--lr", "1e-3", "--batch-size", "32",
                        "--img-size", "224", "--label-set", "synthetic shapes", "--quiet"]


def cam_in_box_rate(folder: Path, val_dir: Path) -> float:
    """Share of val images whose Grad-CAM peak (for the true class) lies in the object's box."""
    lm = registry.build(registry.checkpoint_spec(checkpoints.read_checkpoint(folder)), device="cpu")
    boxes = json.loads((val_dir / "boxes.json").read_text())
    hits = 0
    for rel, (x, y, w, h) in boxes.items():
        image = images.load_image(val_dir / rel).image
        ex = cam.explain(lm, image, "GradCAM", lm.labels.index(rel.split("/")[0]))
        row, col = np.unravel_index(np.argmax(ex.heatmap), ex.heatmap.shape)
        scale = image.width / ex.heatmap.shape[1]
        hits += (x <= (col + 0.5) * scale <= x + w) and (y <= (row + 0.5) * scale <= y + h)
    return hits / len(boxes)


def _record_demo_recipe(folder: Path, recipe: dict | None = None, **extra) -> dict:
    """Write the data recipe (default: the demo one) and `extra` keys into a demo checkpoint's
    manifest."""
    recipe = dict(recipe or DEMO_SYNTH)
    manifest = json.loads((folder / checkpoints.MANIFEST).read_text())
    manifest.update(synth=recipe, data="python -m lib.synth " + " ".join(
        f"--{k} {v}" for k, v in recipe.items()), **extra)
    (folder / checkpoints.MANIFEST).write_text(json.dumps(manifest, indent=2))
    return manifest


def finish_demo(folder: Path, data_root: Path) -> dict:
    """Record the data recipe and the CAM check in a demo checkpoint's manifest."""
    metrics = json.loads((folder / checkpoints.MANIFEST).read_text())["metrics"]
    metrics["cam_peak_in_box"] = cam_in_box_rate(folder, data_root / "classification" / "val")
    return _record_demo_recipe(folder, metrics=metrics)


#: The demo pack's explanation-check classifiers: name -> (data recipe, training arguments,
#: description). A twin of the demo classifier trained on shuffled labels, for the
#: data-randomisation sanity check of CAMs.
SANITY_CLASSIFIERS = {
    "demo-classifier-shuffled": (
        dict(seed=1, train=120, val=40, size=128),
        [*DEMO_CLASSIFIER_ARGS[:4], "--epochs", "30", "--patience", "30", "--lr", "2e-3",
         "--batch-size", "24", "--img-size", "224", "--shuffle-labels",
         "--label-set", "synthetic shapes", "--quiet"],
        "Sanity-check model: EfficientNet-Lite0 trained on Lens' synthetic shapes with "
        "shuffled labels (data randomisation, Adebayo et al. 2018); its predictions mean "
        "nothing."),
}


def sanity_classifier(out_root: Path, name: str) -> Path:
    """One of `SANITY_CLASSIFIERS`, from its fixed recipe."""
    recipe, args, description = SANITY_CLASSIFIERS[name]
    with tempfile.TemporaryDirectory() as tmp:
        data = synth.generate(Path(tmp) / "synth", **recipe)
        train_classifier(options.parse([
            "classify", "--data", str(data / "classification"), "--name", name,
            "--out", str(out_root), *args, "--description", description]))
    _record_demo_recipe(out_root / name, recipe)
    return out_root / name


def demo_classifier(out_root: Path) -> Path:
    """The demo pack's classifier, from its fixed recipe (retrain only when it changes)."""

    with tempfile.TemporaryDirectory() as tmp:
        data = synth.generate(Path(tmp) / "synth", **DEMO_SYNTH)
        train_classifier(options.parse([
            "classify", "--data", str(data / "classification"), "--name", "demo-classifier",
            "--out", str(out_root), *DEMO_CLASSIFIER_ARGS, "--description", "Demo pack: "
            "EfficientNet-Lite0 (packaged ImageNet weights) fine-tuned on Lens' synthetic "
            "shapes."]))
        finish_demo(out_root / "demo-classifier", data)
    return out_root / "demo-classifier"


DEMO_DETECTORS = {
    "fasterrcnn": (["--model", "fasterrcnn_timm", "--epochs", "2"],
                   "Faster R-CNN (EfficientNet-Lite0 backbone from the packaged ImageNet "
                   "weights, FPN 128) trained 2 epochs"),
    "conditional-detr": (["--model", "conditional_detr", "--epochs", "120", "--patience", "120",
                          "--lr", "2e-4", "--warmup", "2", "--clip", "0.1"],
                         "Conditional DETR (transformers; EfficientNet-Lite0 backbone from the "
                         "packaged ImageNet weights, 2+2 layers of width 128, 20 queries)"),
}


def demo_detector(out_root: Path, which: str) -> Path:
    """One of the demo pack's detectors, from its fixed recipe (retrain only when it changes)."""

    args, what = DEMO_DETECTORS[which]
    name = f"demo-{which}"
    with tempfile.TemporaryDirectory() as tmp:
        data = synth.generate(Path(tmp) / "synth", **DEMO_SYNTH)
        train_detector(options.parse(["detect", "--data", str(data / "detection"), "--name",
                                      name, "--out", str(out_root), *args, "--label-set",
                                      "synthetic shapes", "--quiet"]))
    folder = out_root / name
    _record_demo_recipe(folder, description=f"Demo pack: {what} on Lens' synthetic shapes.")
    return folder
