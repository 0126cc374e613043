"""Browser journeys in Debian Chromium: navigation, and upload -> CAM overlay -> download."""

import io

import pytest
from PIL import Image
from skimage import data

from tests.e2e.conftest import ARTIFACTS

pytestmark = pytest.mark.e2e

def wait_idle(page, timeout_ms: int = 120_000) -> None:
    """Wait until Streamlit has finished rerunning (its status widget is gone)."""
    page.wait_for_timeout(300)
    page.get_by_test_id("stStatusWidget").wait_for(state="detached", timeout=timeout_ms)


NAV = [("Classification", "Scene classification"), ("Segmentation", "Segmentation"),
       ("Detection", "Detection benchmark"), ("Runs", "Runs"), ("Home", "Lens")]


def test_home_loads_and_every_nav_link_opens_its_page(page, server):
    page.goto(server)
    page.get_by_role("heading", name="Lens").wait_for()
    page.get_by_text("models ready to use offline").wait_for()
    page.screenshot(path=ARTIFACTS / "home.png", full_page=True)
    nav = page.get_by_test_id("stSidebarNav")
    for link, heading in NAV:
        nav.get_by_role("link", name=link, exact=True).click()
        page.get_by_role("heading", name=heading, exact=True).wait_for()
        assert not page.get_by_test_id("stException").count()
        page.screenshot(path=ARTIFACTS / f"nav-{link.lower()}.png", full_page=True)


def test_upload_shows_overlay_and_download_works(page, server, tmp_path):
    photo = tmp_path / "coffee.png"
    Image.fromarray(data.coffee()).save(photo)
    page.goto(f"{server}/classification")
    page.get_by_text("overlay · tiger cat").wait_for()       # the sample photo first
    page.locator("input[type=file]").first.set_input_files(str(photo))
    page.get_by_text("top-1 espresso").wait_for()
    page.get_by_text("overlay · espresso").wait_for()
    page.get_by_text("Faithfulness").wait_for()
    page.screenshot(path=ARTIFACTS / "classification.png", full_page=True)
    with page.expect_download() as info:
        page.get_by_role("button", name="Download overlay (PNG)").click()
    target = tmp_path / info.value.suggested_filename
    info.value.save_as(target)
    assert target.name == "coffee_GradCAM_967.png"
    image = Image.open(io.BytesIO(target.read_bytes()))
    assert image.format == "PNG" and image.size == (224, 224)


def test_runs_compare_from_a_shared_url(page, server, tmp_path):
    """A URL with runs and smoothing reopens the same comparison; export downloads a CSV."""
    from urllib.parse import quote

    from lib import runs
    url = (f"{server}/runs?runs=spirals-adam-lr0.01-w32,spirals-sgd-lr0.1-w64"
           f"&metrics=val/acc&smooth=0.5&path={quote(str(runs.SAMPLE_RUNS))}")
    page.goto(url)
    page.get_by_text("Runs to compare").wait_for()
    page.get_by_role("tab", name="Curves").click()
    page.get_by_text("Export comparison (CSV)").wait_for()
    page.locator(".js-plotly-plot").first.wait_for()   # the curves render after the buttons
    assert page.get_by_text("0.50").count() >= 1  # the smoothing slider kept its value
    page.screenshot(path=ARTIFACTS / "runs.png", full_page=True)
    # the open tab is in the link too: a copied URL reopens the curves, and only they are
    # drawn (no chart of a hidden tab in the page)
    page.wait_for_url("**tab=Curves**")
    page.goto(page.url)
    page.locator(".js-plotly-plot").first.wait_for()
    charts = page.get_by_test_id("stPlotlyChart")
    assert charts.count() == charts.locator("visible=true").count() >= 1
    with page.expect_download() as info:
        page.get_by_role("button", name="Export comparison (CSV)").click()
    target = tmp_path / "runs.csv"
    info.value.save_as(target)
    lines = target.read_text().splitlines()
    assert len(lines) == 3 and lines[0].startswith("name,id,project,state")


