"""Detection benchmark. The page's entry is `service.DetectionBenchmark`.

- `service`: one visitor's benchmark: dataset, reports, leaderboard, statistics, cache keys.
- `datasets`: COCO data validated at the boundary, subsets, fingerprints.
- `detections`: one `Detections` type and its converters (COCO results JSON, torchvision).
- `architectures`, `detectors`: detector architectures and the built detectors.
- `jobs`, `ray_inference`: a detector over a dataset, on this server or on Ray (resumable).
- `coco_eval`, `coco_matching`, `weighted_coco`: COCO metrics (faster-coco-eval), COCO's
  matching kept per detection, and the accumulate under image weights.
- `matching`: match once, derive everything (one table per model and dataset).
- `benchmark`: one model's report, A/B comparison, leaderboard rows, logging to W&B.
- `whatif`: one image clean against corrupted: detections matched, the sweep.
- `robustness`: COCO-C: AP under corruptions made on the fly, mPC and rPC with intervals.
- `intervals`, `slices`, `calibration`, `tide`: bootstrap intervals, slices, score
  calibration, TIDE-style errors.
- `drawing`: boxes drawn in one palette.
- `explore` (a package): the whole dataset: embeddings, the map, similar images,
  duplicates and leaks, the annotations most likely wrong (the Dataset tab).
- `detect_command`: the command line `python -m lib.detect`.
"""

# the modules that build models, imported so their builders and names register (found by
# `lib.models.build.discover`, as timm.models imports its model modules)
from lib.detection import detectors  # noqa: F401
