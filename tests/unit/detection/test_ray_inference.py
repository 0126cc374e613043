"""The Ray engine: the same detections as this server's engine, resume after a cancel, and a
clear message when no cluster answers. A small local Ray starts once for this module only."""

from __future__ import annotations

import subprocess
import sys

import pytest

from lib.core import errors, ray_cluster
from lib.demo import synth
from lib.detection import datasets, jobs, ray_inference
from lib.models import registry
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    split = synth.demo_val(tmp_path_factory.mktemp("demo"))
    return datasets.load_coco(split / "annotations.json", split / "images").subset(10, 0)


@pytest.mark.slow
def test_unreachable_cluster_is_a_clear_message_at_once(demo, tmp_path, monkeypatch):
    import ray

    def waits(*args, **kwargs):     # ray.init retries an unreachable address for minutes
        raise AssertionError("ray.init was called for an address that does not answer")
    monkeypatch.setattr(ray, "init", waits)
    with pytest.raises(errors.ModelError, match="No Ray cluster answers at '127.0.0.1:9'"):
        ray_cluster.connect(ray_cluster.RayOptions(address="127.0.0.1:9"))
    monkeypatch.undo()
    proc = subprocess.run(
        [sys.executable, "-m", "lib.detect", "run", "--model", "demo-fasterrcnn", "--images",
         str(demo.images_dir), "--annotations", str(demo.annotations_path), "--out",
         str(tmp_path / "out.json"), "--engine", "ray", "--address", "127.0.0.1:9"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**__import__("os").environ, "LENS_CACHE": str(tmp_path / "cache")})
    assert proc.returncode == 2 and "No Ray cluster answers" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.fixture(scope="module")
def local_ray():
    import ray
    ray_cluster.connect(ray_cluster.RayOptions(workers=2))
    yield ray_cluster.RayOptions(workers=2)
    ray.shutdown()


def _job(spec, dataset, folder):
    local = jobs.job_for(spec, dataset)
    return jobs.InferenceJob("k", dataset, local._make, local._label_map, spec=spec,
                                  cache_dir=folder)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["demo-fasterrcnn", "demo-conditional-detr"])
def test_ray_results_equal_this_servers(local_ray, demo, tmp_path, name):
    spec = registry.find(name)
    here, there = _job(spec, demo, tmp_path / "here"), _job(spec, demo, tmp_path / "there")
    here.start()
    there.start(ray=local_ray)
    here.wait(600)
    there.wait(600)
    assert here.error is None and there.error is None and here.finished and there.finished
    def key(r):
        return r["image_id"], r["category_id"], -r["score"]
    a, b = sorted(here.results(), key=key), sorted(there.results(), key=key)
    assert len(a) == len(b) > 0
    for x, y in zip(a, b):
        assert (x["image_id"], x["category_id"]) == (y["image_id"], y["category_id"])
        assert x["score"] == pytest.approx(y["score"], abs=1e-4)
        assert x["bbox"] == pytest.approx(y["bbox"], abs=1e-4 + 0.01)   # both rounded to 0.01


@pytest.mark.slow
def test_cancelled_ray_run_resumes_with_only_the_missing_images(local_ray, demo, tmp_path,
                                                                monkeypatch):
    spec = registry.find("demo-fasterrcnn")
    job = _job(spec, demo, tmp_path)
    asked: list[list[int]] = []
    real_run = ray_inference.run

    def spy(options, spec, dataset, image_ids, *args):
        asked.append(list(image_ids))
        for records in real_run(options, spec, dataset, image_ids, *args):
            yield records
            job.cancel()                     # stop after the first batch

    monkeypatch.setattr(ray_inference, "run", spy)
    job.start(ray=local_ray)
    job.wait(600)
    first = job.done
    assert 0 < first < len(demo.image_ids) and not job.finished and job.error is None
    seen: list[list[int]] = []

    def watch(options, spec, dataset, image_ids, *args):
        seen.append(list(image_ids))
        yield from real_run(options, spec, dataset, image_ids, *args)

    monkeypatch.setattr(ray_inference, "run", watch)
    job.start(ray=local_ray)
    job.wait(600)
    assert job.finished and job.error is None
    assert len(seen[0]) == len(demo.image_ids) - first              # only what was missing
    assert sorted({r["image_id"] for r in job.results()} | set(job.failed())) <= sorted(
        demo.image_ids)


@pytest.mark.slow
def test_a_coco_c_run_on_ray_equals_this_servers(local_ray, demo, tmp_path):
    """Corrupted on the fly on the workers, seeded by image id: the same detections."""
    from lib.detection import robustness
    spec = registry.find("demo-fasterrcnn")
    chosen = robustness.conditions(["shot_noise", "glass_blur"], "2")
    local = robustness.job_for(spec, demo.subset(4, 0), chosen)
    made = [jobs.InferenceJob(f"r{k}", local.dataset, local._make, local._label_map,
                              spec=spec, cache_dir=tmp_path / str(k), corruptions=chosen)
            for k in range(2)]
    made[0].start()
    made[1].start(ray=local_ray)
    for job in made:
        job.wait(600)
        assert job.finished, job.error
    def key(r):
        return r["corruption"], r["image_id"], r["category_id"], -r["score"]
    a, b = (sorted(job.results(), key=key) for job in made)
    assert len(a) == len(b) > 0 and {r["corruption"] for r in a} == {"shot_noise", "glass_blur"}
    for x, y in zip(a, b):
        assert key(x)[:3] == key(y)[:3] and x["severity"] == y["severity"] == 2
        assert x["score"] == pytest.approx(y["score"], abs=1e-4)


@pytest.mark.slow
def test_ray_embeddings_equal_this_servers(local_ray, demo, tmp_path):
    """The embedding job on Ray (actors writing their own parts) gives this server's
    vectors, image by image and box by box."""
    import numpy as np

    from lib.detection.explore import embedding_job, embeddings
    from lib.models import cache
    spec = registry.find("EfficientNet-Lite0 ImageNet (packaged)", "classification")
    boxes = embedding_job.ground_truth_boxes(demo)

    def job(folder):
        return embedding_job.EmbeddingJob(
            "e", demo, lambda: embeddings.embedder_for(
                cache.load(spec, "classification").model, spec.name),
            boxes, spec.name, cache_dir=folder, spec=spec)
    here, there = job(tmp_path / "here"), job(tmp_path / "there")
    here.start()
    there.start(ray=local_ray)
    here.wait(600)
    there.wait(600)
    assert here.error is None and there.error is None and here.finished and there.finished
    for level in ("image", "object"):
        a, b = here.embeddings(level), there.embeddings(level)
        assert a.image_ids.tolist() == b.image_ids.tolist() and len(a) > 0
        np.testing.assert_allclose(np.abs(a.vectors @ b.vectors.T).diagonal(), 1, atol=2e-3)
