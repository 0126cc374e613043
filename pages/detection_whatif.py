"""The Detection page's What-if tab: one uploaded image through the compared registry
detectors, clean beside corrupted, their detections matched (kept, moved, lost, gained),
and the sweep of how many detections each corruption and severity keeps. A view over
`lib.detection.whatif`."""

import streamlit as st

from lib import plots, ui
from lib.core.links import WhatIfLink
from lib.detection import drawing, whatif
from lib.media import corruptions, images

NONE = "none"


def read_link() -> None:
    """`?corruption=fog&severity=3` presets the pickers once per visit (unknown: ignored,
    named on the Classification page that owns the link)."""
    if st.session_state.get("dwi_linked"):
        return
    st.session_state["dwi_linked"] = True
    link = WhatIfLink.parse(st.query_params)
    if link.corruption in corruptions.NAMES:
        st.session_state["dwi_corruption"] = link.corruption
        st.session_state["dwi_severity"] = int(link.severity)


def drawn(picture, dets, labels: dict, kinds: dict[str, list[int]]):
    """The picture with its detections coloured by what happened to them."""
    groups = []
    for kind, idx in kinds.items():
        groups.append((dets.xyxy[idx], [f"{kind}: {labels.get(int(dets.class_ids[i]), '?')} "
                                        f"{dets.scores[i]:.2f}" for i in idx],
                       drawing.PALETTE[kind]))
    return drawing.draw(picture, groups)


def detector_row(s, name: str, picture, sha: str, corruption: str | None, severity: int,
                 thr: float) -> None:
    """One detector: clean and corrupted side by side, the change counted."""
    result = s.bench.whatif(name, picture, sha, corruption, severity, thr)
    ui.untrained_warning(result)
    labels, clean, after, change = result.labels, result.clean, result.altered, result.change
    counts = change.counts()
    moved = set(change.moved)
    kept = [a for a, _ in change.pairs if a not in moved]
    said = ("clean" if corruption is None
            else f"{corruption.replace('_', ' ')} {severity}")
    c1, c2 = st.columns(2)
    c1.image(drawn(picture, clean, labels, {"kept": kept, "moved": sorted(moved),
                                                "lost": list(change.lost)}),
             caption=f"{name} · clean: {len(clean)} detections", width="stretch")
    c2.image(drawn(result.altered_image, after, labels,
                   {"kept": [b for a, b in change.pairs if a not in moved],
                    "moved": [b for a, b in change.pairs if a in moved],
                    "gained": list(change.gained)}),
             caption=f"{name} · {said}: {len(after)} detections", width="stretch")
    st.markdown(" · ".join(f"**{v}** {k}" for k, v in counts.items())
                + f" (matched: same class, IoU ≥ {whatif.MATCH_IOU}; moved: IoU < "
                  f"{whatif.MOVED_IOU})")


def sweep_view(s, name: str, picture, thr: float, sha: str) -> None:
    """The sweep for one detector: the share of its clean detections each pair keeps."""
    key = f"{sha}|{name}|{thr}"
    if st.session_state.get("dwi_swept") != key:
        if not st.button(f"Sweep {name} (19 corruptions × 5 severities)", key="dwi_sweep"):
            return
        st.session_state["dwi_swept"] = key
    bar = ui.ProgressBar("corrupted images detected")
    with ui.showing_errors():
        sw = s.bench.whatif_sweep(name, picture, sha, thr, bar)
        bar.clear()
        st.plotly_chart(plots.corruption_heatmap(
            sw.kept_share, [n.replace("_", " ") for n in sw.names], sw.severities,
            f"{name}: share of its {sw.clean} clean detections kept", "kept"),
            key="dwi_sweep_chart")
        ui.download_button("Download the sweep (CSV)", sw.frame().to_csv(index=False),
                           "detection-sweep.csv", "text/csv", key="dwi_sweep_csv")


def view(s) -> None:
    """The tab (drawn on every run: it holds an upload)."""
    runnable = [n for n in s.names if n in [spec.name for spec in s.detector_specs]]
    if not runnable:
        st.info("What-if needs a built-in detector with its weights on this machine; imported "
                "predictions cannot run on new images.")
        return
    read_link()
    st.caption("Upload one image: the compared detectors on it, clean and corrupted.")
    shot = st.file_uploader("Image", type=images.ACCEPTED_EXTENSIONS, key="whatif_image")
    c1, c2, c3 = st.columns([3, 2, 2])
    corruption = c1.selectbox("Corruption", [NONE, *corruptions.NAMES], key="dwi_corruption",
                              format_func=lambda n: n.replace("_", " "))
    severity = c2.slider("Severity", 1, 5, 3, key="dwi_severity")
    thr = c3.slider("Score threshold", 0.05, 0.95, 0.5, 0.05, key="whatif_thr")
    if shot is None:
        return
    with ui.showing_errors():
        intake = images.load_image(shot.getvalue(), shot.name)
        picture = intake.image
        for name in runnable:
            detector_row(s, name, picture, intake.sha256, None if corruption == NONE
                         else corruption, severity, thr)
        st.divider()
        pick = st.selectbox("Sweep with", runnable, key="dwi_sweep_model")
        sweep_view(s, pick, picture, thr, intake.sha256)
