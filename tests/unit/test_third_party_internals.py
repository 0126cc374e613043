"""Every private third-party internal Lens relies on (Streamlit's and transformers'), checked
by name: an upgrade that moves one fails here, loudly, saying what to re-check, instead of
Lens silently doing nothing (the reaping and the router guard catch AttributeError on
purpose) or tracking wrongly (the batched video step mends transformers' per-frame code on a
shared cached model). Both are pinned in requirements.txt to the versions these were checked
on."""

import inspect

import pytest
import streamlit as st
import transformers
from streamlit import config
from streamlit.runtime import Runtime
from streamlit.runtime.app_session import AppSession
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.runtime.pages_manager import PagesManager
from streamlit.runtime.scriptrunner import get_script_run_ctx

# (what Lens uses, where, what breaks without it): every row is a promise to re-check
INTERNALS = [
    (lambda: hasattr(PagesManager, "uses_pages_directory"),
     "PagesManager.uses_pages_directory", "lib/ui.py page_setup: the router guard"),
    (lambda: "suppress_warning" in inspect.signature(get_script_run_ctx).parameters,
     "get_script_run_ctx(suppress_warning=)", "lib/ui.py session_id on the memory watch"),
    (lambda: all(hasattr(Runtime, a) for a in ("is_active_session", "_get_async_objs")),
     "Runtime.is_active_session, Runtime._get_async_objs", "lib/ui.py _settle_memory"),
    (lambda: "_session_mgr" in inspect.getsource(Runtime.__init__),
     "Runtime._session_mgr", "lib/ui.py _reap_sessions"),
    (lambda: hasattr(MediaFileManager, "remove_orphaned_files"),
     "MediaFileManager.remove_orphaned_files", "lib/ui.py: media of dropped sessions"),
    (lambda: all(hasattr(AppSession, a) for a in ("handle_backmsg", "_enqueue_forward_msg")),
     "AppSession.handle_backmsg, _enqueue_forward_msg", "tests/e2e/door.py (load bench)"),
    (lambda: "bind" in inspect.signature(st.tabs).parameters,
     "st.tabs(bind=)", "lib/ui.py tabs: the open tab in the URL"),
    (lambda: "on_click" in inspect.signature(st.download_button).parameters,
     "st.download_button(on_click=)", "lib/ui.py download_button: downloads never rerun"),
]


@pytest.mark.parametrize("check,what,where", INTERNALS, ids=[w for _, w, _ in INTERNALS])
def test_a_streamlit_internal_lens_relies_on_is_there(check, what, where):
    assert check(), (f"Streamlit {st.__version__} no longer has {what}; re-check {where} "
                     "before widening the streamlit pin in requirements.txt.")


@pytest.mark.parametrize("option", ["global.appTest", "runner.postScriptGC",
                                    "server.disconnectedSessionTTL"])
def test_a_streamlit_option_lens_reads_or_sets_exists(option):
    config.get_option(option)      # raises for an option this Streamlit does not have


def test_the_session_store_lens_reaps_is_where_it_was():
    """lib/ui.py _reap_sessions reaches runtime._session_mgr._session_storage._cache.expire():
    the storage class Streamlit uses must still keep a TTL cache there."""
    from streamlit.runtime.memory_session_storage import MemorySessionStorage
    source = inspect.getsource(MemorySessionStorage)
    assert "self._cache" in source and "TTLCache" in source, \
        "MemorySessionStorage no longer keeps a TTLCache in _cache: re-check lib/ui.py"


def _params(function) -> list[str]:
    return list(inspect.signature(function).parameters)


def _transformers_internals():
    from transformers.models.edgetam_video import modeling_edgetam_video as edgetam
    from transformers.models.sam2_video import modeling_sam2_video as sam2
    rows = []
    for model, session, cache in (
            (sam2.Sam2VideoModel, sam2.Sam2VideoInferenceSession, sam2.Sam2VideoInferenceCache),
            (edgetam.EdgeTamVideoModel, edgetam.EdgeTamVideoInferenceSession,
             edgetam.EdgeTamVideoInferenceCache)):
        name = model.__name__
        rows += [
            (lambda m=model: _params(m._prepare_vision_features)[1:]
             == ["inference_session", "frame_idx", "batch_size"],
             f"{name}._prepare_vision_features(inference_session, frame_idx, batch_size)",
             "lib/segmentation/batched.py _mend: features expanded per object"),
            (lambda m=model: hasattr(m, "_single_frame_forward"),
             f"{name}._single_frame_forward",
             "lib/segmentation/batched.py _mend: each object's best multimask output"),
            (lambda m=model: {"inference_session", "frame_idx", "obj_idx", "batch_size",
                              "is_init_cond_frame", "point_inputs", "mask_inputs", "reverse"}
             <= set(_params(m._run_single_frame_inference)),
             f"{name}._run_single_frame_inference(...)",
             "lib/segmentation/batched.py _run_batch and lib/training/sam_stages.py video_step"),
            (lambda m=model: _params(m._encode_new_memory)[1:]
             == ["current_vision_feats", "pred_masks_high_res", "object_score_logits",
                 "is_mask_from_pts"],
             f"{name}._encode_new_memory(...)", "lib/segmentation/batched.py _run_batch"),
            (lambda s=session: {"inference_state_device", "video_storage_device",
                                "max_vision_features_cache_size"} <= set(_params(s.__init__)),
             f"{session.__name__}(inference_state_device=, video_storage_device=, "
             "max_vision_features_cache_size=)",
             "lib/segmentation/segment_video.py _new_session, lib/training/sam_stages.py"),
            (lambda s=session, c=cache: hasattr(c, "cache_vision_features") and all(
                a in inspect.getsource(s) for a in (
                    "output_dict_per_obj", "obj_with_new_inputs", "point_inputs_per_obj",
                    "frames_tracked_per_obj", "def store_output", "self.cache")),
             f"{session.__name__}.output_dict_per_obj, obj_with_new_inputs, store_output, …",
             "lib/segmentation/batched.py _run_batch (the stand-in object's memory)"),
        ]
    rows.append((lambda: hasattr(edgetam.EdgeTamVideoPerceiverResampler, "_forward_2d"),
                 "EdgeTamVideoPerceiverResampler._forward_2d",
                 "lib/segmentation/batched.py _mend: EdgeTAM's perceiver one object at a time"))
    return rows


TRANSFORMERS_INTERNALS = _transformers_internals()


@pytest.mark.parametrize("check,what,where", TRANSFORMERS_INTERNALS,
                         ids=[w.split("(")[0] for _, w, _ in TRANSFORMERS_INTERNALS])
def test_a_transformers_internal_lens_relies_on_is_there(check, what, where):
    assert check(), (f"transformers {transformers.__version__} no longer has {what}; re-check "
                     f"{where} before widening the transformers pin in requirements.txt.")
