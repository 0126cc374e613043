"""Demo data Lens makes itself: synthetic shapes, COCO splits and clips (synth), and the
bundled sample photos, clip and W&B runs (samples)."""