def test_runs_live_refresh_and_parameter_importance(browser, tmp_path):
    """A run written by wandb in another process: the Live toggle shows it grow; then the
    bundled sweep's parameter importance."""
    import re
    import subprocess
    import sys
    import time
    from urllib.parse import quote

    from lib import runs
    from tests.conftest import ROOT
    from tests.e2e.conftest import free_port, start_streamlit
    from tests.helpers import LIVE_WRITER
    port = free_port()
    proc = start_streamlit(ROOT / "app.py", port, ROOT,
                           env={"LENS_DATA_ROOTS": f"{tmp_path}:{ROOT}"})
    writer = subprocess.Popen([sys.executable, "-c", LIVE_WRITER, str(tmp_path), "4000"])
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        while not list(tmp_path.glob("wandb/offline-run-*/*.wandb")):
            time.sleep(0.1)
        pg = context.new_page()
        pg.set_default_timeout(120_000)
        pg.goto(f"http://127.0.0.1:{port}/runs?metrics=loss&path={quote(str(tmp_path))}")
        pg.get_by_role("tab", name="Curves").click()
        pg.get_by_text("Live", exact=True).click()
        caption = pg.get_by_text(re.compile(r"^Live: \d+ rows"))
        caption.wait_for()
        counts = []
        while writer.poll() is None:
            counts.append(int(caption.inner_text().split()[1]))
            time.sleep(0.7)
        assert writer.wait(60) == 0
        pg.get_by_text("Live: 4000 rows read so far (live: finished)").wait_for(timeout=30_000)
        assert len(set(counts)) >= 2 and counts == sorted(counts)   # it grew on screen
        pg.locator(".js-plotly-plot").first.wait_for()
        pg.locator(".js-plotly-plot").first.scroll_into_view_if_needed()
        pg.screenshot(path=ARTIFACTS / "runs-live.png")

        pg.goto(f"http://127.0.0.1:{port}/runs?path={quote(str(runs.SAMPLE_RUNS))}")
        pg.get_by_role("tab", name="Parameter importance").click()
        pg.get_by_text("Parameter importance for").wait_for()
        pg.get_by_text("As W&B computes it").wait_for()
        assert not pg.get_by_test_id("stException").count()
        pg.get_by_text("As W&B computes it").scroll_into_view_if_needed()
        pg.screenshot(path=ARTIFACTS / "runs-importance.png")
    finally:
        writer.kill()
        context.close()
        proc.terminate()
        proc.wait(timeout=10)


def test_cold_deep_link_gets_the_router(browser):
    """The first request to a fresh server is a page URL: the sidebar still shows our nav."""
    from tests.conftest import ROOT
    from tests.e2e.conftest import free_port, start_streamlit
    port = free_port()
    proc = start_streamlit(ROOT / "app.py", port, ROOT)
    try:
        pg = browser.new_page()
        pg.goto(f"http://127.0.0.1:{port}/runs")
        pg.get_by_role("heading", name="Runs", exact=True).wait_for(timeout=60_000)
        nav = pg.get_by_test_id("stSidebarNav")
        nav.get_by_role("link", name="Classification", exact=True).wait_for(timeout=30_000)
        assert nav.get_by_role("link", name="app", exact=True).count() == 0
        pg.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_detection_benchmark_with_imported_predictions(page, server, tmp_path, shared_assets):
    import json

    from lib.detection import datasets
    from tests.helpers import gt_results
    base = shared_assets / "data" / "coco_val2017_tiny"
    coco = datasets.load_coco(base / "annotations" / "instances_val2017.json", base / "val2017")
    for name, shift in (("sharp", 0.05), ("blurry", 0.3)):
        (tmp_path / f"{name}.json").write_text(json.dumps(gt_results(coco, shift, 0.2)))
    page.goto(f"{server}/detection")
    page.get_by_text("150 images").wait_for()            # offline: the demo split first
    page.get_by_test_id("stSidebar").get_by_text("Path", exact=True).click()
    page.get_by_text("80 images, 815 objects").wait_for()
    wait_idle(page)
    page.locator("input[type=file]").nth(0).set_input_files(str(tmp_path / "sharp.json"))
    page.get_by_role("tab", name="Errors").wait_for()
    wait_idle(page)  # a file set during a rerun can be lost
    page.locator("input[type=file]").nth(1).set_input_files(str(tmp_path / "blurry.json"))
    page.locator("th", has_text="B − A").first.wait_for(state="attached")
    page.get_by_role("tab", name="Errors").click()
    page.get_by_text("AP50 gained by fixing each error type").wait_for()
    assert page.locator(".js-plotly-plot").count() >= 1
    page.screenshot(path=ARTIFACTS / "detection.png", full_page=True)


