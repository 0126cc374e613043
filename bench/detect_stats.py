"""Detection statistics at dataset scale: bootstrap intervals and automatic slices against one
faster-coco-eval evaluation, and the intervals' coverage on a population with a known AP.

    python bench/detect_stats.py [--images 1600] [--per-image 213] [--resamples 1000]
                                 [--draws 1000] [--draw-size 500]

Data: the construction of bench/detect_scale.py (the COCO val2017 sample in ../shared, else
the demo split, replicated to `--images` images with a fixed set of about 341k detections),
with two fields added to slice on: an image `weather` (3 values) and an annotation `occluded`
flag (seeded). Measured in one run:
  E  faster-coco-eval's evaluation (the 12 COCO numbers),
  B  matching at the ten IoU thresholds + `--resamples` bootstrap resamples (AP, AP50, AP75,
     AR100 and per-class AP each with an interval),
  S  every automatic slice (single fields, pairs, COCO's areas, supercategories) with its AP,
     and the five worst with intervals,
  P  the page's report with all of it (intervals, slices, calibration) against E.
Coverage: a population of 20,000 synthetic images with a fixed detector (`lib.synth`'s
`detection_population`); `--draws` random draws of `--draw-size` images each get a 95%
interval; the share holding the population's AP is printed (goal 93–97%).
Last line: `bootstrap 1000 / evaluate ratio: B/E; slices / evaluate ratio: S/E`.
"""

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np
from common import options
from detect_scale import base_dataset, fixed_detections, library_evaluation, replicate, timed

from lib.demo import synth
from lib.detection import (
    benchmark,
    calibration,
    datasets,
    detections,
    intervals,
    slices,
)
from lib.detection.metrics import coco_matching, weighted


def with_fields(ds: datasets.CocoDataset, seed: int = 0) -> datasets.CocoDataset:
    rng = np.random.default_rng(seed)
    data = dict(ds.data)
    data["images"] = [{**im, "attributes": {"weather": str(rng.choice(["clear", "rain", "fog"]))}}
                      for im in ds.data["images"]]
    data["annotations"] = [{**a, "attributes": {"occluded": float(rng.random() < 0.3)}}
                           for a in ds.data["annotations"]]
    return datasets.CocoDataset(ds.annotations_path, ds.images_dir, data)


def coverage(draws: int, size: int, resamples: int) -> tuple[float, float]:
    data, results = synth.detection_population(20_000, seed=11)
    clean, _ = datasets.validate_coco(data, "population.json")
    ds = datasets.CocoDataset(Path("population.json"), Path("."), clean)
    m = coco_matching.coco_matches(ds, detections.from_coco_results(results))
    truth = float(weighted.weighted(m, intervals.point_weights(m.n_images))
                  .headline()["AP"][0])
    rng = np.random.default_rng(0)
    hits = 0
    for draw in range(draws):
        within = rng.choice(m.n_images, size, replace=False)
        lo, hi = intervals.bootstrap(m, resamples, seed=draw, within=within).intervals["AP"]
        hits += lo <= truth <= hi
    return hits / draws, truth


def main() -> None:
    args = options(images=1600, per_image=213, resamples=1000, draws=1000, draw_size=500)
    with tempfile.TemporaryDirectory() as tmp:
        ds = with_fields(replicate(base_dataset(Path(tmp)), args.images))
        dets = fixed_detections(ds, args.per_image)
        results = detections.to_coco_results(dets)
        print(f"{len(ds.image_ids)} images, {sum(map(len, dets.values()))} detections")
        intervals.bootstrap(coco_matching.coco_matches(ds, {}), 10)      # compile outside clocks
        import sklearn.isotonic  # noqa: F401  (imported once per server process, not per report)
        stats = library_evaluation(ds, results)
        e = library_evaluation.seconds
        print(f"faster-coco-eval evaluation (E): {e:.2f} s  (AP {stats['AP']:.4f})")

        def boot():
            m = coco_matching.coco_matches(ds, dets)
            return m, intervals.bootstrap(m, args.resamples, 0)
        (m, b), t_b = timed(boot)
        assert abs(b.point["AP"] - stats["AP"]) < 1e-9
        print(f"bootstrap (B): {t_b:.2f} s  AP {b.point['AP']:.4f} "
              f"[{b.intervals['AP'][0]:.4f}, {b.intervals['AP'][1]:.4f}]")

        def all_slices():
            slicer = slices.Slicer(ds, dets, m)
            cands, _ = slices.candidates(ds, 30)
            table = slices.table(slicer, cands)
            return cands, table, slices.worst(slicer, cands, 5, args.resamples, 0, table)
        (cands, table, worst), t_s = timed(all_slices)
        kinds = table["kind"].value_counts().to_dict()
        print(f"slices (S): {t_s:.2f} s  ({len(cands)} slices: {kinds}; worst "
              f"{worst[0].slice.name} AP {worst[0].ap:.4f})")

        def page():
            """As the page computes it: the report (COCO's matching, its numbers from it,
            the match table in a second thread), then intervals, slices and calibration
            from its matches."""
            report = benchmark.report(ds, dets)
            intervals.bootstrap(report.matches, args.resamples, 0)
            slicer = slices.Slicer(ds, dets, report.matches)
            cands, _ = slices.candidates(ds, 30)
            slices.worst(slicer, cands, 5, args.resamples, 0, slices.table(slicer, cands))
            calibration.recalibrate(report.table, "isotonic")
        _, t_p = timed(page)
        print(f"the page's report with all statistics (P): {t_p:.2f} s, {t_p / e:.2f}× E")
    share, truth = coverage(args.draws, args.draw_size, args.resamples)
    print(f"coverage: the 95% interval holds the population AP ({truth:.4f}) in {share:.1%} of "
          f"{args.draws} draws of {args.draw_size} images")
    print(f"bootstrap {args.resamples} / evaluate ratio: {t_b / e:.2f}; "
          f"slices / evaluate ratio: {t_s / e:.2f}")


if __name__ == "__main__":
    main()
