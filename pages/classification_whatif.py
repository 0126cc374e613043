"""The Classification page's What-if tab: the image beside its corrupted or edited version
(top-k and the CAM of both), and the sweep of every corruption and severity with its flip
points. A view over `ClassificationSession.altered` and `.sweep`."""

import pandas as pd
import streamlit as st

from lib import plots, ui
from lib.core.errors import LensError
from lib.core.links import WhatIfLink
from lib.media import corruptions, edits

NONE = "none"


def read_link() -> None:
    """A `?corruption=fog&severity=3` link presets the pickers, once per visit; an unknown
    corruption in it is named, and the picker stays at none."""
    if st.session_state.get("wi_linked"):
        return
    st.session_state["wi_linked"] = True
    link = WhatIfLink.parse(st.query_params)
    if link.corruption and link.corruption not in corruptions.NAMES:
        st.session_state["wi_link_error"] = link.corruption[:40]
    elif link.corruption:
        st.session_state["wi_corruption"] = link.corruption
        st.session_state["wi_severity"] = int(link.severity)


def edit_picker(image) -> edits.Edit:
    """The edits: sliders for the numbers, and an occluding patch placed by a click."""
    with st.expander("Edits: rotate, scale, crop, flip, brightness, JPEG, an occluding patch"):
        c1, c2, c3, c4 = st.columns(4)
        rotate = c1.slider("Rotate (°)", -180, 180, 0, 5, key="wi_rotate")
        scale = c2.slider("Scale", 0.25, 2.0, 1.0, 0.05, key="wi_scale")
        crop = c3.slider("Crop (share kept)", 0.3, 1.0, 1.0, 0.05, key="wi_crop")
        brightness = c4.slider("Brightness", 0.2, 2.0, 1.0, 0.05, key="wi_brightness")
        d1, d2, d3 = st.columns(3)
        flip = d1.checkbox("Flip left-right", key="wi_flip")
        jpeg = d2.slider("JPEG quality (100: not re-encoded)", 5, 100, 100, 5, key="wi_jpeg")
        patch_on = d3.checkbox("Occluding patch (click the image to place it)", key="wi_patch")
        patch = None
        if patch_on:
            size = st.slider("Patch size (share of the shorter side)", 0.05, 0.6, 0.2, 0.05,
                             key="wi_patch_size")
            rgb = edits.apply(image, edits.Edit())
            click = ui.clickable_image(rgb, key="wi_patch_click")
            if click and {"x", "y", "width", "height"} <= set(click):
                st.session_state["wi_patch_at"] = (
                    min(1.0, max(0.0, click["x"] / max(click["width"], 1))),
                    min(1.0, max(0.0, click["y"] / max(click["height"], 1))))
            patch = st.session_state.get("wi_patch_at", (0.5, 0.5))
    return edits.Edit(rotate=float(rotate), scale=float(scale), crop=float(crop), flip=flip,
                      brightness=float(brightness), jpeg=None if jpeg == 100 else int(jpeg),
                      patch=patch, patch_size=float(size) if patch_on else 0.2)


def side(s, col, key: str, image, title: str, target: int, method: str, layer: str) -> None:
    """One side of the comparison: the image, its top-k and its CAM of `target`."""
    result = s.session.predict(key, s.model_name, s.top_k, image)
    with col:
        st.markdown(f"**{title}** · top-1 **{result.best.label}** "
                    f"({result.best.probability:.1%})")
        st.plotly_chart(plots.topk_bar([p.label for p in result.top],
                                       [p.probability for p in result.top]),
                        key=f"wi_topk_{title}")
        with ui.spinner(f"{method}…"), ui.showing_errors():
            ex = s.session.explain(key, s.model_name, method, target, layer, image)
            a, b = st.columns(2)
            a.image(ex.view, caption="as the model sees it", width="stretch")
            b.image(ex.overlay(), caption=f"{method} · {ex.target_label}", width="stretch")


def sweep_view(s, item) -> None:
    """The 19 × 5 sweep: the clean top class's probability and the flip point per corruption."""
    key = f"sweep: {item.sha256}|{s.model_name}"
    if st.session_state.get("wi_swept") != key:
        if not st.button("Run the sweep (19 corruptions × 5 severities)", key="wi_sweep"):
            return
        st.session_state["wi_swept"] = key
    bar = ui.ProgressBar("corrupted images classified")
    with ui.showing_errors():
        sw = s.session.sweep(item.sha256, s.model_name, item.image, bar)
        bar.clear()
        flips = sw.flip_points()
        st.plotly_chart(plots.corruption_heatmap(
            sw.probability, sw.names, sw.severities,
            f"P({sw.clean_label}) under each corruption (✕: top-1 changed)",
            f"P({sw.clean_label})", marks=sw.top1 != sw.clean_index), key="wi_sweep_chart")
        never = [n for n, f in flips.items() if f is None]
        st.markdown(f"Clean: **{sw.clean_label}** ({sw.clean_probability:.1%}). Top-1 changes "
                    f"in {sw.flip_rate:.0%} of the {sw.probability.size} corrupted versions; "
                    f"it never changes under {len(never)} of {len(flips)} corruptions.")
        st.table(pd.DataFrame({"corruption": [n.replace("_", " ") for n in flips],
                               "flip point (severity)": [f or "never" for f in
                                                         flips.values()]}).astype(str)
                 .set_index("corruption"))
        ui.download_button("Download the sweep (CSV)", sw.frame().to_csv(index=False),
                           "sweep.csv", "text/csv", key="wi_sweep_csv")


def whatif_view(s) -> None:
    """The image beside its corrupted or edited version, then the sweep."""
    if not (s.loaded and s.intake):
        return
    read_link()
    if st.session_state.get("wi_link_error"):
        st.error(f"The link asks for corruption '{st.session_state['wi_link_error']}', which "
                 f"Lens does not have; pick one of the list.")
    item = s.intake[min(st.session_state.get("picked", 0), len(s.intake) - 1)]
    c1, c2 = st.columns([3, 2])
    corruption = c1.selectbox("Corruption", [NONE, *corruptions.NAMES], key="wi_corruption",
                              format_func=lambda n: n.replace("_", " "))
    severity = c2.slider("Severity", 1, 5, 3, key="wi_severity")
    edit = edit_picker(item.image)
    name = "" if corruption == NONE else corruption
    ui.write_link(WhatIfLink, corruption=name, severity=severity)
    try:
        key, altered = s.session.altered(item.sha256, item.image, name, severity, edit)
    except LensError as exc:
        ui.show_error(exc)
        return
    clean = s.session.predict(item.sha256, s.model_name, s.top_k, item.image)
    method = st.session_state.get("method", "GradCAM")
    layer = s.session.layers(s.model_name)[0]
    changed = " + ".join(x for x in (name.replace("_", " ") + f" {severity}" if name else "",
                                     "" if edit.identity else edit.describe()) if x) or "as is"
    st.caption(f"Both CAMs explain the clean image's top-1 class, "
               f"{clean.best.label}, with {method} (the Explain tab's method).")
    left, right = st.columns(2)
    side(s, left, item.sha256, item.image, "clean", clean.best.index, method, layer)
    side(s, right, key, altered, changed, clean.best.index, method, layer)
    st.divider()
    st.subheader("Sweep")
    sweep_view(s, item)

