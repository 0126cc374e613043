"""The Classification page's folder robustness: the evaluated folder under ImageNet-C's
corruptions, top-1 error per corruption and severity, flip rate, and mCE and relative mCE
against a baseline model the visitor picks. A view over
`ClassificationSession.folder_robustness` and `lib.classification.robustness`."""

import pandas as pd
import streamlit as st

from lib import plots, ui
from lib.classification import robustness
from lib.core.errors import LensError
from lib.media import corruptions


def view(s, ev_model: str, ev) -> None:
    """Below a folder's evaluation: the same images under corruptions, against a baseline."""
    st.subheader("Robustness to corruptions")
    ready = [n for n, note in s.options.items() if note == "ready"]
    c1, c2, c3 = st.columns([4, 2, 3])
    names = c1.multiselect("Corruptions", corruptions.NAMES, default=list(robustness.BENCHMARK),
                           key="frob_corruptions", format_func=lambda n: n.replace("_", " "))
    sevs = c2.multiselect("Severities", list(corruptions.SEVERITIES),
                          default=list(corruptions.SEVERITIES), key="frob_severities")
    others = [n for n in ready if n != ev_model]
    baseline = c3.selectbox("Baseline (ImageNet-C uses AlexNet)", others or [ev_model],
                            key="frob_baseline")
    items = [(i.path, i.true_label) for i in ev.items]
    try:
        chosen = corruptions.conditions(names or None, sevs or None, robustness.BENCHMARK)
    except LensError as exc:
        ui.show_error(exc)
        return
    n = len(items) * (len(chosen) + 1)
    st.caption(f"{len(chosen)} corruption × severity pairs × {len(items)} images: {n:,} "
               f"classifications per model ({ev_model} and {baseline}).")
    key = (ev_model, baseline, tuple(items), chosen)
    if st.session_state.get("frob_done") != key:
        if not st.button("Run the corruptions", key="frob_run"):
            return
        st.session_state["frob_done"] = key
    picked = tuple(dict.fromkeys(c for c, _ in chosen))
    levels = tuple(dict.fromkeys(v for _, v in chosen))
    with ui.showing_errors():
        results = {}
        for name in dict.fromkeys([ev_model, baseline]):
            bar = ui.ProgressBar(f"{name}: images classified")
            results[name] = s.session.folder_robustness(name, items, picked, levels, bar)
            bar.clear()
        mine, base = results[ev_model], results[baseline]
        ce = robustness.corruption_error(mine, base)
        m1, m2, m3, m4 = st.columns(4)
        m1.metric("Clean error", f"{mine.clean_error:.1%}")
        m2.metric(f"mCE vs {baseline}", f"{ce.mce:.1%}")
        m3.metric("Relative mCE", f"{ce.relative_mce:.1%}")
        m4.metric("Flip rate", f"{mine.flip_rate:.1%}",
                  help="How often the top-1 class differs from the clean image's.")
        table = mine.table()
        st.plotly_chart(plots.corruption_heatmap(
            table.to_numpy(), [c.replace("_", " ") for c in table.index], list(table.columns),
            f"{ev_model}: top-1 error under each corruption", "error"), key="frob_chart")
        frame = ce.per_corruption.merge(
            mine.errors.groupby("corruption", sort=False)[["error", "flip rate"]].mean()
            .reset_index(), on="corruption")
        st.dataframe(frame, hide_index=True, key="frob_table",
                     column_config={c: st.column_config.NumberColumn(format="%.3f")
                                    for c in frame.columns if c != "corruption"})
        both = pd.concat([r.errors.assign(model=k) for k, r in results.items()])
        ui.download_button("Download errors per corruption (CSV)", both.to_csv(index=False),
                           "classification-corruptions.csv", "text/csv", key="frob_csv")
