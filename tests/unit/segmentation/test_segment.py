"""Promptable segmentation on tiny random SAM2 models: shapes, prompts, caching, determinism,
everything mode, the GrabCut fallback and loading without weights."""

import json

import numpy as np
import pytest
from PIL import Image

from lib.media import masks as mask_ops
from lib.models import registry
from lib.segmentation import confidence, grounding, prompts, segment, segment_video


@pytest.fixture(scope="module")
def seg():
    return segment.tiny_segmenter()


@pytest.fixture
def image():
    return np.random.default_rng(0).integers(0, 255, (90, 140, 3), dtype=np.uint8)


def test_points_and_box_give_ranked_masks_at_image_size(seg, image):
    r = seg.predict(image, [(40, 30, 1), (100, 60, 0)])
    assert r.masks.shape == (3, 90, 140) and r.masks.dtype == bool
    assert r.scores.shape == (3,) and list(r.scores) == sorted(r.scores, reverse=True)
    assert r.best == 0 and r.source == seg.name
    single = seg.predict(image, [(40, 30, 1)], box=(10, 10, 80, 70), multimask=False)
    assert single.masks.shape == (1, 90, 140)


def test_embedding_is_computed_once_per_image_and_model(seg, image, monkeypatch):
    segment._EMBEDDINGS.clear()
    calls = []
    real = seg._embed
    monkeypatch.setattr(seg, "_embed", lambda im: calls.append(1) or real(im))
    a = seg.predict(image, [(40, 30, 1)])
    b = seg.predict(image, [(40, 30, 1), (70, 50, 1)])
    c = seg.predict(image, [(40, 30, 1)])
    assert len(calls) == 1                           # three prompts, one embedding
    assert np.array_equal(a.masks, c.masks) and np.array_equal(a.scores, c.scores)
    assert not np.array_equal(a.scores, b.scores)    # the prompt reached the decoder
    seg.predict(image[:, ::-1].copy(), [(40, 30, 1)])
    assert len(calls) == 2                           # a new image is embedded again


def test_same_prompts_same_masks_across_fresh_models(image):
    one = segment.tiny_segmenter(seed=0).predict(image, [(40, 30, 1)], box=(5, 5, 90, 80))
    two = segment.tiny_segmenter(seed=0).predict(image, [(40, 30, 1)], box=(5, 5, 90, 80))
    assert np.array_equal(one.masks, two.masks) and np.allclose(one.scores, two.scores)


@pytest.mark.parametrize("points, box, message", [
    ([(150, 10, 1)], None, "outside"), ([(-1, 10, 1)], None, "outside"),
    ([], (10, 10, 11, 60), "no area"), ([], None, "No prompt"),
    ([], (200, 100, 300, 200), "outside the image"),
])
def test_bad_prompts_raise_clear_errors(seg, image, points, box, message):
    with pytest.raises(segment.PromptError, match=message):
        seg.predict(image, points, box)


def test_clip_box_orders_and_clips_a_drag():
    assert prompts.clip_box((120, 80, -5, 10), 100, 50) == (0.0, 10.0, 100.0, 50.0)


def test_everything_mode_filters_dedupes_and_sorts(seg, image):
    seen = []
    auto = seg.everything(image, points_per_side=4, min_iou=0.0, min_stability=0.0,
                          max_overlap=0.5, min_area_frac=0.0, progress=seen.append)
    assert seen[-1].fraction == 1.0 and auto
    areas = [a.area for a in auto]
    assert areas == sorted(areas, reverse=True)
    assert all(a.mask.shape == (90, 140) and a.area == a.mask.sum() for a in auto)
    for i, a in enumerate(auto):
        for b in auto[i + 1:]:
            assert mask_ops.iou(a.mask, b.mask) <= 0.5
    assert seg.everything(image, points_per_side=4, min_iou=1.01) == []


def test_grabcut_fallback_is_labelled_and_needs_a_box(image):
    gc = segment.grabcut_segmenter()
    r = gc.predict(image, [], (20, 20, 100, 70))
    assert r.source == segment.GRABCUT and "not SAM2" in r.source and r.masks.shape == (1, 90, 140)
    assert np.isnan(r.scores[0]) and r.best == 0
    with pytest.raises(segment.PromptError, match="needs a box"):
        gc.predict(image, [(30, 30, 1)])
    with pytest.raises(segment.PromptError, match="SAM2"):
        gc.everything(image)


