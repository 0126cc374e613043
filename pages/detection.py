"""Detection benchmark: two models (built-in detectors or imported results) on COCO data."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st
from PIL import Image

from lib import plots, ui
from lib.classification import cam as cam_lib
from lib.core import paths, ray_cluster, settings
from lib.demo import synth
from lib.detection import (
    benchmark,
    coco_eval,
    datasets,
    detections,
    detectors,
    drawing,
)
from lib.detection.tide import ERROR_TYPES
from lib.media import images
from lib.models import cache, registry

ui.page_setup()

from pages import detection_slots as slots
from pages import detection_stats as stats_tab

st.title("Detection benchmark")
SHARED = settings.PROJECT_ROOT.parent / "shared" / "assets" / "data" / "coco_val2017_tiny"
IMPORT, OTHER = slots.IMPORT, slots.OTHER_ID


def load_dataset(annotations: str, images_dir: str, mtime: float, subset: int | None, seed: int):
    """Read once per process and shared (read-only) by every session."""
    return cache.shared(f"dataset: {annotations}|{images_dir}|{mtime}|{subset}|{seed}",
                        lambda: datasets.load_coco(annotations, images_dir).subset(subset, seed))


def build_report(fingerprint: str, detections_digest: str, dataset, dets):
    """Evaluated and matched once per (dataset, detections) and shared (read-only); the
    threshold only filters."""
    def build():
        with ui.spinner("Evaluating the detections…"), ui.queued("COCO evaluation"):
            return benchmark.report(dataset, dets)
    return cache.shared(f"detection report: {fingerprint}|{detections_digest}", build)


@st.cache_data(show_spinner="EigenCAM…", max_entries=64)
def false_positive_cam(model: str, image_id: int, index: int, map_by: str, _picture, _box,
                       _category: int, _categories):
    """EigenCAM of a built-in Faster R-CNN for one of its detections (cached)."""
    detector = cache.load(model, "detection").model
    inverse = {v: k for k, v in detections.map_labels(detector.labels, _categories,
                                                     by=map_by).items()}
    with ui.queued("EigenCAM"):
        return cam_lib.detector_cam(detector, _picture, _box, [inverse.get(_category, 0)])


# -- data -------------------------------------------------------------------------------------

OFFLINE = not registry.hub_reachable()
DEMO_DATA = "Demo (synthetic shapes)"
# A link from the Runs page (a logged benchmark) reopens its data and models (`ui.link_*`):
# visitor input, validated like typed input (paths through paths.data_path, names against
# the model list).

with st.sidebar:
    st.subheader("Dataset")
    sources = [DEMO_DATA, "Path", "Upload zip"]
    linked = {"demo": 0, "path": 1}.get(ui.link_text("data"))
    how = st.radio("COCO data", sources, index=linked if linked is not None else
                   0 if OFFLINE else 1, horizontal=True,
                   key="data_source", help="Demo: the validation split the demo pack's "
                   "detectors were measured on (`python -m lib.synth`, generated once).")
    default_ann = SHARED / "annotations" / "instances_val2017.json" if SHARED.is_dir() else ""
    default_img = SHARED / "val2017" if SHARED.is_dir() else ""
    if ui.link_text("data") == "path":
        default_ann, default_img = ui.link_text("ann"), ui.link_text("img")
    if how == "Path":
        ann_text = st.text_input("Instances JSON", str(default_ann), key="ann_path")
        img_text = st.text_input("Images folder", str(default_img), key="img_path")
    elif how == "Upload zip":
        upload = st.file_uploader("Zip with images and an instances JSON", type=["zip"],
                                  key="data_zip")
    subset = st.number_input("Subset size (0 = all)", 0, 100_000,
                             ui.link_number("subset", 0, 0, 100_000, int), key="subset")
    seed = st.number_input("Subset seed", 0, 10_000, ui.link_number("seed", 0, 0, 10_000, int),
                           key="seed")
    score_thr = st.slider("Score threshold (confusion, per-image counts, IoUs)", 0.05, 0.95, 0.5,
                          0.05, key="score_thr")
    run_on = st.radio("Run detectors on", ["this server", "Ray"], horizontal=True,
                      key="run_on", help="Ray: the cluster at LENS_RAY_ADDRESS (or RAY_ADDRESS), "
                      "else a local Ray on this machine. Same results, same cache.")
    map_by = st.radio("Map model labels to categories by", ["name", "id"], horizontal=True,
                      key="map_by", index=1 if ui.link_text("map_by") == "id" else 0,
                      help="COCO models number their 80 classes on ids 1–90; by name also "
                           "works for datasets that renumber them.")

ray_options = None
if run_on == "Ray":
    ray_options = ray_cluster.default_options()
    where = ray_options.address or f"a local Ray, {ray_options.workers} workers"
    st.sidebar.caption(f"Ray: {where} (started on the first Run; the images are read by the "
                       "workers).")

dataset = None
with ui.showing_errors():
    if how == DEMO_DATA:
        with ui.spinner("Generating the demo validation split (once)…",
                        not synth.demo_val_ready()):
            demo = synth.demo_val()
        ann = demo / "annotations.json"
        dataset = load_dataset(str(ann), str(demo / "images"), ann.stat().st_mtime,
                               subset or None, int(seed))
    elif how == "Path":
        if ann_text and img_text:
            ann = paths.data_path(ann_text, "file")
            img = paths.data_path(img_text, "dir")
            dataset = load_dataset(str(ann), str(img), ann.stat().st_mtime, subset or None,
                                   int(seed))
    elif upload is not None:
        with ui.spinner("Unpacking the archive…"):
            ann, img = datasets.find_coco_in(paths.extract_zip(upload.getvalue()))
        dataset = load_dataset(str(ann), str(img), 0.0, subset or None, int(seed))
if dataset is None:
    st.info("Choose a COCO-format dataset in the sidebar.")
    st.stop()
n_images = len(dataset.image_ids)
fingerprint = dataset.fingerprint   # what the models read (stats every image): once a rerun
st.caption(f"{n_images} images, {len(dataset.data['annotations'])} objects, "
           f"{len(dataset.categories)} categories · {dataset.annotations_path.name}")
if dataset.missing_images:
    st.warning(f"{len(dataset.missing_images)} images listed in the annotations are missing "
               f"from the folder (e.g. {dataset.missing_images[0]}); they count as images with "
               "no detections.")
if dataset.refused_images:
    st.warning(f"{len(dataset.refused_images)} images listed in the annotations lead outside "
               "the images folder (links) and are not read; they count as images with no "
               "detections.")
if dataset.refused_boxes:
    st.warning(f"{dataset.refused_boxes} annotations with empty, negative or non-finite boxes "
               "were left out.")

# -- models -----------------------------------------------------------------------------------

detector_specs = [s for s in registry.all_specs("detection") if not s.error]
demo_models = [s.name for s in detector_specs if s.name.startswith("demo-")]
if OFFLINE and how == DEMO_DATA:
    st.info("No model-hub access: DETR and torchvision COCO weights are missing unless cached. "
            "Showing the demo pack instead: its detectors (" + ", ".join(demo_models) + ") on "
            "the synthetic shapes they were trained for. Imported predictions always work.")
elif OFFLINE:
    st.caption("No model-hub access: DETR and torchvision COCO weights are missing unless "
               "cached; imported predictions and the demo detectors work.")
choices = [IMPORT] + [s.name for s in detector_specs] + [OTHER]
# On demo data the demo detectors are the defaults; otherwise imported predictions.
defaults = demo_models + [IMPORT, IMPORT] if how == DEMO_DATA else [IMPORT, IMPORT]
defaults, linked_imports = benchmark.linked_slots(ui.link_text("models"), choices, defaults,
                                                 IMPORT)   # slot -> an imported model's name
reports: dict[str, benchmark.Report] = {}
speeds: dict[str, dict] = {}
mask_metrics: dict[str, dict] = {}   # imported results with a mask on every prediction
for k, (slot, col) in enumerate(zip(["A", "B"], st.columns(2))):
    with col.container(border=True):
        choice = st.selectbox(f"Model {slot}", choices, index=choices.index(defaults[k]),
                              key=f"model_{slot}" + ("_demo" if how == DEMO_DATA else ""))
        label, dets = (slots.imported_slot(k, slot, dataset, linked_imports, speeds,
                                           mask_metrics)
                       if choice == IMPORT else
                       slots.detector_slot(choice, slot, dataset, map_by, fingerprint,
                                           ray_options, speeds))
        if dets is not None:
            reports[label] = build_report(fingerprint, detections.digest(dets), dataset, dets)
            if choice == IMPORT:   # imported files stay on the leaderboard for this session
                st.session_state.setdefault("imported", {}).setdefault(
                    fingerprint, {})[label] = dets

# -- leaderboard: every model evaluated on this dataset ---------------------------------------


@st.cache_data(show_spinner=False, max_entries=64)
def finished_detections(results_path: str, mtime: float) -> dict:
    return detections.from_coco_results(detections.check_results(Path(results_path), dataset)
                                      .results)


board = dict(reports)
for name, path in benchmark.finished_runs(detector_specs, dataset, map_by, fingerprint).items():
    if name not in board:                # built-in and checkpoint detectors run on this data
        dets = finished_detections(str(path), path.stat().st_mtime)
        board[name] = build_report(fingerprint, detections.digest(dets), dataset, dets)
for label, dets in st.session_state.get("imported", {}).get(fingerprint, {}).items():
    if label not in board:
        board[label] = build_report(fingerprint, detections.digest(dets), dataset, dets)

if not board:
    st.info("Import a results JSON (e.g. from a YOLO run) or run a detector for model A or B.")
    st.stop()
if len(board) > 1:
    st.subheader(f"Leaderboard · {len(board)} models on this dataset")
    table = benchmark.leaderboard(board)
    st.dataframe(table, hide_index=True, key="leaderboard",
                 column_config={c: st.column_config.NumberColumn(format="%.4f")
                                for c in table.columns if c != "model"})
    st.caption("Click a column to sort. ΔAP: the AP50 an oracle gains by fixing only that kind "
               "of error. Pick any two below for the side-by-side views.")
    picked = st.multiselect("Compare", list(board), default=list(reports)[:2],
                            max_selections=2,   # follows the slots when they change
                            key="drill_down_" + "|".join(reports))
    reports = {n: board[n] for n in picked} or reports
if not reports:
    st.stop()
names = list(reports)

# -- metrics ----------------------------------------------------------------------------------


def metrics_view() -> None:
    """COCO metrics, PR and F1 curves, IoUs, speed, exports."""
    # COCO reports -1 where the dataset has no objects of that size: show "n/a"
    table = pd.DataFrame({n: r.metrics.stats for n, r in reports.items()}).where(lambda t: t >= 0)
    if len(names) == 2:
        table["B − A"] = table[names[1]] - table[names[0]]
    stats_tab.metrics_table(table, reports, fingerprint)
    stats_tab.mask_table({n: m for n, m in mask_metrics.items() if n in reports})
    st.plotly_chart(plots.metrics_bars({n: r.metrics.stats for n, r in reports.items()},
                                       ["AP", "AP50", "AP75", "AR100"]), key="metrics_chart")
    c1, c2 = st.columns(2)
    c1.plotly_chart(plots.pr_curves([(n, *coco_eval.pr_curve(r.metrics))
                                     for n, r in reports.items()]), key="pr_overall")
    c2.plotly_chart(plots.f1_curves([(n, r.f1["threshold"], r.f1["F1"])
                                     for n, r in reports.items()]), key="f1_chart")
    ious = {n: r.ious(score_thr) for n, r in reports.items()}
    st.plotly_chart(plots.iou_histogram(ious), key="iou_hist")
    st.caption(" · ".join(f"{n}: mean IoU of matched TPs {v.mean():.3f} (score ≥ {score_thr})"
                          for n, v in ious.items() if len(v)))
    st.subheader("Speed (measured by the benchmark)")
    st.dataframe(pd.DataFrame(speeds).T if speeds else pd.DataFrame(), key="speed_table")
    export = pd.concat([r.metrics.per_class.assign(model=n) for n, r in reports.items()])
    e1, e2, e3 = st.columns(3)
    ui.download_button("Per-class AP (CSV)", export.to_csv(index=False), "per_class_ap.csv",
                       "text/csv", key="export_csv", where=e1)
    ui.download_button("Metrics (JSON)", json.dumps({n: r.metrics.stats for n, r in
                                                     reports.items()}, indent=2),
                       "metrics.json", "application/json", key="export_json", where=e2)
    if e3.button("Log to W&B", key="log_wandb"):
        for n, r in reports.items():
            where = benchmark.log_benchmark(
                n, dataset, subset or None, int(seed), score_thr, r.metrics.stats,
                {k: v for k, v in speeds.get(n, {}).items() if isinstance(v, (int, float))},
                data={DEMO_DATA: "demo", "Path": "path"}.get(how, "upload"),
                models=list(reports), map_by=map_by)
        st.success(f"Logged {len(reports)} benchmark run(s) to {Path(where).parent} — open that "
                   "folder on the Runs page.")


def classes_view() -> None:
    """Per-class AP, a class's PR curve, the confusion matrix."""
    per = None
    for n, r in reports.items():
        part = r.metrics.per_class.set_index(["category_id", "name", "objects"])[["AP", "AP50"]]
        part.columns = [f"{c} · {n}" for c in part.columns]
        per = part if per is None else per.join(part)
    st.dataframe(per.reset_index(), hide_index=True, key="per_class_table")
    cat = st.selectbox("PR curve of class", sorted(dataset.categories), key="pr_class",
                       format_func=lambda c: dataset.categories[c])
    st.plotly_chart(plots.pr_curves([(n, *coco_eval.pr_curve(r.metrics, cat))
                                     for n, r in reports.items()],
                                    title=f"Precision–recall · {dataset.categories[cat]}"),
                    key="pr_class_chart")
    which = st.selectbox("Confusion matrix of", names, key="confusion_model")
    rep = reports[which]
    confusion, confusion_names = rep.confusion(score_thr)
    present = [i for i in range(len(confusion_names))
               if confusion[i].sum() or confusion[:, i].sum()]
    shown = [confusion_names[i] for i in present]
    event = st.plotly_chart(
        plots.confusion_heatmap(confusion[present][:, present], shown, shown,
                                title=f"Confusion (score ≥ {score_thr}, IoU ≥ 0.5)",
                                cells=[(r, c) for r in present for c in present]),
        key="det_confusion", on_select="rerun", selection_mode="points")
    picked = [p["customdata"] for p in (event.selection.points if event else [])
              if p.get("customdata")]
    if not picked:
        st.caption("Click a cell of the matrix: its images open here.")
        return
    row, col = (int(v) for v in picked[0])
    ids = rep.table.cell_images(dataset.categories, score_thr, row, col)
    st.markdown(f"**True {confusion_names[row]}, predicted {confusion_names[col]}** "
                f"({which}): {len(ids)} images, most such detections first")
    gallery(ids)