def test_an_idle_page_costs_the_server_nothing(page, server):
    """The detection page on demo data, both detectors idle: once it has drawn, the server
    sends nothing more (a progress poll that ran whether or not a job ran cost every visitor
    two reruns a second)."""
    frames: list = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda f: frames.append(f)))
    page.goto(f"{server}/detection")
    page.get_by_role("button", name="Run").first.wait_for()
    wait_idle(page)
    page.wait_for_timeout(1500)
    drawn = len(frames)
    page.wait_for_timeout(4000)
    assert drawn > 0 and len(frames) == drawn, f"{len(frames) - drawn} messages while idle"


def test_segmentation_drag_a_box_and_see_the_mask(page, server):
    """Drag a box on the sample photo with the GrabCut fallback picked: its mask is drawn in
    the object's colour on the clickable image, and the mask downloads appear."""
    import base64

    import numpy as np

    from lib.media import masks as mask_ops
    from lib.segmentation.segment import GRABCUT
    page.goto(f"{server}/segmentation")
    page.get_by_role("heading", name="Segmentation", exact=True).wait_for()
    wait_idle(page)
    _pick(page, "seg_model", GRABCUT)
    frame = page.frame_locator("iframe[title*='streamlit_image_coordinates']").first
    image = frame.locator("#image")
    image.wait_for()
    box = image.bounding_box()
    x0, y0 = box["x"] + box["width"] * 0.27, box["y"] + box["height"] * 0.05
    x1, y1 = box["x"] + box["width"] * 0.73, box["y"] + box["height"] * 0.75
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x1, y1, steps=8)
    page.mouse.up()
    page.get_by_text("1 mask from GrabCut (classical fallback, not SAM2)").wait_for(
        timeout=120_000)
    page.get_by_role("button", name="Mask: object 1").wait_for()
    wait_idle(page)
    src = frame.locator("#image").get_attribute("src")
    drawn = np.asarray(Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))))
    outline = (drawn[..., :3] == mask_ops.color_for(1)).all(axis=-1)
    assert outline.sum() > 100                                   # the mask's outline is drawn
    page.screenshot(path=ARTIFACTS / "segmentation.png", full_page=True)


def _open_segmentation(page, server, video: bool = False) -> None:
    page.goto(f"{server}/segmentation")
    page.get_by_role("heading", name="Segmentation", exact=True).wait_for()
    wait_idle(page)
    if video:
        page.get_by_text("Video", exact=True).click()
        wait_idle(page)


def _clickable_image(page, side: int = 256):
    """The prompt canvas on screen: its box and screen pixels per image pixel."""
    image = page.frame_locator("iframe[title*='streamlit_image_coordinates']").first.locator(
        "#image")
    image.wait_for()
    wait_idle(page)
    image.scroll_into_view_if_needed()
    box = image.bounding_box()
    return box, box["width"] / side


def _click_shape(page, mask) -> None:
    """Click the prompt canvas where a user clicks a shape: its interior point farthest from
    the edge (`mask` in image pixels, the canvas as wide as the image)."""
    from lib.media.masks import interior_point
    x, y = interior_point(mask)
    box, scale = _clickable_image(page, side=mask.shape[1])
    page.mouse.click(box["x"] + (x + 0.5) * scale, box["y"] + (y + 0.5) * scale)


