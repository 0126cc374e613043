"""Text prompts through a whole clip: a phrase grounded on the first frame and again every k
frames, so that objects entering later are found too. A grounded box that overlaps no object
already tracked on that frame starts a new object (tracked on before the next grounded frame,
so that frame knows it); one that overlaps a tracked object is that object, and its id
stays. Works with any `Tracker` and any grounder with `boxes(image, phrase)`."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from lib.core.errors import PromptError
from lib.core.progress import Progress
from lib.media import masks as mask_ops

OVERLAP = 0.3            # box IoU above which a grounded box is an object already tracked


@dataclass
class Grounded:
    """What grounding through the clip did: the objects it started (frame, id, label) and
    the frames it grounded on."""

    started: list[tuple[int, int, str]] = field(default_factory=list)
    frames: list[int] = field(default_factory=list)


def check_every(every, frames: int) -> int:
    """k as a whole number of frames from 1 to the clip's length; `PromptError` otherwise."""
    if isinstance(every, bool) or not isinstance(every, int) or not 1 <= every <= max(1, frames):
        raise PromptError(f"Ground every k frames with k a whole number from 1 to {frames} "
                          f"(the clip's length); got {str(every)[:20]!r}.")
    return every


def same_object(box, mask, overlap: float = OVERLAP) -> bool:
    """Whether a grounded box is a tracked object (its mask on that frame): the box and the
    mask's box overlap (IoU above `overlap`), the box holds most of the mask (a box drawn
    around it and its neighbour), or most of the box lies on the mask's box (a box on a part
    of it)."""
    b = mask_ops.bbox(mask)
    if b is None:
        return False
    if mask_ops.box_iou(box, b) > overlap:
        return True
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    inside = mask[max(0, y0):max(0, y1), max(0, x0):max(0, x1)].sum()
    area = max(1e-9, (box[2] - box[0]) * (box[3] - box[1]))
    return inside > 0.5 * mask.sum() or mask_ops.box_intersection(box, b) > 0.7 * area


def ground_through(tracker, grounder, phrase: str, every: int,
                   progress: Callable[[Progress], None] | None = None,
                   overlap: float = OVERLAP) -> Grounded:
    """Ground `phrase` on frames 0, k, 2k, … of the tracker's clip; each box that overlaps
    no tracked object there starts one (labelled with the grounder's label), and the tracker
    propagates the new objects before the next grounded frame."""
    every = check_every(every, tracker.num_frames)
    if tracker.every > 1:                         # grounded frames are tracked frames
        every = max(tracker.every, every // tracker.every * tracker.every)
    done = Grounded()
    frames = list(range(0, tracker.num_frames, every))
    t0 = time.perf_counter()
    # a tracker that can stop and go on (point tracking) is tracked up to each grounded
    # frame and on from it: one pass over the clip, however many objects are found
    resumable = getattr(tracker, "resumable", False)
    for i, f in enumerate(frames):
        if resumable and tracker.objects:
            tracker.propagate(until=f)
        regions = grounder.boxes(tracker.frames[f], phrase)     # PromptError for bad text
        done.frames.append(f)
        known = [m for _, m in tracker.frame_masks(f) if m.any()]
        started = False
        for region in regions:        # most confident first: a later box on an object
            if any(same_object(region.box, m, overlap) for m in known):   # started here
                continue                                                 # is that object
            obj = max(tracker.objects, default=0) + 1
            try:
                known.append(tracker.add_prompt(f, obj, [], region.box, label=region.label))
            except PromptError:      # a sliver of a box, or one the segmenter finds empty
                continue
            done.started.append((f, obj, region.label))
            started = True
        if started and not resumable:
            tracker.propagate()
        if progress:
            progress(Progress(i + 1, len(frames), time.perf_counter() - t0))
    if resumable and tracker.objects:
        tracker.propagate()
    return done
