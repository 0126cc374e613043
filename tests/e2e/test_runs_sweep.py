"""Browser journey on a sweep written by wandb: brush the parallel coordinates to a subset,
compare it, open a run's media and console, and download the HTML report, which renders
offline with the page's numbers."""

import json
import re
from urllib.parse import parse_qs, quote, urlparse

import numpy as np
import pytest

from tests.e2e.conftest import ARTIFACTS
from tests.e2e.test_journeys import wait_idle

pytestmark = pytest.mark.e2e
RUNS = 16


def write_sweep(root):
    """RUNS offline runs: val/acc depends on lr; each logs an image at two steps and has a
    console log."""
    import wandb
    rng = np.random.default_rng(0)
    for i in range(RUNS):
        config = {"lr": float(10 ** (-4 + 3 * i / (RUNS - 1))),
                  "dropout": round(float(rng.uniform(0, 0.5)), 3),
                  "optimizer": "adam" if i % 2 else "sgd"}
        run = wandb.init(mode="offline", dir=str(root), project="sweep", name=f"sweep-{i:02d}",
                         config=config, settings=wandb.Settings(silent=True, console="off",
                                                                x_disable_stats=True))
        for step in range(2):
            image = np.full((32, 48, 3), 40 * step + 5 * i, np.uint8)
            run.log({"val/acc": 0.5 + 0.02 * i * (step + 1) / 2,
                     "samples": wandb.Image(image, caption=f"run {i} step {step}")}, step=step)
        run.finish()
        folder = next((root / "wandb").glob(f"offline-run-*-{run.id}"))
        (folder / "files" / "output.log").write_text(f"training sweep-{i:02d}\nepoch 1 done\n")


def test_brush_compare_media_console_and_offline_report(browser, tmp_path):
    from lib import runs
    from tests.conftest import ROOT
    from tests.e2e.conftest import free_port, start_streamlit
    sweep = tmp_path / "sweep"
    write_sweep(sweep)
    infos = runs.load_offline(sweep)[0]
    port = free_port()
    proc = start_streamlit(ROOT / "app.py", port, ROOT, env={"LENS_DATA_ROOTS": str(tmp_path)})
    context = browser.new_context(viewport={"width": 1400, "height": 1100},
                                  accept_downloads=True)
    try:
        page = context.new_page()
        page.set_default_timeout(120_000)
        page.goto(f"http://127.0.0.1:{port}/runs?path={quote(str(sweep))}"
                  "&tab=Parallel+coordinates")
        chart = page.locator(".st-key-parallel .js-plotly-plot")
        chart.wait_for()
        wait_idle(page)
        page.get_by_text(f"{RUNS} runs drawn").wait_for()

        # drag along the first axis (dropout): the lower half of its range
        page.locator(".st-key-parallel").scroll_into_view_if_needed()
        axis = page.locator(".st-key-parallel g.axis-brush").first.bounding_box()
        x = axis["x"] + axis["width"] / 2
        top, bottom = axis["y"], axis["y"] + axis["height"]
        page.mouse.move(x, top + 0.45 * (bottom - top))
        page.mouse.down()
        page.mouse.move(x, top + 0.7 * (bottom - top), steps=8)
        page.mouse.move(x, bottom - 2, steps=8)
        page.mouse.up()
        caption = page.get_by_text(re.compile(rf"^\d+ of {RUNS} runs inside the brush"))
        caption.wait_for()
        wait_idle(page)
        kept = int(caption.inner_text().split()[0])
        assert 0 < kept < RUNS
        brush = json.loads(parse_qs(urlparse(page.url).query)["brush"][0])
        axes = runs.parallel_axes(infos, ["lr", "dropout", "optimizer"], "val/acc")
        expected = axes.brushed({k: [tuple(r) for r in v] for k, v in brush.items()})
        assert list(brush) == ["dropout"] and len(expected) == kept   # the link holds it
        page.screenshot(path=ARTIFACTS / "runs-sweep-brush.png", full_page=True)

        page.get_by_text(f"Compare all {kept} shown").click()
        wait_idle(page)
        page.get_by_role("tab", name="Media").click()
        page.get_by_test_id("stImage").first.wait_for()
        assert page.get_by_test_id("stImage").count() == min(kept, 8)
        page.get_by_role("tab", name="Console & system").click()
        page.get_by_text(re.compile(r"training sweep-\d\d")).first.wait_for()
        assert not page.get_by_test_id("stException").count()
        page.screenshot(path=ARTIFACTS / "runs-sweep-console.png", full_page=True)

        with page.expect_download() as download:
            page.get_by_role("button", name="Report (HTML)").click()
        report = tmp_path / "report.html"
        download.value.save_as(report)
        html = report.read_text()
        assert f"{kept} runs compared in Lens" in html
        assert all(name.split(" · ")[0] in html for name in expected)

        offline = browser.new_context(offline=True)
        view = offline.new_page()
        view.goto(report.as_uri())
        view.locator(".js-plotly-plot").first.wait_for(timeout=30_000)
        assert view.locator(".js-plotly-plot .parcoords").count() == 1   # drawn offline
        view.screenshot(path=ARTIFACTS / "runs-sweep-report.png", full_page=True)
        offline.close()
    finally:
        context.close()
        proc.terminate()
        proc.wait(timeout=10)