def render_blurred(page, target):
    """Pick the blur effect, render the MP4 and download it to `target`."""
    effect = page.get_by_test_id("stSelectbox").filter(has_text="Effect")
    effect.scroll_into_view_if_needed()
    effect.locator("input").click()
    page.get_by_role("option", name="blur", exact=True).click()
    wait_idle(page)
    page.get_by_role("button", name="Render MP4").click()
    download = page.get_by_role("button", name="Download MP4")
    download.wait_for(timeout=300_000)        # rendering a long clip on a busy CPU
    with page.expect_download() as info:
        download.click()
    info.value.save_as(target)
    return target


def _render_blur_and_check(page, clip, truth_mask, frame: int, target):
    """Blur the tracked objects, render and download the MP4; on `frame` it must be blurred
    inside `truth_mask` (closer to a blur of the original there than to the original)."""
    import numpy as np

    from lib.media import masks as mask_ops
    from lib.media import video as video_io
    rendered = [f.rgb for f in video_io.iter_frames(video_io.open_video(
        render_blurred(page, target)))]
    original = [f.rgb for f in video_io.iter_frames(video_io.open_video(clip))]
    assert len(rendered) == len(original)
    blurred = mask_ops.apply_effect(original[frame], [truth_mask], "blur", 31)[..., :3]
    here = rendered[frame].astype(int)
    to_blurred = np.abs(here - blurred.astype(int)).sum(-1)[truth_mask].mean()
    to_original = np.abs(here - original[frame].astype(int)).sum(-1)[truth_mask].mean()
    assert to_blurred < 0.6 * to_original
    return rendered


def test_segmentation_video_offline_track_blur_and_download(page, server, tmp_path):
    """No SAM 2 here, GrabCut picked: the sample clip, a box dragged on frame 0, classical
    tracking (said plainly), a blurred MP4 rendered and downloaded; its frames are blurred
    where the object is."""
    import json

    import numpy as np

    from lib.demo import synth
    from lib.media import masks as mask_ops
    clip = synth.sample_clip()
    truth = json.loads((clip.parent / "clips.json").read_text())["clips"][0]["masks"]
    ys, xs = np.nonzero(mask_ops.from_rle(truth[0]["0"]))
    from lib.segmentation.segment import GRABCUT
    _open_segmentation(page, server, video=True)
    _pick(page, "seg_video_model", GRABCUT)
    page.get_by_text("Use the sample clip (synthetic moving shapes)").click()
    page.get_by_text("not SAM 2").first.wait_for()
    box, scale = _clickable_image(page)
    page.mouse.move(box["x"] + (xs.min() - 3) * scale, box["y"] + (ys.min() - 3) * scale)
    page.mouse.down()
    page.mouse.move(box["x"] + (xs.max() + 4) * scale, box["y"] + (ys.max() + 4) * scale,
                    steps=8)
    page.mouse.up()
    page.get_by_role("button", name="Propagate through the clip").click()
    page.get_by_text("Tracked 1 object(s) through 40 frames").wait_for()
    wait_idle(page)
    page.get_by_text("Tracked 1 object(s) through 40 frames").scroll_into_view_if_needed()
    page.screenshot(path=ARTIFACTS / "segmentation-video.png")
    # frame 5: the object is blurred there
    rendered = _render_blur_and_check(page, clip, mask_ops.from_rle(truth[5]["0"]), 5,
                                      tmp_path / "blurred.mp4")
    assert len(rendered) == 40
    strip = np.concatenate([rendered[i] for i in (0, 12, 24, 36)], axis=1)
    Image.fromarray(strip).save(ARTIFACTS / "segmentation-video-blurred.png")


def _pick(page, key: str, option: str) -> None:
    """Choose `option` in the select box with widget key `key` (main area or sidebar); by key,
    because a rerun can briefly show the previous mode's box with the same label."""
    box = page.locator(f".st-key-{key}")
    box.scroll_into_view_if_needed()
    box.locator("input").click()
    page.get_by_role("option", name=option, exact=True).click()
    wait_idle(page)


def _download(page, button: str, target):
    with page.expect_download() as info:
        page.get_by_role("button", name=button).click()
    info.value.save_as(target)
    return target


