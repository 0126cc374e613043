"""The detection page's Statistics tab: intervals on every model's numbers, a paired
comparison of any two, and slices with the worst ones found automatically. UI only: the
computations are the visitor's `DetectionBenchmark` (lib/detection/service.py)."""

from collections.abc import Callable

import pandas as pd
import streamlit as st

from lib import plots, ui
from lib.core import html_report
from lib.core.errors import LensError
from lib.detection import benchmark, calibration, intervals, slices
from lib.detection.metrics import masks
from lib.detection.service import DetectionBenchmark


def metrics_table(bench: DetectionBenchmark, table: pd.DataFrame, reports: dict) -> None:
    """The Metrics tab's COCO numbers, each model's headline ones with their interval."""
    numbers = list(table.columns)
    with ui.spinner("Bootstrap intervals…"), ui.queued("Bootstrap intervals"):
        for n, r in reports.items():        # the Statistics tab's defaults: 1,000 resamples
            boot = bench.bootstrap(r)
            table[f"{n} ±"] = [f"{boot.intervals[k][0] - boot.point[k]:+.4f} "
                               f"{boot.intervals[k][1] - boot.point[k]:+.4f}"
                               if k in boot.intervals else "" for k in table.index]
    st.dataframe(table.style.format("{:.4f}", na_rep="n/a", subset=numbers),
                 key="metrics_table")
    st.caption("±: the 95% bootstrap interval around each headline number (1,000 resamples of "
               "the images; the Statistics tab has more).")


def mask_table(mask_metrics: dict[str, dict]) -> None:
    """Mask and boundary IoU metrics of imported results that carry masks."""
    shown = {f"{n} · {t}": m[t] for n, m in mask_metrics.items() for t in masks.MASK_TYPES}
    if shown:
        st.markdown("**Masks** (the results carry them): mask IoU (`segm`) and boundary IoU")
        st.dataframe(pd.DataFrame(shown).where(lambda t: t >= 0).style.format(
            "{:.4f}", na_rep="n/a"), key="mask_metrics")


def robust_sections(robust: dict) -> list[html_report.Section]:
    """COCO-C in the HTML report: mPC and rPC with intervals, and AP per corruption."""
    if not robust:
        return []
    summary = pd.DataFrame([{k: v for k, v in r.row().items()} | {"clean AP": r.clean_ap}
                            for r in robust.values()])
    return [html_report.Section("Robustness (COCO-C)", [("coco-c", summary)] + [
        (f"coco-c-{n}", r.table().reset_index()) for n, r in robust.items()], notes=[
        "mPC: mean AP over the corruptions and severities; rPC = mPC / clean AP; 95% "
        f"intervals from {next(iter(robust.values())).resamples} bootstrap resamples of the "
        "images. Tables after the first: AP per corruption (rows) and severity (columns)."])]


