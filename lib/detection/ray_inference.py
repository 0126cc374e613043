"""Dataset-scale detector inference on Ray Data: the "Ray" engine of `InferenceJob`.

The documented Ray Data pattern: a dataset of image references (image id and path), and
`map_batches` over a callable class whose `__init__` loads the model once per actor, through
the same loader the page uses (`lib.models.cache.load`), and whose `__call__` reads its images and
returns one row per image. An actor pool sized to the workers; `num_gpus` per actor where
GPUs exist. The driver takes the rows as they finish and the job writes them into its
results shard on disk, so a cancelled or killed run resumes with only the missing images.

Ray is reached through `lib.core.ray_cluster` (a local Ray, or the cluster at an address).
The paths given to the workers must be readable on the cluster's machines (a shared disk).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

from lib.core import errors
from lib.core.errors import LensError
from lib.core.ray_cluster import RayOptions, connect
from lib.detection import detections
from lib.media import corruptions
from lib.models import cache


class DetectorWorker:
    """One Ray actor: loads the detector once, then detects batches of images it reads."""

    def __init__(self, spec, categories: dict[int, str], map_by: str, threshold: float,
                 threads: int):
        import torch  # heavy: imported on first use

        torch.set_num_threads(threads)
        self.detector = cache.load(spec, "detection").model
        self.label_map = detections.map_labels(self.detector.labels, categories, by=map_by)
        self.threshold = threshold

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        ids, paths = [int(i) for i in batch["image_id"]], list(batch["path"])
        names, severities = list(batch["corruption"]), [int(s) for s in batch["severity"]]
        results, failed = [""] * len(ids), [str(f) for f in batch["failed"]]
        good = []
        for k, path in enumerate(paths):
            if failed[k]:
                continue
            try:
                good.append((k, corruptions.load(path, str(names[k]), severities[k],
                                                 seed=ids[k])))
            except LensError as exc:
                failed[k] = str(exc)
        seconds = [0.0] * len(ids)
        if good:
            t0 = time.perf_counter()
            dets = self.detector.predict([im for _, im in good], [ids[k] for k, _ in good],
                                         self.label_map, self.threshold)
            per_image = (time.perf_counter() - t0) / len(good)
            for (k, _), det in zip(good, dets):
                results[k], seconds[k] = json.dumps(det.to_coco()), per_image
        return {"image_id": ids, "results": results, "failed": failed, "seconds": seconds,
                "corruption": names, "severity": severities}


def run(options: RayOptions, spec, dataset, items: list[tuple[int, str, int]], map_by: str,
        threshold: float, batch_size: int, should_stop: Callable[[], bool],
        worker: type | None = None, worker_kwargs: dict | None = None
        ) -> Iterator[list[dict[str, Any]]]:
    """Detect `items` (image id, corruption or "", severity) on Ray; yields the finished
    images' records as they arrive: {image_id, results (COCO rows), failed (reason or ""),
    seconds (per image)}, and the corruption and severity of a corrupted one (`jobs`).
    Another job of the engine gives its own `worker` class (same batch columns in and out)
    and the keyword arguments its actors are made with."""
    connect(options)
    import ray.data  # heavy: imported on first use
    rows = []
    for image_id, name, severity in items:
        try:
            path, reason = str(dataset.image_path(image_id)), ""
        except errors.LensError as exc:
            path, reason = "", str(exc)
        rows.append({"image_id": image_id, "path": path, "failed": reason, "corruption": name,
                     "severity": severity})
    if not rows:
        return
    items = rows
    workers = max(1, options.workers)
    blocks = max(workers * 4, len(items) // max(batch_size * 4, 1))
    source = ray.data.from_items(items, override_num_blocks=min(len(items), blocks))
    kwargs = worker_kwargs or {"spec": spec, "categories": dataset.categories,
                               "map_by": map_by, "threshold": threshold}
    detected = source.map_batches(
        worker or DetectorWorker, batch_size=batch_size, batch_format="numpy",
        fn_constructor_kwargs={**kwargs, "threads": options.threads_per_worker},
        compute=ray.data.ActorPoolStrategy(size=workers),
        num_cpus=options.threads_per_worker, num_gpus=options.gpus_per_worker or None)
    batches = detected.iter_batches(batch_size=None, batch_format="numpy")
    try:
        for batch in batches:
            yield [{"image_id": int(i), "results": json.loads(r) if r else [],
                    "failed": str(f), "seconds": float(s), "corruption": str(c),
                    "severity": int(v)}
                   for i, r, f, s, c, v in zip(batch["image_id"], batch["results"],
                                               batch["failed"], batch["seconds"],
                                               batch["corruption"], batch["severity"])]
            if should_stop():
                return
    finally:
        close = getattr(batches, "close", None)
        if close:
            close()
