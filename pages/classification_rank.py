"""Classification's explanation views beyond one map: the method picker with each method's
measured cost, every method ranked by faithfulness on an image (and over a labelled folder),
and the randomisation sanity checks. UI only: the work is `lib.classification.ranking` and
`lib.classification.sanity`."""

import base64
import io
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st
from PIL import Image

from lib import plots, ui
from lib.classification import cam, faithfulness, ranking, sanity
from lib.classification.classify import to_tensor
from lib.classification.faithfulness import MEASURES, RANKED
from lib.core.errors import LensError
from lib.models import cache, registry

SLOW_NOTE = "ScoreCAM, AblationCAM, FullGrad, SESS, Occlusion: many forward passes each"


def method_label(model_name: str, name: str) -> str:
    """A method's name with its latest measured time on this machine, if any."""
    t = cam.measured_time(model_name, name)
    return name if t is None else f"{name} · {t * 1000:.0f} ms" if t < 1 else f"{name} · {t:.1f} s"


def method_picker(column, names: list[str], model_name: str) -> tuple[str, dict]:
    """The method select box (a `?method=` in the link picks the first method shown) and the
    chosen method's extra arguments."""
    asked = st.query_params.get("method")
    if asked is not None:
        if asked in names:
            st.session_state["method"] = asked
        else:
            st.warning("The link names a CAM method Lens does not have for this model; "
                       f"showing {names[0]}.")
        del st.query_params["method"]
    if st.session_state.get("method") not in names:
        st.session_state["method"] = names[0]
    labels = {n: method_label(model_name, n) for n in names}   # as measured when drawn
    name = column.selectbox("CAM method", names, key="method", format_func=labels.get,
                            help="Measured time of each method on this machine, once run.")
    return name, option_widgets(name)


def option_widgets(name: str) -> dict:
    """Widgets for a method's extra arguments, at their defaults."""
    values = {}
    for opt in cam.method(name).options:
        key = f"opt_{name}_{opt.name}"
        if isinstance(opt.default, str):
            values[opt.name] = st.selectbox(f"{name}: {opt.name}", opt.choices, key=key)
        elif isinstance(opt.default, int):
            values[opt.name] = st.slider(f"{name}: {opt.name}", *opt.choices, opt.default,
                                         key=key)
        else:
            values[opt.name] = st.slider(f"{name}: {opt.name}", float(opt.choices[0]),
                                         float(opt.choices[1]), float(opt.default), 0.1,
                                         key=key)
    return values


def faithfulness_metrics(faith: faithfulness.Faithfulness) -> None:
    """The map's measures beside the random baseline's."""
    st.markdown("**Faithfulness** (target class probability; random-map baseline as delta)")
    cols = st.columns(4)
    for col, key in zip(cols, ("road", "deletion_auc", "insertion_auc", "keep_top_change")):
        label, higher = MEASURES[key]
        mine, base = faith.scores.value(key), faith.random.value(key)
        col.metric(label, f"{mine:.3f}", delta=f"{mine - base:+.3f} vs random",
                   delta_color="normal" if higher else "inverse",
                   help=f"Random map: {base:.3f}. " + ("Higher" if higher else "Lower")
                   + " means more faithful.")
    if faith.scores.road <= faith.random.road:
        st.warning("This map scores no better than a random map on ROAD: read it with care.")


def _thumb(heatmap) -> str:
    """A small colour heatmap as a PNG data URL (for a table's image column)."""
    if heatmap is None:
        return ""
    small = np.asarray(Image.fromarray(cam.heatmap_rgb(heatmap)).resize((56, 56)))
    buf = io.BytesIO()
    Image.fromarray(small).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _number_columns(df: pd.DataFrame) -> dict:
    return {k: st.column_config.NumberColumn(label, format="%.3f",
                                             help="higher is better" if higher
                                             else "lower is better")
            for k, (label, higher) in MEASURES.items() if k in df}


def _names(handle, include_slow: bool) -> list[str]:
    names = cam.applicable(handle.model.model)
    return [n for n in names if include_slow or n not in cam.SLOW]


def ranking_view(handle: cache.ModelHandle, model_name: str, item, target: int,
                 layer: str, options: dict) -> None:
    """One action: every applicable method's map for this class, scored and ranked."""
    st.subheader("Rank every method on this image")
    c1, c2, c3 = st.columns([3, 1, 1])
    slow = c1.checkbox(f"Include the slow methods ({SLOW_NOTE})", value=True, key="rank_slow")
    go = c2.button("Rank methods", key="rank_go", type="primary")
    c3.button("Cancel", key="rank_cancel", help="Stops the ranking; nothing is kept.")
    key = (item.sha256, model_name, target, layer, slow, repr(sorted(options.items())))
    if go:
        lm = handle.model
        bar = ui.ProgressBar("maps made and scored")
        with ui.showing_errors(), ui.queued("Ranking methods"):
            names = _names(handle, slow)
            result = ranking.rank_methods(lm, to_tensor(lm, item.image), names, target, layer,
                                          {st.session_state.get("method"): options},
                                          lock=handle.lock, progress=bar)
            st.session_state["ranking"] = (key, result)
        bar.clear()
    stored = st.session_state.get("ranking")
    if not stored or stored[0] != key:
        st.caption("Computes each method's map for the chosen class and scores it with the "
                   "same five measures; the random map is a row to beat.")
        return
    result: ranking.Ranking = stored[1]
    table = result.table()
    table.insert(2, "map", [_thumb(next(r.heatmap for r in result.rows if r.method == m))
                            for m in table["method"]])
    st.caption(f"{len(result.rows) - 1} methods on '{result.target_label}' at layer "
               f"{result.layer}, {result.seconds:.1f} s in all. Click a column to sort.")
    st.dataframe(table, hide_index=True, key="ranking_table", column_config={
        "map": st.column_config.ImageColumn("map", width="small"),
        "mean rank": st.column_config.NumberColumn(format="%.1f"),
        "beats random": st.column_config.NumberColumn(help=f"of the {len(RANKED)} measures"),
        "seconds": st.column_config.NumberColumn("time alone (s)", format="%.2f"),
        **_number_columns(table)})
    best = table.iloc[0]
    if best["method"] == ranking.BASELINE:
        st.warning("No method beats the random map here: none of these explanations can be "
                   "trusted for this image.")
    ui.download_button("Download ranking (CSV)", table.drop(columns=["map"]).to_csv(index=False),
                       "cam_ranking.csv", "text/csv", key="download_ranking")


