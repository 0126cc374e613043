"""A run still being written: only what was appended is read; a replaced or shorter log is read
again."""

import subprocess

import pandas as pd
import pytest

from lib import runs
from tests.helpers import LIVE_WRITER, leet_summary


@pytest.mark.slow
def test_live_run_reads_only_what_was_appended(tmp_path):
    import sys
    import time
    writer = subprocess.Popen([sys.executable, "-c", LIVE_WRITER, str(tmp_path), "1500"])
    try:
        deadline = time.time() + 120
        logs = []
        while not logs and time.time() < deadline:
            logs = list(tmp_path.glob("wandb/offline-run-*/*.wandb"))
            time.sleep(0.1)
        live = runs.LiveRun(logs[0])
        seen, offsets, grew = 0, [], 0
        while writer.poll() is None and time.time() < deadline:
            new = live.poll()
            grew += new > 0
            seen += new
            offsets.append(live.offset)
            assert len(live.history) == seen                    # rows arrive once each
            time.sleep(0.2)
        assert writer.wait(60) == 0
        seen += live.poll()
    finally:
        writer.kill()
    assert grew >= 2 and offsets == sorted(offsets)             # read in pieces, forwards
    full = runs.read_history(logs[0])
    pd.testing.assert_frame_equal(live.history, full)
    assert live.info.state == "finished" and live.info.summary == leet_summary(logs[0])["summary"]
    assert live.poll() == 0                                     # nothing new: nothing read


def test_a_live_run_replaced_or_cut_shorter_is_read_again_from_the_start(project, tmp_path):
    import shutil
    logs = sorted(project.glob("wandb/offline-run-*/*.wandb"))
    log = tmp_path / "wandb" / "offline-run-x-live" / "run-live.wandb"
    log.parent.mkdir(parents=True)
    data = logs[0].read_bytes()
    log.write_bytes(data[: len(data) // 2])               # half written
    live = runs.LiveRun(log)
    first = live.poll()
    assert 0 < first < 50
    log.write_bytes(data[: len(data) // 4])               # cut shorter: read from the start
    again = live.poll()
    assert again == len(live.history) < first
    shutil.copy(logs[1], log.with_suffix(".new"))         # replaced by another run's log
    log.with_suffix(".new").replace(log)
    live.poll()
    pd.testing.assert_frame_equal(live.history, runs.read_history(logs[1]))
    assert live.info.id == runs.read_run_info(logs[1]).id
