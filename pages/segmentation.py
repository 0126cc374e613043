"""Segmentation viewer: click, box and text prompts on images and video (SAM 2.1 / EdgeTAM),
everything mode, effects and mask export. Logic lives in lib.segmentation.segment,
lib.segmentation.segment_video and
lib.media.masks; this page reads widgets, calls them and renders."""

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from lib import ui
from lib.demo import synth

ui.page_setup()

from lib.core import scratch, settings
from lib.core.errors import LensError
from lib.demo import samples
from lib.media import images
from lib.media import masks as mask_ops
from lib.media import video as video_io
from lib.models import registry
from lib.segmentation import classical, grounding, segment, segment_video

DISPLAY_WIDTH = 720
st.title("Segmentation")


@st.cache_data(max_entries=16, show_spinner=False)
def _decode(data: bytes, name: str):
    return images.load_image(data, name=name)


@st.cache_data(max_entries=8, show_spinner=False)
def _sample(name: str):
    return images.load_image(samples.sample_bytes(name), name=name)


def _click(value, image_width: int, state: dict):
    """A new click (point) or drag (box) from the image widget, in image pixels; else None."""
    if not value or value.get("unix_time") == state.get("last_click"):
        return None
    state["last_click"] = value.get("unix_time")
    s = image_width / (value.get("width") or image_width)   # displayed -> image pixels
    x1, y1 = value.get("x1", value.get("x")), value.get("y1", value.get("y"))
    x2, y2 = value.get("x2", x1), value.get("y2", y1)
    if abs(x2 - x1) < 4 and abs(y2 - y1) < 4:
        return ("point", (x1 * s, y1 * s))
    return ("box", (x1 * s, y1 * s, x2 * s, y2 * s))


def _model_picker(key: str, video: bool = False) -> str:
    choices = segment.model_choices()
    names = [n for n, _ in choices]
    ready = dict(choices)
    synthetic = segment.synthetic_models()
    demo = {n for n, ok in choices if ok and n in synthetic}
    have_sam = any(ok for n, ok in choices if n != segment.GRABCUT and n not in demo)

    def label(n: str) -> str:
        if not ready[n]:
            return f"{n} (weights missing)"
        return f"{n} (trained on synthetic shapes)" if n in demo else n
    name = st.sidebar.selectbox("Segmentation model", names, key=key, format_func=label)
    if not have_sam:
        spec = registry.find(registry.SAM2_IDS[0])
        if video:
            measured = next((m for m in synthetic.values() if "classical_J" in m), None)
            figures = (f" (mean J {measured['classical_J']:.2f} on the "
                       f"{measured['video_clips']:.0f} synthetic validation clips, "
                       f"{measured['classical_J_after_occlusion']:.2f} after an occlusion)"
                       if measured else "")
            text = (f"No SAM 2 weights on this machine (no hub access). By default, "
                    f"**{classical.CLASSICAL}**: objects are followed by dense optical "
                    "flow and refined by GrabCut, frame by frame, from a box you drag. It has "
                    f"no memory: an object hidden behind another is lost{figures}.")
        else:
            text = ("No SAM 2 weights on this machine (no hub access). For photos, the "
                    "**GrabCut** classical fallback segments inside a box you drag; its masks "
                    "are labelled as such, never as SAM 2.")
        for n in sorted(demo):
            text += " " + _demo_sentence(n, synthetic[n], video)
        st.info(text + f" To get SAM 2.1 on a connected machine: `{spec.fetch_command}`.")
    return name


def _demo_sentence(name: str, m: dict, video: bool) -> str:
    """What a synthetic-shapes model is, with the figures its manifest measured."""
    if video:
        figures = (f"mean J {m['video_J']:.2f} on the {m['video_clips']:.0f} synthetic "
                   "validation clips, "
                   f"{m['video_J_after_occlusion']:.2f} after an occlusion"
                   if {"video_J", "video_clips", "video_J_after_occlusion"} <= m.keys()
                   else "no measured figures")
        where = "the sample clip"
    else:
        figures = (f"mean IoU {m['click_iou']:.2f} from one click, {m['box_iou']:.2f} from a "
                   f"box, on {m['images']:.0f} synthetic images"
                   if {"click_iou", "box_iou", "images"} <= m.keys()
                   else "no measured figures")
        where = "the *synthetic shapes* sample"
    return (f"**{name}** is **trained on synthetic shapes** ({figures}): pick it for {where}; "
            "on photos its masks mean nothing.")


