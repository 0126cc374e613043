"""Demo data Lens makes itself.

- `synth`: synthetic shapes, COCO splits and clips, deterministic by seed.
- `real_clips`: real objects cut out of photos moving over real photos.
- `samples`: the bundled sample photos, clip and W&B runs.
- `label_noise`: label errors injected into a COCO file on purpose, and how many a finder
  found (bench/label_errors.py, the Dataset tab's tests).
"""
