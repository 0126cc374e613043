"""Runs: W&B runs from local offline folders and the W&B cloud, compared side by side.

A view over the visitor's `RunsComparison` (lib/runs/service.py): the source picks the runs,
the table narrows them, the tabs (pages/runs_tabs.py) compare the selected ones. The
comparison lives in the URL (`lib.core.links.RunsLink`), so a copied link reopens it.
"""

import pandas as pd
import streamlit as st

from lib import ui

ui.page_setup()

from lib import runs
from lib.core import paths
from lib.core.errors import LensError
from lib.core.links import RunsLink
from lib.runs.service import Opened, RunsComparison, read_folder_runs
from pages import runs_sweep
from pages.runs_tabs import Screen, show_tabs, write_link


@st.cache_data(show_spinner="Reading runs…", max_entries=32)
def offline_runs(root: str, source: str, stamp: tuple):
    """The run table of a folder; `stamp` (runs.folder_stamp) re-reads it when logs change
    (each log's own disk cache still skips the unchanged ones)."""
    return read_folder_runs(root, source, stamp)


def comparison() -> RunsComparison:
    """This visitor's comparison, made on their first run; their W&B client goes when they
    leave."""
    def make():
        made = RunsComparison(ui.session_id(), read_folder=offline_runs)
        ui.on_session_end(made.close)
        return made
    return ui.service("runs", make)


def local_view(c: RunsComparison, link: RunsLink) -> Opened:
    """A folder of runs: a bundled one (the demo pack's first) or the visitor's own."""
    bundled = c.bundled()
    c1, c2 = st.columns([3, 1])
    default = link.path or bundled[0].shown

    def show_bundled() -> None:
        picked = next(b for b in bundled if b.label == st.session_state["bundled"])
        st.session_state["folder"] = picked.shown
    c2.selectbox("Bundled runs", [b.label for b in bundled], key="bundled",
                 index=bundled.index(c.bundled_as(default) or bundled[0]),
                 on_change=show_bundled)
    folder = c1.text_input("Folder holding wandb/offline-run-* (or run-*) folders",
                           value=default, key="folder")
    opened = Opened()
    try:
        opened = c.open_folder(folder)
        if opened.bundled:
            st.info(f"Showing {opened.bundled.what}. Type another folder to compare your own.")
        if not opened.infos and not opened.problems:
            st.warning(f"No W&B runs found under '{folder}' (looked for wandb/offline-run-*/"
                       "*.wandb and run-*/*.wandb).")
    except LensError as exc:
        ui.show_error(exc)
    write_link(source="local", path=folder)
    return opened


def cloud_view(c: RunsComparison, link: RunsLink) -> Opened:
    """A W&B cloud project, fetched with the visitor's key (used once, never kept)."""
    c1, c2 = st.columns(2)
    entity = c1.text_input("Entity", value=link.entity, key="entity")
    project = c2.text_input("Project", value=link.project, key="project")
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
            bar = ui.ProgressBar("runs fetched")
            c.fetch_cloud(entity, project, filters, key, bar)
            bar.clear()
            write_link(source="cloud", entity=entity, project=project)
        except LensError as exc:    # bad filters; CloudError: the key, the project, the network
            ui.show_error(exc)
        del key
    infos = runs.disambiguate(c.cloud_runs)
    if not infos:
        st.caption("Enter an entity and project and fetch. The key comes from WANDB_API_KEY, "
                   "Streamlit secrets, or the field above (used once, never kept).")
    return Opened(infos)


def problems_view(opened: Opened) -> None:
    """Runs that could not be read, and runs with corrupt records."""
    problems, infos = opened.problems, opened.infos
    if problems:
        reasons = "; ".join(f"{n} × {reason}" for reason, n in
                            runs.problem_reasons(problems)[:5])
        st.warning(f"Skipped {len(problems)} of {len(problems) + len(infos)} runs that could "
                   f"not be read: {reasons}. The others are shown.")
        with st.expander(f"Skipped runs ({len(problems)})"):
            st.dataframe(pd.DataFrame([{"run": paths.Path(p.path).parent.name,
                                        "problem": p.message} for p in problems]),
                         hide_index=True, key="skipped")
    damaged = [r for r in infos if r.dropped]
    if damaged:
        st.caption(f"{len(damaged)} runs had corrupt records (bad checksum) that were skipped: "
                   + ", ".join(r.name for r in damaged[:5]) + ("…" if len(damaged) > 5 else ""))


def table_view(c: RunsComparison, link: RunsLink, infos: list) -> Screen | None:
    """The run table (columns, text filter, the sweep views' brush), the Detection links of
    logged benchmarks, and the runs to compare; None until some are selected."""
    all_config = sorted(set().union(*(runs.flatten(r.config) for r in infos)))
    all_summary, numeric_all = runs.summary_keys(infos)
    by_name = {r.name: r for r in infos}
    if st.session_state.get("_runs_of") != sorted(by_name):   # another folder: fresh selection
        for key in ("selected", "pc_axes", "scatter_x"):
            st.session_state.pop(key, None)
        if "_runs_of" in st.session_state:       # not on opening: a link's brush is kept then
            runs_sweep.clear()
        st.session_state["_runs_of"] = sorted(by_name)
    brushed = runs_sweep.brushing(infos, all_config, numeric_all)   # the sweep views narrow it
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
        b2.button("Clear brush", key="clear_brush_table", on_click=runs_sweep.clear)
    detection = {r.name: c.detection_link(r) for r in infos}
    column_config = {}
    if any(detection.values()):       # benchmarks logged from the Detection page link back
        table.insert(1, "open", table["name"].map(detection))
        column_config["open"] = st.column_config.LinkColumn(
            "open", display_text="Detection ↗", help="Reopen this benchmark on the Detection "
            "page (same data, subset and models)")
    st.dataframe(table, hide_index=True, key="runs_table", column_config=column_config)
    wanted = [n for n in link.runs if n in by_name]
    shown = list(table["name"])
    s1, s2 = st.columns([4, 2])
    all_shown = s2.toggle(f"Compare all {len(shown):,} shown", key="all_shown",
                          disabled=not shown, bind="query-params")
    if all_shown:
        selected_names = shown
        s1.caption(f"Comparing every run the table shows ({len(shown):,}). Filter, or brush "
                   "the parallel coordinates, to narrow it.")
    else:
        picked = [n for n in st.session_state.get("selected", []) if n in by_name]
        options = list(dict.fromkeys(picked + wanted + shown[:1000]))   # the browser's list
        selected_names = s1.multiselect(
            "Runs to compare (any number)", options, key="selected",
            default=wanted or shown[:4],
            help="The first 1,000 runs the table shows are offered: filter or brush to reach "
            "others, or compare all shown." if len(shown) > 1000 else None)
        write_link(runs=tuple(selected_names) if len(selected_names) <= 100 else ())
    if not selected_names:
        st.info("Select runs to compare.")
        return None
    return Screen(c, link, infos, all_config, all_summary, numeric_all, brushed, by_text,
                  config_cols, summary_cols, [by_name[n] for n in selected_names])


def main() -> None:
    st.title("Runs")
    c = comparison()
    link = c.read_link(st.query_params)
    source = st.radio("Source", ["Local folder", "W&B cloud"], horizontal=True, key="source",
                      index=1 if link.source == "cloud" else 0)
    opened = local_view(c, link) if source == "Local folder" else cloud_view(c, link)
    problems_view(opened)
    if opened.infos:
        screen = table_view(c, link, opened.infos)
        if screen is not None:
            show_tabs(screen)


main()
