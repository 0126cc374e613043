"""Many people on one Lens server: N concurrent browser sessions running a mixed journey.

    python bench/load.py [--sessions 16] [--visitors idle|compete]

One `streamlit run` (sessions dropped 5 s after their tab closes), one Debian Chromium, N
Playwright contexts (tests/e2e/visitors.py: classification CAM and method change, a
segmentation box, detection with imported predictions, tab switches and the threshold, a
shared runs comparison). First one visitor alone (the reference results and the memory after
one session). Then, on the idle machine, the browser's own floor: one visitor opening the
shared comparison by link in a warm browser, five times, and the same for a hello-world
Streamlit page drawing two Plotly charts. Then N visitors at once.

Reports p50/p95 per interaction kind from the action to the page being idle, and each
interaction's server part: from its first rerun request reaching the server to the last run
the server finished, in the server's own log (`tests/e2e/door.py`), without the browser's
drawing and the harness' delays. Also errors, whether every CAM and mask equals the single
visitor's, the server's memory (RSS) after the first session, at peak and after all sessions
closed, the most the model cache counted against its budget, where the machine's CPU went
while the crowd ran (the server, the browsers, this harness), the server's own page runs
(`LENS_RUN_LOG`: light runs per page, with their CPU, and runs with heavy work), and Lens'
garbage collections meanwhile.

The browsers share the server's two cores here, as real visitors' browsers would not: by
default they, Playwright's driver and this harness run under the idle scheduling policy
(`SCHED_IDLE`), only on CPU time the server leaves, so that the server is served first
(`--visitors compete`: at the server's priority). A nice value does not do this: Chromium
sets its threads' priorities itself (nice 0, and -8 for its compositor and IO threads,
measured), whatever the browser was started with; the policy is inherited and stays. A
failed journey leaves a screenshot in artifacts/load/. Last line: `N sessions: p95 light
X s, p95 heavy Y s, errors E, identical yes|no, memory after close +Z%`.
"""

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psutil

from lib.core import journal
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, free_port, start_streamlit
from tests.e2e.visitors import (
    HEAVY,
    LIGHT,
    at_door,
    comparison_url,
    grouped,
    opened_by_link,
    percentile,
    summary,
    visitors,
)

SHARED = ROOT.parent / "shared" / "assets" / "data" / "coco_val2017_tiny"

# The floor under "open a shared comparison": a hello-world Streamlit page drawing two Plotly
# charts of two runs each, as the comparison's Curves tab does.
HELLO_CHARTS = '''import plotly.graph_objects as go
import streamlit as st


def home():
    st.title("Home")


def runs():
    st.title("Runs")
    for metric in ("val/acc", "val/loss"):
        st.plotly_chart(go.Figure([go.Scatter(x=list(range(50)), name=f"run {k}",
                                              y=[(i + k) ** 0.5 for i in range(50)])
                                   for k in (1, 2)]), key=metric)


st.navigation([st.Page(home, url_path="home", default=True),
               st.Page(runs, url_path="runs")]).run()
'''


def rss(pid: int) -> int:
    proc = psutil.Process(pid)
    return proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children(True))


def cpu_seconds(procs) -> float:
    total = 0.0
    for proc in procs:
        try:
            t = proc.cpu_times()
            total += t.user + t.system
        except psutil.Error:    # a renderer that has exited since
            pass
    return total


def browsers() -> list:
    """This process's Chromium processes (the browser, its zygotes, renderers, GPU)."""
    out = []
    for proc in psutil.Process().children(True):
        try:
            if "chrom" in proc.name():
                out.append(proc)
        except psutil.Error:    # exited meanwhile
            pass
    return out


def visitors_at_idle() -> None:
    """From here on this harness runs under `SCHED_IDLE`, and so does every thread and
    process it starts (Playwright's driver, Chromium and its renderers inherit the policy;
    Chromium's own priority changes set nice values, which leave it in place)."""
    os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))


def harness(server_pid: int) -> list:
    """This process and its helpers (Playwright's driver), not the server or the browsers."""
    out = [psutil.Process()]
    for proc in psutil.Process().children(True):
        try:
            if proc.pid != server_pid and "chrom" not in proc.name():
                out.append(proc)
        except psutil.Error:
            pass
    return out


