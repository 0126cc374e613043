"""Runs: W&B runs from local offline folders and the W&B cloud, compared side by side.

The comparison lives in the URL (query parameters), so a copied link reopens it.
"""


import pandas as pd
import streamlit as st

from lib import ui

ui.page_setup()

from lib import plots, runs
from lib.core import paths
from lib.core.errors import LensError
from lib.models import checkpoints
from lib.runs import sweep
from pages import runs_panes as panes
from pages import runs_sweep as sweep_ui

st.title("Runs")
params = st.query_params


@st.cache_data(show_spinner="Reading runs…", max_entries=32)
def offline_runs(root: str, source: str, stamp: tuple):
    """The run table of a folder; `stamp` (runs.folder_stamp) re-reads it when logs change
    (each log's own disk cache still skips the unchanged ones)."""
    infos, problems = runs.load_offline(root, source=source)
    return runs.disambiguate(infos), problems


# -- source -----------------------------------------------------------------------------------

source = st.radio("Source", ["Local folder", "W&B cloud"], horizontal=True, key="source",
                  index=1 if ui.link_text("source") == "cloud" else 0)
infos: list[runs.RunInfo] = []
problems: list[runs.ReadProblem] = []

if source == "Local folder":
    demo_runs, sample_runs = checkpoints.checkpoints_dir(), runs.SAMPLE_RUNS
    bundled = {  # folder as shown (relative to the project) -> (folder, what it is)
        paths.shown(demo_runs): (demo_runs, "the **demo pack's training runs** (the classifier "
                                 "and detectors in `checkpoints/demo-*`, trained by "
                                 "`python -m lib.train`)"),
        paths.shown(sample_runs): (sample_runs, "the bundled **sample runs** (a tiny MLP trained "
                                   "on two spirals by `python -m lib.demo.samples runs`)")}
    c1, c2 = st.columns([3, 1])
    default = ui.link_text("path", paths.shown(demo_runs))

    def show_bundled() -> None:
        st.session_state["folder"] = paths.shown(demo_runs if st.session_state["bundled"]
                                                 == "demo pack" else sample_runs)
    c2.selectbox("Bundled runs", ["demo pack", "spirals sweep"], key="bundled",
                 index=1 if default == paths.shown(sample_runs) else 0, on_change=show_bundled)
    folder = c1.text_input("Folder holding wandb/offline-run-* (or run-*) folders",
                           value=default, key="folder")
    bundled_as = folder.strip() if folder.strip() in bundled else None
    try:
        root = bundled[bundled_as][0] if bundled_as else paths.data_path(folder, "any")
        infos, problems = offline_runs(str(root), "sample" if bundled_as else "offline",
                                       runs.folder_stamp(root))
        if bundled_as:
            st.info(f"Showing {bundled[bundled_as][1]}. Type another folder to compare your own.")
        if not infos and not problems:
            st.warning(f"No W&B runs found under '{folder}' (looked for wandb/offline-run-*/"
                       "*.wandb and run-*/*.wandb).")
    except LensError as exc:
        ui.show_error(exc)
    params["source"], params["path"] = "local", folder
else:
    c1, c2 = st.columns(2)
    entity = c1.text_input("Entity", value=ui.link_text("entity"), key="entity")
    project = c2.text_input("Project", value=ui.link_text("project"), key="project")
    filters = st.text_input("Filters (MongoDB-style JSON, optional)", key="filters",
                            placeholder='{"state": "finished"}')
    with st.form("cloud", clear_on_submit=True):
        has_key = runs.api_key(secrets=ui.secrets()) is not None
        # Used for this request only: the form clears it, it is never shown or stored.
        api_key = st.text_input("API key" + (" (optional: one is configured)" if has_key else ""),
                                type="password")
        fetch = st.form_submit_button("Fetch runs")
    if fetch and entity and project:
        key = runs.api_key(api_key, ui.secrets())
        try:
            flt = runs.parse_filters(filters)
            bar = ui.ProgressBar("runs fetched")
            api = runs.cloud_api(key)
            fetched = runs.load_cloud(entity, project, filters=flt, api=api, progress=bar)
            runs.remember_client(ui.session_id(), api)   # histories use the same key
            visitor = ui.session_id()
            ui.on_session_end(lambda: runs.forget_client(visitor))
            del api
            bar.clear()
            st.session_state["cloud_runs"] = fetched
            params["source"], params["entity"], params["project"] = "cloud", entity, project
        except LensError as exc:    # bad filters; CloudError: the key, the project, the network
            ui.show_error(exc)
        del key
    infos = runs.disambiguate(st.session_state.get("cloud_runs", []))
    if not infos:
        st.caption("Enter an entity and project and fetch. The key comes from WANDB_API_KEY, "
                   "Streamlit secrets, or the field above (used once, never kept).")

