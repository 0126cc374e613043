"""The page-run log (LENS_RUN_LOG): one line per run, only when asked."""

import time

import pytest

from lib.serving import fair_queue, page_log


def test_page_runs_are_timed_into_the_run_log_only_when_asked(monkeypatch, tmp_path):
    import json

    log = tmp_path / "runs.jsonl"
    monkeypatch.delenv("LENS_RUN_LOG", raising=False)
    with page_log.timed_run("Home"):
        pass
    assert not log.exists()
    monkeypatch.setenv("LENS_RUN_LOG", str(log))
    with page_log.timed_run("Classification"), fair_queue.HEAVY.slot():
        time.sleep(0.05)
    with page_log.timed_run("Detection"):          # light: cached results only
        pass
    with pytest.raises(KeyboardInterrupt), page_log.timed_run("Runs"):
        raise KeyboardInterrupt                # Streamlit ends a run by raising in it
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert [(x["page"], x["heavy"]) for x in lines] == [
        ("Classification", True), ("Detection", False), ("Runs", False)]
    assert lines[0]["seconds"] >= 0.05
    before = sorted(tmp_path.iterdir())
    monkeypatch.setenv("LENS_RUN_LOG", str(tmp_path))          # a folder: cannot be appended to
    ran = []
    with page_log.timed_run("Home"):                            # the page run is not broken
        ran.append("Home")
    assert ran == ["Home"] and sorted(tmp_path.iterdir()) == before   # and nothing was written
