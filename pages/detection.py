"""Detection (coming): DETR vs Faster R-CNN on COCO-format data."""

import streamlit as st

st.title("Detection")
st.info("Coming soon: DETR vs Faster R-CNN on COCO-format data, with COCO mAP, per-class AP, "
        "PR curves, error analysis, speed and memory.")
