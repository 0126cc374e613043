"""COCO metrics, one path: Lens's own matching and COCO's accumulate over it.

- `coco_matching`: COCO's matching kept per detection at the ten IoU thresholds, per area
  range (pycocotools' rules, compiled).
- `coco`: the 12 COCO numbers, per-class AP and PR arrays accumulated from that matching.
- `weighted`: the same accumulate under image weights (bootstrap resamples, slices).
- `masks`: mask and boundary AP (faster-coco-eval: Lens does not match masks itself).
"""
