"""lib.core.journal: append-only JSON lines that survive a kill mid-write, and atomic replaces."""

import json
import os
import signal
import subprocess
import sys

from lib.core import journal
from tests.conftest import ROOT


def test_a_torn_last_line_is_skipped_and_cut_before_the_next_append(tmp_path):
    path = tmp_path / "j.jsonl"
    journal.append(path, [{"i": 1}, {"i": 2}])
    with open(path, "a") as f:
        f.write('{"i": 3, "tor')                       # a kill inside the write
    assert journal.read(path).records == [{"i": 1}, {"i": 2}]
    assert journal.read(path).dropped == 1
    assert journal.repair(path) == len('{"i": 3, "tor')
    journal.append(path, [{"i": 3}])
    assert journal.read(path).records == [{"i": 1}, {"i": 2}, {"i": 3}]
    assert journal.read(path).dropped == 0


def test_odd_journals(tmp_path):
    assert journal.read(tmp_path / "absent").records == []
    assert journal.repair(tmp_path / "absent") == 0
    path = tmp_path / "j.jsonl"
    path.write_bytes(b'[1, 2]\n\xff\xfe\n{"ok": 1}\n\n' + b"x" * 200_000)   # long torn tail
    got = journal.read(path)
    assert got.records == [{"ok": 1}] and got.dropped == 3
    assert journal.repair(path) == 200_000 and path.read_bytes().endswith(b'{"ok": 1}\n\n')
    path.write_bytes(b'{"only": "torn')
    assert journal.repair(path) == len(b'{"only": "torn') and path.read_bytes() == b""


def test_an_atomic_write_killed_midway_leaves_the_old_file(tmp_path):
    """A real process killed halfway through writing: the file still holds the old content."""
    path = tmp_path / "results.json"
    journal.write_atomic(path, json.dumps({"old": True}))
    code = ("import sys, time; from pathlib import Path; from lib.core import journal\n"
            "with journal.atomic_path(Path(sys.argv[1])) as tmp:\n"
            "    tmp.write_text('{\"new\": ')\n"
            "    time.sleep(120)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(path)], cwd=ROOT)
    while not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]:
        assert proc.poll() is None
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert json.loads(path.read_text()) == {"old": True}
