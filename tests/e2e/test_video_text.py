"""The video job in the browser, offline: a clip with shapes crossing and a star entering
mid-clip is uploaded, "star" is typed, the stars are found and tracked (point tracking on
the demo segmenter, the demo detector as a closed-vocabulary grounder), the two with the
most screen time are picked in the table, blurred, and the MP4, the timeline CSV and the
COCO video JSON are downloaded: the frames are blurred exactly where the exported masks say,
and nowhere else."""

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from tests.e2e.conftest import ARTIFACTS
from tests.e2e.test_journeys import (
    _download,
    _open_segmentation,
    _pick,
    render_blurred,
    wait_idle,
)

pytestmark = pytest.mark.e2e


def _select_rows(page, key_prefix: str, rows: list[int]) -> None:
    """Tick rows of a data frame with row selection (drawn on a canvas: by position)."""
    grid = page.locator(f"[class*='st-key-{key_prefix}'] [data-testid=stDataFrame]").first
    grid.scroll_into_view_if_needed()
    box = grid.bounding_box()
    for r in rows:
        y = box["y"] + 35 * (r + 1) + 17          # the header, then 35-pixel rows
        page.mouse.move(box["x"] + 18, y)
        page.mouse.click(box["x"] + 18, y)
        wait_idle(page)


def test_find_stars_by_text_track_pick_two_blur_and_download(page, server, tmp_path):
    import cv2

    from lib.demo import synth
    from lib.media import masks as mask_ops
    from lib.media import video as video_io
    from lib.segmentation import grounding
    from lib.training.train_sam import NAME
    folder = synth.write_clips(tmp_path / "clip", 1, frames=40, size=256, seed=17)
    clip = folder / "clip000.mp4"      # a star and a circle crossing, a star entering at 14
    _open_segmentation(page, server, video=True)
    _pick(page, "seg_video_model", f"{NAME} (trained on synthetic shapes)")
    page.locator("input[type=file]").first.set_input_files(str(clip))
    page.get_by_text("256×256, 40 frames").wait_for(timeout=60_000)
    wait_idle(page)
    page.get_by_text("point tracking + re-finding (any segmenter)").click()
    wait_idle(page)
    page.get_by_text("Text prompt: find objects by name").click()
    page.locator(".st-key-seg_vgrounder input").wait_for()
    wait_idle(page)
    _pick(page, "seg_vgrounder", "demo-fasterrcnn" + grounding.CLOSED)
    page.get_by_text("it finds only the classes it was trained on").wait_for()
    for key, value in (("seg_vphrase", "star"), ("seg_vevery", "5")):
        page.locator(f".st-key-{key} input").fill(value)
        page.locator(f".st-key-{key} input").press("Enter")
        wait_idle(page)
    page.get_by_role("button", name="Find and track").click()
    page.get_by_text("object(s) through 40 frames").first.wait_for(timeout=300_000)
    wait_idle(page)
    page.get_by_text("Where, what, when").scroll_into_view_if_needed()
    csv = pd.read_csv(_download(page, "Timeline: CSV", tmp_path / "timeline.csv"))
    assert set(csv["label"]) == {"star"}
    screen = csv.groupby("object").size().sort_values(ascending=False, kind="stable")
    assert len(screen) >= 2
    top_two = sorted(int(o) for o in screen.index[:2])
    _select_rows(page, "seg_timeline_table", [0, 1])          # the table: most on screen first
    page.get_by_text("Applies to: " + ", ".join(f"star #{o}" for o in top_two)).wait_for()
    page.screenshot(path=ARTIFACTS / "segmentation-video-text.png", full_page=True)
    rendered = [f.rgb for f in video_io.iter_frames(video_io.open_video(
        render_blurred(page, tmp_path / "blurred.mp4")))]
    coco = json.loads(_download(page, "Tracks: COCO video JSON (RLE)", tmp_path / "t.json")
                      .read_text())
    original = [f.rgb for f in video_io.iter_frames(video_io.open_video(clip))]
    assert len(rendered) == len(original) == len(coco["images"]) == 40
    frame_of = {im["id"]: im["frame_index"] for im in coco["images"]}
    picked = [np.zeros((256, 256), bool) for _ in range(40)]
    for ann in coco["annotations"]:
        if ann["track_id"] in top_two:
            picked[frame_of[ann["image_id"]]] |= mask_ops.from_rle(ann["segmentation"])
    # the CSV is the exported masks: one row per frame and track, with its area
    areas = sorted((frame_of[a["image_id"]], a["track_id"], int(a["area"]))
                   for a in coco["annotations"])
    assert areas == sorted(csv[["frame", "object", "area"]].itertuples(index=False, name=None))
    assert sum(m.any() for m in picked) >= 30
    inside_to_blur, inside_to_original, outside = [], [], []
    for f in range(40):
        here, orig = rendered[f].astype(int), original[f].astype(int)
        blurred = mask_ops.apply_effect(original[f], [picked[f]], "blur", 31).astype(int)
        away = ~cv2.dilate(picked[f].astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
        outside.append(np.abs(here - orig).sum(-1)[away].mean())
        if picked[f].sum() > 50:
            inside_to_blur.append(np.abs(here - blurred).sum(-1)[picked[f]].mean())
            inside_to_original.append(np.abs(here - orig).sum(-1)[picked[f]].mean())
    # away from the masks the frames are the original (H.264 noise only); inside them, the
    # blur of the original, not the original
    assert max(outside) < 12, np.round(outside, 1)
    assert np.mean(inside_to_blur) < 0.4 * np.mean(inside_to_original), (
        np.mean(inside_to_blur), np.mean(inside_to_original))
    strip = np.concatenate([rendered[i] for i in (0, 14, 24, 36)], axis=1)
    Image.fromarray(strip.astype(np.uint8)).save(ARTIFACTS / "segmentation-video-text-blurred.png")
