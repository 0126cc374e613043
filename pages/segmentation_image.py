"""The segmentation page's image view: click, box and text prompts on a photo, candidates,
everything mode, a what-if under corruptions, effects and mask export."""

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from lib import plots, ui
from lib.core.errors import LensError
from lib.demo import samples
from lib.media import corruptions, images, masks
from lib.segmentation import confidence, grounding, prompts, segment, whatif
from lib.segmentation.service import ImageWork, SegmentationSession, SegObject
from pages import segmentation_common
from pages.segmentation_common import DISPLAY_WIDTH


def _run(seg, image, obj: SegObject, multimask: bool, work: ImageWork) -> None:
    """Segment one object from its prompts; a problem becomes a notice shown after the rerun."""
    if not obj.has_prompts():
        obj.result = None
        return
    try:
        with ui.queued("Segmenting"):
            obj.result = seg.predict(image, obj.points, obj.box, multimask=multimask)
        obj.choice = obj.result.best
    except segment.PromptError as exc:
        work.notice = str(exc)


def image_mode(session: SegmentationSession) -> None:
    """An image (an upload or a sample), its objects prompted by clicks, boxes and text."""
    src_col, sample_col = st.columns([3, 2])
    upload = src_col.file_uploader("Image", type=images.ACCEPTED_EXTENSIONS, key="seg_upload")
    sample = sample_col.selectbox("…or a sample", [*samples.SAMPLES, samples.SYNTHETIC],
                                  key="seg_sample")
    try:
        intake = (ui.decoded_image(upload.getvalue(), upload.name) if upload
                  else ui.sample_image(sample))
    except images.ImageError as exc:
        ui.show_error(exc)
        return
    image = np.array(intake.image)   # writable: torch warns on read-only arrays
    digest = segment.image_digest(image)
    work = session.open_image(digest)
    name = segmentation_common.model_picker("seg_model")
    seg = segmentation_common.load(name)
    if seg is None:
        return
    ui.untrained_warning(seg)
    segmentation_common.off_distribution(name, upload is None and sample == samples.SYNTHETIC)
    if seg.unfamiliar(image):
        st.warning(f"This image looks unlike every image **{name}** was trained on: its "
                   "masks and predicted IoU may be off here. Check each mask, and correct it "
                   "with clicks.")
    if work.notice:
        st.warning(work.notice)
        work.notice = ""

    objs = work.objects
    c1, c2, c3, c4, c5 = st.columns([2, 1, 1, 1, 1])
    ids = [o.obj_id for o in objs]
    active_id = c1.selectbox("Object", ids, index=ids.index(work.active.obj_id),
                             format_func=lambda i: next(o.name for o in objs if o.obj_id == i),
                             key=f"seg_active_{len(ids)}")
    work.active_id = active_id
    obj = work.active
    if c2.button("New object", key="seg_new_object"):
        work.new_object()
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
        _run(seg, image, obj, multimask, work)
    if c5.button("Clear", disabled=not obj.has_prompts(), key="seg_clear"):
        obj.points, obj.box, obj.result = [], None, None

    # The canvas: masks of every object, prompts of the active one.
    layers = [(o.mask, o.color) for o in objs if o.mask is not None]
    shown = masks.overlay(image, layers, opacity, outline) if layers else image
    shown = masks.draw_prompts(shown, obj.points, [obj.box] if obj.box else [], obj.color)
    disp = images.fit_width(shown, DISPLAY_WIDTH)
    st.caption(f"Click to add a {'negative' if negative else 'positive'} point to "
               f"**{obj.name}**; drag to draw its box.  Model: **{seg.label}**")
    value = ui.clickable_image(disp, key=f"seg_click_{digest}")
    event = segmentation_common.click(value, image.shape[1], work)
    if event:
        kind, data = event
        h, w = image.shape[:2]
        if kind == "point":
            x, y = data
            if not (0 <= x < w and 0 <= y < h):
                work.notice = (f"The click ({x:.0f}, {y:.0f}) is outside the image; prompts "
                               "kept.")
            else:
                obj.points.append((x, y, 0 if negative else 1))
        else:
            box = prompts.clip_box(data, w, h)
            if box[2] - box[0] < 2 or box[3] - box[1] < 2:
                work.notice = "The box has (almost) no area; prompts kept."
            else:
                obj.box = box
        _run(seg, image, obj, multimask, work)
        st.rerun()

    _candidates(seg, obj)
    st.dataframe([{"id": o.obj_id, "object": o.name,
                   "points +/-": f"{sum(p[2] == 1 for p in o.points)}/"
                                 f"{sum(p[2] == 0 for p in o.points)}",
                   "box": ", ".join(f"{v:.0f}" for v in o.box) if o.box else "",
                   "mask px": int(o.mask.sum()) if o.mask is not None else 0,
                   "from": o.result.source if o.result else ""} for o in objs],
                 hide_index=True)
    _prompt_editor(seg, image, obj, multimask, work)
    with st.expander("Text prompt: find objects by name"):
        _text_prompt(seg, image, work, multimask)
    with st.expander("Everything mode"):
        _everything(seg, image, work)
    with st.expander("What-if: the same prompt on a corrupted image"):
        _whatif(seg, image, obj)
    _effects_and_export(image, objs, intake.name)


