"""Point tracking with re-prompting (the approach of SAM-PT), for any promptable segmenter: no
memory path needed, so it works on the demo segmenter, whose memory path is untrained.

Each frame, an object's points (corners inside its last mask) are moved by pyramidal
Lucas–Kanade flow, kept where the backward flow returns them within a pixel, and the
segmenter is prompted with them and the previous box moved along. Among its candidate masks
the one most like the object wins: overlap with the previous mask moved along, plus how much
it looks like the object (`appearance.Looks`: its embedding, then its colours); a whole
object whose winner barely overlaps its moved mask keeps the moved mask (the candidate spilled
onto a neighbour). Edges are snapped to the image; each mask drops the pixels whose colour
belongs far likelier to another object or to its surroundings, and takes in the bordering
pixels whose colour is far likelier its own. When no candidate looks like the object
(hidden, or gone), the track waits: its last whole mask coasts at its velocity, minus the
objects in front, for a few frames; meanwhile each frame's masks in everything mode are
searched for one that looks like it, and the track resumes with the same id. Frames it
waited through have no mask (the timeline shows the gap)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np

from lib.core.errors import PromptError
from lib.core.progress import Progress
from lib.media import masks as mask_ops
from lib.media import video as video_io
from lib.segmentation.appearance import Looks
from lib.segmentation.segment_video import Tracker

KEEP = 0.55              # likeness under which a candidate is not the object
FIND = 0.65              # likeness a waiting object must reach to be found again
AGREE = 0.8              # a whole object's candidate overlapping its moved mask less is not it
WHOLE = 0.85             # of its whole area, smoothed: the mask is the whole object
COAST = 12               # frames a waiting object's mask coasts along
REAPPEAR = 30            # frames its last whole mask is looked for where it coasted to
LABEL = "point tracking + re-finding"


def _box(mask: np.ndarray) -> np.ndarray:
    return np.asarray(mask_ops.bbox(mask), dtype=float)


def _shift(mask: np.ndarray, dx: float, dy: float) -> np.ndarray:
    import cv2  # heavy: imported on first use
    h, w = mask.shape
    return cv2.warpAffine(mask.astype(np.uint8), np.float32([[1, 0, dx], [0, 1, dy]]),
                          (w, h)) > 0


def _in_front(box, others: list[np.ndarray], free: np.ndarray) -> list[tuple]:
    """Negative points: the centres of other objects that lie inside `box` where `free`
    (the pixels that may be ours) is not set."""
    points = []
    for other in others:
        ob = _box(other)
        cx, cy = (ob[:2] + ob[2:]) / 2
        if box[0] <= cx <= box[2] and box[1] <= cy <= box[3] and not free[int(cy), int(cx)]:
            points.append((float(cx), float(cy), 0))
    return points


class PointTracker(Tracker):
    """A `Tracker` that follows objects with points and re-prompts `segmenter` every frame
    (see the module); forwards from each object's first prompt."""

    propagated = False

    def __init__(self, segmenter, info: video_io.VideoInfo,
                 frames: Sequence[np.ndarray] | None = None, every: int = 1):
        super().__init__(f"{segmenter.label} · {LABEL}", None, None, info, frames, every=every)
        self.segmenter = segmenter
        self.untrained = getattr(segmenter, "untrained", False)
        self.looks = Looks(segmenter)                     # what each object looks like
        self._size: dict[int, np.ndarray] = {}           # its box size, smoothed
        self._whole: dict[int, tuple[int, np.ndarray]] = {}   # last whole mask (frame, mask)
        self._area: dict[int, float] = {}                 # its whole area, smoothed
        self._velocity: dict[int, np.ndarray] = {}        # pixels per tracked frame
        self._offset: dict[int, np.ndarray] = {}          # moved since its last whole mask
        self._motion: dict[int, np.ndarray] = {}          # its points' motion this frame
        self.regained = 0                                  # times a waiting object came back
        # where tracking stands: the last frame tracked, each object's first frame, which
        # objects wait, the last frame in grey; whether a prompt since needs a fresh pass
        self._cursor: int | None = None
        self._starts: dict[int, int] = {}
        self._waiting: dict[int, bool] = {}
        self._grey: np.ndarray | None = None
        self._restart = True
        self._corrections: dict[int, int] = {}   # object -> first frame a click corrected

    resumable = True     # propagate(until=f) tracks up to f and a later call goes on from it

    @property
    def corrections(self) -> dict[int, int]:
        """Objects corrected by a click since the last pass -> the frame corrected (the next
        `propagate` tracks each again from there alone)."""
        return dict(self._corrections)

    def _predict(self, image, points, box):
        with self.segmenter.lock:
            return self.segmenter.predict(image, points, box)

    def add_prompt(self, frame_idx: int, obj_id: int, points: Sequence = (), box=None,
                   label: str = "") -> np.ndarray:
        self.check_prompt(frame_idx, points, box)
        frame_idx = self.tracked_index(frame_idx)
        image = np.asarray(self.frames[frame_idx])
        result = self._predict(image, points, box)
        mask = result.masks[result.best if box is None else result.filling(box)]
        if not mask.any():
            raise PromptError("The segmenter found nothing there: click on the object or "
                              "drag a box around it.")
        self._note_prompt(frame_idx, obj_id, points, box, label)
        self._store(frame_idx, [obj_id], [mask])
        self.propagated = False
        # a correction of a tracked object after its start, up to where tracking stands:
        # that object alone is tracked again from there (every earlier frame kept); another
        # prompt behind where tracking stands: track again from the prompts; a new object
        # where tracking stands or later: go on
        start = self._starts.get(obj_id)
        if not self._restart and start is not None and start < frame_idx <= self._cursor:
            self._corrections[obj_id] = min(frame_idx, self._corrections.get(obj_id, frame_idx))
        elif self._cursor is None or frame_idx < self._cursor or (
                obj_id in self._starts and frame_idx <= self._cursor):
            self._restart = True
        return mask

    def _begin(self, o: int, f: int, image: np.ndarray, mask: np.ndarray) -> None:
        """An object's appearance, size and motion as its first prompt gives them."""
        self.looks.learn(o, image, mask)
        self._size[o] = _box(mask)[2:] - _box(mask)[:2]
        self._whole[o] = (f, mask)
        self._area[o] = float(mask.sum())
        self._velocity[o] = np.zeros(2)
        self._offset[o] = np.zeros(2)

    def _follow(self, o: int, image, grey0, grey1, prev: np.ndarray,
                others: list[np.ndarray]) -> tuple[np.ndarray, float] | None:
        """The object's mask on this frame from its mask `prev` on the last one, with its
        similarity; None when no candidate looks like it."""
        import cv2  # heavy: imported on first use
        h, w = prev.shape
        inner = cv2.erode(prev.astype(np.uint8), np.ones((3, 3), np.uint8))
        corners = cv2.goodFeaturesToTrack(grey0, 16, 0.01, 3,
                                          mask=inner if inner.sum() > 8 else prev.astype(np.uint8))
        motion, positive = np.zeros(2), []
        if corners is not None and len(corners) >= 2:
            moved, ok, _ = cv2.calcOpticalFlowPyrLK(grey0, grey1, corners, None,
                                                    winSize=(15, 15), maxLevel=2)
            back, ok2, _ = cv2.calcOpticalFlowPyrLK(grey1, grey0, moved, None,
                                                    winSize=(15, 15), maxLevel=2)
            good = (ok.ravel() == 1) & (ok2.ravel() == 1) & (
                np.linalg.norm(corners - back, axis=2).ravel() < 1.0)
            if good.sum() >= 2:
                motion = np.median((moved - corners).reshape(-1, 2)[good], axis=0)
                self._motion[o] = motion
                positive = [(float(x), float(y), 1) for x, y in moved.reshape(-1, 2)[good][:4]
                            if 0 <= x < w and 0 <= y < h]
        box = _box(prev)
        centre = (box[:2] + box[2:]) / 2 + motion
        size = np.maximum(box[2:] - box[:2], 0.85 * self._size[o])
        box = np.clip(np.concatenate([centre - size / 2, centre + size / 2]), 0, [w, h, w, h])
        if box[2] - box[0] < 2 or box[3] - box[1] < 2:
            return None
        expected = _shift(prev, *motion)
        negative = _in_front(box, others, expected)
        best, best_sim = self._pick(o, image, box, (positive + negative, negative), expected)
        if best is None or best_sim < KEEP:
            return None
        if mask_ops.iou(best, expected) < AGREE and expected.sum() >= WHOLE * self._area[o]:
            best = expected            # a whole object's mask moved on: the candidate spilled
        sharp = mask_ops.refine_edges(image, best)
        if 0.7 * best.sum() <= sharp.sum() <= 1.3 * best.sum():   # edges moved, not the object
            best = sharp
        return best, best_sim

    def _pick(self, o: int, image: np.ndarray, box, point_sets, expected: np.ndarray,
              cover: np.ndarray | None = None, min_area: float = 4
              ) -> tuple[np.ndarray | None, float]:
        """The segmenter prompted with `box` and each set of points: of its candidates (minus
        `cover`), the one that best overlaps `expected` and looks like the object, with its
        colour similarity."""
        best, best_score, best_sim = None, -1.0, 0.0
        for points in point_sets:
            for mask in self._predict(image, points, tuple(box)).masks:
                if cover is not None:
                    mask = mask & ~cover
                if mask.sum() < min_area:
                    continue
                sim = self.looks.likeness(o, image, mask)
                if mask_ops.iou(mask, expected) + sim > best_score:
                    best, best_score, best_sim = mask, mask_ops.iou(mask, expected) + sim, sim
        return best, best_sim

    def _reappear(self, o: int, f: int, image: np.ndarray, front: list[np.ndarray]
                  ) -> tuple[np.ndarray, float] | None:
        """A waiting object's visible part, where its last whole mask has coasted to: the
        segmenter prompted with that box, a point on the part no tracked object covers and
        points on the objects in front; the candidate most like the object, minus what is in
        front, when it looks like the object. None while it is still hidden."""
        import cv2  # heavy: imported on first use
        f0, whole = self._whole[o]
        if f - f0 > REAPPEAR:
            return None
        ghost = _shift(whole, *self._offset[o])
        cover = np.zeros_like(ghost)
        for m in front:
            cover |= m
        visible = ghost & ~cover
        if visible.sum() < 0.15 * whole.sum():
            return None
        dist = cv2.distanceTransform(np.pad(visible, 1).astype(np.uint8), cv2.DIST_L2, 3)
        y, x = np.unravel_index(np.argmax(dist[1:-1, 1:-1]), visible.shape)
        box = _box(ghost)
        point = (float(x), float(y), 1)
        negative = _in_front(box, front, ~cover)
        best, best_sim = self._pick(o, image, box, ([point, *negative], [point]), visible,
                                    cover, 0.15 * whole.sum())
        if best is None or best_sim < FIND:
            return None
        return best, best_sim

    def _find_again(self, o: int, image, candidates: list[np.ndarray],
                    taken: list[np.ndarray]) -> np.ndarray | None:
        best, best_sim = None, FIND
        area = float(np.prod(self._size[o]))
        for mask in candidates:
            if not 0.15 * area <= mask.sum() <= 3 * area or any(mask_ops.iou(mask, t) > 0.3
                                                                for t in taken):
                continue
            sim = self.looks.likeness(o, image, mask)
            if sim > best_sim:
                best, best_sim = mask, sim
        return best

    def _reset(self) -> None:
        """Track from the prompts alone: masks of earlier passes stop counting (the prompted
        frames' masks stay)."""
        import cv2  # heavy: imported on first use
        prompted = {o: {f: m for f in obj.prompts if (m := self.mask(f, o)) is not None}
                    for o, obj in self.objects.items()}
        self.store.forget(list(self.objects))
        for o, masks in prompted.items():
            for f, m in masks.items():
                self._store(f, [o], [m])
        self._starts = {}
        self._waiting = {}
        self._corrections = {}
        self._cursor = min(min(obj.prompts) for obj in self.objects.values())
        self._grey = cv2.cvtColor(np.asarray(self.frames[self._cursor]), cv2.COLOR_RGB2GRAY)

    def propagate(self, progress: Callable[[Progress], None] | None = None,
                  until: int | None = None) -> int:
        """Track forwards to `until` (the clip's end by default), from where the last call
        stopped when only objects starting there or later were added since; otherwise from
        the prompts. Returns the frames tracked by this call."""
        import cv2  # heavy: imported on first use
        if not self.objects:
            raise video_io.VideoError("Prompt at least one object before propagating.")
        if self._restart:
            self._reset()
            self._restart = False
        for o, obj in self.objects.items():      # objects new since the last call
            if o not in self._starts:
                f0 = self._starts[o] = min(obj.prompts)
                self._begin(o, f0, np.asarray(self.frames[f0]), self.mask(f0, o))
        for o, t in sorted(self._corrections.items(), key=lambda kv: kv[1]):
            self._retrack(o, t)
        self._corrections = {}
        end = self.num_frames - 1 if until is None else min(int(until), self.num_frames - 1)
        tracked = list(range(self._cursor + self.every, end + 1, self.every))
        t0, done = time.perf_counter(), 0
        grey = self._grey
        for f in tracked:
            image = np.asarray(self.frames[f])
            grey1 = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
            self._step(f, image, grey, grey1)
            grey = self._grey = grey1
            self._cursor = f
            done += 1
            if progress:
                progress(Progress(done, len(tracked), time.perf_counter() - t0))
        self.propagated = self._cursor + self.every >= self.num_frames
        return done

    def _retrack(self, o: int, t: int) -> None:
        """A correction: object `o` tracked again from its corrected mask on frame `t` up to
        where tracking stands, every other object's masks (and every frame before `t`) as
        they are; it then goes on with the others."""
        import cv2  # heavy: imported on first use
        image = np.asarray(self.frames[t])
        self._begin(o, t, image, self.mask(t, o))
        self._waiting[o] = False
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        for f in range(t + self.every, self._cursor + 1, self.every):
            image = np.asarray(self.frames[f])
            grey1 = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
            if f not in self.objects[o].prompts:
                fixed = {q: m for q in self.objects if q != o
                         and (m := self.mask(f, q)) is not None}
                self._step(f, image, grey, grey1, {o}, fixed)
            grey = grey1

    def _step(self, f: int, image: np.ndarray, grey, grey1, movable: set[int] | None = None,
              fixed: dict[int, np.ndarray] | None = None) -> None:
        """Track frame `f` from the last tracked frame: the `movable` objects (None: all),
        the others' masks on `f` (`fixed`) standing as they are."""
        starts, waiting = self._starts, self._waiting
        fixed = fixed or {}
        mine = [o for o in self.objects if movable is None or o in movable]
        before = f - self.every
        out: dict[int, tuple[np.ndarray, float]] = {}
        for o in mine:                           # where each object should be now
            if f > starts[o]:
                self._offset[o] += self._velocity[o]
        live = [o for o in mine if f > starts[o] and not waiting.get(o)
                and f not in self.objects[o].prompts]
        for o in live:
            prev = self.mask(before, o)
            others = [m for q in self.objects if q != o and (q in live or q in fixed)
                      and (m := self.mask(before, q)) is not None]
            found = self._follow(o, image, grey, grey1, prev, others) \
                if prev is not None and prev.sum() >= 4 else None
            if found is None:
                waiting[o] = True
            else:
                out[o] = found
        for a in list(out):                      # two tracks on one region: one is hidden
            for b in list(out):
                if a < b and a in out and b in out and mask_ops.iou(out[a][0], out[b][0]) > 0.5:
                    hidden = a if out[a][1] < out[b][1] else b
                    out.pop(hidden)
                    waiting[hidden] = True
        for a in list(out):                      # on a region an unmoved object holds
            if any(mask_ops.iou(out[a][0], m) > 0.5 for m in fixed.values()):
                out.pop(a)
                waiting[a] = True
        lost = [o for o in mine if f > starts[o] and waiting.get(o)]
        for o in lost:                           # where it should be: its visible part?
            back = self._reappear(o, f, image, [m for m, _ in out.values()]
                                  + list(fixed.values()))
            if back is not None:
                out[o], waiting[o] = back, False
                self.regained += 1
        lost = [o for o in lost if waiting.get(o)]
        if lost:
            with self.segmenter.lock:
                candidates = [m.mask for m in self.segmenter.everything(
                    image, points_per_side=8, min_iou=0.5, min_stability=0.7)]
            taken = [m for m, _ in out.values()] + list(fixed.values())
            for o in lost:
                mask = self._find_again(o, image, candidates, taken)
                if mask is not None:
                    out[o], waiting[o] = (mask, 1.0), False
                    taken.append(mask)
                    self.regained += 1
        self.looks.separate(image, out, fixed)
        for o, (mask, sim) in out.items():
            self._store(f, [o], [mask])
            self._learn(o, f, mask, sim)
        front = [m for m, _ in out.values()] + list(fixed.values())
        for o in lost:                           # still waiting: the last whole mask coasts
            ghost = None
            if o not in out and f - self._whole[o][0] <= COAST:
                f0, whole = self._whole[o]
                ghost = _shift(whole, *self._offset[o])
                for m in front:
                    ghost &= ~m
                if ghost.sum() < 0.15 * whole.sum():
                    ghost = None
            if ghost is not None:
                self._store(f, [o], [ghost])
            elif o not in out and movable is not None:
                self._store(f, [o], [None])      # a correction: its old mask is gone here

    def _learn(self, o: int, f: int, mask: np.ndarray, sim: float) -> None:
        """Size from confident masks; from whole masks (about the object's whole area: a
        mask shrinking as something passes in front is not one), that area, the last whole
        mask and the velocity its points give."""
        area = float(mask.sum())
        if sim > 0.8 and area > 0.6 * np.prod(self._size[o]):
            box = _box(mask)
            self._size[o] = 0.7 * self._size[o] + 0.3 * (box[2:] - box[:2])
        motion = self._motion.pop(o, None)
        if area >= WHOLE * self._area[o]:
            self._whole[o] = (f, mask)
            self._offset[o] = np.zeros(2)
            self._area[o] = 0.8 * self._area[o] + 0.2 * area
            if motion is not None:     # not while partly hidden: points on what passes in
                self._velocity[o] = 0.5 * self._velocity[o] + 0.5 * motion   # front pull


class PointVideoModel:
    """The video model slot for point tracking on a loaded segmenter."""

    def __init__(self, segmenter):
        self.segmenter = segmenter
        self.name = f"{segmenter.label} · {LABEL}"
        self.untrained = getattr(segmenter, "untrained", False)
        self.device = segmenter.device
        self.lock = segmenter.lock

    @property
    def label(self) -> str:
        return self.name

    def tracker(self, info: video_io.VideoInfo, frames: Sequence[np.ndarray] | None = None,
                every: int = 1) -> PointTracker:
        return PointTracker(self.segmenter, info, frames, every)