def test_missing_weights_name_the_fetch_command(monkeypatch):
    monkeypatch.setattr(registry, "hub_reachable", lambda timeout=2.0: False)
    spec = registry.find("facebook/sam2.1-hiera-tiny")
    with pytest.raises(registry.WeightsMissingError, match="lib.weights fetch"):
        segment.build_segmenter(spec, "cpu")
    with pytest.raises(registry.WeightsMissingError, match="lib.weights fetch"):
        segment_video.build_video_model(spec, "cpu")
    with pytest.raises(registry.WeightsMissingError, match="lib.weights fetch"):
        grounding.build_grounder(registry.find("florence-community/Florence-2-base"), "cpu")
    names = [n for n, _ in segment.model_choices()]
    assert names.index(segment.GRABCUT) < names.index("facebook/sam2.1-hiera-tiny")  # usable first


def test_empty_text_prompt_is_refused():
    g = grounding.Grounder("g", model=None, processor=None)
    with pytest.raises(segment.PromptError, match="Type what to find"):
        g.boxes(np.zeros((8, 8, 3), np.uint8), "  ")


def test_real_sam2_point_on_a_coco_object(shared_assets):
    """With real SAM 2.1 weights present, one click on a COCO object gives IoU >= 0.7."""
    spec = registry.find("facebook/sam2.1-hiera-tiny")
    if not registry.availability(spec).ready:
        pytest.skip("no real SAM2 weights on this machine")
    from pycocotools.coco import COCO
    root = shared_assets / "data" / "coco_val2017_tiny"
    coco = COCO(str(root / "annotations" / "instances_val2017.json"))
    ann = max((a for a in coco.dataset["annotations"] if not a["iscrowd"]),
              key=lambda a: a["area"])
    info = coco.imgs[ann["image_id"]]
    image = np.asarray(Image.open(root / "val2017" / info["file_name"]).convert("RGB"))
    truth = coco.annToMask(ann).astype(bool)
    ys, xs = np.nonzero(truth)
    k = np.argmin((xs - xs.mean()) ** 2 + (ys - ys.mean()) ** 2)   # a point on the object
    r = segment.build_segmenter(spec, "cpu").predict(image, [(float(xs[k]), float(ys[k]), 1)])
    assert max(mask_ops.iou(m, truth) for m in r.masks) >= 0.7


def test_a_segmentation_checkpoint_folder_loads(tmp_path, image):
    """A transformers-format SAM2 folder with a manifest under checkpoints/ is listed and runs."""
    from lib.models import checkpoints
    tiny = segment.tiny_segmenter(seed=1)
    folder = tmp_path / "my-sam2"
    tiny.model.save_pretrained(folder)
    tiny.processor.save_pretrained(folder)
    (folder / "model.json").write_text(json.dumps({
        "task": "segmentation", "architecture": "sam2", "weights": "model.safetensors"}))
    spec = registry.checkpoint_spec(checkpoints.read_checkpoint(folder))
    assert spec.error is None and spec.task == "segmentation"
    loaded = segment.build_segmenter(spec, "cpu")
    ref = tiny.predict(image, [(40, 30, 1)])
    got = loaded.predict(image, [(40, 30, 1)])
    assert np.array_equal(ref.masks, got.masks) and np.allclose(ref.scores, got.scores)


def test_low_precision_model_gets_inputs_in_its_dtype(image):
    """On a GPU the model runs in half precision; bfloat16 exercises the same casts on CPU."""
    import torch
    seg = segment.tiny_segmenter(seed=2)
    seg.model = seg.model.to(torch.bfloat16)
    r = seg.predict(image, [(40, 30, 1)], box=(10, 10, 80, 70))
    assert r.masks.shape == (3, 90, 140) and r.scores.dtype == np.float32
    assert seg.everything(image, points_per_side=2, min_iou=0.0, min_stability=0.0)


