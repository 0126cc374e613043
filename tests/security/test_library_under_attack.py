"""Hostile input and hostile load at the library and command-line layer: concurrency on one
shared model, caches keyed by what was read, jobs over broken datasets, disk and memory caps,
the command lines' messages, and the dependency floor."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lib.core import paths, scratch
from lib.core.errors import (
    ArchiveError,
    DatasetError,
    ModelTooLargeError,
    PathNotAllowedError,
)
from lib.detection import datasets, detectors, jobs
from lib.models import cache, registry
from tests.conftest import ROOT
from tests.security import attacks as A

# -- 16 threads on one shared model ---------------------------------------------------------------


@pytest.mark.slow
def test_sixteen_threads_classify_explain_and_measure_as_one():
    """classify, CAM and faithfulness from 16 threads on one cached model: no errors, every
    result identical to the serial one (CAM hooks never see another thread's forward)."""
    import timm

    from lib.classification import cam, classify, faithfulness
    torch.manual_seed(0)
    model = timm.create_model("test_efficientnet", pretrained=False, num_classes=10)
    pre = registry.Preprocess(input_size=(3, 64, 64), mean=(0.5,) * 3, std=(0.5,) * 3)
    lm = registry.from_module(model, [f"c{i}" for i in range(10)], preprocess=pre)
    rng = np.random.default_rng(0)
    pictures = [Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
                for _ in range(4)]
    methods = ["GradCAM", "EigenCAM", "LayerCAM", "GradCAM++"]

    def work(i):
        image, method = pictures[i % 4], methods[i % 4]
        top = classify.classify(lm, image, 3)[0]
        expl = cam.explain(lm, image, method, top.best.index)
        faith = faithfulness.explain_faithfulness(lm, image, expl)
        return top, expl.heatmap, faith

    serial = [work(i) for i in range(16)]
    results: dict[int, tuple] = {}
    failures: list[BaseException] = []
    barrier = threading.Barrier(16)

    def run(i):
        barrier.wait()
        try:
            results[i] = work(i)
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures
    for i, (top, heat, faith) in enumerate(serial):
        assert results[i][0] == top
        assert np.array_equal(results[i][1], heat)
        assert results[i][2] == faith
    assert not any(m._forward_hooks for m in lm.model.modules())


# -- caches keyed by what the model read; jobs over broken datasets -------------------------------

def _dataset(folder: Path, names=("a.png", "b.png")) -> datasets.CocoDataset:
    (folder / "images").mkdir(parents=True, exist_ok=True)
    for i, n in enumerate(names):
        Image.new("RGB", (32, 32), (40 * i, 90, 10)).save(folder / "images" / n)
    (folder / "ann.json").write_text(json.dumps(A.coco(
        [{"id": i + 1, "file_name": n} for i, n in enumerate(names)],
        [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [2, 2, 10, 10]}])))
    return datasets.load_coco(folder / "ann.json", folder / "images")


def test_prediction_cache_key_covers_the_images_read(tmp_path):
    ds = _dataset(tmp_path / "d")
    key = jobs.cache_key("m", ds, {})
    other_folder = tmp_path / "d2"
    _dataset(other_folder)
    same_json_other_images = datasets.load_coco(tmp_path / "d" / "ann.json",
                                                 other_folder / "images")
    assert jobs.cache_key("m", same_json_other_images, {}) != key
    time.sleep(0.01)
    Image.new("RGB", (32, 32), (255, 255, 255)).save(tmp_path / "d" / "images" / "a.png")
    assert jobs.cache_key("m", ds, {}) != key       # an image changed in place


def test_job_over_missing_and_corrupt_images_finishes_and_says_so(tmp_path):
    ds = _dataset(tmp_path / "d", ("a.png", "b.png", "c.png"))
    (tmp_path / "d" / "images" / "b.png").write_bytes(b"not a png at all")
    (tmp_path / "d" / "images" / "c.png").unlink()
    job = jobs.InferenceJob(
        "k", ds, lambda: detectors.tiny_detector("torchvision", {1: "thing"}),
        lambda det: {1: 1}, cache_dir=tmp_path / "cache")
    job.start()
    job.wait(300)
    assert job.error is None and job.finished
    assert sorted(job.failed()) == [2, 3]
    assert {r["image_id"] for r in job.results()} <= {1}
    resumed = jobs.InferenceJob("k", ds, lambda: 1 / 0, lambda det: {},
                                     cache_dir=tmp_path / "cache")
    assert resumed.finished and sorted(resumed.failed()) == [2, 3]   # no rerun needed


# -- disk -----------------------------------------------------------------------------------------

