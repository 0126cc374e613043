"""Detection benchmark: any detectors (built-in, checkpoints, imported results) on COCO data.

A view over the visitor's `DetectionBenchmark` (lib/detection/service.py): the sidebar picks
the data, two slots pick the models, the leaderboard lists every model run on this data, and
the tabs (pages/detection_tabs.py) show the compared ones.
"""

import streamlit as st

from lib import ui

ui.page_setup()

from lib.core import links, paths, ray_cluster, settings
from lib.demo import synth
from lib.detection import benchmark
from lib.detection.service import DetectionBenchmark
from lib.models import registry
from pages import detection_robust, detection_slots
from pages.detection_tabs import Choice, Screen, show_tabs

SHARED = settings.PROJECT_ROOT.parent / "shared" / "assets" / "data" / "coco_val2017_tiny"
DEMO_DATA, PATH_DATA, ZIP_DATA = "Demo (synthetic shapes)", "Path", "Upload zip"


def sidebar(link: links.DetectionLink, offline: bool) -> tuple[Choice, dict]:
    """The data and settings widgets (a link from the Runs page pre-fills them); returns the
    choice and what names the data (paths typed, or the upload)."""
    with st.sidebar:
        st.subheader("Dataset")
        sources = [DEMO_DATA, PATH_DATA, ZIP_DATA]
        linked = {"demo": 0, "path": 1}.get(link.data)
        how = st.radio("COCO data", sources, index=linked if linked is not None else
                       0 if offline else 1, horizontal=True, key="data_source",
                       help="Demo: the validation split the demo pack's detectors were "
                            "measured on (`python -m lib.synth`, generated once).")
        where: dict = {}
        if how == PATH_DATA:
            ann, img = ((link.ann, link.img) if link.data == "path" else
                        (paths.shown(SHARED / "annotations" / "instances_val2017.json"),
                         paths.shown(SHARED / "val2017")) if SHARED.is_dir() else ("", ""))
            where["ann"] = st.text_input("Instances JSON", ann, key="ann_path")
            where["img"] = st.text_input("Images folder", img, key="img_path")
        elif how == ZIP_DATA:
            where["zip"] = st.file_uploader("Zip with images and an instances JSON",
                                            type=["zip"], key="data_zip")
        subset = st.number_input("Subset size (0 = all)", 0, 100_000, link.subset, key="subset")
        seed = st.number_input("Subset seed", 0, 10_000, link.seed, key="seed")
        score_thr = st.slider("Score threshold (confusion, per-image counts, IoUs)", 0.05, 0.95,
                              0.5, 0.05, key="score_thr")
        run_on = st.radio("Run detectors on", ["this server", "Ray"], horizontal=True,
                          key="run_on", help="Ray: the cluster at LENS_RAY_ADDRESS (or "
                          "RAY_ADDRESS), else a local Ray on this machine. Same results, same "
                          "cache.")
        map_by = st.radio("Map model labels to categories by", ["name", "id"], horizontal=True,
                          key="map_by", index=1 if link.map_by == "id" else 0,
                          help="COCO models number their 80 classes on ids 1–90; by name also "
                               "works for datasets that renumber them.")
        ray_options = None
        if run_on == "Ray":
            ray_options = ray_cluster.default_options()
            at = ray_options.address or f"a local Ray, {ray_options.workers} workers"
            st.caption(f"Ray: {at} (started on the first Run; the images are read by the "
                       "workers).")
    data = {DEMO_DATA: "demo", PATH_DATA: "path"}.get(how, "upload")
    return Choice(data, int(subset), int(seed), score_thr, map_by, ray_options), where


def open_data(bench: DetectionBenchmark, choice: Choice, where: dict) -> bool:
    """The chosen dataset opened on the service, with what it had to leave out; False when
    none is chosen yet (or it could not be read: the message is shown)."""
    subset = choice.subset or None
    bench.dataset = None
    with ui.showing_errors():
        if choice.data == "demo":
            with ui.spinner("Generating the demo validation split (once)…",
                            not synth.demo_val_ready()):
                demo = synth.demo_val()
            bench.open(demo / "annotations.json", demo / "images", subset, choice.seed)
        elif choice.data == "path" and where["ann"] and where["img"]:
            bench.open_typed(where["ann"], where["img"], subset, choice.seed)
        elif choice.data == "upload" and where["zip"] is not None:
            bench.open_zip(where["zip"].getvalue(), subset, choice.seed)
    dataset = bench.dataset
    if dataset is None:
        st.info("Choose a COCO-format dataset in the sidebar.")
        return False
    st.caption(f"{len(dataset.image_ids)} images, {len(dataset.data['annotations'])} objects, "
               f"{len(dataset.categories)} categories · {dataset.annotations_path.name}")
    if dataset.missing_images:
        st.warning(f"{len(dataset.missing_images)} images listed in the annotations are missing "
                   f"from the folder (e.g. {dataset.missing_images[0]}); they count as images "
                   "with no detections.")
    if dataset.refused_images:
        st.warning(f"{len(dataset.refused_images)} images listed in the annotations lead "
                   "outside the images folder (links) and are not read; they count as images "
                   "with no detections.")
    if dataset.refused_boxes:
        st.warning(f"{dataset.refused_boxes} annotations with empty, negative or non-finite "
                   "boxes were left out.")
    return True