def test_segmentation_demo_segmenter_one_click_on_the_synthetic_sample(page, server, tmp_path):
    """Offline, the trained demo segmenter (a real EdgeTAM through the page's code): one click
    at the centre of a shape of the synthetic sample; the mask the page lets you download is
    that shape (IoU against the generator's own mask)."""
    import numpy as np

    from lib.demo import samples, synth
    from lib.training.train_sam import NAME
    _, objects = synth.make_image(np.random.default_rng(7), 256, 3)    # = synth.sample_image()
    truth = objects[0][1]
    _open_segmentation(page, server)
    _pick(page, "seg_sample", samples.SYNTHETIC)
    _pick(page, "seg_model", f"{NAME} (trained on synthetic shapes)")
    _click_shape(page, truth)
    page.get_by_text(f"Candidates for object 1 ({NAME})").wait_for(timeout=120_000)
    wait_idle(page)
    mask = np.asarray(Image.open(_download(page, "Mask: object 1", tmp_path / "m.png"))) > 0
    iou = (mask & truth).sum() / (mask | truth).sum()
    assert iou >= 0.8, iou
    page.screenshot(path=ARTIFACTS / "segmentation-demo.png", full_page=True)


def test_segmentation_demo_tracker_click_propagate_blur_and_download(page, server, tmp_path):
    """Offline video mode on the trained demo segmenter (EdgeTAM's memory path through the
    page's Tracker): one click on frame 0 of the sample clip, propagate, and the downloads:
    the COCO JSON's masks (decoded by pycocotools) follow the object, and the rendered MP4 is
    blurred where it is."""
    import json

    import numpy as np
    from pycocotools import mask as mask_utils

    from lib.demo import synth
    from lib.media import masks as mask_ops
    from lib.training.train_sam import NAME
    clip = synth.sample_clip()
    truth = [{int(k): mask_ops.from_rle(r) for k, r in fm.items()}
             for fm in json.loads((clip.parent / "clips.json").read_text())["clips"][0]["masks"]]
    _open_segmentation(page, server, video=True)
    _pick(page, "seg_video_model", f"{NAME} (trained on synthetic shapes)")
    page.get_by_text("Use the sample clip (synthetic moving shapes)").click()
    _memory_path(page)
    _click_shape(page, truth[0][0])
    page.get_by_role("button", name="Propagate through the clip").click()
    page.get_by_text("Tracked 1 object(s) through 40 frames").wait_for(timeout=240_000)
    wait_idle(page)
    coco = json.loads(_download(page, "Tracks: COCO video JSON (RLE)", tmp_path / "m.json")
                      .read_text())
    tracked = {a["image_id"] - 1: mask_utils.decode(a["segmentation"]).astype(bool)
               for a in coco["annotations"] if a["track_id"] == 1}
    ious = []
    for f, objects in enumerate(truth):
        if 0 in objects and objects[0].sum() > 0:
            m = tracked.get(f, np.zeros_like(objects[0]))
            ious.append((m & objects[0]).sum() / (m | objects[0]).sum())
    assert ious[0] >= 0.9, np.round(ious, 2)     # the clicked frame: the page's coordinates
    # later frames come from the memory path, which is not trained (the manifest's J is 0.31
    # on the validation clips; 0.38 here when measured through lib): a floor that a broken
    # propagation (empty or frozen masks) does not reach
    assert np.mean(ious) >= 0.25, np.round(ious, 2)
    rendered = _render_blur_and_check(page, clip, truth[0][0], 0, tmp_path / "blurred.mp4")
    assert len(rendered) == 40
    strip = np.concatenate([rendered[i] for i in (0, 3, 12, 36)], axis=1)
    Image.fromarray(strip).save(ARTIFACTS / "segmentation-demo-video-blurred.png")


def _memory_path(page) -> None:
    """Track with the model's memory path (the demo segmenter's default is point tracking)."""
    page.get_by_text("the model's memory (SAM 2 / EdgeTAM video)").click()
    page.get_by_text("Recommended for").first.wait_for()
    wait_idle(page)


def _table_cell(page, text: str):
    """A cell of a data frame (drawn on a canvas; its cells exist for screen readers)."""
    return page.locator("td[role=gridcell]", has_text=text).first