if problems:
    reasons = "; ".join(f"{n} × {reason}" for reason, n in runs.problem_reasons(problems)[:5])
    st.warning(f"Skipped {len(problems)} of {len(problems) + len(infos)} runs that could not be "
               f"read: {reasons}. The others are shown.")
    with st.expander(f"Skipped runs ({len(problems)})"):
        st.dataframe(pd.DataFrame([{"run": paths.Path(p.path).parent.name, "problem": p.message}
                                   for p in problems]), hide_index=True, key="skipped")
damaged = [r for r in infos if r.dropped]
if damaged:
    st.caption(f"{len(damaged)} runs had corrupt records (bad checksum) that were skipped: "
               + ", ".join(r.name for r in damaged[:5]) + ("…" if len(damaged) > 5 else ""))

if not infos:
    st.stop()

# -- run table --------------------------------------------------------------------------------

all_config = sorted(set().union(*(runs.flatten(r.config) for r in infos)))
all_summary, numeric_all = runs.summary_keys(infos)
by_name = {r.name: r for r in infos}
if st.session_state.get("_runs_of") != sorted(by_name):   # another folder: fresh selection
    for key in ("selected", "pc_axes", "scatter_x"):
        st.session_state.pop(key, None)
    if "_runs_of" in st.session_state:       # not on opening: a link's brush is kept then
        sweep_ui.clear()
    st.session_state["_runs_of"] = sorted(by_name)
brushed = sweep_ui.brushing(infos, all_config, numeric_all)   # the sweep views narrow the table
c1, c2, c3 = st.columns([2, 2, 2])
config_cols = c1.multiselect("Config columns", all_config, key="config_cols",
                             default=[k for k in all_config if k in ("lr", "optimizer")][:4],
                             bind="query-params")
summary_cols = c2.multiselect("Summary columns", all_summary, key="summary_cols",
                              default=numeric_all[:3], bind="query-params")
text_filter = c3.text_input("Filter runs (name, tag or state contains)", key="run_filter",
                            bind="query-params")
by_text = runs.filter_table(runs.runs_table(infos, config_cols, summary_cols), text_filter)
table = runs.filter_table(by_text, names=brushed.names)
if brushed.names is not None:
    b1, b2 = st.columns([4, 1])
    b1.caption(f"{len(table):,} of {len(by_text):,} runs inside the brush on the parallel "
               f"coordinates" + (f" and the {brushed.picked:,} selected on the scatter"
                                 if brushed.picked else "") + ".")
    b2.button("Clear brush", key="clear_brush_table", on_click=sweep_ui.clear)
links = {r.name: runs.detection_link(r) for r in infos}
column_config = {}
if any(links.values()):       # benchmarks logged from the Detection page link back to it
    table.insert(1, "open", table["name"].map(links))
    column_config["open"] = st.column_config.LinkColumn(
        "open", display_text="Detection ↗", help="Reopen this benchmark on the Detection page "
        "(same data, subset and models)")
st.dataframe(table, hide_index=True, key="runs_table", column_config=column_config)
wanted = [n for n in ui.link_text("runs").split(",") if n in by_name]
shown = list(table["name"])
s1, s2 = st.columns([4, 2])
all_shown = s2.toggle(f"Compare all {len(shown):,} shown", key="all_shown", disabled=not shown,
                      bind="query-params")
if all_shown:
    selected_names = shown
    s1.caption(f"Comparing every run the table shows ({len(shown):,}). Filter, or brush the "
               "parallel coordinates, to narrow it.")
else:
    picked = [n for n in st.session_state.get("selected", []) if n in by_name]
    options = list(dict.fromkeys(picked + wanted + shown[:1000]))   # the browser's list
    selected_names = s1.multiselect(
        "Runs to compare (any number)", options, key="selected", default=wanted or shown[:4],
        help="The first 1,000 runs the table shows are offered: filter or brush to reach "
        "others, or compare all shown." if len(shown) > 1000 else None)
    params["runs"] = ",".join(selected_names) if len(selected_names) <= 100 else ""
selected = [by_name[n] for n in selected_names]
if not selected:
    st.info("Select runs to compare.")
    st.stop()


def diff_tab(frame: pd.DataFrame, what: str, key: str) -> None:
    """A config or summary diff: how many keys differ, then the table (differing first; a
    row per run past `MAX_LINES` runs, a column per run below)."""
    if frame.empty:
        st.info(f"The selected runs have no {what} that differ.")
        return
    st.caption(f"{frame.attrs['differing']} {what} differ across {len(selected):,} runs "
               "(listed first).")
    st.dataframe((frame.T if len(selected) > panes.MAX_LINES else frame).astype(str), key=key)


def config_view() -> None:
    """Config keys that differ across the selected runs."""
    show_all = st.toggle("Show all keys", key="diff_all")
    diff_tab(runs.config_diff(selected, all_keys=show_all), "config keys", "config_diff")


def summary_view() -> None:
    """Summary metrics that differ across the selected runs."""
    show_all_summary = st.toggle("Show equal metrics too", key="summary_all")
    diff_tab(runs.summary_diff(selected, all_keys=show_all_summary), "summary metrics",
             "summary_diff")


