"""The detection page's full report at dataset scale, against faster-coco-eval's evaluation.

    python bench/detect_scale.py [--images 1600] [--per-image 213] [--threshold-images 5000]

The COCO val2017 sample in ../shared (else the demo pack's synthetic split) is replicated to
`--images` images; a fixed set of detections (ground truth jittered, relabelled, duplicated,
plus low-scoring false positives: about `--per-image` per image, 341k at 1,600 images, the
size of a YOLOv5n run at confidence 0.001) is made with a fixed seed. Measured in one run:
  E  faster-coco-eval's evaluation of those detections (the 12 COCO numbers),
  R  the page's whole report (COCO numbers, match table, TIDE-style errors with ΔAP, F1),
  T  a score-threshold change at `--threshold-images` images (confusion, per-image counts,
     IoUs, A/B comparison: filters of the match table).
Lens evaluates from its own COCO matching (no results dicts; `lib.detection.metrics`) and
builds the match table in a second thread meanwhile; its 12 numbers are checked equal to the
library's. Last line: `report/evaluate ratio: R/E`.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np

from lib.demo import synth
from lib.detection import benchmark, datasets, detections
from lib.detection.metrics import coco

SHARED = ROOT.parent / "shared" / "assets" / "data" / "coco_val2017_tiny"


def base_dataset(tmp: Path) -> datasets.CocoDataset:
    if (SHARED / "annotations" / "instances_val2017.json").is_file():
        return datasets.load_coco(SHARED / "annotations" / "instances_val2017.json",
                                  SHARED / "val2017")
    split = synth.demo_val(tmp)
    return datasets.load_coco(split / "annotations.json", split / "images")


def replicate(ds: datasets.CocoDataset, images: int) -> datasets.CocoDataset:
    """`images` images: the dataset's own, repeated with new ids (same files)."""
    base_ids = ds.image_ids
    by_id = {im["id"]: im for im in ds.data["images"]}
    new_images, new_anns = [], []
    for k in range(images):
        src = base_ids[k % len(base_ids)]
        new_id = k + 1
        new_images.append({**by_id[src], "id": new_id})
        for a in ds.annotations(src):
            new_anns.append({**a, "id": len(new_anns) + 1, "image_id": new_id})
    data = {"images": new_images, "annotations": new_anns, "categories": ds.data["categories"]}
    return datasets.CocoDataset(ds.annotations_path, ds.images_dir, data)


def fixed_detections(ds: datasets.CocoDataset, per_image: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    cats = np.array(sorted(ds.categories))
    out = {}
    for image_id in ds.image_ids:
        boxes, cls = ds.gt_boxes(image_id)
        w = ds.image_info(image_id).get("width", 640)
        h = ds.image_info(image_id).get("height", 480)
        n_true = min(len(boxes) * 3, per_image // 2)
        pick = rng.integers(0, max(len(boxes), 1), n_true) if len(boxes) else np.zeros(0, int)
        true = boxes[pick] if len(boxes) else np.zeros((0, 4), np.float32)
        size = np.maximum(true[:, 2:] - true[:, :2], 1)
        true = true + rng.normal(0, 0.08, true.shape) * np.concatenate([size, size], 1)
        true_cls = np.where(rng.random(n_true) < 0.1, rng.choice(cats, n_true),
                            cls[pick] if len(boxes) else cats[:0])
        n_false = per_image - n_true
        xy = rng.uniform(0, 1, (n_false, 2)) * [w, h]
        wh = rng.uniform(8, 200, (n_false, 2))
        false = np.concatenate([xy, xy + wh], 1)
        xyxy = np.concatenate([true, false]).astype(np.float32)
        xyxy[:, 2:] = np.maximum(xyxy[:, 2:], xyxy[:, :2] + 1)
        scores = np.concatenate([rng.uniform(0.2, 1, n_true), rng.uniform(0.001, 0.4, n_false)])
        classes = np.concatenate([true_cls, rng.choice(cats, n_false)])
        out[image_id] = detections.Detections(image_id, xyxy, scores, classes)
    return out


def library_evaluation(ds: datasets.CocoDataset, results: list[dict]):
    """faster-coco-eval's own evaluation (load the results, evaluate, accumulate, summarize),
    called directly: E, the cost the report is compared with."""
    import copy

    from faster_coco_eval import COCO, COCOeval_faster
    results = copy.deepcopy(results)              # outside the clock: the library's inputs
    data = copy.deepcopy(ds.data)
    t0 = time.perf_counter()
    gt = COCO()
    gt.dataset = data
    gt.createIndex()
    ev = COCOeval_faster(gt, gt.loadRes(results), iouType="bbox",
                         print_function=lambda *a, **k: None)
    ev.params.imgIds = ds.image_ids
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    library_evaluation.seconds = time.perf_counter() - t0
    return dict(zip(coco.METRIC_KEYS, map(float, ev.stats[:12])))


def timed(fn):
    t0 = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=1600)
    ap.add_argument("--per-image", type=int, default=213)
    ap.add_argument("--threshold-images", type=int, default=5000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = base_dataset(Path(tmp))
        source = "COCO val2017 sample" if base.images_dir == SHARED / "val2017" else "demo split"
        ds = replicate(base, args.images)
        dets = fixed_detections(ds, args.per_image)
        results = detections.to_coco_results(dets)
        n = sum(map(len, dets.values()))
        print(f"{source} replicated to {len(ds.image_ids)} images, {n} detections")
        stats = library_evaluation(ds, results)
        e = library_evaluation.seconds
        print(f"faster-coco-eval evaluation (E): {e:.2f} s  (AP50 {stats['AP50']:.4f})")
        report, r = timed(lambda: benchmark.report(ds, dets))
        assert all(abs(report.metrics.stats[k] - v) < 1e-12 for k, v in stats.items())
        print(f"full report (R): {r:.2f} s  (TIDE ΔAP: " + ", ".join(
            f"{k} {v:+.3f}" for k, v in report.errors.delta_ap.items()) + ")")

        big = replicate(base, args.threshold_images)
        big_dets = fixed_detections(big, args.per_image, seed=1)
        big_report, b = timed(lambda: benchmark.report(big, big_dets))
        print(f"report at {len(big.image_ids)} images: {b:.1f} s (once per model and dataset)")

        def views(thr):
            big_report.confusion(thr)
            big_report.per_image(thr)
            big_report.ious(thr)
            benchmark.compare_images(big_report, big_report, thr)
        _, t = timed(lambda: views(0.35))
        print(f"threshold change at {len(big.image_ids)} images (T): {t:.2f} s")
        print(f"report/evaluate ratio: {r / e:.2f}")


if __name__ == "__main__":
    main()
