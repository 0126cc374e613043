"""A tracking session's memory, bounded: what transformers' SAM 2 / EdgeTAM video session
would otherwise keep for every frame of the clip.

- `LazyFrames`: the session's `processed_frames`, made on demand from streamed frames;
- `PerObject` / `TrackedFrames`: the frames each object was tracked on, as a bitmap;
- `prune_memory`: per-frame outputs dropped once memory attention will not read them;
- `session_nbytes`: what a session holds, for the process memory budget.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

from lib.models import cache


class LazyFrames(dict):
    """What the transformers session reads as `processed_frames`: tracked-frame index ->
    model-input tensor, made from the streamed frame on first use and kept in a small LRU."""

    def __init__(self, frames: Sequence[np.ndarray], every: int, video_processor, dtype,
                 keep: int = 4):
        super().__init__()
        self._frames, self._every = frames, every
        self._proc, self._dtype, self._keep = video_processor, dtype, keep
        self._lru: OrderedDict[int, Any] = OrderedDict()
        self.made = 0

    def __len__(self) -> int:
        return -(-len(self._frames) // self._every)

    def __contains__(self, idx) -> bool:
        return 0 <= int(idx) < len(self)

    def __getitem__(self, idx: int):
        idx = int(idx)
        if idx in self._lru:
            self._lru.move_to_end(idx)
            return self._lru[idx]
        out = self._proc(videos=[self._frames[idx * self._every][None]], return_tensors="pt")
        tensor = out.pixel_values_videos[0][0].to(self._dtype)
        self._lru[idx] = tensor
        self.made += 1
        while len(self._lru) > self._keep:
            self._lru.popitem(last=False)
        return tensor


class TrackedFrames(dict):
    """A session's record of the frames an object was tracked on, as a bitmap: transformers
    keeps a small dict per frame there, which grows with the clip."""

    def __init__(self):
        super().__init__()
        self._bits, self._reverse = bytearray(), bytearray()

    def __setitem__(self, idx: int, value: dict) -> None:
        idx = int(idx)
        need = idx // 8 + 1
        if len(self._bits) < need:
            self._bits.extend(bytes(need - len(self._bits)))
            self._reverse.extend(bytes(need - len(self._reverse)))
        self._bits[idx // 8] |= 1 << idx % 8
        if value.get("reverse"):
            self._reverse[idx // 8] |= 1 << idx % 8

    def __contains__(self, idx) -> bool:
        idx = int(idx)
        return 0 <= idx < 8 * len(self._bits) and bool(self._bits[idx // 8] >> idx % 8 & 1)

    def __getitem__(self, idx: int) -> dict:
        if idx not in self:
            raise KeyError(idx)
        return {"reverse": bool(self._reverse[idx // 8] >> idx % 8 & 1)}

    def __len__(self) -> int:
        return sum(bin(b).count("1") for b in self._bits)


class PerObject(dict):
    """`frames_tracked_per_obj`: each object's entry made a `TrackedFrames`."""

    def __setitem__(self, key, value) -> None:
        super().__setitem__(key, TrackedFrames() if value == {} else value)


def memory_window(config) -> int:
    """How many frames back (or ahead, tracking backwards) memory attention reads."""
    return max(int(getattr(config, "num_maskmem", 7)) - 1,
               int(getattr(config, "max_object_pointers_in_encoder", 16)) - 1, 1)


def prune_memory(session, frame_idx: int, reverse: bool, window: int, start: int) -> int:
    """Drop the per-frame outputs memory attention will not read again; returns how many.

    Kept: conditioning (prompted) frames, the `window` frames behind `frame_idx` in the
    direction of travel, and frames `start` to `start + window`: propagation began at
    `start`, and the backward pass, which starts there, reads what the forward pass left
    on them (an object prompted on a later frame has no prompt there)."""
    dropped = 0
    for outputs in session.output_dict_per_obj.values():
        recent = outputs["non_cond_frame_outputs"]
        for k in list(recent):
            behind = k > frame_idx + window if reverse else k < frame_idx - window
            if behind and not start <= k <= start + window:
                del recent[k]
                dropped += 1
    return dropped


def session_nbytes(session) -> int:
    """Bytes of tensors a tracking session holds: per-frame outputs, cached image features,
    inputs and the model-size frames it keeps."""
    frames = session.processed_frames
    return (cache.tensor_nbytes(session.output_dict_per_obj)
            + cache.tensor_nbytes(getattr(session.cache, "_vision_features", {}))
            + cache.tensor_nbytes(session.point_inputs_per_obj)
            + cache.tensor_nbytes(session.mask_inputs_per_obj)
            + cache.tensor_nbytes(list(getattr(frames, "_lru", {}).values())))
