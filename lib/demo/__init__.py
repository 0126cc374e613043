"""Demo data Lens makes itself.

- `synth`: synthetic shapes, COCO splits and clips, deterministic by seed.
- `real_clips`: real objects cut out of photos moving over real photos.
- `samples`: the bundled sample photos, clip and W&B runs.
"""
