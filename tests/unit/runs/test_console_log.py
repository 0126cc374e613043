"""A run's console output: its end only, contained in its folder, colour codes removed."""

import os

from lib import runs
from lib.runs import console_log


def _run(tmp_path, state="finished"):
    folder = tmp_path / "wandb" / "offline-run-x"
    (folder / "files").mkdir(parents=True)
    log = folder / "run-x.wandb"
    log.write_bytes(b"")
    return folder, runs.RunInfo(id="x", name="x", project="p", state=state, path=str(log))


def test_the_end_of_a_big_log(tmp_path):
    folder, info = _run(tmp_path)
    with open(folder / "files" / "output.log", "wb") as f:
        f.seek(2 * 2**30)                           # a 2 GB log (sparse): only its end is read
        f.write(b"\ntail line one\n\x1b[32mepoch 9 done\x1b[0m\n")
    out = console_log.console(info, limit=4096)
    assert out.size > 2 * 2**30 and out.shown <= 4096
    assert out.text.endswith("tail line one\nepoch 9 done\n") and "\x1b" not in out.text


def test_a_running_runs_half_line_waits(tmp_path):
    folder, info = _run(tmp_path, state="running")
    (folder / "files" / "output.log").write_bytes(b"step 1\nstep 2\nstep 3 (writ")
    assert console_log.console(info).text == "step 1\nstep 2\n"


def test_missing_and_linked_out(tmp_path):
    folder, info = _run(tmp_path)
    assert "no console output" in console_log.console(info).note
    secret = tmp_path / "secret.txt"
    secret.write_text("password")
    os.symlink(secret, folder / "files" / "output.log")
    out = console_log.console(info)
    assert "outside its folder" in out.note and "password" not in out.text
    cloud = runs.RunInfo(id="c", name="c", project="p", source="cloud", path="e/p/c")
    assert "local folder" in console_log.console(cloud).note