def errors_view() -> None:
    """AP50 an oracle would gain by fixing each kind of error."""
    st.plotly_chart(plots.error_bars({n: r.errors.delta_ap for n, r in reports.items()}),
                    key="tide_chart")
    st.dataframe(pd.DataFrame({n: r.errors.counts for n, r in reports.items()}).T,
                 key="error_counts")
    st.caption("Errors in the manner of TIDE: each bar is the AP50 an oracle would gain by "
               "fixing only that kind of error (see lib/tide.py).")


def gallery(ids: list[int]) -> None:
    """Up to nine of the images, ground truth and each compared model's boxes drawn."""
    grid = st.columns(3)
    for k, image_id in enumerate(ids[:9]):
        try:
            path = dataset.image_path(image_id)
        except datasets.DatasetError:
            continue
        if not path.is_file():
            continue
        gt_b, gt_c = dataset.gt_boxes(image_id)
        groups = [(gt_b, [dataset.categories[int(c)] for c in gt_c], drawing.PALETTE["gt"])]
        for n, color in zip(names, (drawing.PALETTE["a"], drawing.PALETTE["b"])):
            det = reports[n].detections.get(image_id, detections.Detections(image_id))
            det = det.above(score_thr)
            groups.append((det.xyxy, [f"{dataset.categories.get(int(c), c)} {s:.2f}"
                                      for c, s in zip(det.class_ids, det.scores)], color))
        grid[k % 3].image(drawing.draw(images.load_image(path).image, groups), width="stretch",
                          caption=f"{path.name}: green = truth, orange = {names[0]}"
                                  + (f", blue = {names[1]}" if len(names) == 2 else ""))


