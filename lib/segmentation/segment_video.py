"""Video object tracking with SAM 2.1 / EdgeTAM video models (transformers), memory flat in
clip length.

Prompt objects on any frame (points, boxes), propagate through the clip (forward from the
first prompted frame, then backward to the start), add objects at any time: objects added
after tracking form a new group that is tracked on its own, so the others are not tracked
again. What a long clip would otherwise pile up is bounded:

- frames are decoded when the tracker reaches them (`lib.media.frames.FrameSource`), and
  model-size tensors are made from them on demand with a small LRU;
- the session's memory bank keeps the prompted (conditioning) frames and only the recent
  frames memory attention reads: the last `num_maskmem - 1` frames' memories and the last
  `max_object_pointers_in_encoder - 1` frames' object pointers (SAM 2's and EdgeTAM's own
  windows; `clear_non_cond_mem_around_input` in facebookresearch/sam2 and ultralytics' SAM
  tracker prune the same way). Older per-frame outputs are dropped as tracking moves on;
  the window after the frame propagation starts from is kept for the backward pass;
- masks go to COCO RLE on disk as they are made (`mask_store.MaskStore`), and exports
  stream frame by frame;
- the bytes the sessions and the frame buffer hold are counted in the process memory budget
  (`lib.models.cache`) as tracking runs, so one visitor's clip cannot take another's memory.

With a processing rate below the clip's (`every` > 1), one frame in `every` is tracked and
its masks are carried to the frames up to the next tracked one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lib.core import settings
from lib.core.progress import Progress
from lib.media import masks as mask_ops
from lib.media import video as video_io
from lib.media.frames import FrameSource
from lib.models import cache, registry
from lib.models.build import builder
from lib.models.spec import HubModel, Source, Task
from lib.segmentation.batched import track_frame
from lib.segmentation.mask_store import MaskStore
from lib.segmentation.memory_bank import (
    LazyFrames,
    PerObject,
    memory_window,
    prune_memory,
    session_nbytes,
)
from lib.segmentation.prompts import check_prompts, processor_inputs
from lib.segmentation.segment import load_pretrained, tiny_sam2_config


def open_clip(path: str | Path) -> video_io.VideoInfo:
    """Probe a clip for tracking against the segmentation limits (a duration and a frame
    size, `LENS_SAM_MAX_SECONDS` and `LENS_SAM_MAX_PIXELS`); `VideoError` names the fix."""
    s = settings.get()
    info = video_io.open_video(path, max_seconds=s.sam_max_seconds,
                               max_pixels=s.sam_max_pixels,
                               max_frames=int(s.sam_max_seconds * 240) + 1)
    check_limits(info)
    return info


def check_limits(info: video_io.VideoInfo, max_seconds: float | None = None,
                 max_pixels: int | None = None) -> None:
    """`VideoError` for a clip longer or larger than tracking takes."""
    s = settings.get()
    max_seconds, max_pixels = max_seconds or s.sam_max_seconds, max_pixels or s.sam_max_pixels
    if info.duration_s > max_seconds + 1:
        raise video_io.VideoError(f"'{info.path.name}' lasts {info.duration_s:.0f} s; tracking "
                                  f"takes at most {max_seconds:.0f} s.",
                                  "Trim the clip (or raise LENS_SAM_MAX_SECONDS).")
    if info.width * info.height > max_pixels:
        raise video_io.VideoError(f"'{info.path.name}' has {info.width}x{info.height} frames; "
                                  f"tracking takes at most {max_pixels:,} pixels a frame.",
                                  "Downscale it, e.g. to 1080p or 720p.")


def frame_source(info: video_io.VideoInfo) -> FrameSource:
    """The clip's frames, streamed (the one way a tracker reads a clip)."""
    return FrameSource(info, max_pixels=settings.get().sam_max_pixels)


