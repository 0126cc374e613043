"""The segmentation page on real material, offline, as a visitor uses it: a real photo of the
held-out COCO images, a box dragged on one object, the mask and the page's confidence; then a
real-texture clip: one object clicked, tracked, corrected on a later frame, blurred and the
MP4 downloaded. Without ../shared the same journey runs on scenes Lens makes from the
photos scikit-image ships (shapes filled with real textures)."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from tests.conftest import HIDDEN, SHARED_ASSETS
from tests.e2e.conftest import ARTIFACTS
from tests.e2e.test_journeys import (
    _click_shape,
    _clickable_image,
    _download,
    _open_segmentation,
    _render_blur_and_check,
    _table_cell,
    wait_idle,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.shared_assets]
FRAMES = 36


@pytest.fixture(scope="module")
def material(tmp_path_factory):
    """(photo path, its object's true mask, clip folder): from the held-out COCO images where
    ../shared is here, else from scenes made of scikit-image's photos."""
    from lib.demo import real_clips
    from lib.training import mask_data
    out = tmp_path_factory.mktemp("real")
    coco = SHARED_ASSETS / "data" / "coco_val2017_tiny"
    if not HIDDEN and (coco / "annotations" / "instances_val2017.json").is_file():
        from lib.training.seg_real import HELD_OUT
        masks = mask_data.open_masks(coco / "annotations" / "instances_val2017.json",
                                     coco / "val2017")
        held = mask_data.MaskSet(masks.dataset, [o for o in masks.objects if HELD_OUT(o[0])])
        # the largest object that leaves at least half of its image around it
        def area(o) -> float:
            info = held.dataset.image_info(o[0])
            return o[1]["area"] if o[1]["area"] < 0.5 * info["width"] * info["height"] else 0
        image_id, ann = max(held.objects, key=area)
        photo, truth = held.image(image_id), held.mask(image_id, ann)
        cuts, backgrounds = mask_data.cutouts(held)
    else:
        import cv2
        from skimage import data
        rng = np.random.default_rng(4)
        photos = mask_data.texture_photos()
        photo, truth = mask_data.textured_scene(rng, photos, 384)
        # discs of three photos (a cup, a cat, a face) over textures unlike them
        cuts = []
        for name in ("coffee", "chelsea", "astronaut"):
            img = np.asarray(getattr(data, name)())[:, :, :3]
            side = min(img.shape[:2])
            rgb = cv2.resize(img[:side, :side], (160, 160), interpolation=cv2.INTER_AREA)
            alpha = np.zeros((160, 160), np.uint8)
            cv2.ellipse(alpha, (80, 80), (78, 60), 0, 0, 360, 1, -1)
            cuts.append(real_clips.Cutout(rgb, alpha.astype(bool), name))
        backgrounds = [np.repeat(np.asarray(getattr(data, n)())[..., None], 3, axis=2)
                       for n in ("brick", "grass", "gravel")]
    path = out / "photo.png"
    Image.fromarray(photo).save(path)
    clips = real_clips.write_clips(out / "clips", cuts, backgrounds, 1, frames=FRAMES, seed=3)
    return path, truth, clips


def _drag(page, box, scale, x0, y0, x1, y1) -> None:
    page.mouse.move(box["x"] + x0 * scale, box["y"] + y0 * scale)
    page.mouse.down()
    page.mouse.move(box["x"] + x1 * scale, box["y"] + y1 * scale, steps=8)
    page.mouse.up()


def test_real_photo_box_then_real_clip_click_track_correct_blur(page, server, material,
                                                               tmp_path):
    from playwright.sync_api import expect

    from lib.media import masks as mask_ops
    photo, truth, clips = material
    _open_segmentation(page, server)
    page.locator("input[type=file]").first.set_input_files(str(photo))
    wait_idle(page)
    box, scale = _clickable_image(page, side=truth.shape[1])
    x0, y0, x1, y1 = mask_ops.bbox(truth)
    _drag(page, box, scale, x0, y0, x1, y1)
    page.get_by_text("calibrated predicted IoU").first.wait_for(timeout=120_000)
    wait_idle(page)
    mask_png = _download(page, "Mask: object 1", tmp_path / "mask.png")
    got = np.asarray(Image.open(io.BytesIO(mask_png.read_bytes()))) > 0
    got = got if got.ndim == 2 else got[..., 0]
    iou = (got & truth).sum() / (got | truth).sum()
    assert iou >= 0.6, iou
    page.screenshot(path=ARTIFACTS / "segmentation-real-photo.png", full_page=True)

    # the clip: one object clicked on frame 0, tracked, corrected on a later frame
    index = json.loads((clips / "clips.json").read_text())["clips"][0]
    seen = [{int(k): mask_ops.from_rle(r) for k, r in fm.items()} for fm in index["masks"]]
    _open_segmentation(page, server, video=True)
    page.locator("input[type=file]").first.set_input_files(str(clips / "clip000.mp4"))
    page.get_by_text(f"480×360, {FRAMES} frames").wait_for(timeout=60_000)
    wait_idle(page)
    _click_shape(page, seen[0][0])
    _table_cell(page, "object 1").wait_for(state="attached", timeout=120_000)
    wait_idle(page)
    page.get_by_role("button", name="Propagate through the clip").click()
    page.get_by_text(f"Tracked 1 object(s) through {FRAMES} frames").wait_for(timeout=400_000)
    wait_idle(page)
    # a later frame where object 0 shows whole (object 1 crosses it mid-clip)
    t = max(range(FRAMES // 4, FRAMES // 2 - 3), key=lambda f: int(seen[f][0].sum()))
    slider = page.locator(".st-key-seg_frame").get_by_role("slider")
    slider.focus()
    for _ in range(t):
        slider.press("ArrowRight")
    expect(slider).to_have_attribute("aria-valuetext", str(t))
    wait_idle(page)
    _click_shape(page, seen[t][0])                    # a correction click on a later frame
    page.get_by_role("button", name=f"Re-track object 1 from frame {t}").click()
    page.get_by_text(f"Tracked 1 object(s) through {FRAMES} frames").wait_for(timeout=400_000)
    wait_idle(page)
    assert not page.get_by_test_id("stException").count()
    rendered = _render_blur_and_check(page, clips / "clip000.mp4", seen[t][0], t,
                                      tmp_path / "blurred.mp4")
    assert len(rendered) == FRAMES
    page.screenshot(path=ARTIFACTS / "segmentation-real-clip.png", full_page=True)
