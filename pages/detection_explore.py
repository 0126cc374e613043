"""The Detection page's Dataset tab: the whole dataset between single predictions and
whole-set numbers. An embedding map (a lasso or box selection filters the rest of the page
and goes into the link), "more like this", near-duplicates and leaks between splits, and
the annotations most likely wrong. A view over the visitor's `DetectionBenchmark`
(`lib.detection.explore` computes)."""

import numpy as np
import pandas as pd
import streamlit as st

from lib import plots, ui
from lib.core import links
from lib.core.errors import LensError
from lib.detection import drawing
from lib.detection.explore import exploration, label_errors
from lib.detection.explore.embeddings import GROUND_TRUTH
from lib.media import images
from lib.models import registry
from pages import detection_slots

DEFAULT_MODEL = "EfficientNet-Lite0 ImageNet (packaged)"
IMAGES = "images"
SECTIONS = ("Map", "Duplicates and leaks", "Label errors")
#: widgets whose values survive while the tab is closed
KEEP = ("explore_model", "explore_level", "explore_method", "explore_colour", "explore_section",
        "explore_rank", "dup_threshold", "le_models", "le_count")


def models(s) -> list[registry.ModelSpec]:
    """What can embed: the packaged ImageNet classifier first, every other classifier whose
    weights are here, and the torchvision detectors on the leaderboard."""
    found = [sp for sp in registry.all_specs("classification") if not sp.error and
             registry.availability(sp).ready]
    found.sort(key=lambda sp: sp.name != DEFAULT_MODEL)
    return found + [sp for sp in s.detector_specs if sp.name in s.board and
                    sp.arch and "detr" not in sp.arch]


def view(s, show) -> None:
    """The tab; `show(image_ids)` draws images with their boxes (the Images tab's gallery)."""
    st.caption("Every image or object of the dataset as a point: close points look alike to "
               "the chosen model. Select points with the lasso or box: the leaderboard, the "
               "metrics and every tab above then cover only their images.")
    section = st.segmented_control("Show", SECTIONS, key="explore_section") or SECTIONS[0]
    if section == "Label errors":
        return errors_view(s)
    specs = models(s)
    c1, c2, c3, c4 = st.columns(4)
    spec = specs[[sp.name for sp in specs].index(
        c1.selectbox("Embed with", [sp.name for sp in specs], key="explore_model"))]
    level = c2.selectbox("Points", [IMAGES, f"objects: {GROUND_TRUTH}"] +
                         [f"objects: {n}" for n in s.names], key="explore_level")
    source = level.removeprefix("objects: ") if level != IMAGES else GROUND_TRUTH
    try:
        job = s.bench.embedding_job(spec, source, s.bench.detections_of.get(source),
                                    s.score_thr)
    except LensError as exc:
        return ui.show_error(exc)
    if not job.finished:
        st.info(f"Embed the {job.total} images with {spec.name} (one pass per image; on "
                "this server or Ray, as the sidebar says; cached for every visitor).")
        return detection_slots.job_controls(job, "explore", "Embedding",
                                            s.choice.ray_options)
    with ui.showing_errors():
        ex = s.bench.exploration(job, "image" if level == IMAGES else "object")
        if ex.emb.dropped:
            st.warning(f"{ex.emb.dropped} embeddings held NaN or infinite values and are left "
                       "out of the map.")
        if not len(ex.emb):
            return st.info("No points: the dataset has no objects at this level.")
        if section == "Map":
            map_view(s, ex, c3, c4, job.source, show)
        else:
            duplicates_view(s, ex, spec, level)


