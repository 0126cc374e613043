"""Browser journeys of the what-if lab: a photo under fog on Classification, with both
predictions and CAMs and the sweep's flip points; COCO-C for two demo detectors on the demo
set, with mPC and rPC and their intervals on the leaderboard."""

import pytest
from PIL import Image
from skimage import data

from tests.e2e.conftest import ARTIFACTS
from tests.e2e.test_journeys import wait_idle

pytestmark = pytest.mark.e2e


def pick(page, label: str, option: str) -> None:
    """Choose `option` in the select box labelled `label`."""
    box = page.get_by_test_id("stSelectbox").filter(has_text=label)
    box.scroll_into_view_if_needed()
    box.locator("input").click()
    page.get_by_role("option", name=option, exact=True).click()
    wait_idle(page)


def run_detectors(page) -> None:
    """Run both model slots' detectors on the Detection page and wait for their results."""
    runs = page.get_by_role("button", name="Run", exact=True)
    for k in range(runs.count()):       # slot A's, then slot B's (none where cached already)
        runs.nth(k).click()
        wait_idle(page)
    page.get_by_text("Cached predictions").nth(1).wait_for(timeout=300_000)
    wait_idle(page)


def test_classification_whatif_fog_3_and_the_sweep(page, server, tmp_path):
    from lib.classification import whatif
    from lib.models import cache
    photo = tmp_path / "coffee.png"
    Image.fromarray(data.coffee()).save(photo)
    page.goto(f"{server}/classification")
    page.get_by_text("overlay · tiger cat").wait_for()
    page.locator("input[type=file]").first.set_input_files(str(photo))
    page.get_by_text("top-1 espresso").first.wait_for()
    wait_idle(page)
    page.get_by_role("tab", name="What-if").click()
    wait_idle(page)
    pick(page, "Corruption", "fog")
    page.get_by_text("fog 3 · top-1").wait_for()
    assert "severity=3" in page.url and "corruption=fog" in page.url
    clean = page.get_by_text("clean · top-1").inner_text()
    assert "espresso" in clean
    assert page.get_by_text("GradCAM · espresso").count() == 2     # both CAMs, one class
    page.get_by_role("button", name="Run the sweep (19 corruptions × 5 severities)").click()
    table = page.locator("table", has_text="flip point (severity)")
    table.wait_for(timeout=300_000)
    wait_idle(page)
    assert not page.get_by_test_id("stException").count()
    page.screenshot(path=ARTIFACTS / "classification-whatif.png", full_page=True)
    shown = {row.locator("th").inner_text().strip(): row.locator("td").inner_text().strip()
             for row in table.locator("tbody tr").all()}
    lm = cache.load("EfficientNet-Lite0 ImageNet (packaged)", "classification").model
    want = whatif.sweep(lm, Image.open(photo)).flip_points()
    assert shown == {k.replace("_", " "): str(v or "never") for k, v in want.items()}


def test_coco_c_for_two_demo_detectors_reaches_the_leaderboard(page, server):
    """The demo set (4 images), both demo detectors run, then COCO-C's 15 x 5 from the
    Robustness tab: mPC and rPC with intervals on the tab and the leaderboard; mPC is the mean
    of pycocotools' AP over the 75 corrupted runs."""
    import numpy as np

    from lib.demo import synth
    from lib.detection import datasets, robustness
    from lib.models import registry
    from tests import reference
    page.goto(f"{server}/detection")
    page.get_by_text("150 images").wait_for()
    subset = page.get_by_label("Subset size (0 = all)")
    subset.fill("4")
    subset.press("Enter")
    page.get_by_text("4 images,").wait_for()
    wait_idle(page)
    run_detectors(page)
    page.get_by_role("tab", name="Robustness").click()
    page.get_by_text("75 corruption × severity pairs × 4 images").wait_for()
    start = page.get_by_role("button", name="Run COCO-C")
    if start.count():                   # (cached from an earlier run on this machine: shown)
        start.click()
    table = page.locator("table", has_text="mPC [95% interval]")
    table.wait_for(timeout=600_000)
    wait_idle(page)
    assert not page.get_by_test_id("stException").count()
    table.scroll_into_view_if_needed()
    page.screenshot(path=ARTIFACTS / "detection-robustness.png", full_page=True)
    shown = {row.locator("th").inner_text().strip(): [c.inner_text() for c in
                                                      row.locator("td").all()]
             for row in table.locator("tbody tr").all()}
    assert set(shown) == {"demo-fasterrcnn", "demo-conditional-detr"}
    page.locator("th", has_text="mPC 95%").first.wait_for(state="attached")   # leaderboard
    split = synth.demo_val()
    demo = datasets.load_coco(split / "annotations.json", split / "images").subset(4, 0)
    job = robustness.job_for(registry.find("demo-fasterrcnn"), demo, robustness.conditions())
    assert job.finished
    by = robustness.by_condition(job.results(), robustness.conditions())
    rows = {c: [r for d in by.get(c, {}).values() for r in d.to_coco()]
            for c in robustness.conditions()}
    want = np.mean([reference.pycocotools(demo, rows[c])["AP"] if rows[c] else 0.0
                    for c in robustness.conditions()])
    mpc = shown["demo-fasterrcnn"][1]                  # "0.1234 [0.1000, 0.2000]"
    assert float(mpc.split()[0]) == pytest.approx(want, abs=5e-5) and "[" in mpc
    assert "[" in shown["demo-fasterrcnn"][2] and "%" in shown["demo-fasterrcnn"][2]


def test_segmentation_whatif_same_box_under_fog(page, server):
    """A box dragged around the sample cat, then the What-if expander: the mask on the clean
    and the foggy photo side by side, and their IoU."""
    from tests.e2e.test_journeys import _clickable_image, _open_segmentation
    from tests.e2e.test_real_material import _drag
    _open_segmentation(page, server)
    box, scale = _clickable_image(page, side=451)            # the cat photo, 451 px wide
    _drag(page, box, scale, 120, 20, 330, 300)
    page.get_by_text("calibrated predicted IoU").first.wait_for(timeout=120_000)
    wait_idle(page)
    page.get_by_text("What-if: the same prompt on a corrupted image").click()
    page.get_by_text("Compare with a corrupted image").click()
    said = page.get_by_text("Mask IoU, clean against corrupted")
    said.wait_for(timeout=120_000)
    wait_idle(page)
    iou = float(said.inner_text().rsplit(" ", 1)[-1])
    assert 0.0 <= iou <= 1.0
    page.get_by_text("fog 3", exact=True).wait_for()
    assert not page.get_by_test_id("stException").count()
    said.scroll_into_view_if_needed()
    page.screenshot(path=ARTIFACTS / "segmentation-whatif.png", full_page=True)
