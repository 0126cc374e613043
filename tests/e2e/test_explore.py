"""Browser journey of the Detection page's Dataset tab on the demo set: the object map, a
lasso around part of it that the metrics follow (checked against pycocotools on the
selected images), more like this, and the annotations most likely wrong on a copy of the
set with injected errors, exported as COCO JSON and scored against what was injected."""

import json
import zipfile
from urllib.parse import parse_qs, urlparse

import pytest

from tests.e2e.conftest import ARTIFACTS
from tests.e2e.test_journeys import wait_idle
from tests.e2e.test_whatif import pick, run_detectors

pytestmark = pytest.mark.e2e


def _lasso(page, chart) -> None:
    """A lasso 60 px across drawn around one point of the map (found from Plotly's own
    layout: where its axes put the point), so it holds some points and not all."""
    x, y = chart.evaluate("""el => {
        const fl = el._fullLayout, d = el._fullData[0], r = el.getBoundingClientRect();
        return [r.left + fl._size.l + fl.xaxis.l2p(d.x[0]),
                r.top + fl._size.t + fl.yaxis.l2p(d.y[0])]; }""")
    page.mouse.move(x - 30, y - 30)
    page.mouse.down()
    for px, py in [(x + 30, y - 30), (x + 30, y + 30), (x - 30, y + 30), (x - 30, y - 30)]:
        page.mouse.move(px, py, steps=12)
    page.mouse.up()


def test_map_lasso_metrics_more_like_this_and_label_errors(page, server, tmp_path):
    from lib.demo import label_noise, synth
    from lib.detection import datasets, jobs
    from lib.models import registry
    from tests import reference
    page.goto(f"{server}/detection")
    page.get_by_text("150 images").wait_for()
    wait_idle(page)
    run_detectors(page)
    page.get_by_role("tab", name="Dataset").click()
    wait_idle(page)
    pick(page, "Points", "objects: ground truth")
    run = page.get_by_role("button", name="Run", exact=True)
    if run.count():                     # (cached from an earlier run on this machine: shown)
        run.first.click()
    plot = page.locator(".js-plotly-plot").first
    plot.wait_for(timeout=300_000)
    wait_idle(page)
    page.get_by_text("285 points · PCA").wait_for()
    plot.scroll_into_view_if_needed()
    _lasso(page, plot)
    page.get_by_text("images selected on the Dataset tab's map").wait_for(timeout=120_000)
    wait_idle(page)
    selected = [int(i) for i in parse_qs(urlparse(page.url).query)["selected"][0].split(",")]
    assert 0 < len(selected) < 150
    table = page.get_by_test_id("stTableStyledTable").filter(has_text="AP50")
    table.wait_for()
    shown = {row.locator("th").inner_text().strip(): [c.inner_text() for c in
                                                      row.locator("td").all()]
             for row in table.locator("tbody tr").all()}
    split = synth.demo_val()
    demo = datasets.load_coco(split / "annotations.json", split / "images")
    job = jobs.job_for(registry.find("demo-fasterrcnn"), demo)
    rows = [r for r in job.results() if r["image_id"] in set(selected)]
    want = reference.pycocotools(demo.only(selected), rows)["AP"]
    assert shown["demo-fasterrcnn"][0] == str(len(selected))
    assert float(shown["demo-fasterrcnn"][1]) == pytest.approx(want, abs=6e-5)
    plot.scroll_into_view_if_needed()
    page.screenshot(path=ARTIFACTS / "detection-dataset.png", full_page=True)
    # more like this on one object: eight neighbours, nearest first
    point = page.get_by_label("Point (its row; hover a point to read it)")
    point.fill("17")
    point.press("Enter")
    page.get_by_text("row 17 · image").wait_for()
    wait_idle(page)
    captions = page.get_by_text("distance 0.").all_inner_texts()
    distances = sorted(float(c.split()[1]) for c in captions)
    from sklearn.neighbors import NearestNeighbors

    from lib.detection.explore import embedding_job
    spec = registry.find("EfficientNet-Lite0 ImageNet (packaged)", "classification")
    emb = embedding_job.job_for(demo, spec.name, None,
                                embedding_job.ground_truth_boxes(demo)).embeddings("object")
    want, _ = NearestNeighbors(n_neighbors=9, metric="cosine").fit(emb.vectors).kneighbors(
        emb.vectors[17:18])
    assert distances == pytest.approx(want[0][1:], abs=1.5e-3)        # shown to 3 places
    assert not page.get_by_test_id("stException").count()

    # the same set with 10% of its boxes made wrong, uploaded as a zip
    data, injected = label_noise.inject(json.loads((split / "annotations.json").read_text()),
                                        0.1, seed=0)
    archive = tmp_path / "noisy.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("annotations/instances_noisy.json", json.dumps(data))
        for image in sorted((split / "images").iterdir()):
            z.write(image, f"images/{image.name}")
    page.goto(f"{server}/detection")
    page.get_by_text("150 images").wait_for()
    page.get_by_text("Upload zip").click()
    wait_idle(page)
    page.locator("[data-testid=stSidebar] input[type=file]").set_input_files(str(archive))
    page.get_by_text("instances_noisy.json").wait_for(timeout=120_000)
    wait_idle(page)
    pick(page, "Model A", "demo-fasterrcnn")
    pick(page, "Model B", "demo-conditional-detr")
    run_detectors(page)
    page.get_by_role("tab", name="Dataset").click()
    wait_idle(page)
    page.get_by_text("Label errors", exact=True).click()
    wait_idle(page)
    top = page.get_by_label("Review the top")
    top.fill(str(2 * len(injected)))
    top.press("Enter")
    button = page.get_by_role(
        "button", name=f"Flagged boxes: the top {2 * len(injected)} (COCO JSON, for "
                       "re-annotation)")
    button.wait_for()
    wait_idle(page)
    page.get_by_text("swapped ·").first.scroll_into_view_if_needed()
    page.screenshot(path=ARTIFACTS / "detection-label-errors.png", full_page=True)
    with page.expect_download() as download:
        button.click()
    flagged = json.loads(download.value.path().read_text())
    rows = [{"image_id": a["image_id"], "ann_id": a.get("lens_ann_id", -1),
             "x0": a["bbox"][0], "y0": a["bbox"][1], "x1": a["bbox"][0] + a["bbox"][2],
             "y1": a["bbox"][1] + a["bbox"][3]} for a in flagged["annotations"]]
    assert len(rows) == 2 * len(injected)
    found, _, _ = label_noise.recall(rows, injected)
    assert found >= 0.8
    assert not page.get_by_test_id("stException").count()