def slot_reports(bench: DetectionBenchmark, choice: Choice, link: links.DetectionLink,
                 specs: list, offline: bool) -> tuple[dict, dict, dict]:
    """The two model slots: each an imported results file or a registry detector. Returns
    the reports of those with detections, the speeds measured and the mask metrics."""
    demo_models = [s.name for s in specs if s.name.startswith("demo-")]
    if offline and choice.data == "demo":
        st.info("No model-hub access: DETR and torchvision COCO weights are missing unless "
                "cached. Showing the demo pack instead: its detectors ("
                + ", ".join(demo_models) + ") on the synthetic shapes they were trained for. "
                "Imported predictions always work.")
    elif offline:
        st.caption("No model-hub access: DETR and torchvision COCO weights are missing unless "
                   "cached; imported predictions and the demo detectors work.")
    choices = [detection_slots.IMPORT] + [s.name for s in specs] + [detection_slots.OTHER_ID]
    # On demo data the demo detectors are the defaults; otherwise imported predictions.
    defaults = (demo_models + [detection_slots.IMPORT] * 2 if choice.data == "demo"
                else [detection_slots.IMPORT] * 2)
    defaults, linked_imports = benchmark.linked_slots(",".join(link.models), choices, defaults,
                                                     detection_slots.IMPORT)
    reports, speeds, masks = {}, {}, {}
    for k, (slot, col) in enumerate(zip(["A", "B"], st.columns(2))):
        with col.container(border=True):
            picked = st.selectbox(f"Model {slot}", choices, index=choices.index(defaults[k]),
                                  key=f"model_{slot}" + ("_demo" if choice.data == "demo"
                                                         else ""))
            if picked == detection_slots.IMPORT:
                label, dets = detection_slots.imported_slot(bench, k, slot, linked_imports,
                                                            speeds, masks)
            else:
                label, dets = detection_slots.detector_slot(bench, picked, slot, choice, speeds)
            if dets is not None:
                reports[label] = bench.report(dets, label)
                if picked == detection_slots.IMPORT:
                    bench.remember_import(label, dets)
    return reports, speeds, masks


def leaderboard(board: dict, reports: dict, robust: dict) -> dict:
    """Every model evaluated on this dataset, sortable (with mPC and rPC where COCO-C was
    run); any two picked for the tabs."""
    if len(board) <= 1:
        return reports
    st.subheader(f"Leaderboard · {len(board)} models on this dataset")
    table = benchmark.leaderboard(board, robust)
    st.dataframe(table, hide_index=True, key="leaderboard",
                 column_config={c: st.column_config.NumberColumn(format="%.4f")
                                for c in table.select_dtypes("number").columns})
    st.caption("Click a column to sort. ΔAP: the AP50 an oracle gains by fixing only that kind "
               "of error. mPC, rPC: COCO-C (the Robustness tab), with 95% intervals. Pick any "
               "two below for the side-by-side views.")
    picked = st.multiselect("Compare", list(board), default=list(reports)[:2],
                            max_selections=2,   # follows the slots when they change
                            key="drill_down_" + "|".join(reports))
    return {n: board[n] for n in picked} or reports


def main() -> None:
    st.title("Detection benchmark")
    bench = ui.service("detection", lambda: DetectionBenchmark(busy=ui.busy))
    link = bench.read_link(st.query_params)
    offline = not registry.hub_reachable()
    choice, where = sidebar(link, offline)
    if not open_data(bench, choice, where):
        return
    unknown = bench.follow_link(link)
    if unknown:
        st.warning(f"The link selects {len(unknown)} images this dataset does not have (e.g. "
                   f"{unknown[0][:40]}); they are left out.")
    if bench.selection:
        st.info(f"Showing the {len(bench.selection)} images selected on the Dataset tab's "
                "map: every number below is computed on them only.")
    specs = [s for s in registry.all_specs("detection") if not s.error]
    reports, speeds, masks = slot_reports(bench, choice, link, specs, offline)
    board = bench.board(reports, specs, choice.map_by)
    if not board:
        st.info("Import a results JSON (e.g. from a YOLO run) or run a detector for model A "
                "or B.")
        return
    robust = bench.robustness(specs, detection_robust.chosen(), choice.map_by)
    shown = leaderboard(board, reports, robust)
    if shown:
        show_tabs(Screen(bench, choice, shown, board, specs, speeds, masks, robust))


main()
