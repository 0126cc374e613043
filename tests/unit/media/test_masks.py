"""Mask operations on synthetic masks: RLE against pycocotools, effects, exports, GrabCut."""

import io
import json
import zipfile

import numpy as np
import pytest
from PIL import Image, ImageDraw
from pycocotools import mask as mask_utils

from lib.core.errors import InputError, PromptError
from lib.media import masks as mask_ops


def disc(h=60, w=80, cx=40, cy=30, r=15):
    yy, xx = np.mgrid[:h, :w]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r


def test_rle_round_trip_matches_pycocotools():
    rng = np.random.default_rng(0)
    for m in (disc(), rng.random((37, 53)) > 0.5, np.zeros((5, 7), bool), np.ones((4, 4), bool)):
        rle = mask_ops.to_rle(m)
        assert isinstance(rle["counts"], str) and rle["size"] == list(m.shape)
        assert np.array_equal(mask_ops.from_rle(rle), m)
        ref = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
        assert rle["counts"].encode() == ref["counts"]
        assert np.array_equal(mask_utils.decode({**rle, "counts": rle["counts"].encode()}), m)


def test_coco_json_has_rle_area_and_bbox():
    a, b = disc(), disc(cx=10, cy=10, r=5)
    doc = json.loads(mask_ops.coco_json([("x.png", 80, 60, [a, b], [1, 2])], {1: "cup", 2: "logo"}))
    assert doc["images"] == [{"id": 1, "file_name": "x.png", "width": 80, "height": 60}]
    assert [c["name"] for c in doc["categories"]] == ["cup", "logo"]
    ann = doc["annotations"][0]
    assert ann["area"] == a.sum() and ann["category_id"] == 1
    assert ann["bbox"] == [25.0, 15.0, 31.0, 31.0]
    assert np.array_equal(mask_ops.from_rle(doc["annotations"][1]["segmentation"]), b)


def test_effects_change_only_what_they_should():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)
    before = image.copy()
    m = disc()
    fill = mask_ops.apply_effect(image, [m], "fill", color=(255, 0, 0))
    assert (fill[m] == [255, 0, 0]).all() and np.array_equal(fill[~m], image[~m])
    for effect in ("blur", "pixelate"):
        out = mask_ops.apply_effect(image, [m], effect, strength=9)
        assert np.array_equal(out[~m], image[~m]) and not np.array_equal(out[m], image[m])
        assert out[m].std() < image[m].std()       # smoother inside
    bg = mask_ops.apply_effect(image, [m], "blur background", strength=9)
    assert np.array_equal(bg[m], image[m]) and bg[~m].std() < image[~m].std()
    cut = mask_ops.apply_effect(image, [m], "cutout")
    assert cut.shape == (60, 80, 4)
    assert (cut[..., 3][m] == 255).all() and (cut[..., 3][~m] == 0).all()
    assert np.array_equal(image, before)          # effects never modify their input
    with pytest.raises(InputError, match="Unknown effect"):
        mask_ops.apply_effect(image, [m], "sparkle")


def test_overlay_colours_mask_and_png_exports():
    image = np.zeros((60, 80, 3), np.uint8)
    m = disc()
    out = mask_ops.overlay(image, [(m, (200, 100, 0))], opacity=0.5, outline=False)
    assert (out[30, 40] == [100, 50, 0]).all() and (out[0, 0] == 0).all()
    png = Image.open(io.BytesIO(mask_ops.png_bytes(m)))
    assert png.size == (80, 60) and np.array_equal(np.asarray(png) > 0, m)
    z = zipfile.ZipFile(io.BytesIO(mask_ops.png_zip([("a.png", m), ("b.png", ~m)])))
    assert z.namelist() == ["a.png", "b.png"]


def test_dedupe_keeps_best_of_overlapping_masks():
    a, a2, b = disc(), disc(cx=41), disc(cx=10, cy=10, r=5)
    assert mask_ops.dedupe([a, a2, b], [0.8, 0.9, 0.5]) == [1, 2]
    # > +1: one pixel; > -1: three pixels
    assert mask_ops.stability_score(np.array([[5.0, -5.0], [0.5, -0.5]])) == pytest.approx(1 / 3)


