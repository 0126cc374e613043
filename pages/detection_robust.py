"""The Detection page's Robustness tab: COCO-C for the registry detectors on this dataset.
Each picked detector runs on the clean images and on every image under each chosen
corruption and severity (made on the fly, never written; a resumable job, here or on Ray);
the tab shows AP per corruption and severity, mPC and rPC with intervals, and the worst
corruption; the leaderboard gains mPC and rPC. A view over `DetectionBenchmark.robustness`."""

import json

import pandas as pd
import streamlit as st

from lib import plots, ui
from lib.core.errors import LensError
from lib.detection import robustness
from lib.media import corruptions

KEEP = ("rob_corruptions", "rob_severities", "rob_models", "rob_heatmap")


def chosen() -> tuple:
    """The corruptions and severities picked on the tab (default: COCO-C's 15 × 1-5)."""
    names = st.session_state.get("rob_corruptions") or list(robustness.BENCHMARK)
    severities = st.session_state.get("rob_severities") or list(corruptions.SEVERITIES)
    return robustness.conditions(names, severities)


def runner(s, specs: list, pairs: tuple) -> None:
    """Run / cancel the picked detectors' clean and corrupted jobs, with their progress."""
    work = [(spec, *s.bench.robustness_jobs(spec, pairs, s.map_by)) for spec in specs]
    left = [w for w in work if not (w[1].finished and w[2].finished)]
    if not left:
        return
    running = any(c.running or j.running for _, c, j in work)
    b1, b2 = st.columns(2)
    if b1.button("Run COCO-C" if not any(j.done for _, _, j in left) else "Resume COCO-C",
                 key="rob_run", disabled=running, type="primary"):
        for _, clean, job in left:
            clean.start(ray=s.choice.ray_options)
            job.start(ray=s.choice.ray_options)
        running = True
    if b2.button("Cancel", key="rob_cancel", disabled=not running):
        for _, clean, job in left:
            clean.cancel()
            job.cancel()

    @st.fragment(run_every=1.0 if running else None)
    def progress():
        busy = any(c.running or j.running for _, c, j in left)
        for spec, clean, job in left:
            if job.error or clean.error:
                st.error(f"{spec.name}: {job.error or clean.error} (partial results are kept; "
                         "Resume continues).")
            elif busy:
                ui.ProgressBar(f"{spec.name}: corrupted images")(job.progress)
        if not busy and all(c.finished and j.finished for _, c, j in left):
            st.rerun()
    progress()


def results(s) -> None:
    """mPC and rPC with intervals per model, the AP heatmap of one, and the downloads."""
    rows = []
    for name, r in s.robust.items():
        (lo, hi), (rlo, rhi) = r.mpc_interval, r.rpc_interval
        rows.append({"model": name, "clean AP": f"{r.clean_ap:.4f}",
                     "mPC [95% interval]": f"{r.mpc:.4f} [{lo:.4f}, {hi:.4f}]",
                     "rPC [95% interval]": f"{r.rpc:.1%} [{rlo:.1%}, {rhi:.1%}]",
                     "worst corruption": r.worst.replace("_", " ")})
    st.table(pd.DataFrame(rows).set_index("model"))
    st.caption(f"mPC: mean AP over the corruptions and severities; rPC = mPC / clean AP. "
               f"Intervals: {next(iter(s.robust.values())).resamples} bootstrap resamples of "
               "the images, the same resamples for the clean and every corrupted run.")
    name = st.selectbox("AP per corruption and severity of", list(s.robust), key="rob_heatmap")
    table = s.robust[name].table()
    st.plotly_chart(plots.corruption_heatmap(
        table.to_numpy(), [c.replace("_", " ") for c in table.index], list(table.columns),
        f"{name}: AP under each corruption", "AP"), key="rob_heatmap_chart")
    grids = pd.concat([r.grid.assign(model=n) for n, r in s.robust.items()])
    c1, c2 = st.columns(2)
    with c1:
        ui.download_button("Download AP per corruption (CSV)",
                           grids[["model", "corruption", "severity", "AP"]].to_csv(index=False),
                           "coco-c.csv", "text/csv", key="rob_csv")
    with c2:
        ui.download_button("Download mPC / rPC (JSON)",
                           json.dumps([r.as_json() for r in s.robust.values()], indent=1),
                           "coco-c.json", "application/json", key="rob_json")


def view(s) -> None:
    """The tab: what to run, the runs, the results."""
    runnable = [spec for spec in s.detector_specs if not spec.error]
    st.caption("COCO-C (Michaelis et al. 2019): every image under each corruption at each "
               "severity, made on the fly. Runs are cached and resume where they stopped.")
    c1, c2, c3 = st.columns([4, 2, 3])
    c1.multiselect("Corruptions", corruptions.NAMES, default=list(robustness.BENCHMARK),
                   key="rob_corruptions", format_func=lambda n: n.replace("_", " "))
    c2.multiselect("Severities", list(corruptions.SEVERITIES),
                   default=list(corruptions.SEVERITIES), key="rob_severities")
    default = [n for n in s.names if n in {spec.name for spec in runnable}]
    picked = c3.multiselect("Detectors", [spec.name for spec in runnable], default=default,
                            key="rob_models")
    try:
        pairs = chosen()
    except LensError as exc:
        ui.show_error(exc)
        return
    n = len(s.dataset.image_ids)
    st.caption(f"{len(pairs)} corruption × severity pairs × {n} images = {len(pairs) * n:,} "
               "inferences per detector, plus one clean pass.")
    specs = [spec for spec in runnable if spec.name in picked]
    if specs:
        runner(s, specs, pairs)
    if s.robust:
        results(s)
    elif not specs:
        st.info("Pick the detectors to run (imported predictions cannot run on new images).")