def coco_and_predictions(tmp: Path):
    from lib.demo import synth
    from lib.detection import datasets
    from tests.helpers import gt_results
    if (SHARED / "annotations" / "instances_val2017.json").is_file():
        ann, images = SHARED / "annotations" / "instances_val2017.json", SHARED / "val2017"
    else:
        split = synth.demo_val(tmp / "demo")
        ann, images = split / "annotations.json", split / "images"
    coco = datasets.load_coco(ann, images)
    preds = tmp / "predictions.json"
    preds.write_text(json.dumps(gt_results(coco, 0.1, 0.2, seed=1)))
    return (str(ann), str(images)), preds


async def settled(pid: int) -> int:
    """The server's memory once the sessions so far are gone: Streamlit drops them 5 s after
    their tab closed, and Lens collects what they held within a few seconds more."""
    await asyncio.sleep(15)
    return rss(pid)


async def run(n: int, server: str, coco, preds, pid: int, run_log: Path, hello: str):
    from playwright.async_api import async_playwright
    shots = ROOT / "artifacts" / "load"
    shots.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        (alone,) = await visitors(browser, server, 1, coco, preds, shots)
        after_first = await settled(pid)
        # the browser's own share, on the idle machine: one visitor alone opening the shared
        # comparison by link, and a hello-world page with two Plotly charts
        floor = {"Lens' shared comparison": await opened_by_link(browser, comparison_url(server)),
                 "a hello-world page with two Plotly charts":
                     await opened_by_link(browser, f"{hello}/runs")}
        peak = [after_first]
        stop = threading.Event()
        used: dict[int, float] = {}    # browser process -> CPU seconds, last seen

        def sample():
            while not stop.is_set():
                try:
                    peak[0] = max(peak[0], rss(pid))
                except psutil.Error:
                    pass
                for b in browsers():
                    used[b.pid] = cpu_seconds([b])
                time.sleep(0.5)
        sampler = threading.Thread(target=sample, daemon=True)
        t0 = time.perf_counter()
        runs_before = len(journal.read(run_log).records)   # a torn last line is skipped
        server_cpu = cpu_seconds([psutil.Process(pid)])
        harness_cpu = cpu_seconds(harness(pid))
        before = {b.pid: cpu_seconds([b]) for b in browsers()}
        sampler.start()
        crowd = await visitors(browser, server, n, coco, preds, shots)
        wall = time.perf_counter() - t0
        server_cpu = cpu_seconds([psutil.Process(pid)]) - server_cpu
        harness_cpu = cpu_seconds(harness(pid)) - harness_cpu
        # sampled every 0.5 s: a renderer's last half second before it exited is missed
        browser_cpu = sum(t - before.get(b, 0.0) for b, t in used.items())
        stop.set()
        crowd_runs = journal.read(run_log).records[runs_before:]
        after_close = await settled(pid)
        await browser.close()
    return (alone, crowd, wall, after_first, peak[0], after_close, server_cpu, browser_cpu,
            harness_cpu, crowd_runs, floor)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=16)
    ap.add_argument("--visitors", choices=("idle", "compete"), default="idle",
                    help="idle: the browsers and this harness run only on CPU time the "
                         "server leaves (SCHED_IDLE); compete: at the server's priority")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        coco, preds = coco_and_predictions(Path(tmp))
        port = free_port()
        os.environ["STREAMLIT_SERVER_DISCONNECTED_SESSION_TTL"] = "5"
        run_log, door = Path(tmp) / "runs.jsonl", Path(tmp) / "door.jsonl"
        proc = start_streamlit(ROOT / "app.py", port, ROOT, {"LENS_CACHE": str(Path(tmp) / "c"),
                                                             "LENS_RUN_LOG": str(run_log)},
                               door_log=door)
        (Path(tmp) / "hello").mkdir()
        (Path(tmp) / "hello" / "app.py").write_text(HELLO_CHARTS)
        hello_port = free_port()
        hello = start_streamlit(Path(tmp) / "hello" / "app.py", hello_port, Path(tmp) / "hello")
        if args.visitors == "idle":
            visitors_at_idle()
        try:
            (alone, crowd, wall, first, peak, after, server_cpu, browser_cpu, harness_cpu,
             page_runs, floor) = asyncio.run(
                run(args.sessions, f"http://127.0.0.1:{port}", coco, preds, proc.pid,
                    run_log, f"http://127.0.0.1:{hello_port}"))
            at_door([alone, *crowd], door)
        finally:
            for server in (proc, hello):
                server.terminate()
                server.wait(timeout=20)
    print(f"one visitor alone (the first: models load): "
          f"{sum(map(sum, alone.timings.values())):.1f} s of interactions, "
          f"errors {len(alone.errors)}; p95 light {percentile(grouped([alone], LIGHT), 95):.2f} s "
          f"(server's part {percentile(grouped([alone], LIGHT, True), 95):.2f} s), p95 heavy "
          f"{percentile(grouped([alone], HEAVY), 95):.2f} s")
    for what, (seconds, charts) in floor.items():
        print(f"one visitor alone, a link in a warm browser to {what} ({charts} charts): "
              f"median {statistics.median(seconds):.2f} s "
              f"({', '.join(f'{t:.2f}' for t in seconds)})")
    print(f"{args.sessions} visitors at once: {wall:.1f} s wall; CPU used meanwhile: server "
          f"{server_cpu:.0f} s, browsers at least {browser_cpu:.0f} s, harness "
          f"{harness_cpu:.0f} s (visitors: {args.visitors}), of "
          f"{wall * (os.cpu_count() or 1):.0f} s on {os.cpu_count()} cores")
    server_parts = summary(crowd, server=True)
    print(f"  {'interaction':<28} {'':5}  {'action -> page idle':<32}  server's part (first "
          "rerun request reaches the server -> last run finished)")
    for kind, (p50, p95, count) in summary(crowd).items():
        group = "heavy" if kind in HEAVY else "light"
        s50, s95, scount = server_parts[kind]
        print(f"  {kind:<28} {group}  p50 {p50:6.2f} s  p95 {p95:6.2f} s  ({count:>2})  "
              f"p50 {s50:6.2f} s  p95 {s95:6.2f} s  ({scount})")
    # the server's side of it: how long its page runs took while the crowd was there
    for heavy in (False, True):
        runs = [r for r in page_runs if r["heavy"] is heavy]
        secs = [r["seconds"] for r in runs]
        print(f"  server page runs, {'heavy' if heavy else 'light'}: p50 "
              f"{percentile(secs, 50):.2f} s, p95 {percentile(secs, 95):.2f} s ({len(secs)}); "
              f"the script thread's CPU: {sum(r['cpu'] for r in runs):.1f} s of "
              f"{sum(secs):.1f} s")
    for page in sorted({r["page"] for r in page_runs}):
        runs = [r for r in page_runs if r["page"] == page and not r["heavy"]]
        secs = [r["seconds"] for r in runs]
        if secs:
            print(f"    light runs of {page:<16} p50 {percentile(secs, 50):.2f} s, p95 "
                  f"{percentile(secs, 95):.2f} s ({len(secs)}); CPU p50 "
                  f"{percentile([r['cpu'] for r in runs], 50):.2f} s")
    errors = [e for v in crowd for e in v.errors] + alone.errors
    for e in errors[:10]:
        print(f"  error: {e}")
    # every CAM and mask a visitor got equals the lone visitor's (failed journeys count as
    # errors above, not here)
    identical = bool(alone.results) and all(alone.results.get(k) == h for v in crowd
                                            for k, h in v.results.items())
    done = sum(not v.errors for v in crowd)
    light, heavy = grouped(crowd, LIGHT), grouped(crowd, HEAVY)
    print(f"server's part: p95 light {percentile(grouped(crowd, LIGHT, True), 95):.2f} s, "
          f"p95 heavy {percentile(grouped(crowd, HEAVY, True), 95):.2f} s")
    print(f"journeys completed: {done} of {len(crowd)}")
    if page_runs:
        print(f"  Lens' garbage collections meanwhile: "
              f"{page_runs[-1]['collections'] - page_runs[0]['collections']}, "
              f"{page_runs[-1]['collection_s'] - page_runs[0]['collection_s']:.1f} s")
    from lib.core import settings
    budget = settings.get().model_budget_mb
    cached = max((r["cached_mb"] for r in page_runs), default=0.0)
    print(f"model cache: at most {cached:.0f} MB counted at the end of a page run, of the "
          f"{budget} MB budget ({'held' if cached <= budget else 'EXCEEDED'})")
    print(f"server memory: {first / 2**20:.0f} MB after one session, peak {peak / 2**20:.0f} MB, "
          f"{after / 2**20:.0f} MB after all closed")
    print(f"{args.sessions} sessions: p95 light {percentile(light, 95):.2f} s, p95 heavy "
          f"{percentile(heavy, 95):.2f} s, errors {len(errors)}, identical "
          f"{'yes' if identical else 'no'}, memory after close "
          f"{(after / first - 1) * 100:+.0f}%")


if __name__ == "__main__":
    main()
