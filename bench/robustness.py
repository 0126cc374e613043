"""COCO-C over the demo set: what corrupting on the fly costs on top of inference, and Ray.

    python bench/robustness.py [--images 150] [--ray-images 30]   (--images 0: Ray only)

The demo pack's Faster R-CNN over the demo validation split (made by lib.synth), under the
benchmark's 15 corruptions x 5 severities through the inference job (`InferenceJob` with
corruptions, this server's engine: read, corrupt, detect, journal), against plain inference
of the same images (read once beforehand, `predict` in the job's batches, in a thread as the
job runs it) once per corruption and severity: 75 passes. The two alternate, one corruption
and severity at a time, so that a change in the machine's load hits both alike. Then the
whole 15 x 5 job over the first `--ray-images` images on this server (one process, torch on
both cores) and on a local Ray with 1 and with 2 workers of one thread each, start to finish
(actors loading the model included).
Last line: `COCO-C 15x5 on N images: X s vs inference alone Y s, overhead R`.
"""

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lib.core import ray_cluster
from lib.demo import synth
from lib.detection import datasets, jobs, robustness
from lib.media import corruptions
from lib.models import cache, registry


def timed_job(spec, dataset, chosen, folder: Path, ray=None) -> float:
    """Seconds for a fresh robustness job over `dataset` under `chosen`, to its end."""
    local = robustness.job_for(spec, dataset, chosen)
    job = jobs.InferenceJob("bench", dataset, local._make, local._label_map, spec=spec,
                            cache_dir=folder, corruptions=chosen)
    t0 = time.perf_counter()
    job.start(ray=ray)
    job.wait()
    if job.error or not job.finished:
        raise SystemExit(f"run failed: {job.error}")
    return time.perf_counter() - t0


def in_a_thread(work) -> float:
    """Seconds `work()` takes in a thread of its own, as the job engine runs inference (under
    load, torch in the main thread and in a worker thread are not equally fast)."""
    took = []

    def run():
        t0 = time.perf_counter()
        work()
        took.append(time.perf_counter() - t0)
    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return took[0]


def split_subset(split: Path, n: int):
    return datasets.load_coco(split / "annotations.json", split / "images").subset(n, 0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=150)
    ap.add_argument("--ray-images", type=int, default=30)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["LENS_CACHE"] = tmp
        split = synth.demo_val(Path(tmp) / "demo")
        dataset = split_subset(split, max(args.images, 1))
        spec = registry.find("demo-fasterrcnn")
        detector = cache.load(spec, "detection").model
        label_map = robustness.job_for(spec, dataset, (("fog", 1),))._label_map(detector)
        ids = dataset.image_ids
        images = [corruptions.load(dataset.image_path(i)) for i in ids]
        detector.predict(images[:2], ids[:2], label_map, 0.05)          # warm-up
        chosen = robustness.conditions()
        coco_c = plain = 0.0
        for k, condition in enumerate(chosen if args.images else ()):
            coco_c += timed_job(spec, dataset, (condition,), Path(tmp) / f"c{k}")
            plain += in_a_thread(lambda: [
                detector.predict(images[lo:lo + 2], ids[lo:lo + 2], label_map, 0.05)
                for lo in range(0, len(ids), 2)])
            if k % 15 == 14:
                print(f"{k + 1} of {len(chosen)}: COCO-C {coco_c:.0f} s, plain {plain:.0f} s",
                      flush=True)
        small = split_subset(split, args.ray_images)
        here = timed_job(spec, small, chosen, Path(tmp) / "here")
        ray_cluster.connect(ray_cluster.RayOptions(workers=2, threads_per_worker=1))
        ray_s = {w: timed_job(spec, small, chosen, Path(tmp) / f"ray{w}",
                              ray=ray_cluster.RayOptions(workers=w, threads_per_worker=1))
                 for w in (1, 2)}
        print(f"COCO-C 15x5 on {len(small.image_ids)} images, start to finish: this server "
              f"{here:.1f} s, Ray at 1 worker {ray_s[1]:.1f} s, at 2 workers {ray_s[2]:.1f} s; "
              f"2 workers vs this server {here / ray_s[2]:.2f}, vs 1 worker "
              f"{ray_s[1] / ray_s[2]:.2f}")
        if args.images:
            print(f"COCO-C 15x5 on {len(ids)} images: {coco_c:.1f} s vs inference alone "
                  f"{plain:.1f} s, overhead {coco_c / plain:.2f}")


if __name__ == "__main__":
    main()
