"""Segmentation viewer: click, box and text prompts on images and video (SAM 2.1 / EdgeTAM,
the demo segmenter, GrabCut and classical tracking offline), everything mode, effects and mask
export. Two views: `segmentation_image` and `segmentation_video`; the logic they call lives in
lib.segmentation and lib.media.masks."""

import streamlit as st

from lib import ui

ui.page_setup()

from pages import segmentation_image, segmentation_video

st.title("Segmentation")
mode = st.radio("Mode", ["Image", "Video"], horizontal=True, key="seg_mode")
if mode == "Image":
    segmentation_image.image_mode()
else:
    segmentation_video.video_mode()