def _off_distribution(name: str, synthetic_input: bool) -> None:
    """A plain warning when a synthetic-shapes model is used on anything else."""
    if not synthetic_input and name in segment.synthetic_models():
        st.warning(f"**{name}** was trained on synthetic shapes only: on this input its masks "
                   f"are not meaningful. For photos use **{segment.GRABCUT}**.")


def _load(name: str):
    try:
        with ui.spinner(f"Loading {name}…", not segment.segmenter_loaded(name)):
            return segment.load_segmenter(name)
    except LensError as exc:
        st.error(f"{exc}  \nMeanwhile, pick **{segment.GRABCUT}** in the sidebar: it works offline "
                 "with box prompts.")
        return None


# -- image mode ------------------------------------------------------------------------------

def _objects(state) -> list[segment.SegObject]:
    return state.setdefault("objects", [segment.SegObject(1)])


def _active(state) -> segment.SegObject:
    objs = _objects(state)
    return next((o for o in objs if o.obj_id == state.get("active", 1)), objs[0])


def _run(seg, image, obj: segment.SegObject, multimask: bool) -> None:
    """Segment one object from its prompts; a problem becomes a notice shown after the rerun."""
    if not obj.has_prompts():
        obj.result = None
        return
    try:
        with ui.queued("Segmenting"):
            obj.result = seg.predict(image, obj.points, obj.box, multimask=multimask)
        obj.choice = obj.result.best
    except segment.PromptError as exc:
        _notice(str(exc))


def _notice(message: str) -> None:
    st.session_state.setdefault("seg_state", {})["notice"] = message


