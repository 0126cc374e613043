"""Predictions, labelled-folder evaluation, zip intake, video scenes, figure builders."""

import io
import zipfile

import numpy as np
import pytest
import timm
import torch
from PIL import Image

from lib import plots
from lib.classification import classify, scenes
from lib.classification.classify import DatasetError
from lib.classification.scenes import FramePrediction
from lib.media.video import open_video
from lib.models import registry
from tests.helpers import write_video


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


def fp(t, cls, p=0.9):
    return FramePrediction(index=int(t * 10), time_s=t, label=f"L{cls}", class_index=cls,
                           probability=p)


@pytest.mark.parametrize("classes,min_len,expected", [
    ([0, 0, 0, 1, 1, 1], 0.0, [(0, 0.0, 3.0), (1, 3.0, 6.0)]),
    ([0, 0, 0, 1, 0, 0], 2.0, [(0, 0.0, 6.0)]),                       # 1-s blip absorbed
    ([0, 0, 0, 1, 1, 1], 4.0, [(1, 0.0, 6.0)]),                       # both short: one scene
    ([0, 1, 1, 1, 1, 2], 1.5, [(1, 0.0, 6.0)]),                       # both ends absorbed
    ([0, 0, 1, 1, 2, 2], 1.0, [(0, 0.0, 2.0), (1, 2.0, 4.0), (2, 4.0, 6.0)]),
])
def test_merge_segments(classes, min_len, expected):
    preds = [fp(float(t), c) for t, c in enumerate(classes)]
    segs = scenes.merge_segments(preds, min_len, clip_end_s=6.0)
    assert [(s.class_index, s.start_s, s.end_s) for s in segs] == expected
    assert sum(s.duration_s for s in segs) == pytest.approx(6.0)


def test_keyframe_is_most_confident_frame():
    preds = [fp(0, 0, 0.5), fp(1, 0, 0.95), fp(2, 0, 0.7)]
    seg = scenes.merge_segments(preds, 0.0, 3.0)[0]
    assert seg.keyframe_time_s == 1.0 and seg.mean_probability == pytest.approx(0.7166666)


def test_video_frames_classified_at_chosen_rate(tmp_path):
    torch.manual_seed(0)
    lm = registry.from_module(timm.create_model("test_efficientnet", num_classes=3),
                              ["a", "b", "c"], preprocess=registry.Preprocess((3, 32, 32)))
    info = open_video(write_video(tmp_path / "v.mp4", frames=24, fps=6))
    progress = []
    preds = scenes.classify_frames(lm, info, every_s=0.5, batch_size=3,
                                   progress=lambda p: progress.append(p.done))
    assert [p.index for p in preds] == [0, 3, 6, 9, 12, 15, 18, 21]
    assert progress[-1] == 8 and all(0 <= p.probability <= 1 for p in preds)


def test_figure_builders_are_pure():
    bar = plots.topk_bar(["a", "b"], [0.7, 0.2])
    assert list(bar.data[0].y) == ["b", "a"] and list(bar.data[0].x) == pytest.approx([20, 70])
    heat = plots.confusion_heatmap(np.array([[1, 2], [3, 4]]), ["x", "y"], ["x", "y"])
    assert heat.data[0].z.tolist() == [[1, 2], [3, 4]]
    tl = plots.scene_timeline([0, 1], ["a", "b"], [0.9, 0.8], [(0, 1, "a"), (1, 2, "b")])
    assert len(tl.data) == 3
