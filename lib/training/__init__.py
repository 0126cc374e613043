"""Training; may import the domain packages it trains for.

- `train`: the command line `python -m lib.train`; `options`: its options.
- `loop`: the training loop every trainer shares.
- `classifier`, `detector`: fine-tuning classifiers and detectors.
- `train_sam`, `sam_model`, `sam_data`, `sam_losses`, `sam_stages`, `sam_measure`: the demo
  promptable segmenter and tracker.
- `seg_finetune`, `mask_data`: fine-tuning a segmenter on any COCO instance masks.
- `seg_real`: the demo segmenter for real photos.
- `demo_pack`: the demo pack's recipes and figures.
"""
