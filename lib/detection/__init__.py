"""Detection benchmark. The page's entry is `service.DetectionBenchmark`.

- `service`: one visitor's benchmark: dataset, reports, leaderboard, statistics, cache keys.
- `datasets`: COCO data validated at the boundary, subsets, fingerprints.
- `detections`: one `Detections` type and its converters (COCO results JSON, torchvision).
- `architectures`, `detectors`: detector architectures and the built detectors.
- `jobs`, `ray_inference`: a detector over a dataset, on this server or on Ray (resumable).
- `metrics` (a package): COCO metrics, one path: COCO's matching kept per detection, the 12
  numbers and PR arrays accumulated from it, the same under image weights; mask AP.
- `matching`: the class-agnostic match table at IoU 0.5 (confusion, TIDE, F1), made once.
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
