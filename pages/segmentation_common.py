"""What both segmentation views share: the model picker with what each model is (and its
measured figures), loading a segmenter with a message instead of a crash, and reading a
click on the shown image. UI only; the logic is in lib.segmentation."""


import streamlit as st

from lib import ui
from lib.core.errors import LensError
from lib.models import registry
from lib.segmentation import (
    classical,
    figures,
    grounding,
    point_track,
    prompts,
    quality,
    segment,
)

DISPLAY_WIDTH = 720     # the shown image's width; clicks are mapped back to image pixels


def click(value, image_width: int, work):
    """A new click or drag on the image (`prompts.click_event`), remembered on `work` (the
    session's `ImageWork` or `ClipWork`)."""
    event, work.last_click = prompts.click_event(value, image_width, work.last_click)
    return event


def model_picker(key: str, video: bool = False) -> str:
    choices = segment.model_choices()
    names = [n for n, _ in choices]
    ready = dict(choices)
    synthetic = figures.synthetic_models()
    demo = {n for n, ok in choices if ok and n in synthetic}
    own = {n for n, ok in choices if ok} & figures.own_models()
    have_sam = any(ok for n, ok in choices if n != segment.GRABCUT and n not in demo | own)

    def label(n: str) -> str:
        if not ready[n]:
            return f"{n} (weights missing)"
        return f"{n} (trained on synthetic shapes)" if n in demo else n
    name = st.sidebar.selectbox("Segmentation model", names, key=key, format_func=label)
    measured = figures.measured_figures()
    if name in own and (text := photo_figures(measured.get(name, {}))):
        st.sidebar.caption(text[0].upper() + text[1:] + ".")
    if not have_sam:
        spec = registry.find(segment.SAM2_IDS[0])
        text = "No SAM 2 weights on this machine (no hub access)."
        for n in sorted(own):
            text += (f" **{n}** is a small segmenter trained by Lens on real photos "
                     f"({photo_figures(measured.get(n, {})) or 'no measured figures'})")
            text += f" {clip_sentence(measured.get(n, {}))}." if video else "."
        if video and not own:
            demo_m = next((m for m in synthetic.values() if "classical_J" in m), None)
            more = (f" (mean J {demo_m['classical_J']:.2f} on the "
                    f"{demo_m['video_clips']:.0f} synthetic validation clips, "
                    f"{demo_m['classical_J_after_occlusion']:.2f} after an occlusion)"
                    if demo_m else "")
            text += (f" By default, **{classical.CLASSICAL}**: objects are followed by dense "
                     "optical flow and refined by GrabCut, frame by frame, from a box you "
                     f"drag. It has no memory: an object hidden behind another is lost{more}.")
        elif not own:
            text += (" For photos, the **GrabCut** classical fallback segments inside a box "
                     "you drag; its masks are labelled as such, never as SAM 2.")
        else:
            text += " **GrabCut** stays offered as the classical fallback."
        for n in sorted(demo):
            text += " " + demo_sentence(n, synthetic[n], video)
        st.info(text + f" To get SAM 2.1 on a connected machine: `{spec.fetch_command}`.")
    return name


def clip_sentence(m: dict) -> str:
    """What the real-texture clips measured for a checkpoint: point tracking against the
    classical tracker (the page recommends the better one)."""
    keys = {"real_clips:point_J", "real_clips:classical_J", "real_clips:clips"}
    if not keys <= m.keys():
        return "no tracking figures on real clips"
    return (f"on {m['real_clips:clips']:.0f} real-texture clips, *{point_track.LABEL}* "
            f"tracks at mean J {m['real_clips:point_J']:.2f}, "
            f"{classical.CLASSICAL} at {m['real_clips:classical_J']:.2f}")


def recommended_tracker(name: str) -> str:
    """"points" or "classical" for a Lens-trained checkpoint, by its real-clip figures
    (points where none are recorded)."""
    m = figures.measured_figures().get(name, {})
    if m.get("real_clips:classical_J", -1) > m.get("real_clips:point_J", 0):
        return "classical"
    return "points"


