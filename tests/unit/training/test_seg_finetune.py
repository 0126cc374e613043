"""`python -m lib.train segmenter`: fine-tuning a promptable segmenter on a COCO dataset the
test makes itself (lib.synth), read back by the page's code; hostile datasets; a real kill
mid-run resumed to the same weights."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file

from lib.demo import synth
from lib.models import registry
from lib.segmentation import confidence, figures, segment
from lib.training import train
from lib.training.mask_data import Sampler, decode_mask, open_masks

ROOT = Path(__file__).resolve().parents[3]
DEMO = ROOT / "checkpoints" / "demo-segmenter"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """Six synthetic images (128 px) with RLE masks, in COCO layout."""
    out = tmp_path_factory.mktemp("tiny-coco")
    synth.write_detection(out, 6, 128, seed=5)
    return out


def _args(data: Path, out: Path, *extra: str) -> list[str]:
    split = [] if "--val-ids" in extra else ["--val-fraction", "0.34"]
    return ["segmenter", "--coco", str(data / "images"), "--annotations",
            str(data / "annotations.json"), "--out", str(out), "--init", str(DEMO),
            "--batch", "2", *split, "--quiet", *extra]


@pytest.mark.slow
def test_two_epochs_make_a_checkpoint_the_page_lists_with_its_figures(tiny, checkpoints_dir):
    out = checkpoints_dir / "my-segmenter"
    assert train.main(_args(tiny, out, "--epochs", "2")) == 0
    manifest = json.loads((out / "model.json").read_text())
    assert manifest["recipe"]["steps"] == 2 * -(-manifest["train_objects"] // 2)
    for key in ("box_miou", "click_miou", "clicks3_miou", "iou_ece"):
        assert 0 <= manifest["val"][key] <= 1
    assert not any(p.name.startswith(".") for p in checkpoints_dir.iterdir())   # state gone
    # the page's code picks it up with no change: listed, zooming, calibrated
    assert "my-segmenter" in [name for name, ok in segment.model_choices() if ok]
    spec = next(s for s in registry.all_specs("segmentation") if s.name == "my-segmenter")
    seg = segment.build_segmenter(spec, device="cpu")
    assert seg.zoom == manifest["prompt_zoom"] and seg.calibration is not None
    assert figures.measured_figures()["my-segmenter"]["val:box_miou"] == \
        manifest["val"]["box_miou"]
    image = np.asarray(synth.sample_image(3, 128))
    res = seg.predict(image, box=(20, 20, 90, 90))
    assert res.masks.shape[1:] == (128, 128) and np.all((res.scores >= 0) & (res.scores <= 1))


def _write(path: Path, data: dict) -> Path:
    path.write_text(json.dumps(data))
    return path


def _bad_dataset(tiny: Path, tmp_path: Path) -> Path:
    """The tiny dataset with one annotation of every kind a trainer must leave out."""
    data = json.loads((tiny / "annotations.json").read_text())
    good = data["annotations"][0]
    img = good["image_id"]
    extra = [
        {**good, "id": 901, "iscrowd": 1},                                   # crowd RLE
        {**good, "id": 902, "segmentation": [[1, 1, 5, 5]]},                 # 2-point polygon
        {**good, "id": 903, "bbox": [3, 3, 0, 0]},                           # zero-area box
        {**good, "id": 904, "bbox": [500, 500, 10, 10]},                     # outside the image
        {**good, "id": 905, "segmentation": {**good["segmentation"], "size": [64, 64]}},
    ]
    data["images"].append({"id": 99, "file_name": "gone.png", "width": 128, "height": 128})
    extra.append({**good, "id": 906, "image_id": 99})                       # image missing
    data["annotations"] += extra
    assert img != 99
    return _write(tmp_path / "bad.json", data)


def test_every_unusable_annotation_is_left_out_and_counted(tiny, tmp_path):
    masks = open_masks(_bad_dataset(tiny, tmp_path), tiny / "images")
    assert {a["id"] for _, a in masks.objects}.isdisjoint({901, 902, 903, 904, 905, 906})
    assert masks.skipped == {
        "zero-area or non-finite boxes": 1, "crowd regions (not one object)": 1,
        "polygons of fewer than 3 points": 1, "boxes outside their image": 1,
        "masks whose size disagrees with their image": 1, "images missing on disk": 1}
    # what is kept decodes to its own box (pycocotools as the reference for RLE)
    image_id, ann = masks.objects[0]
    m = masks.mask(image_id, ann)
    ys, xs = np.nonzero(m)
    assert [xs.min(), ys.min()] == ann["bbox"][:2] and m.sum() == ann["area"]


def test_polygons_decode_like_pycocotools():
    from pycocotools import mask as coco_mask
    poly = [[10, 10, 60, 12, 40, 50], [70, 70, 90, 70, 80, 90]]
    ours = decode_mask(poly, 100, 120)
    ref = coco_mask.decode(coco_mask.merge(coco_mask.frPyObjects(poly, 100, 120)))
    assert ours.shape == (100, 120) and np.array_equal(ours, ref.astype(bool))


@pytest.mark.parametrize("case, fix", [
    ("coco-is-a-file", "folder that holds the images"),
    ("empty", "no object a segmenter can learn from"),
    ("all-crowd", "crowd regions"),
])
def test_unusable_datasets_get_one_clear_message(tiny, tmp_path, capsys, case, fix):
    data = json.loads((tiny / "annotations.json").read_text())
    images = tiny / "images"
    if case == "coco-is-a-file":
        images = tiny / "annotations.json"
    elif case == "empty":
        data["annotations"] = []
    else:
        for a in data["annotations"]:
            a["iscrowd"] = 1
    ann = _write(tmp_path / "a.json", data)
    args = ["segmenter", "--coco", str(images), "--annotations", str(ann), "--out",
            str(tmp_path / "out"), "--init", str(DEMO), "--quiet"]
    assert train.main(args) == 2
    err = capsys.readouterr().err
    assert fix in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_a_large_dataset_is_indexed_not_decoded(tmp_path, tiny):
    """100,000 annotations: opening keeps an index (no mask decoded, no image read)."""
    import tracemalloc
    base = json.loads((tiny / "annotations.json").read_text())
    poly = [[10.0, 10.0, 50.0, 10.0, 30.0, 40.0]]
    anns = [{"id": i + 1, "image_id": base["images"][i % 6]["id"], "category_id": 1,
             "bbox": [10, 10, 40, 30], "area": 600.0, "iscrowd": 0, "segmentation": poly}
            for i in range(100_000)]
    ann = _write(tmp_path / "big.json", {**base, "annotations": anns})
    tracemalloc.start()
    masks = open_masks(ann, tiny / "images")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(masks.objects) == 100_000 and not masks._images
    assert peak < 600e6          # the JSON and its checked copy, no pixels


def test_windows_hold_the_object_at_the_models_side(tiny):
    masks = open_masks(tiny / "annotations.json", tiny / "images")
    sampler = Sampler(masks, size=96)
    rng = np.random.default_rng(0)
    for _ in range(12):
        window, mask = sampler(rng, 1.5)
        assert window.shape == (96, 96, 3) and window.dtype == np.uint8
        assert mask.shape == (96, 96) and mask.any()


def test_bad_options_are_refused_before_anything_loads(tiny, tmp_path, capsys):
    for extra, words in ((["--zoom", "0.5"], "--zoom"), (["--steps", "0"], "at least 1"),
                         (["--val-ids", "12345"], "--val-ids")):
        assert train.main(_args(tiny, tmp_path / "o", *extra)) == 2
        assert words in capsys.readouterr().err
    with pytest.raises(SystemExit):
        train.main(_args(tiny, tmp_path / "o", "--train", "everything"))


def _weights(folder: Path) -> dict:
    return load_file(str(folder / "model.safetensors"))


@pytest.mark.slow
def test_a_run_killed_mid_way_resumes_to_the_same_weights(tiny, tmp_path):
    """Kill -9 a real run after its second save; the same command finishes it; the weights
    equal an uninterrupted run's (same steps, same draws: exactly, up to float16 storage)."""
    env = {**os.environ, "LENS_CHECKPOINTS": str(tmp_path / "ck"), "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "lib.train",
           *_args(tiny, tmp_path / "killed", "--steps", "12", "--save-every", "3")]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    state = tmp_path / ".killed.partial" / "state.pt"
    deadline = time.time() + 300
    seen = None
    while time.time() < deadline and proc.poll() is None:
        if state.is_file():
            import torch
            try:
                seen = torch.load(state, weights_only=True)["step"]
            except Exception:  # noqa: BLE001 - caught mid-replace: look again
                seen = None
            if seen is not None and seen >= 6:
                os.killpg(proc.pid, signal.SIGKILL)
                break
        time.sleep(0.05)
    proc.wait()
    assert seen is not None and seen < 12, "the run finished before it could be killed"
    assert not (tmp_path / "killed").exists()            # nothing called finished
    assert subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True).returncode == 0
    whole = [sys.executable, "-m", "lib.train",
             *_args(tiny, tmp_path / "whole", "--steps", "12", "--save-every", "3")]
    assert subprocess.run(whole, cwd=ROOT, env=env, capture_output=True).returncode == 0
    a, b = _weights(tmp_path / "killed"), _weights(tmp_path / "whole")
    assert a.keys() == b.keys()
    assert max(float((a[k].float() - b[k].float()).abs().max()) for k in a) <= 1e-3
    assert not (tmp_path / ".killed.partial").exists()


