"""The Detection page's tabs (Metrics, Per class, Errors, Images, What-if, Robustness,
Dataset) as views over one
`Screen`: the visitor's benchmark service, their choices, and the reports on show."""

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st
from PIL import Image

from lib import plots, ui
from lib.classification import cam
from lib.core import paths
from lib.detection import (
    benchmark,
    datasets,
    detections,
    detectors,
    drawing,
    robustness,
)
from lib.detection.metrics import coco
from lib.detection.service import DetectionBenchmark
from lib.detection.tide import ERROR_TYPES
from lib.media import images
from lib.models import cache, registry
from pages import detection_explore, detection_robust, detection_stats, detection_whatif


@dataclass(frozen=True)
class Choice:
    """What the sidebar says: the data, the subset, the thresholds, where detectors run."""
    data: str                 # demo | path | upload (as logged benchmarks name it)
    subset: int
    seed: int
    score_thr: float
    map_by: str
    ray_options: object = None


@dataclass
class Screen:
    """What the tabs show: the service, the choice, the compared reports (one or two), every
    model on this dataset (`board`), and what the slots measured."""
    bench: DetectionBenchmark
    choice: Choice
    reports: dict[str, benchmark.Report]
    board: dict[str, benchmark.Report]
    specs: list[registry.ModelSpec]
    speeds: dict[str, dict] = field(default_factory=dict)
    mask_metrics: dict[str, dict] = field(default_factory=dict)
    robust: dict[str, robustness.Robustness] = field(default_factory=dict)   # COCO-C

    @property
    def dataset(self) -> datasets.CocoDataset:
        return self.bench.dataset

    @property
    def names(self) -> list[str]:
        return list(self.reports)

    @property
    def score_thr(self) -> float:
        return self.choice.score_thr

    @property
    def map_by(self) -> str:
        return self.choice.map_by

    @property
    def detector_specs(self) -> list[registry.ModelSpec]:
        return self.specs


@st.cache_data(show_spinner="EigenCAM…", max_entries=64)
def false_positive_cam(model: str, image_id: int, index: int, map_by: str, _picture, _box,
                       _category: int, _categories):
    """EigenCAM of a built-in Faster R-CNN for one of its detections (cached)."""
    detector = cache.load(model, "detection").model
    inverse = {v: k for k, v in detections.map_labels(detector.labels, _categories,
                                                     by=map_by).items()}
    with ui.queued("EigenCAM"):
        return cam.detector_cam(detector, _picture, _box, [inverse.get(_category, 0)])


def metrics_view(s: Screen) -> None:
    """COCO metrics, PR and F1 curves, IoUs, speed, exports."""
    # COCO reports -1 where the dataset has no objects of that size: show "n/a"
    table = pd.DataFrame({n: r.metrics.stats for n, r in s.reports.items()}).where(lambda t: t >= 0)
    if len(s.names) == 2:
        table["B − A"] = table[s.names[1]] - table[s.names[0]]
    detection_stats.metrics_table(s.bench, table, s.reports)
    detection_stats.mask_table({n: m for n, m in s.mask_metrics.items() if n in s.reports})
    st.plotly_chart(plots.metrics_bars({n: r.metrics.stats for n, r in s.reports.items()},
                                       ["AP", "AP50", "AP75", "AR100"]), key="metrics_chart")
    c1, c2 = st.columns(2)
    c1.plotly_chart(plots.pr_curves([(n, *coco.pr_curve(r.metrics))
                                     for n, r in s.reports.items()]), key="pr_overall")
    c2.plotly_chart(plots.f1_curves([(n, r.f1["threshold"], r.f1["F1"])
                                     for n, r in s.reports.items()]), key="f1_chart")
    ious = {n: r.ious(s.score_thr) for n, r in s.reports.items()}
    st.plotly_chart(plots.iou_histogram(ious), key="iou_hist")
    st.caption(" · ".join(f"{n}: mean IoU of matched TPs {v.mean():.3f} (score ≥ {s.score_thr})"
                          for n, v in ious.items() if len(v)))
    st.subheader("Speed (measured by the benchmark)")
    st.dataframe(pd.DataFrame(s.speeds).T if s.speeds else pd.DataFrame(), key="speed_table")
    export = pd.concat([r.metrics.per_class.assign(model=n) for n, r in s.reports.items()])
    e1, e2, e3 = st.columns(3)
    ui.download_button("Per-class AP (CSV)", export.to_csv(index=False), "per_class_ap.csv",
                       "text/csv", key="export_csv", where=e1)
    ui.download_button("Metrics (JSON)", json.dumps({n: r.metrics.stats for n, r in
                                                     s.reports.items()}, indent=2),
                       "metrics.json", "application/json", key="export_json", where=e2)
    if e3.button("Log to W&B", key="log_wandb"):
        for n, r in s.reports.items():
            where = benchmark.log_benchmark(
                n, s.dataset, s.choice.subset or None, s.choice.seed, s.score_thr,
                r.metrics.stats,
                {k: v for k, v in s.speeds.get(n, {}).items() if isinstance(v, (int, float))},
                data=s.choice.data, models=list(s.reports), map_by=s.map_by)
        st.success(f"Logged {len(s.reports)} benchmark run(s) to "
                   f"{paths.shown(Path(where).parent)} — open that folder on the Runs page.")