def demo_sentence(name: str, m: dict, video: bool) -> str:
    """What a synthetic-shapes model is, with the figures its manifest measured."""
    if video:
        said = (f"on its {m['video_clips']:.0f} synthetic validation clips, "
                   f"*{point_track.LABEL}* tracks at mean J {m['point_J']:.2f} "
                   f"({m['point_J_after_occlusion']:.2f} after an occlusion, "
                   f"{100 * m['point_ids_regained']:.0f}% of hidden objects back within "
                   f"{quality.REGAIN_WITHIN} frames), its untrained memory path at "
                   f"{m['video_J']:.2f} ({m['video_J_after_occlusion']:.2f})"
                   if {"video_J", "video_clips", "video_J_after_occlusion", "point_J",
                       "point_J_after_occlusion", "point_ids_regained"} <= m.keys()
                   else "no measured figures")
        where = "the sample clip"
    else:
        said = (f"mean IoU {m['click_iou']:.2f} from one click, {m['box_iou']:.2f} from a "
                   f"box, on {m['images']:.0f} synthetic images"
                   if {"click_iou", "box_iou", "images"} <= m.keys()
                   else "no measured figures")
        where = "the *synthetic shapes* sample"
    return (f"**{name}** is **trained on synthetic shapes** ({said}): pick it for {where}; "
            "on photos its masks mean nothing.")


def photo_figures(m: dict) -> str:
    """What a checkpoint trained on real masks measured on photos it never saw (or on its
    own validation images), from its manifest."""
    for key, where in (("held_out", "held-out real photos"), ("val", "its validation images")):
        section = {k[len(key) + 1:]: v for k, v in m.items() if k.startswith(key + ":")}
        if {"box_miou", "click_miou", "objects"} <= section.keys():
            ece = (f", predicted IoU off by {section['iou_ece_calibrated']:.2f} on average "
                   "once calibrated" if "iou_ece_calibrated" in section else "")
            return (f"measured on {section['objects']:.0f} objects of {where}: mean IoU "
                    f"{section['box_miou']:.2f} from a box, {section['click_miou']:.2f} from "
                    f"one click{ece}")
    return ""


def off_distribution(name: str, synthetic_input: bool, what: str = "photos") -> None:
    """A plain warning when a synthetic-shapes model is used on anything else."""
    if not synthetic_input and name in figures.synthetic_models():
        st.warning(f"**{name}** was trained on synthetic shapes only: on this input its masks "
                   f"are not meaningful. For {what} use **{segment.GRABCUT}**.")


def load(name: str):
    try:
        with ui.spinner(f"Loading {name}…", not segment.segmenter_loaded(name)):
            return segment.load_segmenter(name)
    except LensError as exc:
        st.error(f"{exc}  \nMeanwhile, pick **{segment.GRABCUT}** in the sidebar: it works offline "
                 "with box prompts.")
        return None


def grounder_picker(key: str, where=st) -> str:
    """The grounding model (those that run here first; missing weights said), with the words
    a closed-vocabulary one knows."""
    choices = grounding.grounder_choices()
    ready = dict(choices)
    name = where.selectbox("Grounding model", [n for n, _ in choices], key=key,
                           format_func=lambda n: n if ready[n] else f"{n} (weights missing)")
    grounder_words(name)
    return name


def confidence(key: str, where=st) -> float:
    """The confidence a grounded box needs (the visitor's; Florence-2 has none)."""
    return where.slider("Minimum confidence", 0.05, 0.95, grounding.THRESHOLD, 0.05, key=key,
                        help="A grounded box below it is left out (lower finds more, and more "
                             "that is not there; Florence-2 has no scores).")


def grounder_words(name: str) -> None:
    """For a closed-vocabulary grounder, the words it knows (a typed word outside them gets
    a message naming them)."""
    words = grounding.known_words(name)
    if words:
        st.caption(f"A detector used as a grounder: it finds only the classes it was trained "
                   f"on: {', '.join(words)}.")
