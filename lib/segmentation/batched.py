"""One tracking step for all of a session's objects at once.

transformers' SAM 2 and EdgeTAM video models compute a frame's image features once, then run
memory attention, the mask decoder and (EdgeTAM) the memory encoder once per object, batch
size one. With twenty objects that is twenty small passes a frame. `track_frame` runs the
objects that read the same memory frames (those prompted on the same frames: the usual case,
e.g. every object a text prompt found) as one batch: their memories are concatenated on the
batch axis behind a stand-in object, the model's own `_run_single_frame_inference` runs once
with `batch_size` = the number of objects, and the result is split back into each object's
outputs, stored exactly where the model's own `forward` stores them. Objects with different
memory frames run as separate batches; a frame with new prompts goes through `forward`.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Mapping

_STAND_IN = -1      # the object index the batch runs under while it runs
_MENDING = threading.Lock()     # one thread mends a shared model, once


def _memory_axis(model) -> int:
    """The batch axis of stored memories: SAM 2 keeps them (HW, B, C), EdgeTAM (B, N, C)."""
    return 0 if "EdgeTam" in type(model).__name__ else 1


class _Stacked(Mapping):
    """Several objects' outputs for one frame, read as one batched output (concatenated on
    the batch axis when a key is read)."""

    def __init__(self, outputs: list[dict], memory_axis: int):
        self._outputs, self._axis = outputs, memory_axis

    def __getitem__(self, key):
        import torch  # heavy: imported on first use
        values = [o[key] for o in self._outputs]
        if values[0] is None:
            return None
        return torch.cat(values, dim=self._axis if key.startswith("maskmem") else 0)

    def __iter__(self):
        return iter(self._outputs[0])

    def __len__(self) -> int:
        return len(self._outputs[0])


def _split(out: dict, n: int, memory_axis: int) -> list[dict]:
    parts = [{} for _ in range(n)]
    for key, value in out.items():
        axis = memory_axis if key.startswith("maskmem") else 0
        for i in range(n):
            parts[i][key] = None if value is None else value.narrow(axis, i, 1)
    return parts


def _make_batchable(model) -> None:
    """Make the places where the library assumes batch size one work with more, leaving
    batch size one unchanged (installed once per model, by one thread):

    - `_prepare_vision_features` expands a list of features as if it were a tensor; here
      each (HW, 1, C) feature is expanded on its batch axis (computed once per frame still);
    - memory attention returns (1, B, HW, C), which the caller squeezes on axis 1 as if it
      were (B, 1, HW, C); a forward hook hands it over in that order;
    - `_single_frame_forward` picks each object's best of its multimask outputs with index
      arrays that broadcast to (B, B) instead of (B, 1): object b's masks and pointer are
      entry (b, b), taken back out;
    - EdgeTAM's spatial perceiver views an expanded tensor (an error past batch one): its 2-D
      half runs one object at a time."""
    with _MENDING:
        if not getattr(model, "_lens_batchable", False):
            _mend(model)


def _mend(model) -> None:
    """The mending `_make_batchable` describes."""
    single = model._prepare_vision_features

    def prepare(inference_session, frame_idx: int, batch_size: int):
        feats, pos = single(inference_session, frame_idx, 1)
        if batch_size > 1:
            feats = [f.expand(-1, batch_size, -1) for f in feats]
            pos = [p.expand(-1, batch_size, -1) for p in pos]
        return feats, pos
    model._prepare_vision_features = prepare
    head = model._single_frame_forward

    def single_frame_forward(*args, **kwargs):
        out = head(*args, **kwargs)
        n = out.pred_masks.shape[0]
        if n > 1 and out.pred_masks.shape[1] == n:
            import torch  # heavy: imported on first use
            diagonal = torch.arange(n)
            for key in ("pred_masks", "high_res_masks", "object_pointer"):
                out[key] = out[key][diagonal, diagonal].unsqueeze(1)
        return out
    model._single_frame_forward = single_frame_forward
    perceiver = getattr(model, "spatial_perceiver", None)
    if perceiver is not None:
        one = perceiver._forward_2d

        def forward_2d(hidden_states):
            if hidden_states.shape[0] == 1:
                return one(hidden_states)
            import torch  # heavy: imported on first use
            parts = [one(hidden_states[i:i + 1]) for i in range(hidden_states.shape[0])]
            return tuple(None if p[0] is None else torch.cat(list(p)) for p in zip(*parts))
        perceiver._forward_2d = forward_2d
    model.memory_attention.register_forward_hook(
        lambda module, args, out: out.transpose(0, 1) if out.dim() == 4 else out)
    model._lens_batchable = True


def _run_batch(model, session, frame_idx: int, objs: list[int], reverse: bool) -> list[dict]:
    _make_batchable(model)
    axis = _memory_axis(model)
    outputs = session.output_dict_per_obj
    stand_in = {kind: {f: _Stacked([outputs[o][kind][f] for o in objs], axis)
                       for f in outputs[objs[0]][kind]}
                for kind in ("cond_frame_outputs", "non_cond_frame_outputs")}
    kwargs = {}
    if "run_mem_encoder" in inspect.signature(model._run_single_frame_inference).parameters:
        kwargs["run_mem_encoder"] = True                     # EdgeTAM encodes memory here
    outputs[_STAND_IN] = stand_in
    try:
        out = model._run_single_frame_inference(
            inference_session=session, frame_idx=frame_idx, obj_idx=_STAND_IN,
            batch_size=len(objs), is_init_cond_frame=False, point_inputs=None,
            mask_inputs=None, reverse=reverse, **kwargs)
    finally:
        del outputs[_STAND_IN]
    if "maskmem_features" not in out and model.num_maskmem > 0:   # SAM 2: encoded after
        feats, _ = model._prepare_vision_features(session, frame_idx, batch_size=1)
        out["maskmem_features"], out["maskmem_pos_enc"] = model._encode_new_memory(
            current_vision_feats=feats[-1].expand(-1, len(objs), -1),
            pred_masks_high_res=out["high_res_masks"],
            object_score_logits=out["object_score_logits"], is_mask_from_pts=False)
    return _split(out, len(objs), axis)


def track_frame(model, session, frame_idx: int, reverse: bool = False):
    """`model(inference_session=session, frame_idx=frame_idx, reverse=reverse)`, with the
    objects that share their memory frames run as one batch. Returns (object ids, pred_masks)
    like the model's output."""
    import torch  # heavy: imported on first use
    if session.obj_with_new_inputs:
        out = model(inference_session=session, frame_idx=frame_idx, reverse=reverse)
        return list(out.object_ids), out.pred_masks
    preds: list = [None] * session.get_obj_num()
    batches: dict[tuple, list[int]] = {}
    for obj_idx in range(len(preds)):
        outputs = session.output_dict_per_obj[obj_idx]
        if frame_idx in outputs["cond_frame_outputs"]:         # a prompted frame: kept as is
            preds[obj_idx] = session.get_output(obj_idx, frame_idx, "pred_masks", True)
            continue
        key = (tuple(sorted(outputs["cond_frame_outputs"])),
               tuple(sorted(outputs["non_cond_frame_outputs"])))
        batches.setdefault(key, []).append(obj_idx)
    for objs in batches.values():
        for obj_idx, out in zip(objs, _run_batch(model, session, frame_idx, objs, reverse)):
            session.store_output(obj_idx, frame_idx, output_value=out,
                                 is_conditioning_frame=False)
            session.frames_tracked_per_obj[obj_idx][frame_idx] = {"reverse": reverse}
            preds[obj_idx] = out["pred_masks"]
    return list(session.obj_ids), torch.cat(preds, dim=0)
