"""The segmentation page's video view: a clip, prompts on any frame, tracking through the clip,
effects rendered to MP4 and the masks exported."""

import hashlib
from pathlib import Path

import streamlit as st

from lib import ui
from lib.core import scratch, settings
from lib.core.errors import LensError
from lib.demo import synth
from lib.media import images
from lib.media import masks as mask_ops
from lib.media import video as video_io
from lib.segmentation import classical, grounding, prompts, segment, segment_video
from pages import segmentation_common as common
from pages.segmentation_common import DISPLAY_WIDTH


@st.cache_resource(max_entries=4, show_spinner=False)
def _video_info(digest: str, _data: bytes, name: str):
    """Probe the upload and check the tracker's limits (cheap; no frames decoded)."""
    info = video_io.open_video(scratch.store_bytes(_data, Path(name).suffix))
    segment_video.check_limits(info)
    return info


@st.cache_resource(max_entries=2, show_spinner=False)
def _video_frames(digest: str, _info):
    return segment_video.load_frames(_info)


def video_mode() -> None:
    upload = st.file_uploader("Video (MP4, MOV, WebM, AVI)", type=video_io.ACCEPTED_EXTENSIONS,
                              key="seg_video")
    name = common.model_picker("seg_video_model", video=True)
    if upload is None:
        st.caption(f"Up to {settings.get().sam_max_frames} frames; frames are decoded once and "
                   "the model reads them on demand.")
        if not st.toggle("Use the sample clip (synthetic moving shapes)", key="seg_video_sample"):
            return
        with ui.spinner("Generating the sample clip (once)…"):
            sample = synth.sample_clip()
        upload_name, data = sample.name, sample.read_bytes()
        synthetic = True
    else:
        synthetic = False
        upload_name, data = upload.name, upload.getvalue()
    digest = hashlib.sha1(data).hexdigest()[:16]
    try:
        info = _video_info(digest, data, upload_name)
    except LensError as exc:
        ui.show_error(exc)
        return
    if name == segment.GRABCUT:     # no SAM 2 here: classical tracking, said plainly
        vm = classical.ClassicalVideoModel()
        name = vm.name
        st.caption(f"Tracking with {classical.CLASSICAL}: drag a box to start an object.")
    else:
        try:
            with ui.spinner(f"Loading {name}…"):
                vm = segment_video.load_video_model(name)
        except LensError as exc:
            ui.show_error(exc)
            return
    ui.untrained_warning(vm)
    common.off_distribution(name, synthetic)
    try:
        with ui.spinner("Decoding the clip…"):
            frames = _video_frames(digest, info)
    except LensError as exc:   # limits are checked again on what is actually decoded
        ui.show_error(exc)
        return
    state = st.session_state.setdefault("seg_video_state", {})
    if state.get("key") != (digest, name):
        state.clear()
        state.update(key=(digest, name), tracker=vm.tracker(info, frames), active=1)
        st.session_state.pop("seg_render_mp4", None)   # a render of the previous clip
    tracker: segment_video.Tracker = state["tracker"]
    st.caption(f"{info.width}×{info.height}, {len(frames)} frames at {info.fps:.1f} fps")
    frame_idx = st.slider("Frame", 0, len(frames) - 1, 0, key="seg_frame")
    c1, c2, c3 = st.columns([2, 1, 1])
    ids = sorted(set(tracker.objects) | {state["active"]})
    state["active"] = c1.selectbox("Object", ids, index=ids.index(state["active"]),
                                   key=f"seg_vobj_{len(ids)}")
    if c2.button("New object", key="seg_vnew"):
        state["active"] = max(ids) + 1
        st.rerun()
    negative = c3.toggle("Negative", key="seg_vneg")
    shown = tracker.render_frame(frame_idx)
    disp = images.fit_width(shown, DISPLAY_WIDTH)
    value = ui.clickable_image(disp, key=f"seg_vclick_{digest}_{frame_idx}")
    event = common.click(value, info.width, state)
    if event:
        kind, d = event
        obj = tracker.objects.get(state["active"])
        points, box = (obj.prompts.get(frame_idx, ([], None)) if obj else ([], None))
        points = list(points)
        if kind == "point":
            points.append((d[0], d[1], 0 if negative else 1))
        else:
            box = prompts.clip_box(d, info.width, info.height)
        try:
            tracker.add_prompt(frame_idx, state["active"], points, box)
        except (segment.PromptError, video_io.VideoError) as exc:
            st.warning(f"{exc} Prompts kept.")
        else:
            st.rerun()
    with st.expander("Text prompt on this frame (Florence-2 grounding)"):
        _video_text_prompt(tracker, frame_idx, state)
    if tracker.objects:
        st.dataframe([{"object": o.name, "prompted frames": ", ".join(map(str, sorted(o.prompts)))}
                      for o in tracker.objects.values()], hide_index=True)
        if st.button("Propagate through the clip", type="primary", key="seg_propagate"):
            with ui.queued("Tracking"):
                tracker.propagate(ui.ProgressBar("frames tracked"))
            st.rerun()
    if tracker.propagated:
        st.success(f"Tracked {len(tracker.objects)} object(s) through {len(frames)} frames; "
                   "scrub the frame slider to check.")
        _video_exports(tracker, upload_name)