def test_segmentation_long_clip_two_objects_track_scrub_blur_and_download(page, server,
                                                                         tmp_path):
    """A clip longer than the old 300-frame cap, uploaded; the demo segmenter; one shape
    clicked on frame 0 and another on frame 3; tracked through all 320 frames; scrubbed to
    the last frame; the COCO JSON (decoded by pycocotools) holds both objects, each its
    shape on the frame it was prompted on and following it after; the MP4 is blurred there."""
    import json

    import numpy as np
    from playwright.sync_api import expect
    from pycocotools import mask as mask_utils

    from lib.demo import synth
    from lib.media import masks as mask_ops
    from lib.training.train_sam import NAME
    folder = synth.write_clips(tmp_path / "clip", 1, frames=320, size=256, seed=11, fps=30)
    clip = folder / "clip000.mp4"
    truth = [{int(k): mask_ops.from_rle(r) for k, r in fm.items()}
             for fm in json.loads((folder / "clips.json").read_text())["clips"][0]["masks"]]
    _open_segmentation(page, server, video=True)
    _pick(page, "seg_video_model", f"{NAME} (trained on synthetic shapes)")
    page.locator("input[type=file]").first.set_input_files(str(clip))
    page.get_by_text("256×256, 320 frames").wait_for(timeout=60_000)
    _memory_path(page)
    _click_shape(page, truth[0][0])
    _table_cell(page, "object 1").wait_for(state="attached", timeout=120_000)
    wait_idle(page)
    page.get_by_role("button", name="New object").click()
    wait_idle(page)
    slider = page.locator(".st-key-seg_frame").get_by_role("slider")
    slider.focus()
    for _ in range(3):
        slider.press("ArrowRight")
    expect(slider).to_have_attribute("aria-valuetext", "3")
    wait_idle(page)
    _click_shape(page, truth[3][1])
    _table_cell(page, "object 2").wait_for(state="attached", timeout=120_000)
    wait_idle(page)
    page.get_by_role("button", name="Propagate through the clip").click()
    page.get_by_text("Tracked 2 object(s) through 320 frames").wait_for(timeout=400_000)
    wait_idle(page)
    slider.focus()
    slider.press("End")                                         # scrub to the last frame
    expect(slider).to_have_attribute("aria-valuetext", "319")
    wait_idle(page)
    assert not page.get_by_test_id("stException").count()
    page.screenshot(path=ARTIFACTS / "segmentation-video-long.png", full_page=True)
    coco = json.loads(_download(page, "Tracks: COCO video JSON (RLE)", tmp_path / "m.json")
                      .read_text())
    assert len(coco["images"]) == 320 and {t["id"] for t in coco["tracks"]} == {1, 2}
    tracked = {(a["image_id"] - 1, a["track_id"]):
               mask_utils.decode(a["segmentation"]).astype(bool) for a in coco["annotations"]}

    def iou(f: int, obj: int, shape: int) -> float:
        m = tracked.get((f, obj), np.zeros((256, 256), bool))
        return float((m & truth[f][shape]).sum() / (m | truth[f][shape]).sum())
    # the clicked frames: one click's mask of the shape clicked (the demo segmenter's mean
    # is 0.94 at a shape's centre; a click landing elsewhere gives another shape or nothing)
    assert iou(0, 1, 0) >= 0.75 and iou(3, 2, 1) >= 0.75
    # later frames come from the memory path (mean J 0.31 on the validation clips): a floor
    # that empty or frozen masks do not reach, over the frames each shape is fully visible
    follow = [iou(f, 1, 0) for f in range(1, 60) if 0 in truth[f]]
    assert np.mean(follow) >= 0.25, np.round(follow, 2)
    rendered = _render_blur_and_check(page, clip, truth[0][0], 0, tmp_path / "blurred.mp4")
    assert len(rendered) == 320


