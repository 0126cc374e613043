"""Promptable segmentation: SAM 2 / EdgeTAM / demo segmenters and GrabCut on images,
grounding by text, and video tracking."""
