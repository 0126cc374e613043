"""The Runs page's per-run panes: logged media (images, tables) side by side across runs, and a
run's console output with its system metrics. UI only: the reading is `lib.runs.media`,
`lib.runs.console` and `lib.runs.system`."""

from collections.abc import Callable

import streamlit as st

from lib import plots, ui
from lib.core.errors import LensError
from lib.runs import console as run_console
from lib.runs import media as run_media
from lib.runs import system as run_system

MEDIA_RUNS = 8        # runs whose media are shown side by side


def console(selected: list) -> None:
    """A run's console output (its end) and system metrics, followed while it runs."""
    pick = st.selectbox("Run", [r.name for r in selected], key="console_run")
    info = next(r for r in selected if r.name == pick)

    @st.fragment(run_every=3.0 if info.state == "running" else None)
    def panes() -> None:
        out = run_console.console(info)
        if out.note:
            st.info(out.note)
        else:
            st.code(out.text or "(empty)", language=None, height=420)
            st.caption(f"The last {_size(out.shown)} of {_size(out.size)}"
                       + (" · following the running run" if info.state == "running" else ""))
        with ui.showing_errors():
            metrics = run_system.system_metrics(info)
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


def media(selected: list, histories_of: Callable) -> None:
    """Logged images and tables: one key, a step slider, the selected runs side by side."""
    shown = [r for r in selected if r.source != "cloud"][:MEDIA_RUNS]
    histories, _ = histories_of(shown, False)
    keys: dict[str, str] = {}
    for frame in histories.values():
        keys.update(run_media.media_keys(frame))
    if not keys:
        st.info("None of the selected runs logged images (wandb.Image) or tables "
                "(wandb.Table) that are on this machine.")
        return
    key = st.selectbox("Logged media", sorted(keys), key="media_key",
                       format_func=lambda k: f"{k} ({keys[k]})")
    steps = {n: {m.step: m for m in run_media.media_steps(h, key)} for n, h in histories.items()}
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
                    st.image(run_media.load_image(by_name[name], item.path), width="stretch",
                             caption=f"step {item.step}" + (f" · {item.caption}"
                                                            if item.caption else ""))
                else:
                    st.dataframe(run_media.load_table(by_name[name], item.path),
                                 hide_index=True, key=f"media_table_{name}")
                    st.caption(f"step {item.step}")
    if len(selected) > len(shown):
        st.caption(f"The first {MEDIA_RUNS} selected runs on this machine are shown.")


def report(selected: list, config_keys: list[str], summary_keys: list[str], pattern: str,
           smoothing: float, metric: str | None) -> str:
    """The comparison as one offline HTML file (built when the download is clicked): the runs,
    their config and summary differences, curves of the metrics asked for, and parameter
    importance for `metric`. Reads with the library only (no Streamlit calls: it runs after
    the page has)."""
    import pandas as pd

    from lib import runs
    from lib.core import html_report
    from lib.runs import sweep

    sections = [html_report.Section("Runs", [("runs", runs.runs_table(selected, config_keys,
                                                                      summary_keys))]),
                html_report.Section("Config differences", [("config", runs.config_diff(
                    selected).reset_index())]),
                html_report.Section("Summary differences", [("summary", runs.summary_diff(
                    selected).reset_index())])]
    local = [r for r in selected if r.source != "cloud"]
    read = runs.read_histories(r.path for r in local)
    histories = {r.name: read[r.path] for r in local if isinstance(read.get(r.path),
                                                                  pd.DataFrame)}
    numeric = sorted(set().union(*(runs.numeric_metrics(h) for h in histories.values())))
    figures = [plots.curves([(n, *runs.series(h, m, "_step", smoothing))
                             for n, h in histories.items()], m, "_step")
               for m in runs.match_metrics(numeric, pattern)[:8]]
    sections.append(html_report.Section("Curves", figures=figures, notes=[
        f"Metrics matching '{pattern}', smoothing {smoothing}; runs read on this machine."]))
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
