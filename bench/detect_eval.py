"""COCO evaluation speed: Lens (its own matching and accumulate) vs pycocotools on the same
detections.

    python bench/detect_eval.py [--repeats 5] [--copies 4]

Uses ../shared/assets/data/coco_val2017_tiny when present (else a synthetic COCO set),
with detections made from the ground truth by jittering boxes, dropping some objects and
adding false positives (fixed seed). Prints `speedup vs pycocotools: X` on its last line.
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np

from lib.detection import datasets, detections
from lib.detection.metrics import coco
from tests import reference

SHARED = ROOT.parent / "shared" / "assets" / "data" / "coco_val2017_tiny"


def synthetic_dataset(tmp: Path, images: int = 200, seed: int = 0) -> datasets.CocoDataset:
    from PIL import Image
    rng = np.random.default_rng(seed)
    (tmp / "images").mkdir()
    Image.new("RGB", (640, 480)).save(tmp / "images" / "0.jpg")
    anns = []
    for i in range(images):
        for _ in range(rng.integers(1, 12)):
            w, h = rng.uniform(10, 200, 2)
            anns.append({"id": len(anns) + 1, "image_id": i,
                         "category_id": int(rng.integers(1, 21)),
                         "bbox": [float(rng.uniform(0, 400)), float(rng.uniform(0, 280)), w, h],
                         "area": float(w * h), "iscrowd": 0})
    data = {"images": [{"id": i, "file_name": "0.jpg", "width": 640, "height": 480}
                       for i in range(images)],
            "categories": [{"id": c, "name": f"c{c}"} for c in range(1, 21)], "annotations": anns}
    (tmp / "ann.json").write_text(json.dumps(data))
    return datasets.load_coco(tmp / "ann.json", tmp / "images")


def fake_detections(dataset: datasets.CocoDataset, copies: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    cats = sorted(dataset.categories)
    out = []
    for a in dataset.data["annotations"]:
        for _ in range(copies):
            if rng.random() < 0.15:
                continue
            x, y, w, h = a["bbox"]
            out.append({"image_id": a["image_id"], "score": float(rng.uniform(0.05, 1)),
                        "category_id": a["category_id"] if rng.random() > 0.1
                        else int(rng.choice(cats)),
                        "bbox": [x + rng.normal(0, w * 0.1), y + rng.normal(0, h * 0.1),
                                 w * rng.uniform(0.8, 1.2), h * rng.uniform(0.8, 1.2)]})
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--copies", type=int, default=4, help="detections per object")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if SHARED.is_dir():
            ds = datasets.load_coco(SHARED / "annotations" / "instances_val2017.json",
                                     SHARED / "val2017")
            source = "COCO val2017 sample (../shared)"
        else:
            ds, source = synthetic_dataset(Path(tmp)), "synthetic COCO set"
        results = fake_detections(ds, args.copies)

        def timed(fn):
            fn()
            times = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                out = fn()
                times.append(time.perf_counter() - t0)
            return statistics.median(times), out

        dets = detections.from_coco_results(results)
        results = detections.to_coco_results(dets)      # what Lens evaluates: its own rows
        t_lens, lens = timed(lambda: coco.evaluate(ds, dets).stats)
        t_ref, ref = timed(lambda: reference.pycocotools(ds, results))
    diff = max(abs(lens[k] - ref[k]) for k in lens)
    print(f"{source}: {len(ds.image_ids)} images, {len(ds.data['annotations'])} objects, "
          f"{len(results)} detections; median of {args.repeats}")
    print(f"Lens:                    {t_lens * 1000:8.1f} ms")
    print(f"pycocotools:             {t_ref * 1000:8.1f} ms   (max |metric diff| {diff:.1e})")
    print(f"speedup vs pycocotools: {t_ref / t_lens:.2f}")


if __name__ == "__main__":
    main()
