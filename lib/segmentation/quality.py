"""How well a tracker tracks, on `lib.synth` clips whose true masks are known (clips.json):
driven as the page drives it, scored frame by frame.

- `box_prompted`: each object prompted with its true box on its first frame, the clip
  propagated; J (mask IoU) on every later frame where the object is visible, J on the frames
  after it was hidden, and how many hidden objects got their id back.
- `text_prompted`: the objects of one class found by text through the whole clip
  (`text_track.ground_through`): how many of those that enter after frame 0 are found within
  k frames of entering, and id switches per 1,000 object-frames (CLEAR MOT's IDSW, matched
  at mask IoU 0.5 with the Hungarian method).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lib.media import masks as mask_ops
from lib.segmentation.segment_video import open_clip

HIDDEN = 0.3            # visible under this share of its largest area: the object is hidden
MATCH = 0.5             # mask IoU at which a tracked mask is the object
REGAIN_WITHIN = 5       # frames after coming back in which its id must be back


@dataclass
class Clip:
    """One synthetic clip: its file, true visible masks per frame, and objects."""

    path: Path
    masks: list[dict[int, np.ndarray]]       # frame -> object -> visible mask
    objects: list[dict]                      # {"id", "category", "first_frame"}

    def full(self, k: int) -> int:
        """The object's largest visible area (its whole size)."""
        return max((int(m[k].sum()) for m in self.masks if k in m), default=0)

    def visible(self, f: int, k: int) -> np.ndarray | None:
        """The object's mask on frame f when it counts as visible there, else None."""
        truth = self.masks[f].get(k)
        return truth if truth is not None and truth.sum() >= HIDDEN * self.full(k) else None


def load_clips(clip_dir: str | Path, clips: int | None = None) -> list[Clip]:
    clip_dir = Path(clip_dir)
    index = json.loads((clip_dir / "clips.json").read_text())["clips"][:clips]
    return [Clip(clip_dir / c["file"],
                 [{int(k): mask_ops.from_rle(r) for k, r in fm.items()} for fm in c["masks"]],
                 c["objects"]) for c in index]


def _iou(a: np.ndarray | None, b: np.ndarray) -> float:
    if a is None:
        return 0.0
    return float((a & b).sum() / max(1, (a | b).sum()))


@dataclass
class Quality:
    """A tracker's figures over a set of clips (NaN where nothing was there to count)."""

    clips: int = 0
    scores: list[float] = field(default_factory=list)
    after: list[float] = field(default_factory=list)     # J on frames after a hiding
    hidden: int = 0                      # hidings followed by a return
    regained: int = 0                    # of those, id back within REGAIN_WITHIN frames
    entering: int = 0                    # objects of the named class entering after frame 0
    entered_found: int = 0               # of those, found within k frames of entering
    object_frames: int = 0               # object-frames of the named class (id switches)
    id_switches: int = 0
    seconds: float = 0.0                 # propagating (and grounding), all clips
    tracked_frames: int = 0

    @property
    def frames(self) -> int:
        """Object-frames scored for J."""
        return len(self.scores)

    @property
    def j(self) -> float:
        return float(np.mean(self.scores)) if self.scores else float("nan")

    @property
    def j_occluded(self) -> float:
        return float(np.mean(self.after)) if self.after else float("nan")

    @property
    def regained_share(self) -> float:
        return self.regained / self.hidden if self.hidden else float("nan")

    @property
    def found_share(self) -> float:
        return self.entered_found / self.entering if self.entering else float("nan")

    @property
    def switches_per_1000(self) -> float:
        return 1000 * self.id_switches / self.object_frames if self.object_frames else float("nan")

    @property
    def seconds_per_frame(self) -> float:
        return self.seconds / self.tracked_frames if self.tracked_frames else float("nan")


def _box(mask: np.ndarray) -> tuple[float, float, float, float]:
    ys, xs = np.nonzero(mask)
    return float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)


