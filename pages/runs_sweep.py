"""The Runs page's sweep views: parallel coordinates and a summary scatter over every run the
table shows, whose brushes and selections narrow the table (and so what is compared), and
what a sweep says beyond importance (interactions, the best configuration with its interval).
UI only: the numbers are `lib.runs.compare` and `lib.runs.sweep`."""

import json
from dataclasses import dataclass

import numpy as np
import streamlit as st

from lib import plots, runs, ui
from lib.core.links import RunsLink
from lib.runs import sweep

AXES = 6              # config axes drawn by default: the first keys that vary


@dataclass
class Brushing:
    """Which runs the sweep views keep: None when nothing is brushed or selected."""

    axes: runs.ParallelAxes          # every run of the folder, on the chosen axes
    metric: str | None
    names: set[str] | None
    brush: dict[str, list[tuple[float, float]]]
    picked: int                      # runs selected on the scatter (0: no selection)


def varying_keys(infos: list[runs.RunInfo], keys: list[str], limit: int) -> list[str]:
    """The first `limit` of `keys` whose value differs across the runs."""
    out = []
    flats = [runs.flatten(r.config) for r in infos]
    for key in keys:
        if len({json.dumps(f.get(key), sort_keys=True, default=str) for f in flats}) > 1:
            out.append(key)
            if len(out) == limit:
                break
    return out


def _link_brush() -> dict:
    """A brush from the link (`brush={"lr": [[0.001, 0.01]]}`); anything odd is ignored."""
    try:
        data = json.loads(RunsLink.parse(st.query_params).brush or "{}")
        return {str(k): [(float(a), float(b)) for a, b in v] for k, v in data.items()}
    except (ValueError, TypeError, AttributeError):
        return {}


def brushing(infos: list[runs.RunInfo], config_keys: list[str], metrics: list[str]) -> Brushing:
    """The brush on the parallel coordinates (reported by the browser, or from the link) and
    the scatter's selection, read before the table is drawn: they decide what it shows."""
    state = st.session_state
    if "pc_axes" not in state:                 # the link's axes (bound widgets), else defaults
        linked = [k for k in st.query_params.get_all("pc_axes") if k in config_keys]
        state["pc_axes"] = linked or varying_keys(infos, config_keys, AXES) or config_keys[:3]
    if state.get("pc_metric") not in metrics:
        linked = st.query_params.get("pc_metric")
        state["pc_metric"] = linked if linked in metrics else next(
            (m for m in metrics if "acc" in m or "map" in m.lower()),
            metrics[0] if metrics else None)
    chosen = [k for k in state["pc_axes"] if k in config_keys]
    axes = runs.parallel_axes(infos, chosen, state["pc_metric"])
    version = state.setdefault("brush_version", 0)
    reported = ui.plotly_brush("parallel", version, key="pc_brush")
    if "brush" not in state:
        state["brush"] = _link_brush()
    if reported != state.get("_brush_reported", {}):     # the visitor brushed: it wins
        state["brush"] = state["_brush_reported"] = reported
    brush = {k: v for k, v in state["brush"].items() if k in axes.columns}
    st.query_params["brush"] = json.dumps(brush) if brush else ""
    names = axes.brushed(brush) if brush else None
    picked = 0
    selection = state.get("scatter")
    drawn = state.get("_scatter_names", [])
    points = (selection or {}).get("selection", {}).get("point_indices", []) if isinstance(
        selection, dict) else getattr(getattr(selection, "selection", None), "point_indices", [])
    if points:
        chosen_names = {drawn[i] for i in points if 0 <= i < len(drawn)}
        picked = len(chosen_names)
        names = chosen_names if names is None else names & chosen_names
    return Brushing(axes, state["pc_metric"], names, brush, picked)


def clear() -> None:
    """Forget the brush (a new version: the browser's old report no longer counts) and the
    scatter's selection."""
    st.session_state["brush_version"] = st.session_state.get("brush_version", 0) + 1
    st.session_state["brush"] = {}
    st.session_state["_brush_reported"] = {}
    st.session_state.pop("scatter", None)


