"""Dataset-scale inference on Ray: one worker against two, in one run.

    python bench/detect_ray.py [--images 150] [--address ADDR]

The demo pack's Faster R-CNN over the demo validation split (150 images, made by lib.synth),
through `InferenceJob` with the Ray engine, first with one worker, then with two, each
worker limited to one torch thread; a local Ray with 2 CPUs unless `--address` is given.
Each run starts its own actors, which load the model once each (a fixed few seconds that a
real dataset amortises); the script prints both the time from start to the last image
written and the throughput once the actors are up (from the first finished batch to the
last). Last line, the latter's ratio: `ray speedup at 2 workers: X`.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lib.core import ray_cluster
from lib.demo import synth
from lib.detection import datasets, jobs
from lib.models import registry


def run(dataset, spec, options, folder: Path) -> tuple[float, float]:
    """(seconds from start to the last image, images/s once the actors are up: from the
    first finished batch to the last)."""
    local = jobs.job_for(spec, dataset)
    job = jobs.InferenceJob("bench", dataset, local._make, local._label_map, spec=spec,
                                 cache_dir=folder)
    t0 = time.perf_counter()
    job.start(ray=options)
    first = None
    while job.running:
        if first is None and job.done:
            first = (time.perf_counter(), job.done)
        time.sleep(0.02)
    end = time.perf_counter()
    if job.error or not job.finished:
        raise SystemExit(f"run failed: {job.error}")
    t_first, done_first = first
    return end - t0, (job.total - done_first) / (end - t_first)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=150)
    ap.add_argument("--address")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["LENS_CACHE"] = tmp
        split = synth.demo_val(Path(tmp) / "demo")
        dataset = datasets.load_coco(split / "annotations.json", split / "images").subset(
            args.images, 0)
        spec = registry.find("demo-fasterrcnn")
        t0 = time.perf_counter()
        ray_cluster.connect(ray_cluster.RayOptions(address=args.address, workers=2))
        print(f"Ray up in {time.perf_counter() - t0:.1f} s "
              f"({args.address or 'local, 2 CPUs'}); {len(dataset.image_ids)} images")
        totals, rates = {}, {}
        for workers in (1, 2):
            options = ray_cluster.RayOptions(address=args.address, workers=workers,
                                               threads_per_worker=1)
            totals[workers], rates[workers] = run(dataset, spec, options,
                                                  Path(tmp) / f"w{workers}")
            print(f"{workers} worker(s): {totals[workers]:.1f} s in all (the actors load the "
                  f"model first); {rates[workers]:.1f} images/s once they are up")
        print(f"start to finish: {totals[1] / totals[2]:.2f}x faster at 2 workers")
        print(f"ray speedup at 2 workers: {rates[2] / rates[1]:.2f}")


if __name__ == "__main__":
    main()
