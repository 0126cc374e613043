"""Classification: top-k predictions with CAM overlays, comparison, evaluation, video scenes.

A view over the visitor's `ClassificationSession` (lib/classification/service.py): the
sidebar picks the classifier, the tabs explain one image, compare models or methods,
evaluate a labelled folder and time a clip's scenes.
"""

import io
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import streamlit as st

from lib import ui

ui.page_setup()
from PIL import Image

from lib import plots
from lib.classification import cam, scenes
from lib.classification.cam import COLORMAPS, heatmap_rgb
from lib.classification.service import ClassificationSession, Offered
from lib.core import scratch
from lib.core.errors import LensError
from lib.demo import samples
from lib.media import images, video
from lib.models import cache, registry
from pages import classification_rank, classification_robust, classification_whatif

OTHER = "Other timm model…"


@dataclass
class Screen:
    """What the tabs show: the session, the classifier picked and its handle, the images."""
    session: ClassificationSession
    offered: list[Offered]
    model_name: str
    top_k: int
    loaded: cache.ModelHandle | None
    intake: list[images.IntakeImage]

    @property
    def options(self) -> dict[str, str]:
        """name -> readiness note, as offered."""
        return {o.name: o.note for o in self.offered}


def load_model(session: ClassificationSession, name: str) -> cache.ModelHandle | None:
    """The model's handle from the process-wide cache, or None after showing why."""
    try:
        with ui.spinner(f"Loading {name}…", not session.loaded(name)):
            return session.model(name)
    except LensError as exc:
        ui.show_error(exc)
        return None


def png_bytes(arr) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def read_uploads(files) -> list[images.IntakeImage]:
    """Decode uploads through the one intake; a bad file gets a message, the rest go on."""
    good = []
    for f in files or []:
        try:
            good.append(ui.decoded_image(f.getvalue(), f.name))
        except images.ImageError as exc:
            ui.show_error(exc)
    return good


def sidebar(offered: list[Offered], online: bool) -> tuple[str, int]:
    """The classifier (offline ones first without the hub) and top-k."""
    notes = {o.name: o.note for o in offered}
    names = [o.name for o in offered] + [OTHER]
    with st.sidebar:
        st.subheader("Model")
        if not online:
            st.caption("No model-hub access: defaulting to offline models (the packaged "
                       "EfficientNet-Lite0 for ImageNet, and checkpoints/ such as the demo "
                       "pack).")
        choice = st.selectbox("Classifier", names, key="model",
                              format_func=lambda n: n if n == OTHER else f"{n} · {notes[n]}")
        model_name = (st.text_input("timm model name or hf-hub: id", key="timm_name",
                                    placeholder="e.g. resnet18.a1_in1k").strip()
                      if choice == OTHER else choice)
        top_k = st.slider("Top-k", 1, 10, 5, key="top_k")
    return model_name, top_k


@st.cache_data(ttl=30, show_spinner=False)
def offered_models(online: bool) -> list[Offered]:
    """The classifiers offered (the registry scanned at most every 30 s)."""
    return ClassificationSession.offered(online)


def image_input() -> list[images.IntakeImage]:
    """The images to explain: the uploads (each through the one intake), else a sample photo."""
    up_col, sample_col = st.columns([3, 2])
    uploads = up_col.file_uploader("Upload images", type=images.ACCEPTED_EXTENSIONS,
                                   accept_multiple_files=True, key="uploads")
    sample = sample_col.selectbox("…or a sample photo", list(samples.SAMPLES), key="sample")
    intake = read_uploads(uploads)
    if not uploads:
        intake = [ui.sample_image(sample)]
    return intake


