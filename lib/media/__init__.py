"""Media intake and pixels. Imports only lib.core.

- `images`: the one image intake every page uses.
- `video`: the one video intake (probe, limits, streamed frames).
- `frames`: a clip's frames decoded when asked for.
- `masks`: mask geometry, overlays, effects, RLE, exports, GrabCut.
- `corruptions`: the 19 ImageNet-C / COCO-C corruptions at five severities, as the reference
  computes them; `blurs` and `weather` hold their blur and weather kinds.
- `edits`: what-if edits (rotate, scale, crop, flip, brightness, a patch, JPEG).
"""
