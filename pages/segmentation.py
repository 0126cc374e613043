"""Segmentation (coming): SAM 2 prompts on images and video."""

import streamlit as st

st.title("Segmentation")
st.info("Coming soon: SAM 2 point, box and text prompts on images and video, with masks, "
        "tracking, blur/pixelate effects and mask export.")