def sanity_view(handle: cache.ModelHandle, model_name: str, item, target: int,
                layer: str, options: dict) -> None:
    """The cascading model-randomisation test, and data randomisation where a twin exists."""
    st.subheader("Sanity checks")
    lm = handle.model
    names = cam.applicable(lm.model)
    st.session_state.setdefault("sanity_methods", [n for n in names if n not in cam.SLOW])
    picks = st.multiselect("Methods to check", names, key="sanity_methods")
    twin = sanity.shuffled_twin(lm.spec, registry.all_specs("classification"))
    go = st.button("Run sanity checks", key="sanity_go", disabled=not picks)
    key = (item.sha256, model_name, target, layer, tuple(picks))
    if go:
        bar = ui.ProgressBar("layers randomised")
        with ui.showing_errors(), ui.queued("Sanity checks"):
            tensor = to_tensor(lm, item.image)
            casc = sanity.model_randomisation(lm, tensor, picks, target, layer,
                                              {st.session_state.get("method"): options},
                                              lock=handle.lock, progress=bar)
            data = None
            if twin:
                other = cache.load(twin, "classification")
                data = sanity.data_randomisation(lm, other.model, tensor, picks, target, layer,
                                                 lock=handle.lock, shuffled_lock=other.lock)
            st.session_state["sanity"] = (key, casc, data, twin)
        bar.clear()
    stored = st.session_state.get("sanity")
    if not stored or stored[0] != key:
        st.caption("Model randomisation re-initialises the model's layers from the classifier "
                   "down and compares each map with the trained model's (Adebayo et al., "
                   "2018)." + ("" if twin else " No checkpoint trained on shuffled labels "
                               "matches this model, so the data-randomisation view is off."))
        return
    _, casc, data, twin = stored
    similar = casc.still_similar()
    if similar:
        listed = ", ".join(f"{m} ({casc.steps[-1].spearman[m]:.2f})" for m in similar)
        st.warning(f"These maps barely change when the model is destroyed (rank correlation "
                   f"with every layer random): {listed}. They show the image more than the "
                   "model: do not read them as explanations of it.")
    rows = pd.DataFrame(casc.rows())
    st.plotly_chart(plots.sanity_curves(rows), key="sanity_chart")
    shown = st.selectbox("Maps of", list(casc.methods), key="sanity_show")
    steps = [("trained", casc.original[shown])] + [
        (f"−{s.randomised}", s.maps[shown]) for s in casc.steps]
    cols = st.columns(min(6, len(steps)))
    for i, (caption, heat) in enumerate(steps):
        if heat is not None:
            cols[i % len(cols)].image(cam.heatmap_rgb(heat), caption=caption, width="stretch")
    if data is not None:
        st.markdown(f"**Data randomisation**: against `{twin}` (same architecture, trained on "
                    "shuffled labels)")
        st.dataframe(pd.DataFrame({"method": list(data.methods),
                                   "spearman": [data.spearman[m] for m in data.methods],
                                   "ssim": [data.ssim[m] for m in data.methods]}),
                     hide_index=True, key="data_random_table")


def folder_ranking_view(handle: cache.ModelHandle, model_name: str, ev) -> None:
    """The ranking over the evaluated folder's images, with 95% bootstrap intervals."""
    st.markdown("**Rank CAM methods over this folder** (each image explained for its true "
                "class; mean and 95% bootstrap interval)")
    c1, c2, c3 = st.columns([2, 3, 1])
    n = c1.slider("Images", 2, 64, 8, key="folder_rank_n")
    slow = c2.checkbox(f"Include the slow methods ({SLOW_NOTE})", value=False,
                       key="folder_rank_slow")
    if c3.button("Rank", key="folder_rank_go"):
        lm = handle.model
        items = [(Path(i.path), i.true_label) for i in ev.items]
        layer = cam.layer_choices(lm.model)[0]
        bar = ui.ProgressBar("images ranked")
        try:
            with ui.queued("Ranking methods over the folder"):
                result = ranking.rank_folder(lm, items, _names(handle, slow), layer, n,
                                             lock=handle.lock, progress=bar)
            st.session_state["folder_ranking"] = (model_name, result)
        except LensError as exc:
            ui.show_error(exc)
        bar.clear()
    stored = st.session_state.get("folder_ranking")
    if stored and stored[0] == model_name:
        result: ranking.FolderRanking = stored[1]
        df = result.table
        shown = pd.DataFrame({"method": df["method"], "images": df["images"]})
        for col in ["mean rank", *MEASURES]:
            label = MEASURES[col][0] if col in MEASURES else col
            shown[label] = [f"{m:.3f} [{lo:.3f}, {hi:.3f}]" for m, lo, hi in
                            zip(df[col], df[f"{col} low"], df[f"{col} high"])]
        st.dataframe(shown, hide_index=True, key="folder_ranking_table")
        for skipped in result.skipped:
            st.caption(f"Skipped {skipped}")