def images_view() -> None:
    """Images by error kind or class, boxes drawn; EigenCAM of a false positive."""
    g1, g2 = st.columns(2)
    bucket = g1.selectbox("Show images with", ["(all)"] + ERROR_TYPES +
                          [f"class: {n}" for n in dataset.categories.values()], key="bucket")
    per_image = benchmark.compare_images(reports[names[0]], reports[names[-1]], score_thr)
    if len(names) == 2:
        g2.caption(f"Where {names[1]} regresses against {names[0]} (top) and wins (bottom), "
                   "by TP − FP per image.")
    ids = per_image["image_id"].tolist()
    if bucket in ERROR_TYPES:
        wanted = set().union(*(r.errors.images_with(bucket) for r in reports.values()))
        ids = [i for i in ids if i in wanted]
    elif bucket.startswith("class: "):
        cid = {v: k for k, v in dataset.categories.items()}[bucket[7:]]
        ids = [i for i in ids if any(a["category_id"] == cid for a in dataset.annotations(i))]
    st.dataframe(per_image[per_image["image_id"].isin(ids)], hide_index=True, key="per_image")
    gallery(ids)

    torchvision_models = [n for n in names if n in [s.name for s in detector_specs
                                                     if detectors.is_faster_rcnn(s)]]
    if torchvision_models:
        with st.expander("What fired? EigenCAM of a false positive"):
            n = st.selectbox("Model", torchvision_models, key="cam_model")
            wrong = reports[n].errors.errors(limit=200)   # the highest-scoring ones
            pick = st.selectbox("False positive", range(len(wrong)), key="cam_fp",
                                format_func=lambda i: f"image {wrong[i].image_id} · "
                                                      f"{wrong[i].kind} error")
            if wrong:
                with ui.showing_errors():
                    lab = wrong[pick]
                    det = reports[n].detections[lab.image_id]
                    picture = images.load_image(dataset.image_path(lab.image_id)).image
                    heat = false_positive_cam(n, lab.image_id, lab.index, map_by, picture,
                                              det.xyxy[lab.index:lab.index + 1],
                                              int(det.class_ids[lab.index]), dataset.categories)
                    shown = drawing.draw(Image.fromarray(cam_lib.overlay(
                        np.asarray(picture), heat)), [(det.xyxy[lab.index:lab.index + 1],
                        [f"{dataset.categories.get(int(det.class_ids[lab.index]))} "
                         f"{det.scores[lab.index]:.2f}"], drawing.PALETTE["a"])])
                    st.image(shown, width="stretch", caption=f"EigenCAM of {n}'s backbone; "
                                                             f"the box is the {lab.kind} error")