def map_view(s, ex: exploration.Exploration, c3, c4, source: str, show) -> None:
    """The map, its selection (applied to the page, its images shown), the ranking, and
    more like this."""
    method = c3.selectbox("Map", ["PCA", "UMAP"], key="explore_method",
                          help="PCA: instant. UMAP: keeps neighbourhoods, takes longer "
                               "(the first one in a process also compiles).")
    report = s.board.get(source) or next(iter(s.reports.values()), None)
    table = exploration.points(ex, s.bench.map(ex, method), s.dataset, report, s.score_thr)
    colours = [c for c in exploration.COLOURS + ("errors",) if c in table.columns] + [
        c for c in table.columns if c not in exploration.COLOURS and c not in
        ("x", "y", "row", "image_id", "ann_id", "errors", "outcome", "error type", "score")]
    colour = c4.selectbox("Colour by", colours, key="explore_colour")
    chosen = ex.emb.rows_of(s.bench.selection) if s.bench.selection else ()
    fig = plots.embedding_map(table["x"], table["y"], table["row"], table[colour].to_numpy(),
                              colour, chosen, f"{len(table)} points · {method}")
    event = st.plotly_chart(fig, key="explore_map", on_select="rerun",
                            selection_mode=("lasso", "box"))
    apply_selection(s, ex, event)
    if s.bench.selection:
        st.caption(f"{len(s.bench.selection)} images selected: the page shows them only.")
        st.table(pd.DataFrame([{"model": n, "images": len(s.bench.scope.image_ids),
                                **{k: f"{r.metrics.stats[k]:.4f}" for k in ("AP", "AP50")}}
                               for n, r in s.reports.items()]).set_index("model"))
        if st.button("Clear the selection", key="explore_clear"):
            s.bench.select(())
            ui.write_link(links.DetectionLink, selected=())
            st.rerun()
    if s.bench.selection:
        show(list(s.bench.selection))
    ranked_view(s, ex, table)
    similar_view(s, ex, table)


def apply_selection(s, ex: exploration.Exploration, event) -> None:
    """A lasso or box selection's images become the benchmark's selection (and the link's);
    a selection of nothing changes nothing, one of every image clears it."""
    points = (event or {}).get("selection", {}).get("points", []) if event else []
    rows = [int(p["customdata"]) for p in points if isinstance(p.get("customdata"), int | float)]
    if not rows:
        return
    ids = sorted({int(i) for i in ex.emb.image_ids[np.asarray(rows)]})
    if tuple(ids) == s.bench.selection:
        return
    s.bench.select(ids)
    ui.write_link(links.DetectionLink, selected=tuple(map(str, s.bench.selection))
                  if len(s.bench.selection) <= 500 else ())
    st.rerun()


def crop(s, image_id: int, box) -> np.ndarray | None:
    """An object's box cut from its image with some context (the whole image for -1)."""
    try:
        picture = images.load_image(s.dataset.image_path(int(image_id))).image
    except LensError:
        return None
    if box is None:
        return np.asarray(picture)
    x0, y0, x1, y1 = (float(v) for v in box)
    pad = 0.15 * max(x1 - x0, y1 - y0)
    return np.asarray(picture.crop((max(0, x0 - pad), max(0, y0 - pad),
                                    min(picture.width, x1 + pad), min(picture.height, y1 + pad))))


def ranked_view(s, ex: exploration.Exploration, table: pd.DataFrame) -> None:
    """What to label next or check first: the points ranked by uniqueness or
    representativeness, five thumbnails and the whole table (sortable by any column)."""
    with st.expander("Rank by uniqueness or representativeness"):
        by = st.radio("Rank by", ["most unique", "most representative", "least representative"],
                      horizontal=True, key="explore_rank")
        column = "uniqueness" if by == "most unique" else "representativeness"
        ranked = table.sort_values(column, ascending=by == "least representative",
                                   kind="stable")
        cells = st.columns(5)
        for k, r in enumerate(ranked["row"][:5]):
            picture = crop(s, ex.emb.image_ids[r], None if ex.emb.level == "image"
                           else ex.emb.boxes[r])
            if picture is not None:
                cells[k].image(picture, width="stretch",
                               caption=f"row {r} · {column} {table[column][r]:.2f}")
        st.dataframe(ranked[["row", "image_id", "ann_id", "class", "uniqueness",
                             "representativeness", "cluster"]], hide_index=True,
                     key="explore_ranked")


def similar_view(s, ex: exploration.Exploration, table: pd.DataFrame) -> None:
    """More like this: a point's nearest neighbours by cosine distance, as thumbnails."""
    st.subheader("More like this")
    row = st.number_input("Point (its row; hover a point to read it)", 0, len(ex.emb) - 1, 0,
                          key="explore_row")
    found = ex.similar(int(row), 8)
    cells = st.columns(5)
    for k, (r, dist) in enumerate([(int(row), 0.0)] + list(zip(found["row"],
                                                                found["distance"]))):
        box = None if ex.emb.level == "image" else ex.emb.boxes[r]
        picture = crop(s, ex.emb.image_ids[r], box)
        if picture is not None:
            cells[k % 5].image(picture, width="stretch",
                               caption=(f"row {r}" if k == 0 else f"distance {dist:.3f}")
                               + f" · image {ex.emb.image_ids[r]} · {table['class'][r]}")