def image_mode() -> None:
    src_col, sample_col = st.columns([3, 2])
    upload = src_col.file_uploader("Image", type=images.ACCEPTED_EXTENSIONS, key="seg_upload")
    sample = sample_col.selectbox("…or a sample", [*samples.SAMPLES, samples.SYNTHETIC],
                                  key="seg_sample")
    try:
        intake = _decode(upload.getvalue(), upload.name) if upload else _sample(sample)
    except images.ImageError as exc:
        st.error(str(exc))
        return
    image = np.array(intake.image)   # writable: torch warns on read-only arrays
    digest = segment.image_digest(image)
    state = st.session_state.setdefault("seg_state", {})
    if state.get("digest") != digest:
        state.clear()
        state["digest"] = digest
    name = _model_picker("seg_model")
    seg = _load(name)
    if seg is None:
        return
    ui.untrained_warning(seg)
    _off_distribution(name, upload is None and sample == samples.SYNTHETIC)
    if state.get("notice"):
        st.warning(state.pop("notice"))

    objs = _objects(state)
    c1, c2, c3, c4, c5 = st.columns([2, 1, 1, 1, 1])
    ids = [o.obj_id for o in objs]
    active_id = c1.selectbox("Object", ids, index=ids.index(_active(state).obj_id),
                             format_func=lambda i: next(o.name for o in objs if o.obj_id == i),
                             key=f"seg_active_{len(ids)}")
    state["active"] = active_id
    obj = _active(state)
    if c2.button("New object", key="seg_new_object"):
        new = segment.SegObject(max(ids) + 1)
        objs.append(new)
        state["active"] = new.obj_id
        st.rerun()
    negative = c3.toggle("Negative", help="Clicks add negative (background) points",
                         key="seg_negative")
    multimask = st.sidebar.checkbox("Multimask output", value=True,
                                    help="Three candidate masks with their predicted IoU",
                                    key="seg_multimask_output")
    opacity = st.sidebar.slider("Opacity", 0.0, 1.0, 0.5, 0.05, key="seg_opacity")
    outline = st.sidebar.checkbox("Outline", value=True, key="seg_outline")
    if c4.button("Undo", disabled=not obj.has_prompts(), key="seg_undo"):
        if obj.points:
            obj.points.pop()
        else:
            obj.box = None
        _run(seg, image, obj, multimask)
    if c5.button("Clear", disabled=not obj.has_prompts(), key="seg_clear"):
        obj.points, obj.box, obj.result = [], None, None

    # The canvas: masks of every object, prompts of the active one.
    layers = [(o.mask, o.color) for o in objs if o.mask is not None]
    shown = mask_ops.overlay(image, layers, opacity, outline) if layers else image
    shown = mask_ops.draw_prompts(shown, obj.points, [obj.box] if obj.box else [], obj.color)
    disp = images.fit_width(shown, DISPLAY_WIDTH)
    st.caption(f"Click to add a {'negative' if negative else 'positive'} point to "
               f"**{obj.name}**; drag to draw its box.  Model: **{seg.label}**")
    value = ui.clickable_image(disp, key=f"seg_click_{digest}")
    event = _click(value, image.shape[1], state)
    if event:
        kind, data = event
        h, w = image.shape[:2]
        if kind == "point":
            x, y = data
            if not (0 <= x < w and 0 <= y < h):
                _notice(f"The click ({x:.0f}, {y:.0f}) is outside the image; prompts kept.")
            else:
                obj.points.append((x, y, 0 if negative else 1))
        else:
            box = segment.clip_box(data, w, h)
            if box[2] - box[0] < 2 or box[3] - box[1] < 2:
                _notice("The box has (almost) no area; prompts kept.")
            else:
                obj.box = box
        _run(seg, image, obj, multimask)
        st.rerun()

    _candidates(obj)
    st.dataframe([{"id": o.obj_id, "object": o.name,
                   "points +/-": f"{sum(p[2] == 1 for p in o.points)}/"
                                 f"{sum(p[2] == 0 for p in o.points)}",
                   "box": ", ".join(f"{v:.0f}" for v in o.box) if o.box else "",
                   "mask px": int(o.mask.sum()) if o.mask is not None else 0,
                   "from": o.result.source if o.result else ""} for o in objs],
                 hide_index=True)
    _prompt_editor(seg, image, obj, multimask)
    with st.expander("Text prompt (Florence-2 grounding)"):
        _text_prompt(seg, image, state, multimask)
    with st.expander("Everything mode"):
        _everything(seg, image, state)
    _effects_and_export(image, objs, intake.name)


def _candidates(obj: segment.SegObject) -> None:
    r = obj.result
    if r is None or len(r.masks) < 2:
        if r is not None:
            st.caption(f"{obj.name}: 1 mask from {r.source}"
                       + ("" if np.isnan(r.scores[0]) else f", predicted IoU {r.scores[0]:.3f}"))
        return
    labels = [f"Mask {i + 1}: predicted IoU {s:.3f}, {int(m.sum())} px"
              for i, (m, s) in enumerate(zip(r.masks, r.scores))]
    result_id = hashlib.sha1(r.scores.tobytes()).hexdigest()[:8]   # new candidates: new radio
    obj.choice = st.radio(f"Candidates for {obj.name} ({r.source})", range(len(labels)),
                          index=obj.choice, format_func=lambda i: labels[i], horizontal=True,
                          key=f"seg_choice_{obj.obj_id}_{result_id}")


def _prompt_editor(seg, image, obj: segment.SegObject, multimask: bool) -> None:
    with st.expander(f"Prompts of {obj.name}", expanded=False):
        obj.label = st.text_input("Name", obj.label, key=f"seg_label_{obj.obj_id}")
        df = pd.DataFrame(obj.points, columns=["x", "y", "positive"]).astype(
            {"x": float, "y": float, "positive": bool})
        edited = st.data_editor(df, num_rows="dynamic", key=f"seg_points_{obj.obj_id}_"
                                f"{len(obj.points)}")
        box = st.text_input("Box x0, y0, x1, y1 (empty for none)",
                            ", ".join(f"{v:.0f}" for v in obj.box) if obj.box else "",
                            key=f"seg_box_{obj.obj_id}_{obj.box}")
        if st.button("Apply edits", key=f"seg_apply_{obj.obj_id}"):
            try:
                points = [(float(r.x), float(r.y), int(bool(r.positive)))
                          for r in edited.dropna().itertuples()]
                vals = [float(v) for v in box.replace(" ", "").split(",") if v]
                if vals and len(vals) != 4:
                    raise ValueError("a box needs four numbers")
                new_box = segment.clip_box(vals, *image.shape[1::-1]) if vals else None
                if points or new_box:
                    segment.check_prompts(points, new_box, image.shape[1], image.shape[0])
            except ValueError as exc:   # PromptError is a ValueError
                st.warning(f"Could not use the edits: {exc} The previous prompts are kept.")
                return
            obj.points, obj.box = points, new_box
            _run(seg, image, obj, multimask)
            st.rerun()