def _whatif(seg, image, obj: SegObject) -> None:
    """The active object's prompt on the image under a corruption: both masks, their IoU,
    and the sweep of that IoU over every corruption and severity."""
    if not obj.has_prompts():
        st.caption("Prompt an object first (a click or a box).")
        return
    if not st.toggle("Compare with a corrupted image", key="seg_wi_on"):
        return          # off: nothing recomputed on the page's other reruns (every click)
    c1, c2 = st.columns([3, 2])
    name = c1.selectbox("Corruption", corruptions.NAMES, index=corruptions.NAMES.index("fog"),
                        key="seg_wi_corruption", format_func=lambda n: n.replace("_", " "))
    severity = c2.slider("Severity", 1, 5, 3, key="seg_wi_severity")
    altered = corruptions.corrupt(image, name, severity)
    try:
        with ui.queued("Segmenting"):
            clean = whatif.best_mask(seg, image, obj.points, obj.box)
            after = whatif.best_mask(seg, altered, obj.points, obj.box)
    except segment.PromptError as exc:
        ui.show_error(exc)
        return
    a, b = st.columns(2)
    a.image(images.fit_width(masks.overlay(image, [(clean, obj.color)], 0.5, True),
                             DISPLAY_WIDTH // 2), caption="clean", width="stretch")
    b.image(images.fit_width(masks.overlay(altered, [(after, obj.color)], 0.5, True),
                             DISPLAY_WIDTH // 2),
            caption=f"{name.replace('_', ' ')} {severity}", width="stretch")
    st.markdown(f"Mask IoU, clean against corrupted: **{masks.iou(clean, after):.3f}**")
    if st.button("Sweep (19 corruptions × 5 severities)", key="seg_wi_sweep"):
        bar = ui.ProgressBar("corrupted images segmented")
        with ui.showing_errors(), ui.queued("Sweep"):
            sw = whatif.sweep(seg, image, obj.points, obj.box, progress=bar)
            bar.clear()
            st.plotly_chart(plots.corruption_heatmap(
                sw.iou, [n.replace("_", " ") for n in sw.names], sw.severities,
                f"{obj.name}: mask IoU against the clean mask (mean {sw.mean:.2f})",
                "mask IoU"), key="seg_wi_chart")


def _candidates(seg, obj: SegObject) -> None:
    r = obj.result
    if r is None:
        return
    if len(r.masks) < 2:
        st.caption(f"{obj.name}: 1 mask from {r.source}, "
                   f"{confidence.confidence(seg, r, 0).text}")
    else:
        labels = [f"Mask {i + 1}: predicted IoU {s:.3f}, {int(m.sum())} px"
                  for i, (m, s) in enumerate(zip(r.masks, r.scores))]
        result_id = hashlib.sha1(r.scores.tobytes()).hexdigest()[:8]  # new candidates: new radio
        obj.choice = st.radio(f"Candidates for {obj.name} ({r.source})", range(len(labels)),
                              index=obj.choice, format_func=lambda i: labels[i],
                              horizontal=True, key=f"seg_choice_{obj.obj_id}_{result_id}")
    conf = confidence.confidence(seg, r, obj.choice)
    if conf.unsure:
        st.warning(f"**Unsure**: {obj.name}'s mask has a {conf.text}. Click where it is "
                   "wrong to correct it: a positive click on a part it missed, a negative one "
                   "(toggle *Negative*) where it spills.")
    elif len(r.masks) >= 2:
        st.caption(f"{obj.name}: {conf.text}")


def _prompt_editor(seg, image, obj: SegObject, multimask: bool,
                   work: ImageWork) -> None:
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
                rows = edited.dropna()[["x", "y", "positive"]].itertuples(index=False)
                points, new_box = prompts.parse_edits(rows, box, image.shape[1], image.shape[0])
            except LensError as exc:
                st.warning(f"Could not use the edits: {exc} The previous prompts are kept.")
                return
            obj.points, obj.box = points, new_box
            _run(seg, image, obj, multimask, work)
            st.rerun()


def _text_prompt(seg, image, work: ImageWork, multimask: bool) -> None:
    col1, col2, col3 = st.columns([3, 2, 1])
    phrase = col1.text_input("Find", placeholder="person, logo, dog…", key="seg_phrase")
    gname = segmentation_common.grounder_picker("seg_grounder", col2)
    threshold = segmentation_common.confidence("seg_threshold", col3)
    if st.button("Find boxes", key="seg_find"):
        if not phrase.strip():
            st.warning("Type what to find first, e.g. 'person' or 'logo'.")
            return
        try:
            with ui.spinner(f"Grounding '{phrase}' with {gname}…"), ui.queued("Grounding"):
                work.found = (phrase, grounding.load_grounder(gname, threshold)
                              .boxes(image, phrase))
        except LensError as exc:
            ui.show_error(exc)
            return
    found = work.found
    if not found:
        return
    phrase, boxes = found
    if not boxes:
        st.info(f"Nothing in the image matched '{phrase}'. Try another phrase.")
        return
    st.image(masks.draw_prompts(image, [], [r.box for r in boxes], (255, 0, 255)),
             caption=f"{len(boxes)} box(es) for '{phrase}'", width=DISPLAY_WIDTH)
    if st.button(f"Segment these {len(boxes)} box(es)", key="seg_found_go"):
        objs = work.objects
        for region in boxes:
            obj = SegObject(max(o.obj_id for o in objs) + 1, box=region.box,
                              label=region.label)
            _run(seg, image, obj, multimask, work)
            objs.append(obj)
        work.found = None
        st.rerun()


def _everything(seg, image, work: ImageWork) -> None:
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
            work.auto = seg.everything(image, side, min_iou, min_stab, progress=bar)
        bar.clear()
    auto = work.auto
    if auto is None:
        return
    if not auto:
        st.info("No mask passed the filters; lower the IoU or stability thresholds.")
        return
    layers = [(a.mask, masks.color_for(i + 1)) for i, a in enumerate(auto)]
    st.image(masks.overlay(image, layers, 0.5),
             caption=f"{len(auto)} masks, largest first", width=DISPLAY_WIDTH)
    st.dataframe([{"#": i + 1, "area (px)": a.area, "predicted IoU": round(a.predicted_iou, 3),
                   "stability": round(a.stability, 3), "box": a.bbox}
                  for i, a in enumerate(auto)], hide_index=True)
    if st.button("Add them as objects", key="seg_auto_add"):
        objs = work.objects
        for a in auto:
            obj = SegObject(max(o.obj_id for o in objs) + 1, label=f"auto {a.area} px")
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
    effect = c2.selectbox("Effect", ["none", *masks.EFFECTS], key="seg_effect")
    strength = c3.slider("Strength", 3, 99, 31, 2, key="seg_strength")
    color = (st.color_picker("Fill colour", "#000000", key="seg_fill_colour")
             if effect == "fill" else "#000000")
    sel = [o for o in done if o.obj_id in picked]
    stem = Path(name).stem
    if effect != "none" and sel:
        rgb = tuple(int(color[i:i + 2], 16) for i in (1, 3, 5))
        edited = masks.apply_effect(image, [o.mask for o in sel], effect, strength, rgb)
        st.image(edited, caption=f"{effect} on {len(sel)} object(s)", width=DISPLAY_WIDTH)
        ui.download_button("Download edited image (PNG)", lambda: masks.png_bytes(edited),
                           f"{stem}-{effect.replace(' ', '-')}.png", "image/png",
                           key="seg_download_edited_image")
    cols = st.columns(min(4, len(done)) or 1)
    for k, o in enumerate(done):
        ui.download_button(f"Mask: {o.name}", lambda m=o.mask: masks.png_bytes(m),
                           f"{stem}-mask-{o.obj_id}.png", "image/png", key=f"seg_dl_{o.obj_id}",
                           where=cols[k % len(cols)])
    h, w = image.shape[:2]
    ui.download_button("All masks (COCO JSON, RLE)", lambda: masks.coco_json(   # built on click
        [(name, w, h, [o.mask for o in done], [o.obj_id for o in done])],
        {o.obj_id: o.name for o in done}), f"{stem}-masks.json", "application/json",
        key="seg_all_masks_coco_json")