def view(bench: DetectionBenchmark, board: dict, score_thr: float,
         gallery: Callable[[list[int]], None], robust: dict | None = None) -> None:
    """Intervals of every model on the board, a paired comparison, calibration, slices; the
    HTML report also holds COCO-C (`robust`) where it was run."""
    dataset = bench.dataset
    c1, c2, c3 = st.columns(3)
    resamples = c1.number_input("Bootstrap resamples", value=1000, step=100, key="resamples",
                                help="Images are drawn with replacement this many times; "
                                     "each draw reweights the one matching, so nothing is "
                                     "evaluated again.")
    seed = c2.number_input("Bootstrap seed", 0, 10**6, 0, key="boot_seed")
    try:
        resamples = intervals.check_resamples(int(resamples))
    except LensError as exc:
        ui.show_error(exc)
        return
    sections: list[html_report.Section] = []      # what the HTML report holds, as shown
    ui.download_button(
        "Report (HTML)", lambda: html_report.render(
            "Detection benchmark", f"{len(dataset.image_ids):,} images, "
            f"{len(dataset.data['annotations']):,} objects · {dataset.annotations_path.name} · "
            f"made by Lens", sections), "detection-report.html", "text/html",
        key="export_report")
    with ui.spinner(f"{resamples:,} resamples per model…"), \
            ui.queued("Bootstrap intervals"):
        boots = {n: bench.bootstrap(r, resamples, int(seed)) for n, r in board.items()}
    c3.caption(f"95% bootstrap intervals from {resamples:,} resamples of the "
               f"{len(dataset.image_ids):,} images (seed {seed}). AP is biased upwards on a "
               "finite sample; the interval corrects for it, so it can sit a little below "
               "the estimate.")
    rows = [b.row(n) for n, b in boots.items()]
    st.subheader("Every model with its interval")
    whiskers = plots.interval_whiskers(rows, intervals.HEADLINE)
    st.plotly_chart(whiskers, key="whiskers")
    table = pd.DataFrame([{"model": r["model"], **{
        k: f"{r[k]:.4f} ({r[f'{k} low']:.4f}–{r[f'{k} high']:.4f})" for k in intervals.HEADLINE}}
        for r in rows])
    st.dataframe(table, hide_index=True, key="interval_table")
    coco = pd.DataFrame({n: r.metrics.stats for n, r in board.items()}).where(
        lambda t: t >= 0).rename_axis("metric").reset_index()
    sections += [html_report.Section("Leaderboard", [("leaderboard", benchmark.leaderboard(
        board, robust))]), *robust_sections(robust or {}), html_report.Section(
        "Every model with its 95% interval", [("intervals", table)], [whiskers],
        [f"Basic bootstrap intervals from {resamples:,} resamples of the images (seed {seed})."
         ]), html_report.Section("The 12 COCO numbers", [("coco", coco)])]
    ui.download_button("Intervals (CSV)", pd.DataFrame(rows).to_csv(index=False),
                       "intervals.csv", "text/csv", key="export_intervals")

    names = list(board)
    if len(names) >= 2:
        st.subheader("Is B really better than A?")
        p1, p2 = st.columns(2)
        a = p1.selectbox("A", names, index=0, key="paired_a")
        b = p2.selectbox("B", names, index=1, key="paired_b")
        if a == b:
            st.info("Pick two different models.")
        else:
            with ui.showing_errors(), ui.queued("Paired bootstrap"):
                pair = bench.paired((a, board[a]), (b, board[b]), resamples, int(seed))
                verdict = pair.verdict()
                (st.info if verdict.startswith("No distinguishable") else st.success)(verdict)
                st.dataframe(pair.table(), hide_index=True, key="paired_table",
                             column_config={"B ahead in": st.column_config.NumberColumn(
                                 format="percent")})
                per = pair.per_class.assign(name=lambda d: d["category_id"].map(
                    dataset.categories))
                bars = plots.delta_bars(per["name"], per["ΔAP"], per["low"], per["high"],
                                        f"Per-class ΔAP, {b} − {a} (95% intervals)")
                st.plotly_chart(bars, key="paired_classes")
                sections.append(html_report.Section(f"{b} against {a}", [
                    ("paired", pair.table())], [bars], [verdict]))

    calibration_view(bench, board, score_thr, int(seed), sections)

    st.subheader("Slices")
    s1, s2, s3 = st.columns(3)
    model = s1.selectbox("Model", names, key="slice_model")
    min_objects = s2.number_input("At least this many objects", 1, 10**6, 30,
                                  key="slice_min")
    areas_text = s3.text_input("Your area ranges (px²)", "0-256", key="slice_areas",
                               help="low-high, comma-separated; 0-256 is objects under 16².")
    groups_text = st.text_input("Your category groups", "", key="slice_groups",
                                placeholder="name: id id id; e.g. round: 1 2",
                                help="Each group gets the mean AP of its classes, as COCO's "
                                     "supercategories do.")
    with ui.showing_errors():
        areas = slices.parse_areas(areas_text)
        groups = slices.parse_groups(groups_text)
        slices.category_groups(dataset, groups)            # unknown ids: a message here
        found = bench.slices(board[model], int(min_objects), areas, groups, resamples,
                             int(seed))
        table, worst, skipped = found.table, found.worst, found.skipped
        if not len(table):
            st.info(f"No slice has {min_objects} objects or more.")
            return
        if not worst:
            st.info(f"No slice with {min_objects} objects or more falls below the whole "
                    "set's AP.")
            return
        st.markdown("**Worst slices** (AP furthest below the whole set's, with intervals)")
        whole = boots[model].point["AP"]
        worst_table = pd.DataFrame([{
            "slice": w.slice.name, "objects": w.slice.objects, "AP": w.ap, "low": w.low,
            "high": w.high, "ΔAP": w.ap - whole} for w in worst])
        st.dataframe(worst_table, hide_index=True, key="worst_slices")
        sections.append(html_report.Section(f"Worst slices of {model}", [
            ("worst-slices", worst_table)], notes=[
            f"Of {len(table)} slices with at least {min_objects} objects, the five whose AP "
            f"falls furthest below the whole set's ({whole:.4f}), with 95% intervals."]))
        with st.expander(f"All {len(table)} slices"):
            if st.toggle("Intervals for every slice (one bootstrap each)", key="slice_all_ci"):
                bar = ui.ProgressBar("slices")
                with ui.queued("Slice intervals"):
                    table = bench.slice_intervals(board[model], int(min_objects), areas,
                                                  groups, resamples, int(seed), bar)
                bar.clear()
            st.dataframe(table, hide_index=True, key="slice_table")
            if skipped:
                st.caption("Not sliced: " + "; ".join(f"{k}: {v}" for k, v in
                                                       skipped.items()))
        st.caption("Annotation slices ignore other objects; a detection that matches no "
                   "object counts at the slice's share of its class (Hoiem et al.). Box sizes "
                   "follow COCO's area ranges.")
        pick = st.selectbox("Show the images of", [w.slice.name for w in worst],
                            key="slice_images")
        chosen = next(w.slice for w in worst if w.slice.name == pick)
        gallery(slices.images_of(dataset, chosen))


