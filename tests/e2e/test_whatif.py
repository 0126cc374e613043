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