def classes_view(s: Screen) -> None:
    """Per-class AP, a class's PR curve, the confusion matrix."""
    per = None
    for n, r in s.reports.items():
        part = r.metrics.per_class.set_index(["category_id", "name", "objects"])[["AP", "AP50"]]
        part.columns = [f"{c} · {n}" for c in part.columns]
        per = part if per is None else per.join(part)
    st.dataframe(per.reset_index(), hide_index=True, key="per_class_table")
    cat = st.selectbox("PR curve of class", sorted(s.dataset.categories), key="pr_class",
                       format_func=lambda c: s.dataset.categories[c])
    st.plotly_chart(plots.pr_curves([(n, *coco.pr_curve(r.metrics, cat))
                                     for n, r in s.reports.items()],
                                    title=f"Precision–recall · {s.dataset.categories[cat]}"),
                    key="pr_class_chart")
    which = st.selectbox("Confusion matrix of", s.names, key="confusion_model")
    rep = s.reports[which]
    confusion, confusion_names = rep.confusion(s.score_thr)
    present = [i for i in range(len(confusion_names))
               if confusion[i].sum() or confusion[:, i].sum()]
    shown = [confusion_names[i] for i in present]
    event = st.plotly_chart(
        plots.confusion_heatmap(confusion[present][:, present], shown, shown,
                                title=f"Confusion (score ≥ {s.score_thr}, IoU ≥ 0.5)",
                                cells=[(r, c) for r in present for c in present]),
        key="det_confusion", on_select="rerun", selection_mode="points")
    picked = [p["customdata"] for p in (event.selection.points if event else [])
              if p.get("customdata")]
    if not picked:
        st.caption("Click a cell of the matrix: its images open here.")
        return
    row, col = (int(v) for v in picked[0])
    ids = rep.table.cell_images(s.dataset.categories, s.score_thr, row, col)
    st.markdown(f"**True {confusion_names[row]}, predicted {confusion_names[col]}** "
                f"({which}): {len(ids)} images, most such detections first")
    gallery(s, ids)


def errors_view(s: Screen) -> None:
    """AP50 an oracle would gain by fixing each kind of error."""
    st.plotly_chart(plots.error_bars({n: r.errors.delta_ap for n, r in s.reports.items()}),
                    key="tide_chart")
    st.dataframe(pd.DataFrame({n: r.errors.counts for n, r in s.reports.items()}).T,
                 key="error_counts")
    st.caption("Errors in the manner of TIDE: each bar is the AP50 an oracle would gain by "
               "fixing only that kind of error (see lib/tide.py).")


def gallery(s: Screen, ids: list[int]) -> None:
    """Up to nine of the images, ground truth and each compared model's boxes drawn."""
    grid = st.columns(3)
    for k, image_id in enumerate(ids[:9]):
        try:
            path = s.dataset.image_path(image_id)
        except datasets.DatasetError:
            continue
        if not path.is_file():
            continue
        gt_b, gt_c = s.dataset.gt_boxes(image_id)
        groups = [(gt_b, [s.dataset.categories[int(c)] for c in gt_c], drawing.PALETTE["gt"])]
        for n, color in zip(s.names, (drawing.PALETTE["a"], drawing.PALETTE["b"])):
            det = s.reports[n].detections.get(image_id, detections.Detections(image_id))
            det = det.above(s.score_thr)
            names = s.dataset.categories
            groups.append((det.xyxy, [f"{names.get(int(c), c)} {score:.2f}"
                                      for c, score in zip(det.class_ids, det.scores)], color))
        grid[k % 3].image(drawing.draw(images.load_image(path).image, groups), width="stretch",
                          caption=f"{path.name}: green = truth, orange = {s.names[0]}"
                                  + (f", blue = {s.names[1]}" if len(s.names) == 2 else ""))