def calibration_view(bench: DetectionBenchmark, board: dict, score_thr: float, seed: int,
                     sections: list) -> None:
    st.subheader("Can I trust the scores? Calibration")
    k1, k2 = st.columns(2)
    names = list(board)
    model = k1.selectbox("Model", names, key="calib_model")
    method = k2.radio("Re-calibrate with", calibration.METHODS, horizontal=True,
                      key="calib_method")
    with ui.showing_errors():
        result = bench.calibration(board[model], method, score_thr, seed)
        before, after = result.before, result.after
        diagram = plots.reliability_diagram([
            (f"{model} as scored", before.bins["confidence"], before.bins["precision"],
             before.bins["detections"]),
            (f"{model}, {method}", after.bins["confidence"], after.bins["precision"],
             after.bins["detections"])])
        st.plotly_chart(diagram, key="reliability")
        calib = pd.DataFrame([
            {"scores": "as scored", "D-ECE": before.d_ece,
             f"F1 at score ≥ {score_thr}": result.f1_before},
            {"scores": method, "D-ECE": after.d_ece,
             f"F1 at score ≥ {score_thr}": result.f1_after}])
        st.dataframe(calib, hide_index=True, key="calibration_table",
                     column_config={c: st.column_config.NumberColumn(format="%.4f")
                                    for c in calib.columns[1:]})
        st.caption(f"Fitted on half of the images, measured on the other "
                   f"{result.held_out_images:,} ({before.detections:,} detections; a detection "
                   "is right when it matches an object of its class at IoU 0.5). D-ECE: the "
                   "detections' mean gap between confidence and precision, bin by bin. "
                   "Re-calibration keeps the order of the scores, so AP does not change; the "
                   "threshold's meaning, and so F1 at it, does.")
        sections.append(html_report.Section(f"Calibration of {model}", [
            ("calibration", calib)], [diagram], [
            f"Re-calibrated with {method} on half of the images; measured on the other "
            f"{result.held_out_images:,}. AP does not change (the order of scores is kept)."]))
