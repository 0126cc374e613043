"""A detector run killed mid-write (out of memory, a node lost) resumes to the results of an
uninterrupted run, on both engines: the real command line is killed with SIGKILL once its
shard holds a few images, its last line is torn as a kill inside the write leaves it, and
the same command run again must finish with every image."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lib.demo import synth
from lib.detection import datasets
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    split = synth.demo_val(tmp_path_factory.mktemp("demo"))
    return split / "images", split / "annotations.json"


def _command(demo, out: Path, engine: str, subset: int) -> list[str]:
    images, annotations = demo
    cmd = [sys.executable, "-m", "lib.detect", "run", "--model", "demo-fasterrcnn",
           "--images", str(images), "--annotations", str(annotations), "--out", str(out),
           "--subset", str(subset)]
    return cmd + (["--engine", "ray", "--workers", "1"] if engine == "ray" else [])


def _env(cache: Path) -> dict[str, str]:
    return {**os.environ, "LENS_CACHE": str(cache), "PYTHONUNBUFFERED": "1"}


def _run(cmd, cache: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=ROOT, env=_env(cache), capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def _kill_after(cmd, cache: Path, images: int) -> Path:
    """Start `cmd`, SIGKILL its whole process group once its shard holds `images` lines, and
    return the shard."""
    proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(cache), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    try:
        while time.time() < deadline:
            shards = list((cache / "detections").glob("*.partial.jsonl"))
            if shards and shards[0].read_bytes().count(b"\n") >= images:
                return shards[0]
            assert proc.poll() is None, "the run ended before it could be killed"
            time.sleep(0.02)
        pytest.fail("the run wrote no shard in time")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _by_image(results: list[dict]) -> dict[int, list[dict]]:
    grouped: dict[int, list[dict]] = {}
    for r in results:
        grouped.setdefault(r["image_id"], []).append(r)
    return {i: sorted(rows, key=lambda r: -r["score"]) for i, rows in grouped.items()}


@pytest.mark.slow
@pytest.mark.parametrize("engine,subset", [("local", 24), ("ray", 48)])
def test_a_run_killed_mid_write_resumes_to_the_uninterrupted_results(demo, tmp_path, engine,
                                                                     subset):
    reference = tmp_path / "reference.json"
    _run(_command(demo, reference, engine, subset), tmp_path / "cache-reference")

    cache, out = tmp_path / "cache", tmp_path / "out.json"
    shard = _kill_after(_command(demo, out, engine, subset), cache, images=4)
    data = shard.read_bytes()
    lines = data.count(b"\n")
    assert 4 <= lines < subset, lines
    shard.write_bytes(data[:-7])              # the kill came inside the last line's write
    _run(_command(demo, out, engine, subset), cache)

    ref, got = _by_image(json.loads(reference.read_text())), _by_image(json.loads(out.read_text()))
    images, annotations = demo
    wanted = datasets.load_coco(annotations, images).subset(subset, 0).image_ids
    assert set(got) == set(ref) and len(ref) > subset // 2      # every image that has boxes
    assert sum(map(len, got.values())) == sum(map(len, ref.values()))
    for image_id in wanted:
        for a, b in zip(ref.get(image_id, []), got.get(image_id, []), strict=True):
            assert a["category_id"] == b["category_id"]
            assert a["score"] == pytest.approx(b["score"], abs=1e-4)   # batches differ
            assert a["bbox"] == pytest.approx(b["bbox"], abs=0.02)
    assert not list((cache / "detections").glob("*.partial.jsonl"))  # merged and removed
