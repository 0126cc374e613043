"""The Runs page's per-run panes: histories as the page reads them, logged media (images,
tables) side by side across runs, and a run's console output with its system metrics. UI
only: the reading is `lib.runs` and its `logged_media`, `console_log` and `system_metrics`."""

import pandas as pd
import streamlit as st

from lib import plots, runs, ui
from lib.core import paths
from lib.core.errors import LensError
from lib.runs import console_log, logged_media, system_metrics
from lib.runs.service import RunsComparison

MEDIA_RUNS = 8        # runs whose media are shown side by side


@st.cache_data(show_spinner="Loading histories…", max_entries=16)
def offline_histories(stamped: tuple[tuple[str, int, int], ...],
                      keys: tuple[str, ...] | None = None) -> dict:
    """Histories of (path, size, mtime) logs, read in parallel (a new stamp re-reads); only
    the columns `keys` when given (curves of many runs)."""
    return runs.read_histories((path for path, _, _ in stamped),
                               keys=set(keys) if keys is not None else None)


MAX_LINES = 40           # more selected runs than this are drawn as bands


def stamp(path: str) -> tuple[str, int, int]:
    st_ = paths.Path(path).stat()
    return path, st_.st_size, st_.st_mtime_ns


def histories_of(comparison: RunsComparison, chosen: list[runs.RunInfo], live: bool,
                 keys: tuple[str, ...] | None = None) -> tuple[dict[str, pd.DataFrame], set]:
    """History frames by run name (only the columns `keys` of offline logs, when given);
    offline runs followed live when asked (by the visitor's comparison)."""
    histories: dict[str, pd.DataFrame] = {}
    notes = set()
    offline = [r for r in chosen if r.source != "cloud"]
    if live:
        for r in offline:
            tail = comparison.follow(r)
            try:
                tail.poll()
                histories[r.name] = tail.history
                notes.add(f"live:{r.name}: {tail.info.state}")
            except (LensError, OSError) as exc:
                st.error(f"{r.name}: {exc}")
    elif offline:
        try:
            read = offline_histories(tuple(stamp(r.path) for r in offline), keys)
        except OSError as exc:
            read = {}
            st.error(f"Could not read a run log: {exc}")
        for r in offline:
            frame = read.get(r.path)
            if isinstance(frame, LensError):
                ui.show_error(frame)
            elif frame is not None:
                histories[r.name] = frame
                if frame.attrs.get("dropped"):
                    st.warning(f"{r.name}: {frame.attrs['dropped']} corrupt records (bad "
                               "checksum or values) were skipped.")
    for r in chosen:
        if r.source == "cloud":
            try:
                histories[r.name], note = runs.cloud_history(r, api=comparison.client())
                notes.add(note)
            except LensError as exc:
                st.error(f"{r.name}: {exc}")
    return histories, notes




def console(selected: list) -> None:
    """A run's console output (its end) and system metrics, followed while it runs."""
    pick = st.selectbox("Run", [r.name for r in selected], key="console_run")
    info = next(r for r in selected if r.name == pick)

    @st.fragment(run_every=3.0 if info.state == "running" else None)
    def panes() -> None:
        out = console_log.console(info)
        if out.note:
            st.info(out.note)
        else:
            st.code(out.text or "(empty)", language=None, height=420)
            st.caption(f"The last {_size(out.shown)} of {_size(out.size)}"
                       + (" · following the running run" if info.state == "running" else ""))
        with ui.showing_errors():
            metrics = system_metrics.system_metrics(info)
            if metrics.note:
                st.info(metrics.note)
                return
            frame = metrics.frame
            charts = metrics.charts()
            for col, (title, keys) in zip(st.columns(2) * len(charts), charts):
                name = f"{title}: {keys[0]}" if len(keys) == 1 else title   # no legend
                col.plotly_chart(plots.curves([(k, frame["seconds"], frame[k]) for k in keys],
                                              name, "seconds since the first sample"),
                                 key=f"system_{title}")
            if metrics.left_out:
                st.caption(f"{metrics.left_out} values that were not finite numbers were "
                           "left out.")
    panes()


