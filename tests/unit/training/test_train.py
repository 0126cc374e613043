"""Synthetic data and the training command: determinism, a few-step run, bad input."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lib import runs
from lib.demo import synth
from lib.detection import datasets
from lib.models import checkpoints, registry
from lib.training import classifier, detector, train
from lib.training.loop import TrainError


@pytest.fixture(scope="module")
def small_synth(tmp_path_factory):
    return synth.generate(tmp_path_factory.mktemp("synth"), seed=3, train=24, val=12, size=64)


def test_synth_is_deterministic_and_valid(small_synth, tmp_path):
    again = synth.generate(tmp_path / "again", seed=3, train=24, val=12, size=64)
    for rel in ("detection/train/annotations.json", "classification/val/boxes.json",
                "detection/val/images/00003.png", "classification/train/boxes.json"):
        assert (small_synth / rel).read_bytes() == (again / rel).read_bytes()
    ds = datasets.load_coco(small_synth / "detection/train/annotations.json",
                             small_synth / "detection/train/images")
    assert list(ds.categories.values()) == synth.CLASSES and len(ds.image_ids) == 24
    from pycocotools import mask as mask_utils
    ann = ds.data["annotations"][0]
    assert mask_utils.area(ann["segmentation"]) == ann["area"] > 0
    x, y, w, h = ann["bbox"]
    decoded = mask_utils.decode(ann["segmentation"])
    ys, xs = np.nonzero(decoded)
    assert (xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min()) == (x, y, w, h)
    boxes = json.loads((small_synth / "classification/val/boxes.json").read_text())
    assert len(boxes) == 12 and all(k.split("/")[0] in synth.CLASSES for k in boxes)


def test_split_by_group_keeps_clips_together(tmp_path):
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        for clip in range(4):
            for frame in range(3):
                Image.new("RGB", (8, 8)).save(tmp_path / cls / f"clip{clip}_frame{frame}.png")
    split = classifier.split_dataset(tmp_path, 0.25, seed=0, group_regex=r"^(clip\d+)_frame")
    def clips(items):
        return {(p.parent.name, p.name.split("_")[0]) for p, _ in items}
    assert not clips(split.train) & clips(split.val)
    assert len(split.val) == 6 and len(split.train) == 18


@pytest.mark.parametrize("make,message", [
    (lambda root: None, "does not exist"),
    (lambda root: root.mkdir(), "no class subfolders"),
    (lambda root: ((root / "a").mkdir(parents=True),
                   Image.new("RGB", (8, 8)).save(root / "a" / "x.png")), "has 1 image"),
])
def test_bad_training_data(tmp_path, make, message):
    root = tmp_path / "data"
    make(root)
    with pytest.raises(TrainError, match=message):
        classifier.split_dataset(root)


def test_few_step_training_run(small_synth, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("LENS_CACHE", str(tmp_path / "cache"))
    data = small_synth / "classification"
    (data / "train" / "circle" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    code = train.main(["classify", "--data", str(data), "--model", "test_efficientnet",
                       "--init", "scratch", "--name", "tiny", "--out", str(tmp_path / "ck"),
                       "--epochs", "4", "--patience", "9", "--lr", "3e-3", "--batch-size", "8",
                       "--img-size", "48", "--warmup", "0", "--quiet"])
    assert code == 0
    folder = tmp_path / "ck" / "tiny"
    manifest = json.loads((folder / "model.json").read_text())
    assert manifest["init"].startswith("random") and manifest["metrics"]["skipped_images"] == 1
    assert manifest["seed"] == 0 and "lib.train classify" in manifest["command"]
    assert "skipped: 'broken.png'" in (folder / "train.log").read_text()
    spec = registry.checkpoint_spec(checkpoints.read_checkpoint(folder))
    loaded = registry.build(spec, device="cpu")
    assert loaded.labels == sorted(synth.CLASSES) and loaded.preprocess.input_size == (3, 48, 48)
    infos, problems = runs.load_offline(folder)
    assert not problems and infos[0].name == "tiny"
    history = runs.read_history(Path(infos[0].path))
    epoch_loss = history["train/epoch_loss"].dropna().tolist()
    assert len(epoch_loss) == 4 and epoch_loss[-1] < epoch_loss[0]
    assert infos[0].summary["final/val_accuracy"] == manifest["metrics"]["val_accuracy"]


@pytest.mark.parametrize("model, extra, first_label", [
    ("fasterrcnn_timm", ["--fpn-channels", "32"], 1),             # 0 is the background
    ("conditional_detr", ["--d-model", "32", "--num-queries", "8", "--lr", "1e-3"], 0),
])
@pytest.mark.slow
def test_few_step_detector_training(small_synth, tmp_path, monkeypatch, model, extra,
                                    first_label):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("LENS_CACHE", str(tmp_path / "cache"))
    code = train.main(["detect", "--data", str(small_synth / "detection"), "--name", "tinydet",
                       "--model", model, "--out", str(tmp_path / "ck"), "--init", "scratch",
                       "--epochs", "2", "--patience", "5", "--batch-size", "4", "--img-size",
                       "64", "--warmup", "0", "--quiet", *extra])
    assert code == 0
    folder = tmp_path / "ck" / "tinydet"
    manifest = json.loads((folder / "model.json").read_text())
    assert manifest["task"] == "detection" and manifest["architecture"] == model
    assert set(manifest["metrics"]) >= {"val_map50", "val_map"}
    spec = registry.checkpoint_spec(checkpoints.read_checkpoint(folder))
    assert spec.task == "detection" and spec.error is None
    det = registry.build(spec, device="cpu")
    assert [det.labels[first_label + i] for i in range(4)] == synth.CLASSES
    image = Image.open(small_synth / "detection/val/images/00003.png").convert("RGB")
    (dets,) = det.predict([image], [3], {first_label + i: i + 1 for i in range(4)}, 0.0)
    assert dets.xyxy.shape[1] == 4 and set(dets.class_ids.tolist()) <= {1, 2, 3, 4}
    infos, problems = runs.load_offline(folder)
    assert not problems and infos[0].config["model"] == model
    losses = runs.read_history(Path(infos[0].path))["train/epoch_loss"].dropna().tolist()
    assert len(losses) == 2 and losses[1] < losses[0]
    # the recorded mAP is what the saved checkpoint scores (pycocotools, the reference)
    val = datasets.load_coco(small_synth / "detection/val/annotations.json",
                             small_synth / "detection/val/images")
    label_map = {first_label + i: i + 1 for i in range(4)}
    results = [row for image_id in val.image_ids for row in det.predict(
        [Image.open(val.image_path(image_id)).convert("RGB")], [image_id], label_map,
        0.05)[0].to_coco()]
    from tests import reference
    assert reference.pycocotools(val, results)["AP50"] == pytest.approx(
        manifest["metrics"]["val_map50"], abs=1e-6)


def test_detection_data_without_annotations(tmp_path):
    import shutil
    for split in ("train", "val"):
        (tmp_path / split / "images").mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(tmp_path / split / "images" / "a.png")
        (tmp_path / split / "annotations.json").write_text(json.dumps({
            "images": [{"id": 1, "file_name": "a.png", "width": 8, "height": 8}],
            "annotations": [], "categories": [{"id": 1, "name": "a"}]}))
    assert train.main(["detect", "--data", str(tmp_path), "--name", "x",
                       "--out", str(tmp_path / "ck")]) == 2
    shutil.rmtree(tmp_path / "val")
    with pytest.raises(TrainError, match="no annotations.json"):
        detector._coco_split(tmp_path, "val")
