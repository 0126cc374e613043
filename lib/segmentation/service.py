"""Segmentation for one visitor: `SegmentationSession` owns what the Segmentation page works
on: the image being segmented and its objects (`ImageWork` of `SegObject`s), the clip being
tracked and its tracker (`ClipWork`, whose decoder and mask file are closed when another clip
replaces it or the visitor leaves). The page reads widgets, calls the segmenter and tracker,
renders.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lib.media import masks
from lib.segmentation import segment


@dataclass
class SegObject:
    """One object being segmented: its prompts, candidate masks and the chosen one."""

    obj_id: int
    points: list[tuple[float, float, int]] = field(default_factory=list)
    box: tuple[float, float, float, float] | None = None
    label: str = ""
    result: segment.MaskResult | None = None
    choice: int = 0

    @property
    def name(self) -> str:
        return self.label or f"object {self.obj_id}"

    @property
    def color(self) -> tuple[int, int, int]:
        return masks.color_for(self.obj_id)

    @property
    def mask(self) -> np.ndarray | None:
        if self.result is None:
            return None
        return self.result.masks[min(self.choice, len(self.result.masks) - 1)]

    def has_prompts(self) -> bool:
        return bool(self.points) or self.box is not None


@dataclass
class ImageWork:
    """One image's objects and what was found on it (reset when the image changes)."""
    digest: str = ""
    objects: list[SegObject] = field(default_factory=lambda: [SegObject(1)])
    active_id: int = 1
    notice: str = ""                 # a message for the next run (a prompt refused)
    last_click: Any = None           # the canvas's last event, so a rerun does not repeat it
    found: tuple | None = None       # (phrase, boxes grounded by text)
    auto: list | None = None         # everything mode's masks

    @property
    def active(self) -> SegObject:
        return next((o for o in self.objects if o.obj_id == self.active_id), self.objects[0])

    def new_object(self) -> SegObject:
        """A new object, made the active one."""
        new = SegObject(max(o.obj_id for o in self.objects) + 1)
        self.objects.append(new)
        self.active_id = new.obj_id
        return new


@dataclass
class ClipWork:
    """One clip's tracker (for one model and processing rate) and the page's state on it."""
    key: tuple = ()
    tracker: Any = None              # segment_video.Tracker (or classical, point tracking)
    active_id: int = 1
    last_click: Any = None
    timeline: tuple | None = None    # (what it was computed from, rows)
    render: Path | None = None       # the last effect rendered to MP4 (a scratch file)


class SegmentationSession:
    """One visitor's segmentation: an image and a clip at a time."""

    def __init__(self):
        self.image = ImageWork()
        self.clip = ClipWork()

    def open_image(self, digest: str) -> ImageWork:
        """The work on this image: kept while it is the same image, fresh for another."""
        if self.image.digest != digest:
            self.image = ImageWork(digest)
        return self.image

    def open_clip(self, key: tuple, make_tracker: Callable[[], Any]) -> ClipWork:
        """The work on this clip (`key`: its digest, the model and the rate): kept while it
        is the same, else the old tracker closed and `make_tracker()` starts a new one."""
        if self.clip.key != key:
            self.close_clip()
            self.clip = ClipWork(key, make_tracker())
        return self.clip

    def close_clip(self) -> None:
        """The tracker's decoder and its mask file go now."""
        if self.clip.tracker is not None:
            self.clip.tracker.close()
        self.clip = ClipWork()

    def close(self) -> None:
        """The visitor left."""
        self.close_clip()
        self.image = ImageWork()