def _video_text_prompt(tracker, frame_idx: int, state) -> None:
    choices = grounding.grounder_choices()
    col1, col2 = st.columns([3, 2])
    phrase = col1.text_input("Find", placeholder="person, logo…", key="seg_vphrase")
    gname = col2.selectbox("Grounding model", [n for n, _ in choices], key="seg_vgrounder")
    if not st.button("Find and track", key="seg_vfind"):
        return
    if not phrase.strip():
        st.warning("Type what to find first, e.g. 'person' or 'logo'.")
        return
    try:
        with ui.spinner(f"Grounding '{phrase}' on frame {frame_idx}…"), ui.queued("Grounding"):
            boxes = grounding.load_grounder(gname).boxes(tracker.frames[frame_idx], phrase)
    except LensError as exc:
        ui.show_error(exc)
        return
    if not boxes:
        st.info(f"Nothing on frame {frame_idx} matched '{phrase}'. Try another phrase or frame.")
        return
    next_id = max([*tracker.objects, state["active"]]) + 1
    for k, region in enumerate(boxes):
        tracker.add_prompt(frame_idx, next_id + k, [], region.box, label=region.label)
    st.rerun()


def _video_exports(tracker, name: str) -> None:
    st.subheader("Effects and export")
    c1, c2, c3 = st.columns([2, 2, 1])
    ids = list(tracker.objects)
    picked = c1.multiselect("Objects", ids, default=ids, key="seg_vpick",
                            format_func=lambda i: tracker.objects[i].name)
    effects = [e for e in mask_ops.EFFECTS if e != "cutout"]
    effect = c2.selectbox("Effect", ["outline overlay", *effects],
                          key="seg_veffect")
    strength = c3.slider("Strength", 3, 99, 31, 2, key="seg_vstrength")
    stem = Path(name).stem
    if st.button("Render MP4", key="seg_render"):
        bar = ui.ProgressBar("frames rendered")
        out = scratch.new_file(".mp4", prefix="render-")
        with ui.queued("Rendering"):
            tracker.export_mp4(out, None if effect == "outline overlay" else effect, picked,
                               strength, progress=bar)
        bar.clear()
        st.session_state["seg_render_mp4"] = out.read_bytes()
        out.unlink(missing_ok=True)
    if st.session_state.get("seg_render_mp4"):
        st.video(st.session_state["seg_render_mp4"])
        ui.download_button("Download MP4", st.session_state["seg_render_mp4"], f"{stem}-lens.mp4",
                           "video/mp4", key="seg_download_mp4")
    c1, c2 = st.columns(2)
    # Exports are built when clicked, not on every rerun (a clip holds hundreds of masks).
    ui.download_button("Masks: zip of PNGs", tracker.export_png_zip, f"{stem}-masks.zip",
                       "application/zip", key="seg_masks_zip_of_pngs", where=c1)
    ui.download_button("Masks: COCO JSON (RLE)", tracker.export_coco, f"{stem}-masks.json",
                       "application/json", key="seg_masks_coco_json_rle", where=c2)
