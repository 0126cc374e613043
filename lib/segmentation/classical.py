"""Classical tracking, offline and without SAM 2: dense optical flow moves each object's
mask from frame to frame and GrabCut refines it, behind the same `Tracker` interface."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

import numpy as np

from lib.core.errors import PromptError
from lib.core.progress import Progress
from lib.media import masks as mask_ops
from lib.media import video as video_io
from lib.segmentation.segment_video import Tracker

CLASSICAL = "Classical tracking (optical flow + GrabCut, not SAM 2)"


class FlowTracker(Tracker):
    """Offline tracking without a learned model, labelled as such everywhere: an object is
    segmented by GrabCut inside its box on the prompted frame, then its mask is carried to
    the next frame by dense optical flow (OpenCV's Farnebäck) and refined there by GrabCut,
    frame by frame, forwards from each object's first prompt (a later prompt on the same
    object restarts it from there). It has no memory: an object hidden for long is lost."""

    propagated = False     # one pass over all objects (no sessions or groups)

    def __init__(self, info: video_io.VideoInfo, frames: Sequence[np.ndarray] | None = None,
                 every: int = 1):
        super().__init__(CLASSICAL, None, None, info, frames, every=every)
        self._gray: dict[int, np.ndarray] = {}

    def add_prompt(self, frame_idx: int, obj_id: int, points: Sequence = (), box=None,
                   label: str = "") -> np.ndarray:
        self.check_prompt(frame_idx, points, box)
        if box is None:
            raise PromptError("Classical tracking needs a box: drag a rectangle around the "
                              "object (clicks then refine it).")
        frame_idx = self.tracked_index(frame_idx)
        mask = mask_ops.grabcut(np.asarray(self.frames[frame_idx]), box, points)
        self._note_prompt(frame_idx, obj_id, points, box, label)
        self._store(frame_idx, [obj_id], [mask])
        self.propagated = False
        return mask

    def _grey(self, i: int) -> np.ndarray:
        import cv2  # heavy: imported on first use
        if i not in self._gray:
            self._gray[i] = cv2.cvtColor(np.asarray(self.frames[i]), cv2.COLOR_RGB2GRAY)
        return self._gray[i]

    def carry(self, mask: np.ndarray, src: int, dst: int) -> np.ndarray:
        """`mask` on frame `src` moved to frame `dst` by optical flow, refined by GrabCut."""
        import cv2  # heavy: imported on first use
        flow = cv2.calcOpticalFlowFarneback(self._grey(dst), self._grey(src), None, 0.5, 3,
                                            15, 3, 5, 1.2, 0)   # where each dst pixel came from
        h, w = mask.shape
        gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        warped = cv2.remap(mask.astype(np.float32), gx + flow[..., 0], gy + flow[..., 1],
                           cv2.INTER_LINEAR) > 0.5
        if warped.sum() < 16:
            return warped                                       # lost
        ys, xs = np.nonzero(warped)
        pad = max(8, int(0.25 * max(np.ptp(xs), np.ptp(ys))))
        x0, y0 = max(0, xs.min() - pad), max(0, ys.min() - pad)
        x1, y1 = min(w, xs.max() + pad + 1), min(h, ys.max() + pad + 1)
        crop = np.ascontiguousarray(np.asarray(self.frames[dst])[y0:y1, x0:x1])
        seed = warped[y0:y1, x0:x1]
        k = np.ones((3, 3), np.uint8)
        gc = np.full(seed.shape, cv2.GC_PR_BGD, np.uint8)
        gc[seed] = cv2.GC_PR_FGD
        gc[cv2.erode(seed.astype(np.uint8), k, iterations=2) > 0] = cv2.GC_FGD
        gc[cv2.dilate(seed.astype(np.uint8), k, iterations=max(3, pad // 2)) == 0] = cv2.GC_BGD
        if not (gc == cv2.GC_BGD).any() or not (gc == cv2.GC_FGD).any():
            return warped
        bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        cv2.setRNGSeed(0)
        cv2.grabCut(cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), gc, None, bgd, fgd, 2,
                    cv2.GC_INIT_WITH_MASK)
        out = np.zeros_like(warped)
        out[y0:y1, x0:x1] = (gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)
        return out

    def propagate(self, progress: Callable[[Progress], None] | None = None) -> int:
        if not self.objects:
            raise video_io.VideoError("Prompt at least one object before propagating.")
        starts = {o: min(obj.prompts) for o, obj in self.objects.items()}
        step = self.every
        tracked = range(0, self.num_frames, step)
        total = sum(sum(1 for f in tracked if f > s) for s in starts.values())
        t0, done = time.perf_counter(), 0
        for f in tracked:                     # frames in order, so the grey cache stays small
            for o, obj in self.objects.items():
                if f <= starts[o] or f in obj.prompts:
                    continue
                prev = self.mask(f - step, o)
                mask = self.carry(prev, f - step, f) if prev is not None else None
                if mask is not None:
                    self._store(f, [o], [mask])
                done += 1
                if progress:
                    progress(Progress(done, total, time.perf_counter() - t0))
            self._gray.pop(f - step, None)
        self.propagated = True
        return done


class ClassicalVideoModel:
    """The video model slot for classical tracking: no weights, nothing to load."""

    name = CLASSICAL
    untrained = False
    device = "cpu"

    def __init__(self):
        self.lock = threading.RLock()

    @property
    def label(self) -> str:
        return self.name

    def tracker(self, info: video_io.VideoInfo, frames: Sequence[np.ndarray] | None = None,
                every: int = 1) -> FlowTracker:
        return FlowTracker(info, frames, every)