def test_scratch_reuses_content_and_keeps_under_its_cap(tmp_path, monkeypatch):
    monkeypatch.setenv("LENS_CACHE", str(tmp_path))
    a = scratch.store_bytes(b"x" * 1000, ".mp4")
    assert scratch.store_bytes(b"x" * 1000, ".mp4") == a          # a rerun: same file
    assert len(list(scratch.root().iterdir())) == 1
    old = time.time() - 3600
    os.utime(a, (old, old))
    b = scratch.store_bytes(b"y" * 3000, ".mp4")
    scratch.prune(cap_bytes=3500)
    assert not a.exists() and b.exists()                           # least recently used out
    folder = paths.extract_zip(A.zip_bytes({"set/cat/a.png": A.png_bytes(),
                                            "set/dog/b.png": A.png_bytes()}))
    assert sorted(p.name for p in folder.iterdir()) == ["cat", "dog"]
    assert paths.extract_zip(A.zip_bytes({"set/cat/a.png": A.png_bytes(),
                                          "set/dog/b.png": A.png_bytes()})) == folder


# -- typed paths (library level) ------------------------------------------------------------------

def test_roots_that_are_links_and_links_out_of_roots(tmp_path, monkeypatch):
    disk = tmp_path / "disk"
    (disk / "coco").mkdir(parents=True)
    (tmp_path / "mount").symlink_to(disk)
    monkeypatch.setenv("LENS_DATA_ROOTS", str(tmp_path / "mount"))
    assert paths.data_path(str(disk / "coco"), "dir") == (disk / "coco")     # root resolved
    assert paths.data_path(str(tmp_path / "mount" / "coco"), "dir") == disk / "coco"
    (tmp_path / "secret").mkdir()
    (disk / "escape").symlink_to(tmp_path)
    with pytest.raises(PathNotAllowedError, match="not inside"):
        paths.data_path(str(disk / "escape" / "secret"))
    monkeypatch.setenv("LENS_DATA_ROOTS", os.pathsep.join([str(disk), str(tmp_path / "other")]))
    (tmp_path / "other").mkdir()
    assert paths.data_path(str(disk / "coco"), "dir")


def test_json_size_cap(tmp_path, monkeypatch):
    monkeypatch.setenv("LENS_MAX_JSON_MB", "0.001")
    (tmp_path / "big.json").write_text(json.dumps(["x" * 2000]))
    with pytest.raises(DatasetError, match="larger than"):
        paths.read_json(tmp_path / "big.json")
    with pytest.raises(DatasetError, match="larger than"):
        datasets.load_coco(tmp_path / "big.json", tmp_path)


@pytest.mark.parametrize("name", ["/etc/passwd", "../x.png", "a/../../x.png", "C:/x.png",
                                  "..\\..\\x.png", "", None, 7])
def test_coco_file_names_must_stay_inside(tmp_path, name):
    with pytest.raises(DatasetError, match="file_name"):
        datasets.validate_coco(A.coco([{"id": 1, "file_name": name}]), "ann.json")


def test_zip_member_read_in_chunks_not_whole(monkeypatch, tmp_path):
    """Extraction streams: no single read asks for a whole member."""
    monkeypatch.setenv("LENS_CACHE", str(tmp_path))
    import zipfile
    sizes = []
    real = zipfile.ZipExtFile.read

    def spy(self, n=-1):
        sizes.append(n)
        return real(self, n)

    monkeypatch.setattr(zipfile.ZipExtFile, "read", spy)
    paths.extract_zip(A.zip_bytes({"d/a.bin": os.urandom(3 << 20)}))
    assert sizes and all(0 < n <= 1 << 20 for n in sizes)
    with pytest.raises(ArchiveError):
        paths.extract_zip(b"")


# -- memory ---------------------------------------------------------------------------------------

def test_a_model_larger_than_the_budget_gets_a_message():
    models = cache.ModelCache(budget_bytes=1000, sizeof=lambda v: v)
    models.get("small", lambda: 400)
    with pytest.raises(ModelTooLargeError, match="does not fit the memory budget"):
        models.get("huge", lambda: 5000)
    assert [h.key for h in models.summary()] == ["small"]


@pytest.mark.slow
def test_budget_counts_embeddings_and_open_clips():
    models = cache.ModelCache(budget_bytes=1000, sizeof=lambda v: v)
    models.get("model", lambda: 600)
    models.put("embedding", "x", np.zeros(50, np.float32), 200)
    assert models.used_bytes == 800

    class Clip(list):
        pass

    clip = Clip([np.zeros(10)])
    models.track("video frames", "c.mp4", clip, 500)         # the model makes room
    assert models.used_bytes == 700 and "model" in models.evictions
    with pytest.raises(ModelTooLargeError):
        models.track("video frames", "d.mp4", Clip(), 600)   # clips are never evicted
    del clip
    import gc
    gc.collect()
    assert models.used_bytes == 200                          # a closed clip is released


