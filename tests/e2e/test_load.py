"""Four visitors at once on one server (the small version of bench/load.py): no errors, no
exceptions, and every CAM and mask identical to what one visitor alone gets."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest

from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, ROOT, free_port, start_streamlit
from tests.e2e.visitors import at_door, visitors
from tests.helpers import gt_results

pytestmark = pytest.mark.e2e


def test_four_visitors_at_once_get_what_one_gets(browser, coco, tmp_path):
    preds = tmp_path / "predictions.json"
    preds.write_text(json.dumps(gt_results(coco, 0.1, 0.2, seed=1)))
    roots = f"{ROOT.parent}:{coco.images_dir.parent.parent}"
    port = free_port()
    door = tmp_path / "door.jsonl"
    proc = start_streamlit(ROOT / "app.py", port, ROOT, {"LENS_DATA_ROOTS": roots,
                                                         "LENS_CACHE": str(tmp_path / "c")},
                           door_log=door)
    outcome: dict = {}

    async def visits():
        from playwright.async_api import async_playwright
        async with async_playwright() as p:
            chromium = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            server = f"http://127.0.0.1:{port}"
            coco_paths = (str(coco.annotations_path), str(coco.images_dir))
            (outcome["alone"],) = await visitors(chromium, server, 1, coco_paths, preds)
            outcome["crowd"] = await visitors(chromium, server, 4, coco_paths, preds)
            await chromium.close()

    # the async API in its own thread: the session's sync browser fixture owns this one
    worker = threading.Thread(target=lambda: asyncio.run(visits()))
    try:
        worker.start()
        worker.join(900)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    alone, crowd = outcome["alone"], outcome["crowd"]
    assert not alone.errors and not [e for v in crowd for e in v.errors], \
        alone.errors + [e for v in crowd for e in v.errors]
    assert set(alone.results) == {"GradCAM overlay", "EigenCAM overlay", "segmenter mask"}
    assert all(v.results == alone.results for v in crowd)
    # each visitor's CAM, mask and import had a server part (the server's own log), within
    # the time they waited
    at_door([alone, *crowd], door)
    for v in [alone, *crowd]:
        for kind in ("CAM of the sample photo", "drag a box -> mask", "import predictions"):
            assert v.server.get(kind) and max(v.server[kind]) <= max(v.timings[kind]), kind