@dataclass
class TrackedObject:
    obj_id: int
    label: str = ""
    # frame -> (points, box)
    prompts: dict[int, tuple[list, tuple | None]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.label or f"object {self.obj_id}"


@dataclass
class _Group:
    """Objects tracked together in one session (one image encoding per frame for all)."""

    session: Any
    objects: list[int] = field(default_factory=list)
    started: bool = False       # a propagation began (it may have been cancelled)
    tracked: bool = False       # and finished


class Tracker:
    """One clip, one video model: prompts, propagation, masks per frame (RLE on disk),
    exports streamed frame by frame."""

    def __init__(self, name: str, model, processor, info: video_io.VideoInfo,
                 frames: Sequence[np.ndarray] | None = None, device: str = "cpu",
                 untrained: bool = False, every: int = 1):
        self.name, self.model, self.processor, self.info = name, model, processor, info
        self.frames = frames if frames is not None else frame_source(info)
        self.device, self.untrained = device, untrained
        self.every = max(1, int(every))
        self.objects: dict[int, TrackedObject] = {}
        self.store = MaskStore()
        self.groups: list[_Group] = []
        self.window = memory_window(model.config) if model is not None else 0
        self.state_bytes = 0           # what the sessions and frame buffer hold, last counted
        self.peak_state_bytes = 0
        self.tracked_frames = 0        # frames tracked by the last propagation, so far

    # -- sessions ---------------------------------------------------------------------------
    def _new_session(self):
        import torch  # heavy: imported on first use
        from transformers.models.sam2_video.modeling_sam2_video import (
            Sam2VideoInferenceSession,
        )  # heavy: imported on first use
        dtype = torch.float16 if self.device == "cuda" else torch.float32
        state = "cpu" if settings.get().sam_offload_state else self.device
        session = Sam2VideoInferenceSession(
            video=None, video_height=self.info.height, video_width=self.info.width,
            inference_device=self.device, inference_state_device=state,
            video_storage_device=state, dtype=dtype)
        session.processed_frames = LazyFrames(self.frames, self.every,
                                               self.processor.video_processor, dtype)
        session.frames_tracked_per_obj = PerObject()
        return session

    @property
    def session(self):
        """The session of the newest group (made on first use)."""
        if not self.groups:
            self.groups.append(_Group(self._new_session()))
        return self.groups[-1].session

    @property
    def propagated(self) -> bool:
        return bool(self.groups) and all(g.tracked for g in self.groups)

    @property
    def num_frames(self) -> int:
        return len(self.frames)

    def tracked_index(self, frame_idx: int) -> int:
        """The tracked frame whose masks `frame_idx` shows (itself when every frame is)."""
        return min(frame_idx // self.every, (self.num_frames - 1) // self.every) * self.every

    def _to_masks(self, pred_masks) -> np.ndarray:
        full = self.processor.post_process_masks(
            [pred_masks.float().cpu()], [[self.info.height, self.info.width]], binarize=False)[0]
        return (full[:, 0] > 0).numpy()

    def _store(self, frame_idx: int, obj_ids: list[int], masks) -> None:
        self.store.put(frame_idx, {int(o): m for o, m in zip(obj_ids, masks)})

    def _account(self) -> None:
        """Count the sessions and the frame buffer in the process memory budget (raises
        `ModelTooLargeError` when they do not fit)."""
        n = sum(session_nbytes(g.session) for g in self.groups)
        n += getattr(self.frames, "nbytes", 0)
        self.state_bytes = n
        self.peak_state_bytes = max(self.peak_state_bytes, n)
        cache.STORE.track("tracking session", self.info.path.name, self, n)

    # -- prompts ---------------------------------------------------------------------------
    def check_prompt(self, frame_idx: int, points: Sequence, box) -> None:
        """`VideoError` for a frame outside the clip, `PromptError` for bad prompts."""
        if not 0 <= frame_idx < self.num_frames:
            raise video_io.VideoError(f"Frame {frame_idx} is outside the clip "
                                      f"(0-{self.num_frames - 1}).")
        check_prompts(points, box, self.info.width, self.info.height)

    def _group_of(self, obj_id: int) -> _Group:
        """The group an object is prompted in: its own, started afresh if it was tracked
        already (its prompts replayed); a new object joins the newest group if that has not
        been tracked, else starts a group of its own."""
        for g in self.groups:
            if obj_id in g.objects:
                if g.started:
                    self._restart(g)
                return g
        if not self.groups or self.groups[-1].started:
            self.groups.append(_Group(self._new_session()))
        self.groups[-1].objects.append(obj_id)
        return self.groups[-1]

    def _restart(self, group: _Group) -> None:
        group.session, group.started, group.tracked = self._new_session(), False, False
        self.store.forget(group.objects)
        for o in group.objects:
            for f, (points, box) in sorted(self.objects[o].prompts.items()):
                self._run_prompt(group, f, o, points, box)

    def _run_prompt(self, group: _Group, frame_idx: int, obj_id: int, points, box) -> np.ndarray:
        import torch  # heavy: imported on first use
        self.processor.add_inputs_to_inference_session(
            inference_session=group.session, frame_idx=frame_idx // self.every, obj_ids=obj_id,
            original_size=(self.info.height, self.info.width), **processor_inputs(points, box))
        with torch.inference_mode():
            out = self.model(inference_session=group.session, frame_idx=frame_idx // self.every)
        masks = self._to_masks(out.pred_masks)
        self._store(frame_idx, list(out.object_ids), masks)
        return masks[list(out.object_ids).index(obj_id)]

    def _note_prompt(self, frame_idx: int, obj_id: int, points: Sequence, box,
                     label: str) -> TrackedObject:
        """Record an object's prompt on a (tracked) frame; a new label replaces its old one."""
        obj = self.objects.setdefault(obj_id, TrackedObject(obj_id, label))
        obj.label = label or obj.label
        obj.prompts[frame_idx] = (list(points), box)
        return obj

    def add_prompt(self, frame_idx: int, obj_id: int, points: Sequence = (), box=None,
                   label: str = "") -> np.ndarray:
        """Prompt one object on one frame (a tracked frame: with a processing rate below the
        clip's, the tracked frame at or before it); returns its mask on that frame."""
        self.check_prompt(frame_idx, points, box)
        frame_idx = self.tracked_index(frame_idx)
        self._note_prompt(frame_idx, obj_id, points, box, label)
        group = self._group_of(obj_id)
        mask = self._run_prompt(group, frame_idx, obj_id, points, box)
        self._account()
        return mask

    # -- propagation -----------------------------------------------------------------------
    def propagate(self, progress: Callable[[Progress], None] | None = None) -> int:
        """Track every group not yet tracked through the clip; returns the frames processed.

        Masks are on disk as each frame is done, so a propagation stopped part-way (the
        progress callback raising, as a Cancel does) keeps what it tracked; the next one
        tracks the stopped group again from its prompts."""
        import torch  # heavy: imported on first use
        if not self.objects:
            raise video_io.VideoError("Prompt at least one object before propagating.")
        pending = [g for g in self.groups if not g.tracked and g.objects]
        for g in pending:
            if g.started:
                self._restart(g)
        steps = -(-self.num_frames // self.every)          # tracked frames in the clip
        total, done, t0 = steps * len(pending), 0, time.perf_counter()
        self.tracked_frames = 0
        with torch.inference_mode():
            for g in pending:
                g.started = True
                start = min(f for o in g.objects for f in self.objects[o].prompts) // self.every
                forward, backward = range(start, steps), range(start - 1, -1, -1)
                for j, reverse in [(j, False) for j in forward] + [(j, True) for j in backward]:
                    ids, pred_masks = track_frame(self.model, g.session, j, reverse)
                    self._store(j * self.every, ids, self._to_masks(pred_masks))
                    prune_memory(g.session, j, reverse, self.window, start)
                    done += 1
                    self.tracked_frames = done
                    if done % 8 == 1:
                        self._account()
                    if progress:
                        progress(Progress(done, total, time.perf_counter() - t0))
                g.tracked = True
        self._account()
        return done

    # -- reading results -------------------------------------------------------------------
    def masks_on(self, frame_idx: int) -> dict[int, dict]:
        """Object id -> RLE shown on `frame_idx` (carried from its tracked frame)."""
        return self.store.get(self.tracked_index(frame_idx))

    def mask(self, frame_idx: int, obj_id: int) -> np.ndarray | None:
        rle = self.masks_on(frame_idx).get(obj_id)
        return None if rle is None else mask_ops.from_rle(rle)

    def frame_masks(self, frame_idx: int, obj_ids: Sequence[int] | None = None
                    ) -> list[tuple[int, np.ndarray]]:
        ids = list(self.objects if obj_ids is None else obj_ids)
        on = self.masks_on(frame_idx)
        return [(o, mask_ops.from_rle(on[o])) for o in ids if o in on]

    def render_frame(self, frame_idx: int, opacity: float = 0.5, effect: str | None = None,
                     obj_ids: Sequence[int] | None = None, strength: int = 25) -> np.ndarray:
        frame = self.frames[frame_idx]
        layers = self.frame_masks(frame_idx, obj_ids)
        if effect:
            out = mask_ops.apply_effect(frame, [m for _, m in layers], effect, strength)
            return out[..., :3] if out.shape[2] == 4 else out
        return mask_ops.overlay(frame, [(m, mask_ops.color_for(o)) for o, m in layers], opacity)

    def close(self) -> None:
        """Release the frame decoder and the mask file (also done when collected)."""
        getattr(self.frames, "close", lambda: None)()
        self.store.close()


def _video_model_class(arch: str):
    import transformers  # heavy: imported on first use
    return (transformers.EdgeTamVideoModel if "edgetam" in arch.lower()
            else transformers.Sam2VideoModel)


@dataclass
class VideoModel(HubModel):
    """A SAM 2 / EdgeTAM video model: makes a `Tracker` per clip."""

    def tracker(self, info: video_io.VideoInfo, frames: Sequence[np.ndarray] | None = None,
                every: int = 1) -> Tracker:
        return Tracker(self.name, self.model, self.processor, info, frames, self.device,
                       self.untrained, every)


def load_video_model(name: str) -> VideoModel:
    """The video model for a registry name, from the process-wide model cache."""
    return cache.load(name, "tracking").model


@builder(Task.TRACKING, Source.TRANSFORMERS, Source.CHECKPOINT)
def build_video_model(spec: registry.ModelSpec, device: str | None = None) -> VideoModel:
    """The video model with real weights, or `WeightsMissingError` naming the fetch command."""
    from transformers import Sam2VideoProcessor  # heavy: imported on first use

    model, processor, device = load_pretrained(spec, _video_model_class(spec.arch),
                                               Sam2VideoProcessor, device)
    return VideoModel(spec.name, model, processor, device)


def tiny_video_model(image_size: int = 256, seed: int = 0) -> VideoModel:
    """A randomly initialised small SAM2 video model, for plumbing tests; marked untrained."""
    import torch  # heavy: imported on first use
    from transformers import (
        Sam2ImageProcessor,
        Sam2VideoConfig,
        Sam2VideoModel,
        Sam2VideoProcessor,
        Sam2VideoVideoProcessor,
    )  # heavy: imported on first use

    s, hid = image_size, 128
    base = tiny_sam2_config(s, hidden=hid)
    config = Sam2VideoConfig(
        vision_config=base.vision_config, prompt_encoder_config=base.prompt_encoder_config,
        mask_decoder_config=base.mask_decoder_config, image_size=s,
        memory_attention_hidden_size=hid, memory_attention_num_layers=1,
        memory_attention_feed_forward_hidden_size=64,
        memory_attention_rope_feat_sizes=[s // 16, s // 16], memory_encoder_hidden_size=hid,
        mask_downsampler_embed_dim=hid, memory_fuser_embed_dim=hid,
        memory_fuser_intermediate_dim=64)
    torch.manual_seed(seed)
    processor = Sam2VideoProcessor(
        image_processor=Sam2ImageProcessor(size={"height": s, "width": s}),
        video_processor=Sam2VideoVideoProcessor(size={"height": s, "width": s}))
    return VideoModel(f"tiny-sam2-video-{seed}", Sam2VideoModel(config).eval(), processor,
                      untrained=True)
