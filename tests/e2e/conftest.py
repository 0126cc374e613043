"""E2E fixtures: `streamlit run` on a free localhost port, Debian Chromium through Playwright.

Skips with a reason where Chromium or Playwright is missing, except in CI (CI=true), where a
missing browser is a failure. Screenshots go to artifacts/e2e/.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT

CHROMIUM = os.environ.get("LENS_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = ROOT / "artifacts" / "e2e"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def _need(condition: bool, reason: str) -> None:
    if not condition:
        if IN_CI:
            pytest.fail(f"{reason} (CI=true: browser tests must run)")
        pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_streamlit(script: Path, port: int, cwd: Path, env: dict | None = None,
                    door_log: Path | None = None):
    """Start `streamlit run` and wait for /_stcore/health; returns the process. Its output
    goes to `artifacts/e2e/streamlit-<port>.log` (`proc.log`): a pipe nobody reads fills up,
    and then every server thread that logs blocks for good. With `door_log`, the server logs
    each rerun request and finished run there (`tests/e2e/door.py`)."""
    launcher = ["tests.e2e.door", str(door_log)] if door_log else ["streamlit"]
    cmd = [sys.executable, "-m", *launcher, "run", str(script), "--server.port", str(port),
           "--server.address", "127.0.0.1", "--server.headless", "true",
           "--browser.gatherUsageStats", "false"]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = ARTIFACTS / f"streamlit-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, env={**os.environ, **(env or {})},
                                stdout=out, stderr=subprocess.STDOUT)
    proc.log = log
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"streamlit did not start: {log.read_text(errors='replace')[-2000:]}")


@pytest.fixture(scope="session")
def server():
    port = free_port()
    proc = start_streamlit(ROOT / "app.py", port, ROOT)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=10)
    noise = [line for line in proc.log.read_text(errors="replace").splitlines()
             if "missing ScriptRunContext" in line]
    assert not noise, f"the server logged {len(noise)} x: {noise[0]}"   # buries real warnings


@pytest.fixture(scope="session")
def browser():
    _need(Path(CHROMIUM).exists() or bool(shutil.which("chromium")),
          f"Debian chromium not installed at {CHROMIUM} (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _need(False, "the playwright package is not installed")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1400, "height": 1000},
                                  accept_downloads=True)
    pg = context.new_page()
    pg.set_default_timeout(120_000)
    yield pg
    context.close()