def test_grabcut_finds_a_known_object():
    """A textured ellipse on a different textured background: IoU >= 0.8 from its box."""
    rng = np.random.default_rng(0)
    h, w = 120, 160
    image = np.clip(rng.normal((60, 90, 160), 20, (h, w, 3)), 0, 255).astype(np.uint8)
    truth_img = Image.new("L", (w, h))
    ImageDraw.Draw(truth_img).ellipse((50, 30, 115, 95), fill=255)
    truth = np.asarray(truth_img) > 0
    obj = np.clip(rng.normal((200, 120, 40), 20, (h, w, 3)), 0, 255).astype(np.uint8)
    image[truth] = obj[truth]
    mask = mask_ops.grabcut(image, (40, 20, 125, 105))
    assert mask_ops.iou(mask, truth) >= 0.8
    with pytest.raises(PromptError, match="no area"):
        mask_ops.grabcut(image, (10, 10, 10, 50))


def test_refine_edges_snaps_a_coarse_mask_to_the_shape():
    """Shapes' masks at a quarter of the resolution, upsampled (what a segmenter's low-res
    output looks like), on textured backgrounds: refined, they are closer to the true
    shapes; the same every time; a mask too thin to have an inside is returned as it is."""
    import cv2

    from lib.demo import synth
    rng = np.random.default_rng(0)
    before, after = [], []
    for _ in range(8):
        image, objects = synth.make_image(rng, 128, 1)
        image, truth = np.asarray(image), objects[0][1]
        small = cv2.resize(truth.astype(np.uint8), (32, 32), interpolation=cv2.INTER_AREA)
        coarse = cv2.resize(small, (128, 128), interpolation=cv2.INTER_NEAREST).astype(bool)
        sharp = mask_ops.refine_edges(image, coarse)
        assert np.array_equal(sharp, mask_ops.refine_edges(image, coarse))
        before.append(mask_ops.iou(coarse, truth))
        after.append(mask_ops.iou(sharp, truth))
    assert np.mean(after) > np.mean(before) + 0.03, (np.mean(before), np.mean(after))
    line = np.zeros((128, 128), bool)
    line[60, 10:100] = True
    assert np.array_equal(mask_ops.refine_edges(image, line), line)


def test_box_iou_equals_torchvisions():
    """Box IoU and intersection against torchvision's `box_iou` (the reference)."""
    import torch
    from torchvision.ops import box_iou
    boxes = [(0, 0, 10, 10), (5, 0, 15, 10), (2, 2, 3, 3), (0, 0, 1, 1), (3.5, 1.0, 9.0, 20.5)]
    expected = box_iou(torch.tensor(boxes, dtype=torch.float64),
                       torch.tensor(boxes, dtype=torch.float64)).numpy()
    for i, a in enumerate(boxes):
        for j, b in enumerate(boxes):
            assert mask_ops.box_iou(a, b) == pytest.approx(expected[i, j])
    assert mask_ops.box_intersection((0, 0, 10, 10), (5, 0, 15, 10)) == 50
    assert mask_ops.box_iou((0, 0, 0, 0), (0, 0, 0, 0)) == 0.0          # no area: no overlap


@pytest.mark.parametrize("box", [(0, 0, 160, 120), (-30, -30, 200, 170), (1, 1, 159, 119)])
def test_grabcut_with_a_box_as_large_as_the_image_finds_the_object(box):
    """A box covering the whole image or reaching past its edges left GrabCut no background
    (OpenCV's `!bgdSamples.empty()` assertion, or an empty mask a pixel inside): the image's
    outer band is taken as probable background, and the object is found."""
    rng = np.random.default_rng(1)
    h, w = 120, 160
    image = np.clip(rng.normal((60, 90, 160), 15, (h, w, 3)), 0, 255).astype(np.uint8)
    truth = disc(h, w, cx=80, cy=60, r=35)
    image[truth] = np.clip(rng.normal((220, 140, 30), 15, (h, w, 3)), 0, 255)[truth]
    mask = mask_ops.grabcut(image, box)
    assert mask_ops.iou(mask, truth) >= 0.8