def explain_view(s: Screen) -> None:
    """Top-k classes of each image, its CAM for any class, the CAM's faithfulness, PNG download."""
    if s.loaded and s.intake:
        lm = s.loaded.model
        if len(s.intake) > 1:
            thumbs = st.columns(min(len(s.intake), 6))
            for i, item in enumerate(s.intake):
                pred = s.session.predict(item.sha256, s.model_name, s.top_k, item.image).best
                thumbs[i % len(thumbs)].image(item.image, caption=f"{item.name}: {pred.label} "
                                              f"({pred.probability:.0%})", width="stretch")
            picked = st.selectbox("Explain image", range(len(s.intake)), key="picked",
                                  format_func=lambda i: s.intake[i].name)
        else:
            picked = 0
        item = s.intake[picked]
        result = s.session.predict(item.sha256, s.model_name, s.top_k, item.image)
        head = f"**{item.name}** · top-1 **{result.best.label}** ({result.best.probability:.1%})"
        if result.indoor_outdoor:
            head += f" · scene type: **{result.indoor_outdoor}**"
        st.markdown(head)

        layers = s.session.layers(s.model_name)
        # A new image or model starts from its top class and the model's default layer.
        if st.session_state.get("explaining") != (item.sha256, s.model_name):
            st.session_state["explaining"] = (item.sha256, s.model_name)
            st.session_state["target"] = result.best.index
            if st.session_state.get("layer") not in layers:
                st.session_state["layer"] = layers[0]
        if not s.session.methods(s.model_name):
            st.error("No explanation method applies to this model: it has no convolutional "
                     "or attention layer to explain.")
            return
        c1, c2, c3, c4, c5 = st.columns([2, 3, 3, 2, 2])
        method, options = classification_rank.method_picker(c1, s.session.methods(s.model_name),
                                                            s.model_name)
        opts = tuple(sorted(options.items()))
        target = c2.selectbox("Explain class (type to search)", list(range(len(lm.labels))),
                              key="target", format_func=lambda i: f"{lm.labels[i]} ({i})")
        layer = c3.selectbox("Target layer", layers, key="layer")
        colormap = c4.selectbox("Colormap", COLORMAPS, key="colormap")
        opacity = c5.slider("Opacity", 0.0, 1.0, 0.5, 0.05, key="opacity")

        chart_col, cam_col = st.columns([2, 5])
        chart_col.plotly_chart(plots.topk_bar([p.label for p in result.top],
                                              [p.probability for p in result.top],
                                              title=f"Top-{len(result.top)}"),
                               key="topk_chart")
        with cam_col:
            slow = method in cam.SLOW
            try:
                with ui.spinner(f"{method}…" + (" (many forward passes; this takes a while)"
                                               if slow else "")):
                    expl = s.session.explain(item.sha256, s.model_name, method, target, layer,
                                             item.image, opts)
            except (LensError, RuntimeError) as exc:   # RuntimeError: torch on that layer
                st.error(f"{method} on layer '{layer}' failed: {exc}")
                expl = None
            if expl is not None:
                over = expl.overlay(colormap, opacity)
                v1, v2, v3 = st.columns(3)
                v1.image(expl.view, caption="as the model sees it", width="stretch")
                v2.image(heatmap_rgb(expl.heatmap, colormap),
                         caption=f"{method} · {expl.layer}", width="stretch")
                v3.image(over, caption=f"overlay · {expl.target_label}", width="stretch")
                ui.download_button("Download overlay (PNG)", lambda: png_bytes(over),
                                   f"{Path(item.name).stem}_{method}_{target}.png",
                                   "image/png", key="download_overlay")
        if expl is not None:
            with ui.spinner("Measuring how faithful the map is…"):
                faith = s.session.faithfulness_of(item.sha256, s.model_name, method, target,
                                                  layer, opts, item.image, expl)
            classification_rank.faithfulness_metrics(faith)
        handle = s.session.model(s.model_name)
        classification_rank.ranking_view(handle, s.model_name, item, target, layer, options)
        classification_rank.sanity_view(handle, s.model_name, item, target, layer, options)


def compare_view(s: Screen) -> None:
    """One image through 2-4 models or 2-4 CAM methods, in a grid."""
    mode = st.radio("Compare", ["models", "methods"], horizontal=True, key="compare_mode")
    if mode == "models":
        st.session_state.setdefault("compare_models",
                                    [n for n in s.options if s.options[n] == "ready"][:2])
        picks = st.multiselect("Models (2–4)", list(s.options), max_selections=4,
                               key="compare_models")
        cells = [(m, st.session_state.get("method", "GradCAM")) for m in picks]
    else:
        st.session_state.setdefault("compare_methods", ["GradCAM", "EigenCAM"])
        picks = st.multiselect("Methods (2–4)", s.session.methods(s.model_name), max_selections=4,
                               key="compare_methods")
        cells = [(s.model_name, m) for m in picks]
    if len(cells) < 2:
        st.info("Pick at least two to compare.")
    elif s.intake:
        item = s.intake[0] if len(s.intake) == 1 else s.intake[st.session_state.get("picked", 0)]
        st.caption(f"Image: {item.name}. Each cell explains its own top-1 class.")
        grid = st.columns(len(cells))
        for col, (m_name, meth) in zip(grid, cells):
            with col:
                if load_model(s.session, m_name) is None:
                    continue
                res = s.session.predict(item.sha256, m_name, 1, item.image).best
                with ui.spinner(f"{meth} on {m_name}…"):
                    lay = s.session.layers(m_name)[0]
                    ex = s.session.explain(item.sha256, m_name, meth, res.index, lay, item.image)
                st.image(ex.overlay(), width="stretch",
                         caption=f"{m_name} · {meth}\n{res.label} ({res.probability:.0%})")