def sweep_view(b: Brushing, text_shown: set[str], config_keys: list[str],
               metrics: list[str]) -> None:
    """Parallel coordinates of every run the text filter keeps (WebGL: all drawn), brushable;
    a summary scatter whose box or lasso selects runs; both narrow the table above."""
    if not metrics or not config_keys:
        st.info("The runs need config keys and numeric summary metrics for these views.")
        return
    p1, p2, p3 = st.columns([3, 2, 1])
    p1.multiselect("Config axes", config_keys, key="pc_axes", bind="query-params")
    p2.selectbox("Metric", metrics, key="pc_metric", bind="query-params")
    higher = p3.toggle("higher is better", value="loss" not in (b.metric or ""),
                       key="pc_higher", bind="query-params")
    lines = [i for i, n in enumerate(b.axes.names) if n in text_shown]
    columns = {k: v[lines] for k, v in b.axes.columns.items()}
    values = columns.get(b.metric, np.array([]))
    finite = np.flatnonzero(np.isfinite(values))
    best = (int(finite[np.argmax(values[finite])] if higher else finite[np.argmin(
        values[finite])]) if len(finite) else None)
    st.plotly_chart(plots.parallel_coordinates(columns, b.metric, b.axes.categories, best,
                                               b.brush, b.axes.log), key="parallel")
    c1, c2 = st.columns([4, 1])
    if b.names is not None:
        c1.caption(f"Brushed and selected: {len(b.names):,} of {len(lines):,} runs; the table "
                   "and the comparison hold them.")
    else:
        c1.caption(f"{len(lines):,} runs drawn. Drag along an axis to brush a range (drag "
                   "again on the same axis for another range; click beside it to drop it): "
                   "the table keeps the runs inside every brush.")
    c2.button("Clear brush", key="clear_brush", on_click=clear,
              disabled=b.names is None)
    if best is not None:
        name = b.axes.names[lines[best]]
        st.success(f"Best run drawn: **{name}** ({b.metric} = {values[best]:.4g})")
    x_key = st.selectbox("Scatter: x axis", [k for k in columns if k != b.metric] or
                         list(columns), key="scatter_x", bind="query-params")
    drawn = [b.axes.names[i] for i in lines]
    st.session_state["_scatter_names"] = drawn
    x = columns[x_key]
    log_x = x_key in b.axes.log
    x = 10 ** x if log_x else x
    st.plotly_chart(plots.summary_scatter(x, values, drawn, x_key, b.metric, log_x),
                    key="scatter", on_select="rerun", selection_mode=("box", "lasso"))
    st.caption("Draw a box or a lasso on the scatter to keep those runs; double-click it to "
               "let go.")


def what_sweep_says(selected: list[runs.RunInfo], metric: str) -> None:
    """Interactions of the top parameters, and the best configuration with its interval."""
    if st.toggle("Interactions: which pairs of parameters act together", key="imp_pairs",
                 bind="query-params"):
        with ui.showing_errors(), ui.queued("Interactions"), ui.spinner(
                "Computing partial dependences…"):
            pairs = sweep.interactions(selected, metric)
            st.plotly_chart(plots.interaction_bars(pairs["first"] + " × " + pairs["second"],
                                                   pairs["H"], metric), key="interactions")
            st.caption("Friedman's H of each pair of the four most important parameters, from "
                       "a random forest fitted to the runs: 0 when the pair's effects on the "
                       "metric add up, 1 when its effect is all interaction. Forests see some "
                       "interaction in any data; read values under about 0.2 as none.")
    higher = st.session_state.get("pc_higher", "loss" not in metric)
    if st.toggle("Best configuration, with its interval", key="imp_best",
                 bind="query-params"):
        bar = ui.ProgressBar("refits")
        with ui.showing_errors(), ui.queued("Best configuration"):
            best = sweep.best_config(selected, metric, higher=higher, resamples=100,
                                     progress=bar)
            st.success(f"Best run: **{best.run}**, {metric} = {best.observed:.4g}. Expected at "
                       f"its configuration: **{best.expected:.4g}** (95% interval "
                       f"{best.low:.4g} to {best.high:.4g}).")
            st.dataframe({k: [str(v)] for k, v in best.config.items()}, key="best_config")
            st.caption(f"The best of {best.runs} runs is optimistic: its own noise helped it "
                       "win. The expected value is a random forest's estimate at its "
                       "configuration from all runs; the interval comes from refitting on runs "
                       f"drawn with replacement (100 times). {best.repeats} run(s) share this "
                       "configuration, seeds aside.")
        bar.clear()
