"""Promptable segmentation and tracking.

- `service`: one visitor's image and clip at work (objects, tracker), closed when they leave.
- `segment`: SAM 2.1 / EdgeTAM / demo segmenters and GrabCut on images (`Segmenter`).
- `prompts`: clicks, boxes and zoom windows as a visitor makes them.
- `whatif`: one prompt's mask on a clean and a corrupted image, and the sweep of their IoU.
- `confidence`: calibrated predicted IoU and how familiar an image looks.
- `figures`: what each checkpoint measured (its manifest) and what follows for the page.
- `photo_quality`, `quality`: how well a segmenter segments photos, and a tracker tracks clips.
- `grounding`: text to boxes (Florence-2, OWLv2, Grounding DINO, SAM 3).
- `segment_video`, `batched`, `memory_bank`: SAM 2 / EdgeTAM video tracking, objects
  batched, memory bounded.
- `point_track`, `appearance`: point tracking with re-prompting, and what an object looks like.
- `classical`: optical flow and GrabCut tracking, offline.
- `text_track`, `folder`: text prompts through a clip, and through a folder of clips.
- `mask_store`, `timeline`, `video_export`: masks spilled to disk, screen time, exports.
- `track_command`: the command line `python -m lib.track`.
"""

# the modules that build models, imported so their builders and names register (found by
# `lib.models.build.discover`, as timm.models imports its model modules)
from lib.segmentation import grounding, segment, segment_video  # noqa: F401