def evaluate_view(s: Screen) -> None:
    """A labelled folder (typed path or zip): accuracy, per class, confusion, mistakes, CSV."""
    st.caption("A folder with one subfolder per class, each named after one of the model's "
               "classes. By path on the server, or as a zip.")
    path_text = st.text_input("Folder path on the server", key="eval_path")
    eval_zip = st.file_uploader("…or upload a zip", type=["zip"], key="eval_zip")
    if st.button("Evaluate", key="run_eval", disabled=not s.loaded):
        with ui.showing_errors():
            bar = ui.ProgressBar("images evaluated")
            with ui.spinner("Reading the images…", eval_zip is not None):
                s.session.evaluate(s.model_name, path_text,
                                   eval_zip.getvalue() if eval_zip is not None else None, bar)
            bar.clear()
    if s.session.evaluation is not None:
        ev_model, ev = s.session.evaluation
        st.markdown(f"**{ev_model}** on {len(ev.items)} images")
        e1, e2, e3 = st.columns(3)
        e1.metric("Accuracy", f"{ev.accuracy:.1%}")
        e2.metric("Top-5 accuracy", f"{ev.top5_accuracy:.1%}")
        e3.metric("Unreadable images skipped", len(ev.skipped))
        st.dataframe(pd.DataFrame(ev.per_class(), columns=["class", "images", "accuracy"]),
                     hide_index=True, key="per_class")
        st.plotly_chart(plots.confusion_heatmap(ev.confusion, ev.classes,
                                                list(ev.classes) + ["other"]),
                        key="confusion_chart")
        ui.download_button("Download predictions (CSV)", ev.to_csv(), "evaluation.csv",
                           "text/csv", key="download_csv")
        if ev_model == s.model_name and s.loaded:
            classification_rank.folder_ranking_view(s.session.model(s.model_name), s.model_name,
                                                    ev)
            classification_robust.view(s, ev_model, ev)
        mistakes = ev.confident_mistakes()
        if mistakes:
            st.markdown("**Most confident mistakes** (CAM of the predicted class)")
            cols = st.columns(4)
            for i, m in enumerate(mistakes):
                with cols[i % 4], ui.showing_errors():
                    mi = images.load_image(m.path)
                    ex = s.session.explain(mi.sha256, ev_model, "GradCAM", m.pred_index,
                                 s.session.layers(ev_model)[0], mi.image)
                    st.image(ex.overlay(), width="stretch",
                             caption=f"{Path(m.path).name}: {m.pred_label} "
                                     f"({m.confidence:.0%}), true {m.true_label}")


def video_view(s: Screen) -> None:
    """A clip's frames classified at a chosen rate, merged into scenes with a keyframe CAM each."""
    clip = st.file_uploader("Upload a short clip", type=video.ACCEPTED_EXTENSIONS, key="clip")
    v1, v2 = st.columns(2)
    every = v1.slider("Sample one frame every (s)", 0.1, 5.0, 1.0, 0.1, key="every_s")
    min_len = v2.slider("Minimum scene duration (s)", 0.0, 30.0, 2.0, 0.5, key="min_scene_s")
    if clip is not None and s.loaded:
        with ui.showing_errors():
            bar = ui.ProgressBar("frames classified")
            info, preds = s.session.scenes(scratch.store_bytes(clip.getvalue(),
                                                               Path(clip.name).suffix),
                                           clip.file_id, s.model_name, every, bar)
            bar.clear()
            st.caption(f"{info.width}x{info.height}, {info.fps:.1f} fps, {info.frame_count} "
                       f"frames, {info.duration_s:.1f} s")
            segs = scenes.merge_segments(preds, min_len, info.duration_s)
            st.subheader(f"{len(segs)} scene{'s' if len(segs) != 1 else ''}")
            st.plotly_chart(plots.scene_timeline(
                [p.time_s for p in preds], [p.label for p in preds],
                [p.probability for p in preds],
                [(s.start_s, s.end_s, s.label) for s in segs]), key="timeline_chart")
            cols = st.columns(min(4, len(segs)) or 1)
            for i, seg in enumerate(segs):
                frame = video.read_frame(info, seg.keyframe_index)
                img = Image.fromarray(frame.rgb)
                ex = s.session.explain(f"{clip.file_id}:{frame.index}", s.model_name, "GradCAM",
                             seg.class_index, s.session.layers(s.model_name)[0], img)
                cols[i % len(cols)].image(ex.overlay(), width="stretch",
                                          caption=f"{seg.start_s:.1f}–{seg.end_s:.1f} s: "
                                                  f"{seg.label}")


def main() -> None:
    st.title("Scene classification")
    session = ui.service("classification", lambda: ClassificationSession(busy=ui.queued))
    online = registry.hub_reachable()
    offered = offered_models(online)
    model_name, top_k = sidebar(offered, online)
    tab_explain, tab_whatif, tab_compare, tab_eval, tab_video = ui.tabs(
        ["Explain", "What-if", "Compare", "Evaluate a folder", "Video scenes"],
        keep=("compare_mode", "compare_models", "compare_methods", "wi_corruption",
              "wi_severity", "method"))
    with tab_explain:
        intake = image_input()
    loaded = load_model(session, model_name) if model_name else None
    if loaded:
        ui.untrained_warning(loaded)
    s = Screen(session, offered, model_name, top_k, loaded, intake)
    # Explain, Evaluate and Video hold uploads and are always drawn; the others when open.
    for tab, view in ((tab_explain, explain_view), (tab_whatif, classification_whatif.whatif_view),
                      (tab_compare, compare_view), (tab_eval, evaluate_view),
                      (tab_video, video_view)):
        if tab.open or tab not in (tab_compare, tab_whatif):
            with tab:
                view(s)


main()