def whatif_view() -> None:
    """One uploaded image through the built-in detectors."""
    st.caption("Upload one image: both built-in detectors side by side, with a score slider.")
    runnable = [n for n in names if n in [s.name for s in detector_specs]]
    if not runnable:
        st.info("What-if needs a built-in detector with its weights on this machine; imported "
                "predictions cannot run on new images.")
    else:
        shot = st.file_uploader("Image", type=images.ACCEPTED_EXTENSIONS, key="whatif_image")
        thr = st.slider("Score threshold", 0.05, 0.95, 0.5, 0.05, key="whatif_thr")
        if shot is not None:
            with ui.showing_errors():
                picture = images.load_image(shot.getvalue(), shot.name).image
                cols = st.columns(len(runnable))
                for col, n in zip(cols, runnable):
                    handle = cache.load(n, "detection")
                    with col:
                        ui.untrained_warning(handle)
                    det = handle.model
                    with ui.queued("Detecting"):
                        out = det.predict([picture], [0], {i: i for i in det.labels}, thr)[0]
                    col.image(drawing.draw(picture, [(out.xyxy, [
                        f"{det.labels.get(int(c), c)} {s:.2f}" for c, s in
                        zip(out.class_ids, out.scores)], drawing.PALETTE["a"])]),
                        caption=n, width="stretch")


def statistics_view() -> None:
    """Intervals, a paired comparison, slices (pages/detection_stats.py)."""
    stats_tab.view(board, dataset, fingerprint, score_thr, gallery)


tabs = ui.tabs(["Metrics", "Statistics", "Per class", "Errors", "Images", "What-if"],
               keep=("pr_class", "confusion_model", "bucket", "cam_model", "cam_fp",
                     "resamples", "boot_seed", "paired_a", "paired_b", "slice_model",
                     "slice_min", "slice_areas", "slice_groups", "slice_images", "slice_all_ci",
                     "calib_model", "calib_method"))
for tab, view in zip(tabs, (metrics_view, statistics_view, classes_view, errors_view,
                            images_view, whatif_view)):
    if tab.open or view is whatif_view:     # What-if holds an upload: always drawn
        with tab:
            view()