def _text_prompt(seg, image, state, multimask: bool) -> None:
    choices = grounding.grounder_choices()
    col1, col2 = st.columns([3, 2])
    phrase = col1.text_input("Find", placeholder="person, logo, dog…", key="seg_phrase")
    gname = col2.selectbox("Grounding model", [n for n, _ in choices], key="seg_grounder",
                           format_func=lambda n: n if dict(choices)[n] else
                           f"{n} (weights missing)")
    if st.button("Find boxes", key="seg_find"):
        if not phrase.strip():
            st.warning("Type what to find first, e.g. 'person' or 'logo'.")
            return
        try:
            with st.spinner(f"Grounding '{phrase}' with {gname}…"), ui.queued("Grounding"):
                state["found"] = (phrase, grounding.load_grounder(gname).boxes(image, phrase))
        except LensError as exc:
            st.error(str(exc))
            return
    found = state.get("found")
    if not found:
        return
    phrase, boxes = found
    if not boxes:
        st.info(f"Nothing in the image matched '{phrase}'. Try another phrase.")
        return
    st.image(mask_ops.draw_prompts(image, [], [r.box for r in boxes], (255, 0, 255)),
             caption=f"{len(boxes)} box(es) for '{phrase}'", width=DISPLAY_WIDTH)
    if st.button(f"Segment these {len(boxes)} box(es)", key="seg_found_go"):
        objs = _objects(state)
        for region in boxes:
            obj = segment.SegObject(max(o.obj_id for o in objs) + 1, box=region.box,
                              label=region.label)
            _run(seg, image, obj, multimask)
            objs.append(obj)
        state.pop("found")
        st.rerun()


def _everything(seg, image, state) -> None:
    if seg.kind != "sam2":
        st.caption("Everything mode needs SAM2 weights.")
        return
    c1, c2, c3 = st.columns(3)
    side = c1.slider("Points per side", 4, 32, 16, key="seg_points_per_side")
    min_iou = c2.slider("Min predicted IoU", 0.0, 1.0, 0.7, 0.05, key="seg_min_predicted_iou")
    min_stab = c3.slider("Min stability", 0.0, 1.0, 0.85, 0.05, key="seg_min_stability")
    if st.button("Segment everything", key="seg_everything"):
        bar = ui.ProgressBar("grid points prompted")
        with ui.queued("Everything mode"):
            state["auto"] = seg.everything(image, side, min_iou, min_stab, progress=bar)
        bar.clear()
    auto = state.get("auto")
    if auto is None:
        return
    if not auto:
        st.info("No mask passed the filters; lower the IoU or stability thresholds.")
        return
    layers = [(a.mask, mask_ops.color_for(i + 1)) for i, a in enumerate(auto)]
    st.image(mask_ops.overlay(image, layers, 0.5),
             caption=f"{len(auto)} masks, largest first", width=DISPLAY_WIDTH)
    st.dataframe([{"#": i + 1, "area (px)": a.area, "predicted IoU": round(a.predicted_iou, 3),
                   "stability": round(a.stability, 3), "box": a.bbox}
                  for i, a in enumerate(auto)], hide_index=True)
    if st.button("Add them as objects", key="seg_auto_add"):
        objs = _objects(state)
        for a in auto:
            obj = segment.SegObject(max(o.obj_id for o in objs) + 1, label=f"auto {a.area} px")
            obj.result = segment.MaskResult(a.mask[None], np.array([a.predicted_iou]), seg.label)
            objs.append(obj)
        st.rerun()