def box_prompted(tracker_for: Callable, clip_dir: str | Path, clips: int | None = None
                 ) -> Quality:
    """Each object prompted with its true box on its first frame (id = object + 1), the clip
    propagated; scored on every later frame where the object is visible."""
    q = Quality()
    for clip in load_clips(clip_dir, clips):
        tracker = tracker_for(open_clip(clip.path), None)
        for obj in clip.objects:
            f0 = obj["first_frame"]
            tracker.add_prompt(f0, obj["id"] + 1, box=_box(clip.masks[f0][obj["id"]]))
        t0 = time.perf_counter()
        q.tracked_frames += tracker.propagate()
        q.seconds += time.perf_counter() - t0
        q.clips += 1
        for obj in clip.objects:
            _score_object(q, clip, tracker, obj["id"], obj["first_frame"])
    return q


def _score_object(q: Quality, clip: Clip, tracker, k: int, f0: int) -> None:
    """J on each later frame the object is visible on; after its first hiding, also J after
    occlusion; each return from hiding counts as regained when its id is back within
    REGAIN_WITHIN frames."""
    ever_hidden = gone = False
    for f in range(f0 + 1, len(clip.masks)):
        truth = clip.visible(f, k)
        if truth is None:
            ever_hidden = gone = True
            continue
        j = _iou(tracker.mask(f, k + 1), truth)
        q.scores.append(j)
        if ever_hidden:
            q.after.append(j)
        if gone:                                   # it has just come back
            gone = False
            q.hidden += 1
            q.regained += any(_iou(tracker.mask(g, k + 1), t) >= MATCH
                              for g in range(f, min(len(clip.masks), f + REGAIN_WITHIN))
                              if (t := clip.visible(g, k)) is not None)


def text_prompted(tracker_for: Callable, grounder, clip_dir: str | Path, every: int,
                  clips: int | None = None) -> Quality:
    """Per clip, the class of its object that enters after frame 0 is typed (clips without
    such an object are skipped) and grounded through the clip every `every` frames."""
    from scipy.optimize import linear_sum_assignment  # heavy: imported on first use

    from lib.segmentation import text_track
    q = Quality()
    for clip in load_clips(clip_dir, clips):
        late = [o for o in clip.objects if o["first_frame"] > 0]
        if not late:
            continue
        word = late[0]["category"]
        named = [o["id"] for o in clip.objects if o["category"] == word]
        tracker = tracker_for(open_clip(clip.path), None)
        t0 = time.perf_counter()
        text_track.ground_through(tracker, grounder, word, every)
        q.seconds += time.perf_counter() - t0
        q.tracked_frames += tracker.num_frames
        q.clips += 1
        ids = sorted(tracker.objects)
        last: dict[int, int] = {}
        for f in range(len(clip.masks)):
            truths = [(k, t) for k in named if (t := clip.visible(f, k)) is not None]
            if not truths:
                continue
            preds = [tracker.mask(f, o) for o in ids]
            cost = np.array([[-_iou(p, t) for p in preds] for _, t in truths]).reshape(
                len(truths), len(ids))
            rows, cols = linear_sum_assignment(cost) if ids else ([], [])
            for r, c in zip(rows, cols):
                if -cost[r, c] < MATCH:
                    continue
                k = truths[r][0]
                if k in last and last[k] != ids[c]:
                    q.id_switches += 1
                last[k] = ids[c]
            q.object_frames += len(truths)
        for obj in late:
            if obj["category"] != word:
                continue
            k = obj["id"]
            seen = [f for f in range(len(clip.masks)) if clip.visible(f, k) is not None]
            if not seen:
                continue
            q.entering += 1
            q.entered_found += any(_iou(tracker.mask(f, o), t) >= MATCH
                                   for f in range(seen[0], min(len(clip.masks),
                                                               seen[0] + every + 1))
                                   if (t := clip.visible(f, k)) is not None for o in ids)
    return q