def test_a_detector_is_a_closed_vocabulary_grounder():
    """The demo Faster R-CNN grounds 'stars and circles' on a synthetic image to the boxes of
    those shapes (IoU with the generator's own boxes), and nothing else."""
    from lib.demo import synth
    from lib.models import cache
    img, objects = synth.make_image(np.random.default_rng(3), 256, 4)
    image = np.asarray(img)
    g = grounding.DetectorGrounder("demo-fasterrcnn" + grounding.CLOSED,
                                   cache.load("demo-fasterrcnn", "detection").model)
    assert g.classes("Stars and circles, triangle") == {"star", "circle", "triangle"}
    regions = g.boxes(image, "stars, circles")
    assert regions and {r.label for r in regions} <= {"star", "circle"}
    truths = [(synth.CLASSES[c], mask_ops.bbox(m)) for c, m in objects]
    for r in regions:
        best = max((_box_iou(r.box, b) for name, b in truths if name == r.label), default=0)
        assert best >= 0.5, (r, truths)
    ready = [ok for _, ok in grounding.grounder_choices()]
    assert ready == sorted(ready, reverse=True)            # what can run here comes first


def _box_iou(a, b) -> float:
    x0, y0, x1, y1 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0, x1 - x0) * max(0, y1 - y0)
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_a_zooming_segmenter_segments_through_a_window_around_the_object(image):
    """With `zoom` (a manifest's `prompt_zoom`) a box is segmented in a square window around
    it: masks come back at image size, nothing outside the window, and equal to segmenting
    that window alone; clicks alone are segmented through windows of several sizes around
    them, the one with the highest predicted IoU kept."""
    from dataclasses import replace
    seg = replace(segment.tiny_segmenter(), zoom=1.5)
    box = (30, 20, 70, 50)
    window = prompts.zoom_window(box, 140, 90, 1.5)
    res = seg.predict(image, [], box)
    assert res.masks.shape == (3, 90, 140)
    outside = np.ones((90, 140), bool)
    outside[max(0, window[1]):window[3], max(0, window[0]):window[2]] = False
    assert not res.masks[:, outside].any()
    alone = replace(seg, zoom=0.0).predict(prompts.crop_window(image, window), [],
                                           (box[0] - window[0], box[1] - window[1],
                                            box[2] - window[0], box[3] - window[1]))
    assert np.allclose(alone.scores, res.scores)
    assert np.array_equal(prompts.paste_window(alone.masks, window, 90, 140), res.masks)
    clicked = seg.predict(image, [(50, 35, 1)])
    assert clicked.masks.shape == (3, 90, 140)
    tries = [replace(seg, zoom=0.0).predict(prompts.crop_window(image, win), [(50 - win[0],
                                                                               35 - win[1], 1)])
             for share in segment.CLICK_WINDOWS
             for half in [share * 90 / 2]
             for win in [prompts.zoom_window((50 - half, 35 - half, 50 + half, 35 + half),
                                             140, 90, 1.0)]]
    assert clicked.scores.max() == pytest.approx(max(t.scores.max() for t in tries))


def test_calibrated_scores_and_unsure_masks(image):
    from dataclasses import replace
    cal = confidence.IouCalibration((0.0, 0.5, 1.0), (0.0, 0.2, 0.4))
    seg = replace(segment.tiny_segmenter(), calibration=cal)
    raw = segment.tiny_segmenter().predict(image, [(50, 35, 1)])
    res = seg.predict(image, [(50, 35, 1)])
    assert np.allclose(np.sort(res.scores), np.sort(cal(raw.scores)), atol=1e-6)
    conf = confidence.confidence(seg, res, res.best)
    assert conf.calibrated and conf.unsure and "calibrated predicted IoU" in conf.text
    gc = segment.grabcut_segmenter()
    assert not confidence.confidence(gc, gc.predict(image, [], (20, 20, 100, 70)), 0).unsure


def test_point_tracking_recognises_objects_as_each_manifest_says():
    """The demo segmenter of flat synthetic shapes tracks by colour (`track_appearance`), the
    one for photos, like any other, by its own embedding; a malformed value means the
    default."""
    from lib.training import seg_real, train_sam
    flat = segment.build_segmenter(registry.find(train_sam.NAME), device="cpu")
    photos = segment.build_segmenter(registry.find(seg_real.NAME), device="cpu")
    assert (flat.appearance, photos.appearance) == ("colour", "features")
    assert photos.zoom > 1 and photos.calibration is not None and flat.zoom == 0