def media(comparison: RunsComparison, selected: list) -> None:
    """Logged images and tables: one key, a step slider, the selected runs side by side."""
    shown = [r for r in selected if r.source != "cloud"][:MEDIA_RUNS]
    histories, _ = histories_of(comparison, shown, False)
    keys: dict[str, str] = {}
    for frame in histories.values():
        keys.update(logged_media.media_keys(frame))
    if not keys:
        st.info("None of the selected runs logged images (wandb.Image) or tables "
                "(wandb.Table) that are on this machine.")
        return
    key = st.selectbox("Logged media", sorted(keys), key="media_key",
                       format_func=lambda k: f"{k} ({keys[k]})")
    steps = {n: {m.step: m for m in logged_media.media_steps(h, key)} for n, h in histories.items()}
    all_steps = sorted(set().union(*steps.values()))
    step = (st.select_slider("Step", all_steps, value=all_steps[-1], key="media_step")
            if len(all_steps) > 1 else all_steps[0])
    by_name = {r.name: r for r in shown}
    for col, (name, at) in zip(st.columns(min(len(steps), 4)) * 2, steps.items()):
        with col:
            st.markdown(f"**{name}**")
            item = at.get(step) or at.get(max((s for s in at if s <= step), default=-1))
            if item is None:
                st.caption(f"nothing logged by step {step}")
                continue
            with ui.showing_errors():
                if keys[key] == "image":
                    st.image(logged_media.load_image(by_name[name], item.path), width="stretch",
                             caption=f"step {item.step}" + (f" · {item.caption}"
                                                            if item.caption else ""))
                else:
                    st.dataframe(logged_media.load_table(by_name[name], item.path),
                                 hide_index=True, key=f"media_table_{name}")
                    st.caption(f"step {item.step}")
    if len(selected) > len(shown):
        st.caption(f"The first {MEDIA_RUNS} selected runs on this machine are shown.")


def report(selected: list, config_keys: list[str], summary_keys: list[str], pattern: str,
           smoothing: float, metric: str | None, axes: list[str]) -> str:
    """The comparison as one offline HTML file (built when the download is clicked): the runs,
    their config and summary differences, curves of the metrics asked for (bands past
    `MAX_LINES` runs), the parallel coordinates on `axes`, and parameter importance for
    `metric`. Reads with the library only (no Streamlit calls: it runs after the page has)."""
    from lib.core import html_report
    from lib.runs import sweep

    sections = [html_report.Section("Runs", [("runs", runs.runs_table(selected, config_keys,
                                                                      summary_keys))])]
    if len(selected) <= MAX_LINES:
        sections += [html_report.Section("Config differences", [("config", runs.config_diff(
                         selected).reset_index())]),
                     html_report.Section("Summary differences", [("summary", runs.summary_diff(
                         selected).reset_index())])]
    local = [r for r in selected if r.source != "cloud"]
    many = len(local) > MAX_LINES
    wanted = runs.match_metrics(runs.summary_keys(local)[1], pattern)[:8] if many else None
    read = runs.read_histories((r.path for r in local), keys=set(wanted) if many else None)
    histories = {r.name: read[r.path] for r in local if isinstance(read.get(r.path),
                                                                  pd.DataFrame)}
    numeric = sorted(set().union(*(runs.numeric_metrics(h) for h in histories.values())))
    figures = []
    for m in wanted if many else runs.match_metrics(numeric, pattern)[:8]:
        if many:
            band = runs.group_band(list(histories.values()), m, "_step", smoothing)
            figures.append(plots.curves([(f"mean of {len(histories)}", band["x"], band["mean"])],
                                        m, "_step", bands=[("all runs", band["x"], band["min"],
                                                            band["max"])]))
        else:
            figures.append(plots.curves([(n, *runs.series(h, m, "_step", smoothing))
                                         for n, h in histories.items()], m, "_step"))
    sections.append(html_report.Section("Curves", figures=figures, notes=[
        f"Metrics matching '{pattern}', smoothing {smoothing}; runs read on this machine"
        + (f"; {len(histories)} runs drawn as their mean and min–max band." if many else ".")]))
    if metric and axes:
        pc = runs.parallel_axes(selected, axes, metric)
        sections.append(html_report.Section("Parallel coordinates", figures=[
            plots.parallel_coordinates(pc.columns, metric, pc.categories, log=pc.log)]))
    if metric:
        table = runs.parameter_importance(selected, metric)
        if len(table):
            section = html_report.Section(f"Parameter importance for {metric}", [
                ("importance", table)], [plots.importance_bars(
                    table["parameter"], table["importance"], table["correlation"], metric)])
            try:
                ranges = sweep.importance_intervals(selected, metric, resamples=50)
                section.tables.append(("importance-intervals", ranges.table))
                section.notes.append(ranges.verdict())
            except LensError as exc:
                section.notes.append(str(exc))
            sections.append(section)
    return html_report.render("Run comparison", f"{len(selected)} runs compared in Lens",
                              sections)


def _size(n: int) -> str:
    return f"{n:,} bytes" if n < 1024 else f"{n / 1024:,.0f} KB" if n < 2**20 else \
        f"{n / 2**20:,.1f} MB"