def duplicates_view(s, ex: exploration.Exploration, spec, level: str) -> None:
    """Near-duplicate groups in this dataset, and leaks from another split, by a threshold."""
    threshold = st.slider("Near-duplicate if the cosine distance is at most", 0.0, 0.5, 0.05,
                          0.01, key="dup_threshold")
    groups = ex.duplicates(threshold)
    n_groups = groups["group"].nunique()
    st.metric("Near-duplicate groups", n_groups, help=f"{len(groups)} {level} in them")
    if len(groups):
        st.dataframe(groups, hide_index=True, key="dup_table")
        st.download_button("Duplicates (CSV)", groups.to_csv(index=False), "duplicates.csv",
                           key="dup_csv")
        first = groups[groups["group"] == 1]
        cells = st.columns(5)
        for k, r in enumerate(first["row"][:5]):
            picture = crop(s, ex.emb.image_ids[r], None if ex.emb.level == "image"
                           else ex.emb.boxes[r])
            if picture is not None:
                cells[k].image(picture, width="stretch", caption=f"group 1 · row {r}")
    st.subheader("Leaks from another split")
    ann = st.text_input("The other split's instances JSON", key="leak_ann")
    img = st.text_input("Its images folder", key="leak_img")
    if not (ann and img):
        return st.caption("Name another split (e.g. train against this validation set): its "
                          "images that nearly duplicate one here are listed.")
    other = s.bench.open_split(ann, img)
    if set(other.categories.items()) != set(s.dataset.categories.items()):
        st.warning("The other split's categories differ from this one's: compared by "
                   "appearance only; classes are shown as each split names them.")
    job = s.bench.embedding_job(spec, GROUND_TRUTH, dataset=other)
    if not job.finished:
        return detection_slots.job_controls(job, "leaks", "Embedding the other split",
                                            s.choice.ray_options)
    theirs = job.embeddings(ex.emb.level, basis=ex.emb.basis)
    leaks = ex.leaks(theirs, threshold)
    st.metric("Leaked", len(leaks), help=f"of {len(theirs)} {level} in the other split")
    if len(leaks):
        st.dataframe(leaks, hide_index=True, key="leak_table")
        st.download_button("Leaks (CSV)", leaks.to_csv(index=False), "leaks.csv",
                           key="leak_csv")


def errors_view(s) -> None:
    """The annotations most likely wrong, ranked, from the chosen models' detections."""
    st.caption("Each box scored for missing (a confident prediction where no box is), "
               "spurious (a box no model sees), mislocated (a prediction of its class nearby "
               "but not on it) and swapped class; the rule is in the Detection guide.")
    names = st.multiselect("From the detections of", list(s.board), default=s.names,
                           key="le_models")
    if not names:
        return st.info("Pick at least one model: its detections are read against the "
                       "ground truth.")
    found = s.bench.label_errors({n: s.board[n].detections for n in names})
    count = st.number_input("Review the top", 1, 10_000, 24, key="le_count")
    top = found.top(count)
    cells = st.columns(4)
    categories = s.dataset.categories
    for k, row in enumerate(top.head(12).itertuples(index=False)):
        try:
            picture = images.load_image(s.dataset.image_path(int(row.image_id))).image
        except LensError:
            continue
        drawn = drawing.draw(picture, [([[row.x0, row.y0, row.x1, row.y1]],
                                        [f"{row.kind} {row.score:.2f}"], drawing.PALETTE["b"])])
        cells[k % 4].image(drawn, width="stretch",
                           caption=f"{row.kind} · {row.score:.2f} · "
                                   f"{categories.get(int(row.category_id), '?')} · image "
                                   f"{row.image_id}")
    st.dataframe(top, hide_index=True, key="le_table")
    st.download_button(f"Flagged boxes: the top {len(top)} (COCO JSON, for re-annotation)",
                       label_errors.export(s.bench.scope, top), "flagged_annotations.json",
                       key="le_export")
    st.dataframe(found.images.head(50), hide_index=True, key="le_images")