def test_a_resume_with_another_recipe_is_refused(tiny, tmp_path, capsys):
    partial = tmp_path / ".o.partial"
    partial.mkdir()
    import torch
    torch.save({"step": 1, "model": {}, "optimizer": {}, "recipe": json.dumps({"steps": 9}),
                "history": "[]"}, partial / "state.pt")
    assert train.main(_args(tiny, tmp_path / "o", "--steps", "3")) == 2
    assert "another recipe" in capsys.readouterr().err


def test_calibration_is_read_only_when_well_formed():
    ok = {"predicted": [0, 0.5, 1], "measured": [0.1, 0.4, 0.9]}
    cal = confidence.IouCalibration.from_manifest(ok)
    assert np.allclose(cal(np.array([0.25, 1.0])), [0.25, 0.9])
    for bad in (None, [], {"predicted": [0, 1]}, {"predicted": [1, 0], "measured": [0, 1]},
                {"predicted": [0, 1], "measured": [1, 0]},
                {"predicted": [0, float("nan")], "measured": [0, 1]},
                {"predicted": [0, 2], "measured": [0, 1]}, {"predicted": "ab", "measured": "cd"}):
        assert confidence.IouCalibration.from_manifest(bad) is None



def test_an_image_unlike_the_training_images_is_called_unfamiliar():
    """What the training images look like to the model (pooled embedding statistics, the
    farthest of them as the limit): images like them pass, a flat grey frame does not; the
    manifest's copy is read back only when well formed."""
    from dataclasses import replace

    from lib.training.seg_finetune import familiarity
    rng = np.random.default_rng(0)
    tiny = segment.tiny_segmenter()
    photos = [rng.integers(0, 255, (64, 64, 3), dtype=np.uint8) for _ in range(8)]
    stats = familiarity(tiny, photos)
    seg = replace(tiny, familiar_stats=stats)
    assert not any(seg.unfamiliar(p) for p in photos)
    assert seg.unfamiliar(np.full((64, 64, 3), 128, np.uint8))
    back = confidence.FeatureStats.from_manifest(json.loads(json.dumps(stats.as_manifest())))
    assert back is not None and abs(back.limit - stats.limit) < 1e-3
    for bad in ({"mean": [0, 1], "std": [1], "limit": 1}, {"mean": [0], "std": [0], "limit": 1},
                {"mean": ["a"], "std": [1], "limit": 1}, {"mean": [0], "std": [1], "limit": -1}):
        assert confidence.FeatureStats.from_manifest(bad) is None
    assert not segment.grabcut_segmenter().unfamiliar(photos[0])


def test_the_demo_recipe_refuses_a_folder_without_the_coco_sample(tmp_path, capsys):
    """`lib.train demo-segmenter --coco DIR` (and with --measure) checks DIR before anything
    trains or loads, and says where the sample is."""
    for extra in ([], ["--measure"]):
        args = ["demo-segmenter", "--coco", str(tmp_path), "--out", str(tmp_path / "o"), *extra]
        assert train.main(args) == 2
        err = capsys.readouterr().err
        assert "coco_val2017_tiny" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()