def images_view(s: Screen) -> None:
    """Images by error kind or class, boxes drawn; EigenCAM of a false positive."""
    g1, g2 = st.columns(2)
    bucket = g1.selectbox("Show images with", ["(all)"] + ERROR_TYPES +
                          [f"class: {n}" for n in s.dataset.categories.values()], key="bucket")
    per_image = benchmark.compare_images(s.reports[s.names[0]], s.reports[s.names[-1]], s.score_thr)
    if len(s.names) == 2:
        g2.caption(f"Where {s.names[1]} regresses against {s.names[0]} (top) and wins (bottom), "
                   "by TP − FP per image.")
    ids = per_image["image_id"].tolist()
    if bucket in ERROR_TYPES:
        wanted = set().union(*(r.errors.images_with(bucket) for r in s.reports.values()))
        ids = [i for i in ids if i in wanted]
    elif bucket.startswith("class: "):
        cid = {v: k for k, v in s.dataset.categories.items()}[bucket[7:]]
        ids = [i for i in ids if any(a["category_id"] == cid for a in s.dataset.annotations(i))]
    st.dataframe(per_image[per_image["image_id"].isin(ids)], hide_index=True, key="per_image")
    gallery(s, ids)

    torchvision_models = [n for n in s.names if n in [spec.name for spec in s.detector_specs
                                                     if detectors.is_faster_rcnn(spec)]]
    if torchvision_models:
        with st.expander("What fired? EigenCAM of a false positive"):
            n = st.selectbox("Model", torchvision_models, key="cam_model")
            wrong = s.reports[n].errors.errors(limit=200)   # the highest-scoring ones
            pick = st.selectbox("False positive", range(len(wrong)), key="cam_fp",
                                format_func=lambda i: f"image {wrong[i].image_id} · "
                                                      f"{wrong[i].kind} error")
            if wrong:
                with ui.showing_errors():
                    lab = wrong[pick]
                    det = s.reports[n].detections[lab.image_id]
                    picture = images.load_image(s.dataset.image_path(lab.image_id)).image
                    heat = false_positive_cam(n, lab.image_id, lab.index, s.map_by, picture,
                                              det.xyxy[lab.index:lab.index + 1],
                                              int(det.class_ids[lab.index]), s.dataset.categories)
                    shown = drawing.draw(Image.fromarray(cam.overlay(
                        np.asarray(picture), heat)), [(det.xyxy[lab.index:lab.index + 1],
                        [f"{s.dataset.categories.get(int(det.class_ids[lab.index]))} "
                         f"{det.scores[lab.index]:.2f}"], drawing.PALETTE["a"])])
                    st.image(shown, width="stretch", caption=f"EigenCAM of {n}'s backbone; "
                                                             f"the box is the {lab.kind} error")


def statistics_view(s: Screen) -> None:
    """Intervals, a paired comparison, slices (pages/detection_stats.py)."""
    detection_stats.view(s.bench, s.board, s.score_thr, lambda ids: gallery(s, ids),
                         s.robust)


def dataset_view(s: Screen) -> None:
    """The whole dataset: map, neighbours, duplicates, label errors (detection_explore.py)."""
    detection_explore.view(s, lambda ids: gallery(s, ids))


VIEWS = {"Metrics": metrics_view, "Statistics": statistics_view, "Per class": classes_view,
         "Errors": errors_view, "Images": images_view, "What-if": detection_whatif.view,
         "Robustness": detection_robust.view, "Dataset": dataset_view}
#: widgets inside tabs whose values survive while their tab is closed (`ui.tabs`)
KEEP = ("pr_class", "confusion_model", "bucket", "cam_model", "cam_fp", "resamples",
        "boot_seed", "paired_a", "paired_b", "slice_model", "slice_min", "slice_areas",
        "slice_groups", "slice_images", "slice_all_ci", "calib_model", "calib_method",
        *detection_robust.KEEP, *detection_explore.KEEP)


def show_tabs(s: Screen) -> None:
    """The open tab, drawn; What-if always (it holds an upload)."""
    for tab, (label, view) in zip(ui.tabs(list(VIEWS), keep=KEEP), VIEWS.items()):
        if tab.open or label == "What-if":
            with tab:
                view(s)
