"""Detector adapters and the inference job: progress, cancel, resume, torn shards, missing
images."""

import json
import time

import numpy as np
import pytest
from PIL import Image

from lib.detection import detections, detectors, jobs
from lib.detection.detections import Detections
from tests.helpers import write_coco


@pytest.mark.parametrize("kind", ["torchvision", "transformers"])
def test_tiny_adapters_shapes_and_label_mapping(tmp_path, kind):
    ds = write_coco(tmp_path, [(10, 10, 30, 30, 1)], images=(("a.png", 1, 128, 96),))  # w, h
    noise = np.random.default_rng(0).integers(0, 255, (96, 128, 3), dtype=np.uint8)
    Image.fromarray(noise).save(ds.image_path(1))
    det = detectors.tiny_detector(kind, {1: "cat", 2: "dog"})
    assert det.untrained
    out = det.predict([Image.open(ds.image_path(1)).convert("RGB")], [1],
                      detections.map_labels(det.labels, ds.categories), threshold=0.0)[0]
    assert out.image_id == 1 and out.xyxy.shape[1] == 4 and len(out) > 0
    assert set(out.class_ids.tolist()) <= {1, 2}
    assert (out.xyxy[:, 2] <= 128 + 1e-3).all() and (out.xyxy[:, 3] <= 96 + 1e-3).all()


class FakeDetector:
    device = "cpu"
    labels = {1: "cat"}

    def __init__(self, delay=0.0, fail_on=None):
        self.delay, self.fail_on, self.calls = delay, fail_on, 0

    def predict(self, images, ids, label_map, threshold):
        self.calls += 1
        time.sleep(self.delay)
        if self.fail_on is not None and self.fail_on in ids:
            raise RuntimeError("boom")
        return [Detections(i, [[1, 1, 5, 5]], [0.9], [1]) for i in ids]


def test_job_progress_cancel_resume_and_cache(tmp_path):
    images = tuple((f"{i}.png", i, 8, 8) for i in range(1, 9))
    ds = write_coco(tmp_path, [(1, 1, 4, 4, 1, i) for i in range(1, 9)], images=images)
    slow = FakeDetector(delay=0.2)
    job = jobs.InferenceJob("k1", ds, lambda: slow, lambda d: {1: 1}, batch_size=2,
                                 cache_dir=tmp_path / "cache")
    job.start()
    while job.done < 2:
        time.sleep(0.05)
    job.cancel()
    job.wait()
    assert not job.finished and 2 <= job.done < 8 and job.partial_path.is_file()
    fast = FakeDetector()
    resumed = jobs.InferenceJob("k1", ds, lambda: fast, lambda d: {1: 1}, batch_size=2,
                                     cache_dir=tmp_path / "cache")
    resumed.start()
    resumed.wait()
    assert resumed.finished and not resumed.partial_path.exists()
    assert fast.calls == (8 - job.done + 1) // 2          # only the remaining images
    assert sorted(r["image_id"] for r in resumed.results()) == list(range(1, 9))
    assert set(resumed.speed()) >= {"latency_median_ms", "latency_p90_ms", "images_per_s",
                                    "peak_memory_mb"}
    again = jobs.InferenceJob("k1", ds, lambda: pytest.fail("recomputed"), lambda d: {},
                                   cache_dir=tmp_path / "cache")
    again.start()
    assert again.finished and len(again.results()) == 8


def test_job_error_keeps_partial_results(tmp_path):
    images = tuple((f"{i}.png", i, 8, 8) for i in range(1, 5))
    ds = write_coco(tmp_path, [], images=images)
    job = jobs.InferenceJob("k2", ds, lambda: FakeDetector(fail_on=3), lambda d: {1: 1},
                                 batch_size=2, cache_dir=tmp_path / "cache")
    job.start()
    job.wait()
    assert job.error == "boom" and job.done == 2
    assert len(job.partial_path.read_text().splitlines()) == 2


def test_a_torn_shard_line_is_redone_and_nothing_is_lost(tmp_path):
    """A shard whose last line was cut by a kill: that image is redone, the next record
    starts on its own line, and the results hold every image."""
    images = tuple((f"{i}.png", i, 8, 8) for i in range(1, 7))
    ds = write_coco(tmp_path, [(1, 1, 4, 4, 1, i) for i in range(1, 7)], images=images)
    job = jobs.InferenceJob("k3", ds, FakeDetector, lambda d: {1: 1}, batch_size=2,
                                 cache_dir=tmp_path / "cache")
    job.partial_path.parent.mkdir(parents=True)
    whole = [json.dumps({"image_id": i, "results": Detections(i, [[1, 1, 5, 5]], [0.9], [1])
                         .to_coco()}) for i in (1, 2, 3)]
    job.partial_path.write_text("\n".join(whole) + "\n" + whole[2][:-9].replace('"image_id": 3',
                                                                              '"image_id": 4'))
    job.start()
    job.wait()
    assert job.error is None and job.finished
    assert sorted(r["image_id"] for r in job.results()) == [1, 2, 3, 4, 5, 6]


def test_a_job_with_images_missing_is_never_finished(tmp_path, monkeypatch):
    """An engine that returns fewer images than asked: the job says how many are missing,
    keeps its shard, and a second run completes it."""
    from lib.core import ray_cluster
    from lib.detection import ray_inference
    from lib.models import registry
    images = tuple((f"{i}.png", i, 8, 8) for i in range(1, 7))
    ds = write_coco(tmp_path, [(1, 1, 4, 4, 1, i) for i in range(1, 7)], images=images)

    def lossy(options, spec, dataset, items, *args):
        yield [{"image_id": i, "results": [], "failed": "", "seconds": 0.0}
               for i, _, _ in items[:-2]]
    monkeypatch.setattr(ray_inference, "run", lossy)
    spec = registry.find("demo-fasterrcnn")
    job = jobs.InferenceJob("k4", ds, FakeDetector, lambda d: {1: 1}, spec=spec,
                                 cache_dir=tmp_path / "cache")
    job.start(ray=ray_cluster.RayOptions(workers=1))
    job.wait()
    assert not job.finished and job.error.startswith("2 of 6 images have no results yet")
    assert job.done == 4 and job.partial_path.is_file()
    job.start()                                   # this server's engine: the last two
    job.wait()
    assert job.finished and job.error is None and job.done == 6
    assert sorted(r["image_id"] for r in job.results()) == [5, 6]   # the lossy engine found none