def _effects_and_export(image, objs, name: str) -> None:
    done = [o for o in objs if o.mask is not None]
    st.subheader("Effects and export")
    if not done:
        st.caption("Segment an object first.")
        return
    c1, c2, c3 = st.columns([2, 2, 1])
    picked = c1.multiselect("Objects", [o.obj_id for o in done], default=[o.obj_id for o in done],
                            format_func=lambda i: next(o.name for o in done if o.obj_id == i),
                            key="seg_objects")
    effect = c2.selectbox("Effect", ["none", *mask_ops.EFFECTS], key="seg_effect")
    strength = c3.slider("Strength", 3, 99, 31, 2, key="seg_strength")
    color = (st.color_picker("Fill colour", "#000000", key="seg_fill_colour")
             if effect == "fill" else "#000000")
    sel = [o for o in done if o.obj_id in picked]
    stem = Path(name).stem
    if effect != "none" and sel:
        rgb = tuple(int(color[i:i + 2], 16) for i in (1, 3, 5))
        edited = mask_ops.apply_effect(image, [o.mask for o in sel], effect, strength, rgb)
        st.image(edited, caption=f"{effect} on {len(sel)} object(s)", width=DISPLAY_WIDTH)
        ui.download_button("Download edited image (PNG)", lambda: mask_ops.png_bytes(edited),
                           f"{stem}-{effect.replace(' ', '-')}.png", "image/png",
                           key="seg_download_edited_image")
    cols = st.columns(min(4, len(done)) or 1)
    for k, o in enumerate(done):
        ui.download_button(f"Mask: {o.name}", lambda m=o.mask: mask_ops.png_bytes(m),
                           f"{stem}-mask-{o.obj_id}.png", "image/png", key=f"seg_dl_{o.obj_id}",
                           where=cols[k % len(cols)])
    h, w = image.shape[:2]
    ui.download_button("All masks (COCO JSON, RLE)", lambda: mask_ops.coco_json(   # built on click
        [(name, w, h, [o.mask for o in done], [o.obj_id for o in done])],
        {o.obj_id: o.name for o in done}), f"{stem}-masks.json", "application/json",
        key="seg_all_masks_coco_json")


# -- video mode ------------------------------------------------------------------------------

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
    name = _model_picker("seg_video_model", video=True)
    if upload is None:
        st.caption(f"Up to {settings.get().sam_max_frames} frames; frames are decoded once and "
                   "the model reads them on demand.")
        if not st.toggle("Use the sample clip (synthetic moving shapes)", key="seg_video_sample"):
            return
        with st.spinner("Generating the sample clip (once)…"):
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
        st.error(str(exc))
        return
    if name == segment.GRABCUT:     # no SAM 2 here: classical tracking, said plainly
        vm = classical.ClassicalVideoModel()
        name = vm.name
        st.caption(f"Tracking with {classical.CLASSICAL}: drag a box to start an object.")
    else:
        try:
            with st.spinner(f"Loading {name}…"):
                vm = segment_video.load_video_model(name)
        except LensError as exc:
            st.error(str(exc))
            return
    ui.untrained_warning(vm)
    _off_distribution(name, synthetic)
    try:
        with st.spinner("Decoding the clip…"):
            frames = _video_frames(digest, info)
    except LensError as exc:   # limits are checked again on what is actually decoded
        st.error(str(exc))
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
    event = _click(value, info.width, state)
    if event:
        kind, d = event
        obj = tracker.objects.get(state["active"])
        points, box = (obj.prompts.get(frame_idx, ([], None)) if obj else ([], None))
        points = list(points)
        if kind == "point":
            points.append((d[0], d[1], 0 if negative else 1))
        else:
            box = segment.clip_box(d, info.width, info.height)
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
        with st.spinner(f"Grounding '{phrase}' on frame {frame_idx}…"), ui.queued("Grounding"):
            boxes = grounding.load_grounder(gname).boxes(tracker.frames[frame_idx], phrase)
    except LensError as exc:
        st.error(str(exc))
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


mode = st.radio("Mode", ["Image", "Video"], horizontal=True, key="seg_mode")
if mode == "Image":
    image_mode()
else:
    video_mode()
