"""The Runs page's tabs (diffs, curves, parallel coordinates, importance, media, console) as
views over one `Screen`: the visitor's comparison, the runs read, and those selected."""

from dataclasses import dataclass

import pandas as pd
import streamlit as st

from lib import plots, runs, ui
from lib.core.links import RunsLink
from lib.runs import sweep
from lib.runs.service import RunsComparison
from pages import runs_panes, runs_sweep


@dataclass
class Screen:
    """What the tabs show: the comparison, the link the page opened with, every run read and
    their config and summary keys, the runs the table shows and those selected."""
    comparison: RunsComparison
    link: RunsLink
    infos: list[runs.RunInfo]
    all_config: list[str]
    all_summary: list[str]
    numeric_all: list[str]
    brushed: runs_sweep.Brushing
    by_text: pd.DataFrame
    config_cols: list[str]
    summary_cols: list[str]
    selected: list[runs.RunInfo]

    @property
    def numeric_summary(self) -> list[str]:
        return runs.summary_keys(self.selected)[1]


def write_link(**fields) -> None:
    ui.write_link(RunsLink, **fields)


def diff_tab(s: Screen, frame: pd.DataFrame, what: str, key: str) -> None:
    """A config or summary diff: how many keys differ, then the table (differing first; a
    row per run past `MAX_LINES` runs, a column per run below)."""
    if frame.empty:
        st.info(f"The s.selected runs have no {what} that differ.")
        return
    st.caption(f"{frame.attrs['differing']} {what} differ across {len(s.selected):,} runs "
               "(listed first).")
    many = len(s.selected) > runs_panes.MAX_LINES
    st.dataframe((frame.T if many else frame).astype(str), key=key)


def config_view(s: Screen) -> None:
    """Config keys that differ across the s.selected runs."""
    show_all = st.toggle("Show all keys", key="diff_all")
    diff_tab(s, runs.config_diff(s.selected, all_keys=show_all), "config keys", "config_diff")


def summary_view(s: Screen) -> None:
    """Summary metrics that differ across the s.selected runs."""
    show_all_summary = st.toggle("Show equal metrics too", key="summary_all")
    diff_tab(s, runs.summary_diff(s.selected, all_keys=show_all_summary), "summary metrics",
             "summary_diff")


def curves_view(s: Screen) -> None:
    """Metric curves (followed live when asked), their statistics, the CSV export."""
    has_offline = any(r.source != "cloud" for r in s.selected)
    live = st.toggle("Live", key="live", disabled=not has_offline,
                     help="Follow runs that are still being written: every 3 s only the records "
                     "appended since the last read are read, and the curves redrawn.")
    k1, k2, k3, k4 = st.columns([3, 2, 2, 1])
    pattern = k1.text_input("Metrics (patterns, comma-separated)", key="metrics",
                            value=s.link.metrics)
    smoothing = k3.slider("Smoothing (EMA)", 0.0, 0.99, s.link.smooth, 0.01, key="smoothing")
    log_y = k4.toggle("log y", key="log_y")
    group_key = st.selectbox("Group runs by config key", ["(none)"] + s.all_config, key="group_by")
    write_link(metrics=pattern, smooth=smoothing)
    x_axis, metrics, numeric, keys = "_step", [], [], None

    many = len(s.selected) > runs_panes.MAX_LINES and not live
    if many:                         # columns named in the summaries: only those are read
        numeric = runs.summary_keys(s.selected)[1]
        x_axis = k2.selectbox("x axis", ["_step", "wall time"] + numeric, key="x_axis")
        metrics = runs.match_metrics(numeric, pattern)
        wall = ("_timestamp", "_runtime") if x_axis == "wall time" else (x_axis,)
        keys = tuple(sorted(set(metrics) | set(wall)))
        st.caption(f"{len(s.selected):,} runs: each metric drawn as the mean and min–max band "
                   + ("of each group" if group_key != "(none)" else "of all of them")
                   + f" (single lines up to {runs_panes.MAX_LINES} runs).")

    @st.fragment(run_every=3.0 if live else None)
    def draw_curves() -> None:
        nonlocal x_axis, metrics, numeric
        # offline logs show their spinner only when read (offline_histories)
        with ui.spinner("Loading histories…", live or any(r.source == "cloud" for r in s.selected)):
            histories, notes = runs_panes.histories_of(s.comparison, s.selected, live,
                                                       keys if many else None)
        if not many:
            numeric = sorted(set().union(*(runs.numeric_metrics(h) for h in histories.values())))
            x_axis = k2.selectbox("x axis", ["_step", "wall time"] + numeric, key="x_axis")
            metrics = runs.match_metrics(numeric, pattern)
        if live:
            rows = sum(len(h) for h in histories.values())
            states = sorted(n[5:] for n in notes if n.startswith("live:"))
            notes = {n for n in notes if not n.startswith("live:")}
            st.caption(f"Live: {rows} rows read so far ({'; '.join(states[:5])}); refreshed "
                       "every 3 s.")
        if not metrics:
            st.warning(f"No metric matches '{pattern}'. Logged: {', '.join(numeric) or 'none'}.")
        for note in notes - {""}:
            st.caption(f"Cloud histories {note}.")
        stats_frames = []
        for metric in metrics:
            if group_key == "(none)" and not many:
                lines = [(name, *runs.series(h, metric, x_axis, smoothing))
                         for name, h in histories.items()]
                fig = plots.curves(lines, metric, x_axis, log_y)
            else:
                lines, bands = [], []
                groups = runs.grouped_bands(s.selected, histories, group_key, metric, x_axis,
                                            smoothing) if group_key != "(none)" else [
                    ("all runs", len(histories), runs.group_band(list(histories.values()),
                                                                 metric, x_axis, smoothing))]
                for gname, count, band in groups:
                    lines.append((f"{gname} (mean of {count})", band["x"], band["mean"]))
                    bands.append((gname, band["x"], band["min"], band["max"]))
                fig = plots.curves(lines, metric, x_axis, log_y, bands=bands)
            st.plotly_chart(fig, key=f"curve_{metric}")
            stats = runs.metric_stats(histories, metric)
            stats.insert(1, "metric", metric)
            stats_frames.append(stats)
        if stats_frames:
            stats_all = pd.concat(stats_frames, ignore_index=True)
            st.dataframe(stats_all, hide_index=True, key="metric_stats")
            export = runs.runs_table(s.selected, s.all_config, s.all_summary)
            ui.download_button("Export comparison (CSV)", export.to_csv(index=False),
                               "runs_comparison.csv", "text/csv", key="export_csv")

    draw_curves()