def test_closing_the_tab_mid_tracking_releases_the_clip_and_its_masks(browser, tmp_path,
                                                                     monkeypatch):
    """A visitor starts tracking a long clip and closes the tab: tracking stops at once, and
    once Streamlit has dropped the session (a 1 s reconnect window here) and the server has
    settled its memory (on the next visitor's page run), the masks' scratch file is gone.
    The server gets a cache folder of its own, so no other process's mask files are taken
    for its own."""
    import json
    import time

    from lib.core import scratch
    from lib.demo import synth
    from lib.media import masks as mask_ops
    from lib.training.train_sam import NAME
    from tests.conftest import ROOT
    from tests.e2e.conftest import free_port, start_streamlit
    folder = synth.write_clips(tmp_path / "clip", 1, frames=1500, size=128, seed=5, fps=30)
    monkeypatch.setenv("LENS_CACHE", str(tmp_path / "cache"))    # scratch.root() below too
    port = free_port()
    proc = start_streamlit(ROOT / "app.py", port, ROOT,
                           env={"STREAMLIT_SERVER_DISCONNECTED_SESSION_TTL": "1",
                                "LENS_DATA_ROOTS": f"{tmp_path}:{ROOT}",
                                "LENS_CACHE": str(tmp_path / "cache")})
    before = set(scratch.root().glob("masks-*.jsonl"))
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        pg = context.new_page()
        pg.set_default_timeout(120_000)
        _open_segmentation(pg, f"http://127.0.0.1:{port}", video=True)
        _pick(pg, "seg_video_model", f"{NAME} (trained on synthetic shapes)")
        pg.locator(".st-key-seg_video_path input").fill(str(folder / "clip000.mp4"))
        pg.locator(".st-key-seg_video_path input").press("Enter")
        pg.get_by_text("128×128, 1500 frames").wait_for()
        first = json.loads((folder / "clips.json").read_text())["clips"][0]["masks"][0]["0"]
        _click_shape(pg, mask_ops.from_rle(first))
        _table_cell(pg, "object 1").wait_for(state="attached")
        wait_idle(pg)
        pg.get_by_role("button", name="Propagate through the clip").click()
        pg.get_by_text("frames tracked ·").first.wait_for()       # tracking is under way
        made = set(scratch.root().glob("masks-*.jsonl")) - before
        assert made                                              # its masks, on disk
        context.close()
        time.sleep(3)
        sizes = [p.stat().st_size for p in made]
        time.sleep(3)
        assert sizes == [p.stat().st_size for p in made]        # tracking stopped
        other = browser.new_context()
        pg2 = other.new_page()
        pg2.goto(f"http://127.0.0.1:{port}/")
        pg2.get_by_role("heading", name="Lens").first.wait_for()
        deadline = time.time() + 60
        while any(p.exists() for p in made) and time.time() < deadline:
            time.sleep(0.5)
        other.close()
        assert not any(p.exists() for p in made), "the closed session's masks were kept"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_rank_cam_methods_and_sanity_check_the_demo_classifier(page, server):
    """Offline, on the sample photo: every fast method ranked by faithfulness, then the
    cascading randomisation test and the shuffled-label twin of the demo classifier."""
    page.goto(f"{server}/classification")
    page.get_by_text("overlay · tiger cat").wait_for()
    _pick(page, "model", "demo-classifier · ready")
    page.get_by_text("Rank every method on this image").wait_for()
    page.locator(".st-key-rank_slow label").click()          # the fast methods only
    wait_idle(page)
    page.get_by_role("button", name="Rank methods").click()
    page.get_by_text("Click a column to sort.").wait_for(timeout=240_000)
    wait_idle(page)
    page.get_by_test_id("stDataFrame").first.wait_for(state="attached")   # drawn after idle
    assert page.get_by_test_id("stDataFrame").count() == 1        # the ranking table
    page.get_by_role("button", name="Run sanity checks").click()
    page.get_by_text("Data randomisation").wait_for(timeout=240_000)
    wait_idle(page)
    page.get_by_text("layers randomised top-down").first.wait_for()
    assert not page.get_by_test_id("stException").count()
    page.get_by_test_id("stDataFrame").first.scroll_into_view_if_needed()
    page.screenshot(path=ARTIFACTS / "classification-ranking.png", full_page=True)
    page.get_by_test_id("stPlotlyChart").last.scroll_into_view_if_needed()
    page.screenshot(path=ARTIFACTS / "classification-sanity.png", full_page=True)
