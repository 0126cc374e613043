"""Detection (coming): DETR vs Faster R-CNN on COCO-format data."""

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

if "lens_router" not in st.session_state:  # opened by URL before app.py ran: use its router
    PagesManager.uses_pages_directory = False
    st.rerun()

st.title("Detection")
st.info("Coming soon: DETR vs Faster R-CNN on COCO-format data, with COCO mAP, per-class AP, "
        "PR curves, error analysis, speed and memory.")