def parallel_view(s: Screen) -> None:
    """Every run the text filter keeps, on config axes: brushing narrows the table."""
    runs_sweep.sweep_view(s.brushed, set(s.by_text["name"]), s.all_config, s.numeric_all)


def importance_view(s: Screen) -> None:
    """Which config keys predict a metric (as W&B computes it)."""
    if len(s.selected) < 3 or not s.numeric_summary:
        st.info("Select at least three runs with a numeric summary metric.")
    else:
        metric = st.selectbox("Metric", s.numeric_summary, key="imp_metric",
                              index=next((i for i, k in enumerate(s.numeric_summary)
                                          if "acc" in k or "map" in k.lower()), 0))
        with ui.spinner("Fitting the random forest…"):
            importance = runs.parameter_importance(s.selected, metric)
        if importance.empty:
            st.info(f"No config key varies across the runs that have {metric}.")
        else:
            st.plotly_chart(plots.importance_bars(importance["parameter"],
                                                  importance["importance"],
                                                  importance["correlation"], metric),
                            key="importance")
            st.caption(f"As W&B computes it, over {int(importance['runs'].max())} runs with "
                       f"{metric}: a random forest (scikit-learn, 200 trees) predicts the metric "
                       "from the config; bars are its feature importances, colours the sign of "
                       "each key's correlation. Categorical keys are one-hot (key=value); keys "
                       "that never vary are left out.")
            st.dataframe(importance, hide_index=True, key="importance_table")
            if st.toggle("How sure? Refit on resampled runs (intervals and a noise floor)",
                         key="imp_intervals"):
                bar = ui.ProgressBar("refits")
                with ui.showing_errors(), ui.queued("Importance intervals"):
                    result = sweep.importance_intervals(s.selected, metric, resamples=100,
                                                        progress=bar)
                    t = result.table
                    (st.success if result.findings else st.info)(result.verdict())
                    st.plotly_chart(plots.importance_bars(
                        t["parameter"], t["importance"], t["correlation"], metric, t["low"],
                        t["high"], result.noise_high), key="importance_intervals")
                    st.dataframe(t, hide_index=True, key="importance_interval_table")
                    st.caption("Each bar's range: 95% of the importances when the forest (100 "
                               "trees) is refitted on the runs drawn with replacement, 100 "
                               f"times. {sweep.NOISE} is a column of random numbers fitted "
                               "alongside: a parameter whose range does not clear its range "
                               "is indistinguishable from noise with this many runs.")
                bar.clear()
            numeric = sweep.numeric_parameters(s.selected, metric)
            if numeric:
                param = st.selectbox("The metric against", numeric, key="trend_param")
                with ui.showing_errors():
                    t = sweep.trend(s.selected, metric, param)
                    st.plotly_chart(plots.metric_trend(t.x, t.y, t.fit_x, t.fit_y, param, metric,
                                                       t.log_x, t.r2), key="trend")
            runs_sweep.what_sweep_says(s.selected, metric)



def media_view(s: Screen) -> None:
    """Logged images and tables side by side."""
    runs_panes.media(s.comparison, s.selected)


def console_view(s: Screen) -> None:
    """A run's console output and system metrics."""
    runs_panes.console(s.selected)


VIEWS = {"Config diff": config_view, "Summary": summary_view, "Curves": curves_view,
         "Parallel coordinates": parallel_view, "Parameter importance": importance_view,
         "Media": media_view, "Console & system": console_view}
#: widgets inside tabs whose values survive while their tab is closed (`ui.tabs`)
KEEP = ("diff_all", "summary_all", "live", "log_y", "group_by", "x_axis", "pc_axes",
        "pc_metric", "pc_higher", "scatter_x", "imp_metric", "imp_intervals", "imp_pairs",
        "imp_best", "trend_param", "media_key", "media_step", "console_run")


def show_tabs(s: Screen) -> None:
    """The report download, then the open tab (part of the comparison's link, `tab=Curves`):
    only it is computed and drawn."""
    report_args = (list(s.selected), s.config_cols, s.summary_cols,
                   st.session_state.get("metrics") or s.link.metrics,
                   float(st.session_state.get("smoothing", 0.0)),
                   st.session_state.get("imp_metric") or s.brushed.metric,
                   [k for k in st.session_state.get("pc_axes", []) if k in s.all_config])
    ui.download_button("Report (HTML)", lambda: runs_panes.report(*report_args),
                       "runs-report.html", "text/html", key="export_report")
    for tab, view in zip(ui.tabs(list(VIEWS), keep=KEEP), VIEWS.values()):
        if tab.open:
            with tab:
                view(s)
