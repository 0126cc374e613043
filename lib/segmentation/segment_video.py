"""Video object tracking with SAM 2.1 / EdgeTAM video models (transformers).

Prompt objects on any frame (points, boxes), propagate through the clip (forward from the
first prompted frame, then backward to the start), add objects mid-video and propagate again.
Memory stays bounded: the clip's RGB frames are kept once as uint8 (checked against a byte
limit up front), the model-resolution tensors are made on demand with a small LRU, the
tracking state lives on the CPU, masks are stored as COCO RLE, and the model runs in half
precision on a GPU.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from lib.core import settings
from lib.core.progress import Progress
from lib.media import masks as mask_ops
from lib.media import video as video_io
from lib.models import cache, registry
from lib.models.build import builder
from lib.models.spec import HubModel, Source, Task
from lib.segmentation.prompts import check_prompts, processor_inputs
from lib.segmentation.segment import load_pretrained, tiny_sam2_config


def check_limits(info: video_io.VideoInfo, max_frames: int | None = None,
                 max_bytes: int | None = None) -> None:
    """Raise `VideoError` for clips whose frames would not fit the tracker's memory budget."""
    max_frames = max_frames or settings.get().sam_max_frames
    max_bytes = max_bytes or settings.get().sam_max_frame_bytes
    if info.frame_count > max_frames:
        raise video_io.VideoError(f"'{info.path.name}' has {info.frame_count} frames; tracking "
                                  f"takes at most {max_frames} (trim the clip or lower its "
                                  "frame rate).")
    need = info.frame_count * info.width * info.height * 3
    if need > max_bytes:
        raise video_io.VideoError(f"'{info.path.name}' needs {need / 2**20:.0f} MB of decoded "
                                  f"frames, over the {max_bytes / 2**20:.0f} MB limit: "
                                  "downscale it (e.g. to 480p) or trim it.")


class _LazyFrames(dict):
    """What the transformers session reads as `processed_frames`: frame index -> model-input
    tensor, made from the stored uint8 frame on first use and kept in a small LRU."""

    def __init__(self, frames: Sequence[np.ndarray], video_processor, dtype, keep: int = 4):
        super().__init__()
        self._frames, self._proc, self._dtype, self._keep = frames, video_processor, dtype, keep
        self._lru: OrderedDict[int, Any] = OrderedDict()
        self.made = 0

    def __len__(self) -> int:
        return len(self._frames)

    def __contains__(self, idx) -> bool:
        return 0 <= int(idx) < len(self._frames)

    def __getitem__(self, idx: int):
        idx = int(idx)
        if idx in self._lru:
            self._lru.move_to_end(idx)
            return self._lru[idx]
        out = self._proc(videos=[self._frames[idx][None]], return_tensors="pt")
        tensor = out.pixel_values_videos[0][0].to(self._dtype)
        self._lru[idx] = tensor
        self.made += 1
        while len(self._lru) > self._keep:
            self._lru.popitem(last=False)
        return tensor


