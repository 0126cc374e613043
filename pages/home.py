"""Home: what each page is for, the compute device, library versions, which models are ready."""

import streamlit as st

from lib import ui

ui.page_setup()
st.title("Lens")   # painted first: everything heavier comes after
st.write("Inspect computer-vision models, demo them and try quick what-if uploads.")

# Imported once the title is painted: the first page of a fresh server is what
# bench/startup.py times, and pandas with the model registry would delay it.
import pandas as pd

from lib.core import paths, system
from lib.models import registry
from lib.models.cache import MODEL, STORE, model_label

PAGES = [
    ("Classification", "pages/classification.py",
     "Top-k predictions of timm classifiers with Grad-CAM overlays, model comparison, "
     "labelled-folder evaluation and video scene timelines."),
    ("Segmentation", "pages/segmentation.py",
     "SAM 2 point, box and text prompts on images and video; masks, tracking, effects, export."),
    ("Detection", "pages/detection.py",
     "DETR vs Faster R-CNN on COCO-format data: mAP, per-class AP, PR curves, error analysis."),
    ("Runs", "pages/runs.py",
     "W&B runs from the cloud and local offline folders, side by side."),
]


def pages_view() -> None:
    """One card per page: what it is for."""
    for col, (title, path, blurb) in zip(st.columns(len(PAGES)), PAGES):
        with col.container(border=True):
            st.page_link(path, label=title)
            st.caption(blurb)


def compute_view() -> None:
    """The compute device and the library versions."""
    st.subheader("Compute")
    with ui.spinner("Looking for a GPU..."):
        dev = system.device_info()
    memory = f", {dev.memory_gb} GB" if dev.memory_gb else ""
    st.markdown(f"Device: **{dev.kind.upper()}** · {dev.name}{memory}")
    versions = system.library_versions()
    st.caption("Libraries: " + " · ".join(f"{k} {v}" for k, v in versions.items()))


def memory_view() -> None:
    """What Lens keeps in memory, under its budget."""
    st.subheader("Models in memory")
    cached = STORE.summary()
    used_mb = STORE.used_bytes / 2**20
    st.metric("Memory Lens keeps (models, embeddings, clips, detection reports)",
              f"{used_mb:.0f} MB",
              help=f"Budget {STORE.budget_bytes / 2**20:.0f} MB (LENS_MODEL_BUDGET_MB); the "
                   "least recently used entry is released when a new one would exceed it.")
    groups = {paths.shown(model_label(h.key)): (1, h.nbytes) for h in cached
              if h.kind == MODEL}
    groups.update({kind: held for kind, held in STORE.by_kind().items() if kind != MODEL})
    # models by name, the rest by kind
    st.caption(f"Budget: {STORE.budget_bytes / 2**20:.0f} MB · " + (", ".join(
        f"{kind}{f' ×{n}' if n > 1 else ''} ({b / 2**20:.0f} MB)" for kind, (n, b) in
        groups.items()) or "none loaded yet"))


@st.cache_data(ttl=30, show_spinner="Checking which weights are on this machine...")
def model_table():
    """Every model Lens knows, whether its weights are here (shown relative to the project
    or a cache, never as the server's absolute path) or how to fetch them."""
    rows = []
    for spec in registry.all_specs():
        avail = registry.availability(spec)
        rows.append({"status": "ready" if avail.ready else ("broken" if spec.error else "download"),
                     "model": spec.name, "task": spec.task, "source": spec.source,
                     "weights": paths.shown(avail.where) if avail.ready or spec.error
                     else spec.fetch_command})
    order = {"ready": 0, "broken": 1, "download": 2}  # what works here first
    return pd.DataFrame(rows).sort_values("status", key=lambda c: c.map(order), kind="stable")


def models_view() -> None:
    """The models ready offline, and how to fetch the others."""
    st.subheader("Models ready offline")
    st.caption("Local checkpoints, packaged weights and hub cache entries found on this "
               "machine. Missing ones can be fetched on a connected machine with `python -m "
               "lib.weights fetch NAME`, then the caches copied here. Drop a folder with a "
               "`model.json` into `checkpoints/` and it appears below.")
    table = model_table()
    ready = int((table["status"] == "ready").sum())
    st.write(f"**{ready}** of {len(table)} models ready to use offline.")
    st.dataframe(table, hide_index=True, width="stretch", key="models_table",
                 column_config={"weights": st.column_config.TextColumn("weights / how to fetch",
                                                                        width="large")})


def main() -> None:
    pages_view()
    left, right = st.columns(2)
    with left:
        compute_view()
    with right:
        memory_view()
    models_view()


main()