def test_detector_jobs_load_through_the_shared_cache(monkeypatch):
    """The benchmark job, the What-if tab and the EigenCAM share one loaded detector."""
    made = []
    spec = registry.ModelSpec(name="fake-det", task="detection", source="torchvision",
                              arch="x", weights="x")
    monkeypatch.setitem(registry.builders(), (registry.Task.DETECTION,
                                              registry.Source.TORCHVISION),
                        lambda s, device: made.append(s) or
                        detectors.tiny_detector("torchvision", {1: "a"}))
    try:
        a = cache.load(spec, "detection").model
        b = cache.load(spec, "detection").model
        assert a is b and len(made) == 1
        assert "detection:fake-det@auto" in [h.key for h in cache.STORE.summary()]
    finally:
        cache.STORE.release("detection:fake-det@auto")


# -- command lines --------------------------------------------------------------------------------

def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("bad")
    (d / "images").mkdir()
    (d / "ann.json").write_text('{"images": {"id": 1}, "annotations": [], "categories": []}')
    (d / "preds.json").write_text("[1, 2")
    (d / "torn" / "demo-segmenter").mkdir(parents=True)           # a manifest cut off mid-write
    (d / "torn" / "demo-segmenter" / "model.json").write_text('{"task": "segmentation", ')
    return d


@pytest.mark.parametrize("args,expect", [
    (["lib.detect", "evaluate", "--images", "{d}/images", "--annotations", "{d}/ann.json",
      "--predictions", "{d}/preds.json"], "'images' must be a list of objects"),
    (["lib.detect", "evaluate", "--images", "{d}/images", "--annotations", "{d}/nope.json",
      "--predictions", "{d}/preds.json"], "not found"),
    (["lib.detect", "run", "--model", "a b", "--images", "{d}/images", "--annotations",
      "{d}/ann.json", "--out", "{d}/out.json"], "must be a list of objects"),
    (["lib.detect", "run", "--model", "demo-fasterrcnn", "--images", "{d}/images",
      "--annotations", "{d}/ann.json", "--out", "{d}/out.json", "--engine", "ray",
      "--workers", "0"], "--workers and --threads-per-worker must be at least 1"),
    (["lib.detect", "robustness", "--model", "demo-fasterrcnn", "--images", "{d}/images",
      "--annotations", "{d}/ann.json", "--out", "{d}/o.json", "--corruptions",
      "<b>fog</b>"], "Unknown corruption '<b>fog</b>'"),
    (["lib.detect", "robustness", "--model", "demo-fasterrcnn", "--images", "{d}/images",
      "--annotations", "{d}/ann.json", "--out", "{d}/o.json", "--severities", "0-6"],
     "Severities must be from 1 to 5"),
    (["lib.detect", "robustness", "--model", "demo-fasterrcnn", "--images", "{d}/images",
      "--annotations", "{d}/ann.json", "--out", "{d}/o.json", "--bootstrap", "0"],
     "bootstrap resamples must be a whole number"),
    (["lib.runs", "export", "{d}/nowhere"], "is not a folder"),
    (["lib.train", "detect", "--data", "{d}/nowhere", "--name", "x", "--out", "{d}/ck"],
     "does not exist"),
    (["lib.weights", "fetch", "hf-hub:../x"], "is not a valid timm model name"),
    (["lib.train", "demo-segmenter", "--stage1", "{d}/nowhere", "--out", "{d}/ck"],
     "is not a folder"),
    (["lib.train", "demo-segmenter", "--stage1", "{d}", "--out", "{d}/ck"],
     "does not hold an EdgeTAM image model"),
    (["lib.train", "demo-segmenter", "--measure", "--out", "{d}/nowhere"],
     "is not a segmentation checkpoint"),
    (["lib.train", "demo-segmenter", "--measure", "--out", "{d}/torn"],
     "model.json is not valid JSON"),
])
@pytest.mark.slow
def test_command_lines_give_one_line_and_no_traceback(bad_files, args, expect):
    proc = _cli(*[a.format(d=bad_files) for a in args])
    assert proc.returncode in (1, 2), proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert expect in lines[0] and "Traceback" not in proc.stderr


@pytest.mark.parametrize("value,expect", [("abc", "is not a number"), ("-5", "must be positive")])
def test_a_bad_setting_is_one_error_line_naming_it(value, expect, monkeypatch):
    """A `LENS_*` value that cannot be used is a `SettingError` (a LensError): the command
    lines print one line naming the variable, as for any other input."""
    from lib.core import settings
    from lib.core.errors import SettingError
    monkeypatch.setenv("LENS_MODEL_BUDGET_MB", value)
    with pytest.raises(SettingError, match=f"LENS_MODEL_BUDGET_MB='{value}' {expect}"):
        settings.get()
    proc = subprocess.run([sys.executable, "-m", "lib.weights", "list"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "LENS_MODEL_BUDGET_MB": value})
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: LENS_MODEL_BUDGET_MB=") and expect in lines[0]


def test_torch_floor_excludes_the_weights_only_bypass():
    text = (ROOT / "requirements.txt").read_text()
    floor = re.search(r"^torch>=(\d+)\.(\d+)", text, re.M)
    assert floor and (int(floor[1]), int(floor[2])) >= (2, 6)
