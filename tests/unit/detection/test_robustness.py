"""COCO-C: mPC and rPC against faster-coco-eval run per corruption, the corrupted job's pixels
equal to `corrupt` seeded by image id, odd requests refused, and a COCO-C command killed
mid-way that resumes to the uninterrupted result."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from lib.core.errors import InputError
from lib.demo import synth
from lib.detection import datasets, jobs, robustness
from lib.detection.detections import Detections, from_coco_results
from lib.media import corruptions
from tests import reference
from tests.conftest import ROOT
from tests.helpers import gt_results, write_coco


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    split = synth.demo_val(tmp_path_factory.mktemp("demo"))
    return datasets.load_coco(split / "annotations.json", split / "images")


def test_mpc_and_rpc_are_the_mean_of_coco_ap_per_corruption(demo):
    ds = demo.subset(60, 0)
    clean = from_coco_results(gt_results(ds, shift=0.05, seed=1))
    chosen = [("fog", 1), ("fog", 3), ("snow", 2)]
    corrupted = {c: from_coco_results(gt_results(ds, shift=0.08 * (k + 1), drop=0.2 * k,
                                                 seed=k + 2))
                 for k, c in enumerate(chosen)}
    result = robustness.evaluate("m", ds, clean, corrupted, resamples=100)

    def library_ap(dets):
        rows = [r for d in dets.values() for r in d.to_coco()]
        return reference.faster_coco_eval(ds, rows).stats["AP"]
    aps = [library_ap(corrupted[c]) for c in chosen]
    assert result.clean_ap == pytest.approx(library_ap(clean), abs=1e-9)
    got = {(r.corruption, r.severity): r.AP for r in result.grid.itertuples()}
    assert [got[c] for c in chosen] == pytest.approx(aps, abs=1e-9)
    assert result.mpc == pytest.approx(np.mean(aps), abs=1e-9)
    assert result.rpc == pytest.approx(np.mean(aps) / library_ap(clean), abs=1e-9)
    assert result.mpc_interval[0] <= result.mpc <= result.mpc_interval[1]
    assert result.rpc_interval[0] <= result.rpc <= result.rpc_interval[1]
    assert result.mpc_interval[1] - result.mpc_interval[0] > 0
    assert result.worst == "snow"                       # the most shifted and dropped
    assert list(result.table().index) == ["snow", "fog"]   # the benchmark's order
    row = result.row()
    assert row["mPC low"] <= row["mPC"] <= row["mPC high"]


@pytest.mark.parametrize("names, severities, message", [
    (["fog"], "0", "from 1 to 5"), (["fog"], "6", "from 1 to 5"), (["fog"], "nan", "like 1-5"),
    (["fog"], "1-9", "from 1 to 5"), (["<b>fog</b>"], "3", "Unknown corruption"),
    (["fog"], [True], "from 1 to 5"), (["fog"], "", "like 1-5"), (["fog"], "5-1", "1 to 5")])
def test_odd_conditions_are_refused_with_one_message(names, severities, message):
    with pytest.raises(InputError, match=message):
        robustness.conditions(names, severities)


def test_conditions_default_to_the_benchmark():
    every = robustness.conditions()
    assert len(every) == 75 and every[0] == ("gaussian_noise", 1)
    assert not {c for c, _ in every} & set(corruptions.HELD_OUT)
    assert robustness.conditions(["fog", "fog", "spatter"], "1,3-4") == (
        ("fog", 1), ("fog", 3), ("fog", 4), ("spatter", 1), ("spatter", 3), ("spatter", 4))


class Recorder:
    """A detector that records a digest of every image it is given."""
    device = "cpu"
    labels = {1: "cat"}

    def __init__(self):
        self.seen = {}

    def predict(self, images, ids, label_map, threshold):
        for i, im in zip(ids, images):
            self.seen.setdefault(i, []).append(np.asarray(im).copy())
        return [Detections(i, [[1, 1, 5, 5]], [0.9], [1]) for i in ids]


def test_a_corrupted_job_detects_the_corrupted_pixels_and_names_them(tmp_path):
    images = tuple((f"{i}.png", i, 40, 30) for i in (3, 7))
    ds = write_coco(tmp_path, [(1, 1, 4, 4, 1, i) for i in (3, 7)], images=images)
    recorder = Recorder()
    chosen = (("gaussian_noise", 2), ("fog", 5))
    job = jobs.InferenceJob("c", ds, lambda: recorder, lambda d: {1: 1},
                            cache_dir=tmp_path / "cache", corruptions=chosen)
    job.start()
    job.wait()
    assert job.finished and job.total == 4
    for i in (3, 7):
        clean = np.asarray(corruptions.load(ds.image_path(i)))
        want = [corruptions.corrupt(clean, c, s, seed=i) for c, s in chosen]
        assert all(np.array_equal(a, b) for a, b in zip(recorder.seen[i], want))
    split = robustness.by_condition(job.results(), chosen)
    assert set(split) == set(chosen) and all(set(d) == {3, 7} for d in split.values())


@pytest.mark.slow
def test_a_coco_c_command_killed_midway_resumes_to_the_uninterrupted_result(demo, tmp_path):
    def command(cache, out):
        return subprocess.Popen(
            [sys.executable, "-m", "lib.detect", "robustness", "--model", "demo-fasterrcnn",
             "--images", str(demo.images_dir), "--annotations", str(demo.annotations_path),
             "--subset", "8", "--seed", "3", "--corruptions",
             "fog", "shot_noise", "--severities", "2-3", "--bootstrap", "50", "--out",
             str(out)], cwd=ROOT, env={**os.environ, "LENS_CACHE": str(cache)},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    whole = command(tmp_path / "a", tmp_path / "a.json")
    killed = command(tmp_path / "b", tmp_path / "b.json")
    deadline = time.time() + 300
    shards = tmp_path / "b" / "detections"
    while time.time() < deadline:       # killed once the corrupted run has written some images
        done = [p for p in shards.glob("*.partial.jsonl") if p.read_text().count("fog")]
        if done:
            break
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert whole.wait(300) == 0, whole.stderr.read()
    assert not (tmp_path / "b.json").exists()
    resumed = command(tmp_path / "b", tmp_path / "b.json")
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert json.loads((tmp_path / "b.json").read_text()) == \
        json.loads((tmp_path / "a.json").read_text())
    assert out.strip().splitlines()[-1].startswith("clean AP ")


def test_a_corruption_with_no_detections_counts_as_ap_zero(demo):
    ds = demo.subset(20, 0)
    clean = from_coco_results(gt_results(ds, seed=1))
    chosen = (("fog", 1), ("fog", 5))
    rows = [{**r, "corruption": "fog", "severity": 1} for r in gt_results(ds, seed=1)]
    split = robustness.by_condition(rows, chosen)          # fog 5: nothing found at all
    assert split[("fog", 5)] == {}
    result = robustness.evaluate("m", ds, clean, split, resamples=20)
    assert result.grid["AP"].tolist() == pytest.approx([1.0, 0.0])
    assert result.mpc == pytest.approx(0.5) and result.rpc == pytest.approx(0.5)
