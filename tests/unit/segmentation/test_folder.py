"""Text to tracks over a folder of clips (`python -m lib.track run`): one COCO video JSON and
one timeline CSV per clip, read back by pycocotools and pandas; a run killed mid-way resumes
to the same files; Ray gives the same files; bad input gets one line naming the problem."""

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
from pycocotools.coco import COCO

from lib.segmentation import folder, track_command
from tests.conftest import ROOT

TEXT = "star, square"


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    from lib.demo import synth
    out = synth.write_clips(tmp_path_factory.mktemp("clips"), 4, frames=16, size=96, seed=5)
    (out / "clips.json").unlink()
    return out


def _run(*args, **kw):
    return subprocess.run([sys.executable, "-m", "lib.track", "run", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=600, **kw)


@pytest.fixture(scope="module")
def whole(clips, tmp_path_factory):
    """An uninterrupted local run."""
    out = tmp_path_factory.mktemp("whole")
    done = _run("--clips", str(clips), "--text", TEXT, "--out", str(out), "--every", "4",
                "--quiet")
    assert done.returncode == 0, done.stderr
    return out


def _files(out):
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and p.name != folder.JOURNAL}


@pytest.mark.slow
def test_each_clip_gets_coco_video_json_and_a_timeline_csv(clips, whole):
    lines = [json.loads(x) for x in (whole / folder.JOURNAL).read_text().splitlines()]
    assert sorted(r["clip"] for r in lines) == [f"clip{i:03d}.mp4" for i in range(4)]
    assert sum(r["objects"] for r in lines) >= 4
    for r in lines:
        coco = COCO(str(whole / r["json"]))                    # pycocotools reads it
        csv = pd.read_csv(whole / r["csv"])
        assert len(coco.dataset["images"]) == r["frames"] == 16
        labels = {c["id"]: c["name"] for c in coco.dataset["categories"]}
        assert set(labels.values()) <= {"star", "square"}
        # the timeline is the masks: one row per frame and track, its area pycocotools'
        rows = sorted((coco.imgs[a["image_id"]]["frame_index"], a["track_id"],
                       labels[a["category_id"]], int(coco.annToMask(a).sum()))
                      for a in coco.loadAnns(coco.getAnnIds()))
        assert rows == sorted(csv[["frame", "object", "label", "area"]]
                              .itertuples(index=False, name=None))


@pytest.mark.slow
def test_a_killed_run_resumes_to_the_same_files(clips, whole, tmp_path):
    out = tmp_path / "out"
    args = ["-m", "lib.track", "run", "--clips", str(clips), "--text", TEXT, "--out", str(out),
            "--every", "4", "--quiet"]
    proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    journal = out / folder.JOURNAL
    deadline = time.time() + 300
    while time.time() < deadline and (not journal.is_file()
                                      or journal.read_text().count("\n") < 1):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)                # mid-way: one clip or more done
    proc.wait()
    first = journal.read_text().count("\n")
    assert 1 <= first < 4
    with open(journal, "a") as fh:                     # and a torn last line
        fh.write('{"clip": "clip0')
    again = _run(*args[3:])
    assert again.returncode == 0, again.stderr
    lines = [json.loads(x) for x in journal.read_text().splitlines()]
    assert len(lines) == 4 and len({r["clip"] for r in lines}) == 4   # none tracked twice
    assert _files(out) == _files(whole)


@pytest.mark.slow
def test_ray_gives_the_same_files(clips, whole, tmp_path):
    done = _run("--clips", str(clips), "--text", TEXT, "--out", str(tmp_path), "--every", "4",
                "--engine", "ray", "--workers", "2", "--quiet")
    assert done.returncode == 0, done.stderr
    assert "tracked 4 clips" in done.stdout
    assert _files(tmp_path) == _files(whole)


def test_bad_clips_are_reported_and_links_outside_are_not_followed(clips, tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    (src / "broken.mp4").write_bytes(b"not a video")
    os.symlink(clips / "clip000.mp4", src / "outside.mp4")
    os.symlink(clips, src / "linked")
    assert track_command.main(["run", "--clips", str(src), "--text", "star", "--out",
                     str(tmp_path / "out"), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert "tracked 0 clips" in captured.out and "1 failed" in captured.out
    assert "failed: broken.mp4:" in captured.err


@pytest.mark.parametrize("args, message", [
    (["--text", ""], "Type what to find"),
    (["--text", "dragon"], "'dragon' is not a class demo-fasterrcnn knows. It knows:"),
    (["--text", "<b>star</b>" * 50], "at most"),
    (["--text", "star", "--every", "0"], "k a whole number from 1"),
    (["--text", "star", "--workers", "0"], "--workers"),
    (["--text", "star", "--threshold", "1.5"], "between 0 and 1"),
    (["--text", "star", "--method", "memory", "--model", "nope"], "Unknown model"),
])
def test_bad_input_gets_one_line(clips, tmp_path, capsys, args, message):
    assert track_command.main(["run", "--clips", str(clips), "--out", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "<b>" not in err


def test_a_missing_folder_is_named(tmp_path, capsys):
    assert track_command.main(["run", "--clips", str(tmp_path / "none"), "--text", "star",
                     "--out", str(tmp_path)]) == 2
    assert "is not a folder of clips" in capsys.readouterr().err
