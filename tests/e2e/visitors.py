"""Many visitors on one Lens server: concurrent browser sessions (Playwright contexts in one
Debian Chromium) each running a mixed journey, timed from each action until the page is
idle. Used by `bench/load.py` (16 visitors) and `tests/e2e/test_load.py` (4).

A journey: classification (sample photo -> CAM -> change the method), segmentation (drag a box
-> the offline photo segmenter's mask), detection (COCO data by path -> imported predictions ->
switch tabs -> move the threshold), runs (a shared comparison URL -> curves). Heavy
interactions compute (CAMs, masks); light ones switch, move or open over cached results. The
visitor arrives by a link (the classification page, later the shared comparison) and moves
between pages by the sidebar's links, as people do: a link loads the whole web app, a sidebar
link only the page.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

HEAVY = ("CAM of the sample photo", "change the CAM method", "drag a box -> mask",
         "import predictions")
LIGHT = ("open a page", "switch tabs", "move the threshold", "open a shared comparison")


@dataclass
class Visit:
    timings: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    results: dict[str, str] = field(default_factory=dict)   # what was computed -> its hash
    step: str = "start"                                      # where a failure happened
    server: dict[str, list[float]] = field(default_factory=dict)   # kind -> server seconds
    wire: list[tuple[float, str]] = field(default_factory=list)    # (when, rerun|finished)
    sessions: list[str] = field(default_factory=list)    # the server's ids of this visit's tabs
    windows: list[tuple[str, float, float]] = field(default_factory=list)  # kind, time() span

    def time(self, kind: str, seconds: float) -> None:
        self.timings.setdefault(kind, []).append(seconds)

    def listen(self, page) -> None:
        """Note when the page asks the server for a rerun and when a run finishes (the
        websocket's messages, as the browser sees them), and the server's id of each session
        the page opens."""
        from streamlit.proto.BackMsg_pb2 import BackMsg
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        def sent(payload) -> None:
            msg = BackMsg()
            msg.ParseFromString(payload if isinstance(payload, bytes) else payload.encode())
            if msg.WhichOneof("type") == "rerun_script":
                self.wire.append((time.perf_counter(), "rerun"))

        def received(payload) -> None:
            msg = ForwardMsg()
            msg.ParseFromString(payload if isinstance(payload, bytes) else payload.encode())
            kind = msg.WhichOneof("type")
            if kind == "script_finished":
                self.wire.append((time.perf_counter(), "finished"))
            elif kind == "new_session" and msg.new_session.initialize.session_id not in \
                    self.sessions:
                self.sessions.append(msg.new_session.initialize.session_id)

        page.on("websocket", lambda ws: (ws.on("framesent", lambda f: sent(f)),
                                         ws.on("framereceived", lambda f: received(f))))

    def span(self, since: float) -> tuple[float, float] | None:
        """(first rerun request, last finished run) since `since`, once a run has finished
        after that request; else None."""
        reruns = [t for t, what in self.wire if t >= since and what == "rerun"]
        done = [t for t, what in self.wire if t >= since and what == "finished"]
        return (reruns[0], done[-1]) if reruns and done and done[-1] >= reruns[0] else None

    async def answered(self, since: float, timeout_s: float = 30.0) -> None:
        """Until the page has asked for a rerun since `since` and a run has finished after
        that request. Every interaction of the journey reruns the page; on a busy browser the
        request can leave after the page looked idle, which would end the timing early and
        leave the run to the next interaction."""
        deadline = time.perf_counter() + timeout_s
        while self.span(since) is None and time.perf_counter() < deadline:
            await asyncio.sleep(0.05)


async def _idle(page, timeout_ms: int = 300_000) -> None:
    await page.wait_for_timeout(250)
    await page.get_by_test_id("stStatusWidget").wait_for(state="detached", timeout=timeout_ms)


async def _timed(visit: Visit, kind: str, page, action, wait_for=None) -> None:
    visit.step = kind
    t0, since = time.perf_counter(), time.time()
    await action()
    if wait_for is not None:
        await wait_for()
    await visit.answered(t0)
    await _idle(page)
    visit.time(kind, time.perf_counter() - t0)
    visit.windows.append((kind, since, time.time()))
    if await page.get_by_test_id("stException").count():
        visit.errors.append(f"{kind}: an exception on the page")


async def _image_hash(page, caption: str) -> str:
    """The bytes of the image shown with this caption."""
    figure = page.locator("[data-testid=stImage]", has_text=caption).first
    src = await figure.locator("img").first.get_attribute("src")
    body = await (await page.request.get(src)).body() if not src.startswith("data:") else \
        base64.b64decode(src.split(",", 1)[1])
    return hashlib.sha256(body).hexdigest()


async def _open(page, title: str) -> None:
    """Open another page of the app as a visitor does: its link in the sidebar."""
    await page.get_by_test_id("stSidebarNav").get_by_role("link", name=title,
                                                          exact=True).click()


async def _type_dataset(page, sidebar, coco: tuple[str, str], tries: int = 3) -> None:
    """Type the COCO paths. On a page busy with another rerun, a value typed and entered
    just as that rerun starts can be dropped (the field shows it, the page never got it):
    type again until the page shows the instances file's name, as a person would."""
    shown = page.get_by_text(f"· {Path(coco[0]).name}")
    for _ in range(tries):
        for label, value in (("Instances JSON", coco[0]), ("Images folder", coco[1])):
            box_ = sidebar.get_by_label(label)
            await box_.fill(value)
            await box_.press("Enter")
            await _idle(page)
        try:
            await shown.first.wait_for(timeout=30_000)
            return
        except Exception:  # noqa: BLE001 - not taken yet: type it again
            continue


async def _components(page) -> str:
    """What the page's component iframes hold (a clickable image that stayed blank: its
    height, whether its document loaded, whether its image has a source and loaded)."""
    notes = []
    try:
        for frame in page.frames[1:]:
            element = await frame.frame_element()
            height = await element.get_attribute("height")
            state = await frame.evaluate(
                "() => { const i = document.getElementById('image'); return [document.readyState,"
                " i ? i.src.length : -1, i ? i.complete : null, i ? i.naturalHeight : -1,"
                " location.pathname] }")
            notes.append(f"iframe height {height}, document/src length/complete/natural "
                         f"height/path {state}")
        notes.append(f"page: {await page.get_by_test_id('stSkeleton').count()} skeletons, "
                     f"{await page.get_by_text('having trouble loading').count()} loading "
                     "warnings")
    except Exception as exc:  # noqa: BLE001 - a diagnostic only
        notes.append(f"(frames not readable: {type(exc).__name__})")
    return f" [{'; '.join(notes)}]" if notes else ""


async def journey(context, server: str, coco: tuple[str, str], predictions: Path,
                  shot: Path | None = None) -> Visit:
    """One visitor's journey; on a failure, a screenshot of their page goes to `shot`."""
    visit = Visit()
    page = await context.new_page()
    visit.listen(page)
    page.set_default_timeout(300_000)
    try:
        # classification: the sample photo's CAM, then another method
        await _timed(visit, "CAM of the sample photo", page,
                     lambda: page.goto(f"{server}/classification"),
                     lambda: page.get_by_text("overlay · tiger cat").wait_for())
        visit.results["GradCAM overlay"] = await _image_hash(page, "overlay · tiger cat")
        method = page.get_by_test_id("stSelectbox").filter(has_text="CAM method")

        async def pick_eigencam():
            await method.click()
            # once a method has run, its measured time follows its name ("EigenCAM · 80 ms")
            await page.get_by_role("option", name=re.compile(r"^EigenCAM( · .+)?$")).click()
        await _timed(visit, "change the CAM method", page, pick_eigencam,
                     lambda: page.get_by_text("EigenCAM · conv_head").wait_for())
        visit.results["EigenCAM overlay"] = await _image_hash(page, "overlay · tiger cat")

        # segmentation: drag a box around the cat's head
        await _timed(visit, "open a page", page, lambda: _open(page, "Segmentation"),
                     lambda: page.get_by_role("heading", name="Segmentation",
                                              exact=True).wait_for())
        frame = page.frame_locator("iframe[title*='streamlit_image_coordinates']").first
        image = frame.locator("#image")
        await image.wait_for()
        box = await image.bounding_box()

        async def drag():
            await page.mouse.move(box["x"] + box["width"] * 0.27, box["y"] + box["height"] * 0.05)
            await page.mouse.down()
            await page.mouse.move(box["x"] + box["width"] * 0.73,
                                  box["y"] + box["height"] * 0.75, steps=8)
            await page.mouse.up()
        await _timed(visit, "drag a box -> mask", page, drag,
                     lambda: page.get_by_text("calibrated predicted IoU").first.wait_for())
        src = await frame.locator("#image").get_attribute("src")
        visit.results["segmenter mask"] = hashlib.sha256(src.encode()).hexdigest()

        # detection: the COCO data by path, imported predictions, tabs, the threshold
        await _timed(visit, "open a page", page, lambda: _open(page, "Detection"),
                     lambda: page.get_by_role("heading", name="Detection benchmark").wait_for())
        sidebar = page.get_by_test_id("stSidebar")
        await _timed(visit, "switch tabs", page,
                     lambda: sidebar.get_by_text("Path", exact=True).click())
        await _type_dataset(page, sidebar, coco)
        await _timed(visit, "import predictions", page,
                     lambda: page.locator("input[type=file]").first.set_input_files(
                         str(predictions)),
                     lambda: page.get_by_role("tab", name="Errors").wait_for())
        await _timed(visit, "switch tabs", page,
                     lambda: page.get_by_role("tab", name="Errors").click())
        slider = sidebar.get_by_role("slider").first

        async def nudge():
            await slider.focus()
            await slider.press("ArrowRight")
        await _timed(visit, "move the threshold", page, nudge)

        # runs: a shared comparison
        async def open_comparison():
            await page.goto(comparison_url(server))
        await _timed(visit, "open a shared comparison", page, open_comparison,
                     lambda: page.locator(".js-plotly-plot").first.wait_for())
    except Exception as exc:  # noqa: BLE001 - a failed journey is a counted error
        visit.errors.append(f"{visit.step}: {type(exc).__name__}: "
                            f"{str(exc).splitlines()[0][:200]}{await _components(page)}")
        if shot is not None:
            await page.screenshot(path=shot, full_page=True)
    finally:
        await page.close()
    return visit


def comparison_url(server: str) -> str:
    """The link someone shares: two sample runs compared, opened on the Curves tab."""
    from urllib.parse import quote
    sample_runs = Path(__file__).resolve().parents[2] / "samples" / "runs"
    return (f"{server}/runs?runs=spirals-adam-lr0.01-w32,spirals-sgd-lr0.1-w64&smooth=0.5"
            f"&metrics=val/*&path={quote(str(sample_runs))}&tab=Curves")


async def opened_by_link(browser, url: str, times: int = 5) -> tuple[list[float], int]:
    """One visitor alone opening `url` by link `times` times in one browser context, after a
    first load that warms it (as a visitor's browser is, who opened the app before): the
    seconds until the first chart shows and the page is idle, and how many charts it drew."""
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await context.new_page()
    seconds = []
    try:
        for _ in range(times + 1):
            t0 = time.perf_counter()
            await page.goto(url)
            await page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
            await _idle(page)
            seconds.append(time.perf_counter() - t0)
        charts = await page.locator(".js-plotly-plot").count()
    finally:
        await context.close()
    return seconds[1:], charts


async def visitors(browser, server: str, n: int, coco, predictions,
                   shots: Path | None = None) -> list[Visit]:
    """`n` visitors at once, each in a fresh browser context (failed journeys' screenshots
    in `shots`, when given)."""
    contexts = [await browser.new_context(viewport={"width": 1400, "height": 1000})
                for _ in range(n)]
    try:
        return list(await asyncio.gather(*(
            journey(c, server, coco, predictions,
                    shots / f"visitor-{i + 1}-of-{n}-failed.png" if shots else None)
            for i, c in enumerate(contexts))))
    finally:
        for c in contexts:
            await c.close()


def at_door(visits: list[Visit], door_log: Path) -> None:
    """Each interaction's server part, from the server's own log (`tests/e2e/door.py`): from
    its first rerun request reaching the server to the last run the server finished, within
    the interaction's window. Into `Visit.server`."""
    from tests.e2e.door import read
    events = read(door_log)
    for visit in visits:
        mine = sorted(e for session in visit.sessions for e in events.get(session, []))
        for kind, t0, t1 in visit.windows:
            reruns = [t for t, what in mine if t0 <= t <= t1 and what == "rerun"]
            done = [t for t, what in mine if t0 <= t <= t1 and what == "finished"]
            if reruns and done and done[-1] >= reruns[0]:
                visit.server.setdefault(kind, []).append(done[-1] - reruns[0])


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def summary(visits: list[Visit], server: bool = False) -> dict[str, tuple[float, float, int]]:
    """Per interaction kind: (p50 s, p95 s, count), or with `server` of their server parts."""
    kinds = sorted({k for v in visits for k in v.timings})
    out = {}
    for kind in kinds:
        values = grouped(visits, (kind,), server)
        out[kind] = (percentile(values, 50), percentile(values, 95), len(values))
    return out


def grouped(visits: list[Visit], names: tuple[str, ...], server: bool = False) -> list[float]:
    """The timings of these kinds (from the action until the page is idle), or with `server`
    their server parts."""
    return [t for v in visits for k in names
            for t in (v.server if server else v.timings).get(k, [])]
