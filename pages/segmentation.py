"""Segmentation (coming): SAM 2 prompts on images and video."""

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

if "lens_router" not in st.session_state:  # opened by URL before app.py ran: use its router
    PagesManager.uses_pages_directory = False
    st.rerun()

st.title("Segmentation")
st.info("Coming soon: SAM 2 point, box and text prompts on images and video, with masks, "
        "tracking, blur/pixelate effects and mask export.")
