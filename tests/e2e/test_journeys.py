"""Browser journeys in Debian Chromium: navigation, and upload -> CAM overlay -> download."""

import io

import pytest
from PIL import Image
from skimage import data

from tests.e2e.conftest import ARTIFACTS

pytestmark = pytest.mark.e2e

NAV = [("Classification", "Scene classification"), ("Segmentation", "Segmentation"),
       ("Detection", "Detection"), ("Runs", "Runs"), ("Home", "Lens")]


def test_home_loads_and_every_nav_link_opens_its_page(page, server):
    page.goto(server)
    page.get_by_role("heading", name="Lens").wait_for()
    page.get_by_text("models ready to use offline").wait_for()
    page.screenshot(path=ARTIFACTS / "home.png", full_page=True)
    nav = page.get_by_test_id("stSidebarNav")
    for link, heading in NAV:
        nav.get_by_role("link", name=link).click()
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
