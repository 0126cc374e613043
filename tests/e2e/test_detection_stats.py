"""Browser journey: the detection page's statistics on the demo dataset, offline: paired
comparison, a worst slice, calibration, a confusion cell into its images, and the HTML report
opened offline with the page's numbers."""

import json

import pytest

from tests.e2e.conftest import ARTIFACTS
from tests.e2e.test_journeys import wait_idle
from tests.helpers import gt_results

pytestmark = pytest.mark.e2e


def _results(tmp_path):
    from lib.demo import synth
    from lib.detection import datasets
    split = synth.demo_val()
    demo = datasets.load_coco(split / "annotations.json", split / "images")
    good = gt_results(demo, 0.03, 0.1, seed=1) + gt_results(demo, 0.7, 0.6, seed=3)
    worse = gt_results(demo, 0.12, 0.3, seed=2)
    cats = sorted(demo.categories)
    for k, r in enumerate(worse):                 # every fourth box called the next class
        if k % 4 == 0:
            r["category_id"] = cats[(cats.index(r["category_id"]) + 1) % len(cats)]
    for name, rows in (("good", good), ("worse", worse)):
        (tmp_path / f"{name}.json").write_text(json.dumps(rows))
    return demo, good, worse


def test_statistics_paired_slice_calibration_confusion_and_report(browser, server, tmp_path):
    from tests import reference
    demo, good, worse = _results(tmp_path)
    context = browser.new_context(viewport={"width": 1400, "height": 1000},
                                  accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(120_000)
    # a link naming two models the page does not have: both slots ask for results files
    page.goto(f"{server}/detection?models=good,worse")
    page.get_by_text("150 images").wait_for()
    wait_idle(page)
    page.locator("input[type=file]").nth(0).set_input_files(str(tmp_path / "good.json"))
    page.get_by_role("tab", name="Statistics").wait_for()
    wait_idle(page)
    page.locator("input[type=file]").nth(1).set_input_files(str(tmp_path / "worse.json"))
    page.locator("th", has_text="B − A").first.wait_for(state="attached")
    wait_idle(page)

    page.get_by_role("tab", name="Statistics").click()
    page.get_by_text("Is B really better than A?").wait_for()
    verdict = page.get_by_text("good is better:").first
    verdict.wait_for()
    verdict_text = verdict.inner_text()
    page.get_by_text("Worst slices").wait_for()
    page.get_by_text("Can I trust the scores? Calibration").wait_for()
    wait_idle(page)
    assert page.get_by_test_id("stImage").count() >= 1          # the worst slice's images
    assert not page.get_by_test_id("stException").count()
    page.screenshot(path=ARTIFACTS / "detection-statistics.png", full_page=True)
    with page.expect_download() as info:
        page.get_by_role("button", name="Report (HTML)").click()
    report = tmp_path / info.value.suggested_filename
    info.value.save_as(report)

    page.get_by_role("tab", name="Per class").click()
    chart = page.locator(".js-plotly-plot").filter(has_text="Confusion")
    chart.wait_for()
    wait_idle(page)
    chart.locator(".scatterlayer path.point").first.click(force=True)
    page.get_by_text("most such detections first").wait_for()
    wait_idle(page)
    assert page.get_by_test_id("stImage").count() >= 1
    page.screenshot(path=ARTIFACTS / "detection-confusion-cell.png", full_page=True)
    context.close()

    # the report, offline: its figures draw, its numbers are the page's and pycocotools'
    offline = browser.new_context(offline=True)
    doc = offline.new_page()
    doc.goto(report.as_uri())
    doc.locator("#intervals").wait_for()
    assert doc.locator(".js-plotly-plot .main-svg").count() >= 3
    assert verdict_text.strip() in doc.locator("body").inner_text()
    rows = doc.locator("#intervals tbody tr")
    cells = {rows.nth(i).locator("td").nth(0).inner_text():
             rows.nth(i).locator("td").nth(1).inner_text() for i in range(rows.count())}
    for name, results in (("good", good), ("worse", worse)):
        ref = reference.pycocotools(demo, results)["AP"]
        assert cells[name].startswith(f"{ref:.4f} (")
    doc.screenshot(path=ARTIFACTS / "detection-report.png", full_page=True)
    offline.close()
