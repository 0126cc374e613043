"""100,000 object embeddings of the demo detection set, mapped and searched.

The set's ground-truth boxes are replicated with jitter (each copy shifted and scaled by up
to 10% of its size, seeded) until there are `--objects` of them; they are embedded with the
packaged ImageNet EfficientNet-Lite0 through the embedding job (one pass per image, boxes
pooled from its feature map), projected (PCA, then UMAP), and searched.

    python bench/embeddings_map.py [--objects 100000] [--umap 1]

(`--umap 0` leaves UMAP out, e.g. for 10^6 objects; the line then says "not run".) A line
before the last gives the peak resident memory.

Last line: `N objects: embed X s, map Y s (UMAP) / Z s (PCA), 10 nearest of one query W ms;
figure N MB`."""

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from bench.common import options


def jittered_boxes(dataset, objects: int, seed: int = 0) -> dict:
    """The ground truth replicated with jitter up to `objects` boxes, spread over images."""
    from lib.detection.explore import embedding_job
    rng = np.random.default_rng(seed)
    gt = embedding_job.ground_truth_boxes(dataset)
    images = [i for i in dataset.image_ids if len(gt[i][0])]
    per_image = {i: [] for i in images}
    total, copy = 0, 0
    while total < objects:
        for i in images:
            ids, xyxy, cats = gt[i]
            take = min(len(ids), objects - total)
            if take <= 0:
                break
            wh = (xyxy[:take, 2:] - xyxy[:take, :2])
            shift = rng.uniform(-0.1, 0.1, (take, 2)) * wh
            scale = rng.uniform(0.9, 1.1, (take, 1))
            centre = (xyxy[:take, :2] + xyxy[:take, 2:]) / 2 + shift
            boxes = np.concatenate([centre - wh * scale / 2, centre + wh * scale / 2], 1)
            per_image[i].append((ids[:take] + copy * 10_000_000, boxes, cats[:take]))
            total += take
        copy += 1
    return {i: tuple(np.concatenate([p[k] for p in parts]) for k in range(3))
            for i, parts in per_image.items() if parts}


def main() -> None:
    args = options(objects=100_000, umap=1)
    os.environ["LENS_CACHE"] = tempfile.mkdtemp(prefix="lens-bench-emb-")
    from lib import plots
    from lib.demo import synth
    from lib.detection import datasets
    from lib.detection.explore import embedding_job, embeddings, maps, neighbours
    from lib.models import cache, registry
    root = synth.demo_val()
    dataset = datasets.load_coco(root / "annotations.json", root / "images")
    spec = next(s for s in registry.all_specs("classification") if "Lite0" in s.name)
    boxes = jittered_boxes(dataset, args.objects)
    job = embedding_job.job_for(
        dataset, spec.name, lambda: embeddings.embedder_for(
            cache.load(spec, "classification").model, spec.name), boxes)
    t0 = time.perf_counter()
    job.start()
    job.wait()
    embed_s = time.perf_counter() - t0
    assert job.finished, job.error
    t0 = time.perf_counter()
    emb = job.embeddings("object")            # reading, PCA fit, projection: the PCA map
    pca_s = time.perf_counter() - t0
    index = neighbours.Index(emb.vectors)
    t0 = time.perf_counter()
    coords = maps.project(emb, "UMAP" if args.umap else "PCA", index)
    umap_s = time.perf_counter() - t0
    queries = np.random.default_rng(1).integers(0, len(emb), 21)
    index.similar(int(queries[0]), 10)
    times = []
    for q in queries[1:]:
        t0 = time.perf_counter()
        index.similar(int(q), 10)
        times.append(time.perf_counter() - t0)
    names = dataset.categories
    fig = plots.embedding_map(coords[:, 0], coords[:, 1], np.arange(len(emb)),
                              np.array([names[int(c)] for c in emb.labels]), "class")
    size_mb = len(fig.to_json()) / 1e6
    print(f"{len(emb)} objects from {len(dataset.image_ids)} images; "
          f"{emb.vectors.shape[1]} principal components; dropped {emb.dropped}")
    import psutil
    peak = psutil.Process().memory_info().rss / 2**30
    if hasattr(__import__("resource"), "getrusage"):
        import resource
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"peak resident memory {peak:.1f} GB")
    umap = f"{umap_s:.1f} s" if args.umap else "not run"
    print(f"{len(emb)} objects: embed {embed_s:.1f} s, map {umap} (UMAP) / "
          f"{pca_s:.1f} s (PCA), 10 nearest of one query "
          f"{statistics.median(times) * 1000:.1f} ms; figure {size_mb:.1f} MB")


if __name__ == "__main__":
    main()