def curves_view() -> None:
    """Metric curves (followed live when asked), their statistics, the CSV export."""
    has_offline = any(r.source != "cloud" for r in selected)
    live = st.toggle("Live", key="live", disabled=not has_offline,
                     help="Follow runs that are still being written: every 3 s only the records "
                     "appended since the last read are read, and the curves redrawn.")
    k1, k2, k3, k4 = st.columns([3, 2, 2, 1])
    pattern = k1.text_input("Metrics (patterns, comma-separated)", key="metrics",
                            value=ui.link_text("metrics", "val/*"))
    smoothing = k3.slider("Smoothing (EMA)", 0.0, 0.99, ui.link_number("smooth", 0.0, 0.0, 0.99),
                          0.01, key="smoothing")
    log_y = k4.toggle("log y", key="log_y")
    group_key = st.selectbox("Group runs by config key", ["(none)"] + all_config, key="group_by")
    params["metrics"], params["smooth"] = pattern, str(smoothing)
    x_axis, metrics, numeric, keys = "_step", [], [], None

    many = len(selected) > panes.MAX_LINES and not live
    if many:                         # columns named in the summaries: only those are read
        numeric = runs.summary_keys(selected)[1]
        x_axis = k2.selectbox("x axis", ["_step", "wall time"] + numeric, key="x_axis")
        metrics = runs.match_metrics(numeric, pattern)
        wall = ("_timestamp", "_runtime") if x_axis == "wall time" else (x_axis,)
        keys = tuple(sorted(set(metrics) | set(wall)))
        st.caption(f"{len(selected):,} runs: each metric drawn as the mean and min–max band "
                   + ("of each group" if group_key != "(none)" else "of all of them")
                   + f" (single lines up to {panes.MAX_LINES} runs).")

    @st.fragment(run_every=3.0 if live else None)
    def draw_curves() -> None:
        nonlocal x_axis, metrics, numeric
        # offline logs show their spinner only when read (offline_histories)
        with ui.spinner("Loading histories…", live or any(r.source == "cloud" for r in selected)):
            histories, notes = panes.histories_of(selected, live, keys if many else None)
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
                groups = runs.grouped_bands(selected, histories, group_key, metric, x_axis,
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
            export = runs.runs_table(selected, all_config, all_summary)
            ui.download_button("Export comparison (CSV)", export.to_csv(index=False),
                               "runs_comparison.csv", "text/csv", key="export_csv")

    draw_curves()

numeric_summary = runs.summary_keys(selected)[1]


def parallel_view() -> None:
    """Every run the text filter keeps, on config axes: brushing narrows the table."""
    sweep_ui.sweep_view(brushed, set(by_text["name"]), all_config, numeric_all)


def importance_view() -> None:
    """Which config keys predict a metric (as W&B computes it)."""
    if len(selected) < 3 or not numeric_summary:
        st.info("Select at least three runs with a numeric summary metric.")
    else:
        metric = st.selectbox("Metric", numeric_summary, key="imp_metric",
                              index=next((i for i, k in enumerate(numeric_summary)
                                          if "acc" in k or "map" in k.lower()), 0))
        with ui.spinner("Fitting the random forest…"):
            importance = runs.parameter_importance(selected, metric)
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
                    result = sweep.importance_intervals(selected, metric, resamples=100,
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
            numeric = sweep.numeric_parameters(selected, metric)
            if numeric:
                param = st.selectbox("The metric against", numeric, key="trend_param")
                with ui.showing_errors():
                    t = sweep.trend(selected, metric, param)
                    st.plotly_chart(plots.metric_trend(t.x, t.y, t.fit_x, t.fit_y, param, metric,
                                                       t.log_x, t.r2), key="trend")
            sweep_ui.what_sweep_says(selected, metric)


report_args = (list(selected), config_cols, summary_cols,
               st.session_state.get("metrics") or ui.link_text("metrics", "val/*"),
               float(st.session_state.get("smoothing", 0.0)),
               st.session_state.get("imp_metric") or brushed.metric,
               [k for k in st.session_state.get("pc_axes", []) if k in all_config])
ui.download_button("Report (HTML)", lambda: panes.report(*report_args), "runs-report.html",
                   "text/html", key="export_report")

# The open tab is part of the comparison's link (`tab=Curves`); only it is computed and drawn.
def media_view() -> None:
    panes.media(selected)


def console_view() -> None:
    panes.console(selected)


tabs = ui.tabs(["Config diff", "Summary", "Curves", "Parallel coordinates",
                "Parameter importance", "Media", "Console & system"],
               keep=("diff_all", "summary_all", "live", "log_y", "group_by", "x_axis",
                     "pc_axes", "pc_metric", "pc_higher", "scatter_x", "imp_metric",
                     "imp_intervals", "imp_pairs", "imp_best", "trend_param", "media_key",
                     "media_step", "console_run"))
for tab, view in zip(tabs, (config_view, summary_view, curves_view, parallel_view,
                            importance_view, media_view, console_view)):
    if tab.open:
        with tab:
            view()