@dataclass
class TrackedObject:
    obj_id: int
    label: str = ""
    # frame -> (points, box)
    prompts: dict[int, tuple[list, tuple | None]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.label or f"object {self.obj_id}"


class Tracker:
    """One clip, one video model: prompts, propagation, masks per frame (RLE), exports."""

    def __init__(self, name: str, model, processor, info: video_io.VideoInfo,
                 frames: Sequence[np.ndarray], device: str = "cpu", untrained: bool = False):
        self.name, self.model, self.processor, self.info = name, model, processor, info
        self.frames = frames
        self.device, self.untrained = device, untrained
        self.objects: dict[int, TrackedObject] = {}
        self.masks: dict[int, dict[int, dict]] = {}      # frame -> obj id -> RLE
        self.propagated = False
        self._session = None

    # -- session ---------------------------------------------------------------------------
    @property
    def session(self):
        if self._session is None:
            import torch  # heavy: imported on first use
            from transformers.models.sam2_video.modeling_sam2_video import (
                Sam2VideoInferenceSession,
            )  # heavy: imported on first use
            dtype = torch.float16 if self.device == "cuda" else torch.float32
            session = Sam2VideoInferenceSession(
                video=None, video_height=self.info.height, video_width=self.info.width,
                inference_device=self.device, inference_state_device="cpu",
                video_storage_device="cpu", dtype=dtype)
            session.processed_frames = _LazyFrames(self.frames, self.processor.video_processor,
                                                   dtype)
            self._session = session
        return self._session

    @property
    def num_frames(self) -> int:
        return len(self.frames)

    def _to_masks(self, pred_masks) -> np.ndarray:
        full = self.processor.post_process_masks(
            [pred_masks.float().cpu()], [[self.info.height, self.info.width]], binarize=False)[0]
        return (full[:, 0] > 0).numpy()

    def _store(self, frame_idx: int, obj_ids: list[int], masks: np.ndarray) -> None:
        self.masks.setdefault(frame_idx, {}).update(
            {int(o): mask_ops.to_rle(m) for o, m in zip(obj_ids, masks)})

    # -- prompts ---------------------------------------------------------------------------
    def check_prompt(self, frame_idx: int, points: Sequence, box) -> None:
        """`VideoError` for a frame outside the clip, `PromptError` for bad prompts."""
        if not 0 <= frame_idx < self.num_frames:
            raise video_io.VideoError(f"Frame {frame_idx} is outside the clip "
                                      f"(0-{self.num_frames - 1}).")
        check_prompts(points, box, self.info.width, self.info.height)

    def add_prompt(self, frame_idx: int, obj_id: int, points: Sequence = (), box=None,
                   label: str = "") -> np.ndarray:
        """Prompt one object on one frame; returns its mask on that frame."""
        import torch  # heavy: imported on first use

        self.check_prompt(frame_idx, points, box)
        obj = self.objects.setdefault(obj_id, TrackedObject(obj_id, label))
        obj.label = label or obj.label
        obj.prompts[frame_idx] = (list(points), box)
        kwargs = processor_inputs(points, box)
        self.processor.add_inputs_to_inference_session(
            inference_session=self.session, frame_idx=frame_idx, obj_ids=obj_id,
            original_size=(self.info.height, self.info.width), **kwargs)
        with torch.inference_mode():
            out = self.model(inference_session=self.session, frame_idx=frame_idx)
        masks = self._to_masks(out.pred_masks)
        self._store(frame_idx, list(out.object_ids), masks)
        self.propagated = False
        return masks[list(out.object_ids).index(obj_id)]

    # -- propagation -----------------------------------------------------------------------
    def propagate(self, progress: Callable[[Progress], None] | None = None) -> int:
        """Track every prompted object through the clip; returns the frames processed."""
        import torch  # heavy: imported on first use
        if not self.objects:
            raise video_io.VideoError("Prompt at least one object before propagating.")
        start = min(f for o in self.objects.values() for f in o.prompts)
        total = (self.num_frames - start) + start   # forward pass + backward pass
        t0, done = time.perf_counter(), 0
        passes = [(start, False)] + ([(start, True)] if start > 0 else [])
        with torch.inference_mode():
            for begin, reverse in passes:
                for out in self.model.propagate_in_video_iterator(
                        self.session, start_frame_idx=begin, reverse=reverse):
                    if reverse and out.frame_idx == begin:
                        continue  # already done by the forward pass
                    self._store(out.frame_idx, list(out.object_ids), self._to_masks(out.pred_masks))
                    done += 1
                    if progress:
                        progress(Progress(done, total, time.perf_counter() - t0))
        self.propagated = True
        return done

    # -- reading results -------------------------------------------------------------------
    def mask(self, frame_idx: int, obj_id: int) -> np.ndarray | None:
        rle = self.masks.get(frame_idx, {}).get(obj_id)
        return None if rle is None else mask_ops.from_rle(rle)

    def frame_masks(self, frame_idx: int, obj_ids: Sequence[int] | None = None
                    ) -> list[tuple[int, np.ndarray]]:
        ids = self.objects if obj_ids is None else obj_ids
        out = []
        for o in ids:
            m = self.mask(frame_idx, o)
            if m is not None:
                out.append((o, m))
        return out

    def render_frame(self, frame_idx: int, opacity: float = 0.5, effect: str | None = None,
                     obj_ids: Sequence[int] | None = None, strength: int = 25) -> np.ndarray:
        frame = self.frames[frame_idx]
        layers = self.frame_masks(frame_idx, obj_ids)
        if effect:
            out = mask_ops.apply_effect(frame, [m for _, m in layers], effect, strength)
            return out[..., :3] if out.shape[2] == 4 else out
        return mask_ops.overlay(frame, [(m, mask_ops.color_for(o)) for o, m in layers], opacity)

    def export_mp4(self, path: Path, effect: str | None = None,
                   obj_ids: Sequence[int] | None = None, strength: int = 25,
                   opacity: float = 0.5,
                   progress: Callable[[Progress], None] | None = None) -> Path:
        """Write the clip with masks drawn (or the effect applied) as H.264 MP4."""

        import av  # heavy: imported on first use
        t0 = time.perf_counter()
        w, h = self.info.width - self.info.width % 2, self.info.height - self.info.height % 2
        with av.open(str(path), "w") as out:
            stream = out.add_stream("libx264", rate=Fraction(self.info.fps).limit_denominator(1000))
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            for i in range(self.num_frames):
                rgb = self.render_frame(i, opacity, effect, obj_ids, strength)[:h, :w]
                for packet in stream.encode(av.VideoFrame.from_ndarray(
                        np.ascontiguousarray(rgb), format="rgb24")):
                    out.mux(packet)
                if progress:
                    progress(Progress(i + 1, self.num_frames, time.perf_counter() - t0))
            for packet in stream.encode():
                out.mux(packet)
        return path

    def export_png_zip(self) -> bytes:
        return mask_ops.png_zip([(f"frame{f:05d}_obj{o}.png", mask_ops.from_rle(rle))
                          for f in sorted(self.masks) for o, rle in sorted(self.masks[f].items())])

    def export_coco(self) -> str:
        frames = []
        for f in range(self.num_frames):
            items = sorted(self.masks.get(f, {}).items())
            frames.append((f"frame{f:05d}.png", self.info.width, self.info.height,
                           [mask_ops.from_rle(r) for _, r in items], [o for o, _ in items]))
        return mask_ops.coco_json(frames, {o: obj.name for o, obj in self.objects.items()})


class ClipFrames(list):
    """A clip's decoded frames; counted in the process memory budget while alive."""


def load_frames(info: video_io.VideoInfo) -> ClipFrames:
    """Every frame as uint8 RGB, the limits checked on what is decoded, frame by frame, and
    the clip counted in the memory budget (`lib.models.cache`) for as long as it is kept."""
    check_limits(info)
    cache.STORE.make_room(f"video:{info.path.name}",
                           info.frame_count * info.width * info.height * 3)
    s = settings.get()
    frames, used = ClipFrames(), 0
    for f in video_io.iter_frames(info):
        used += f.rgb.nbytes
        if len(frames) >= s.sam_max_frames or used > s.sam_max_frame_bytes:
            raise video_io.VideoError(f"'{info.path.name}' decodes to more than {s.sam_max_frames} "
                               f"frames or {s.sam_max_frame_bytes / 2**20:.0f} MB.",
                               "Trim or downscale it (e.g. to 480p).")
        frames.append(f.rgb)
    cache.STORE.track(f"video frames: {info.path.name}", frames, used)
    return frames


def _video_model_class(arch: str):
    import transformers  # heavy: imported on first use
    return (transformers.EdgeTamVideoModel if "edgetam" in arch.lower()
            else transformers.Sam2VideoModel)


@dataclass
class VideoModel(HubModel):
    """A SAM 2 / EdgeTAM video model: makes a `Tracker` per clip."""

    def tracker(self, info: video_io.VideoInfo, frames: Sequence[np.ndarray]) -> Tracker:
        return Tracker(self.name, self.model, self.processor, info, frames, self.device,
                       self.untrained)


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
