"""Segmentation viewer: click, box and text prompts on images and video (SAM 2.1 / EdgeTAM,
the demo segmenter, GrabCut and classical tracking offline), everything mode, effects and mask
export. Two views over the visitor's `SegmentationSession` (lib/segmentation/service.py):
`segmentation_image` and `segmentation_video`; the logic they call lives in lib.segmentation
and lib.media.masks."""

import streamlit as st

from lib import ui

ui.page_setup()

from lib.segmentation.service import SegmentationSession
from pages import segmentation_image, segmentation_video


def session() -> SegmentationSession:
    """This visitor's segmentation; their tracker is closed when they leave."""
    def make():
        made = SegmentationSession()
        ui.on_session_end(made.close)
        return made
    return ui.service("segmentation", make)


def main() -> None:
    st.title("Segmentation")
    mode = st.radio("Mode", ["Image", "Video"], horizontal=True, key="seg_mode")
    view = segmentation_image.image_mode if mode == "Image" else segmentation_video.video_mode
    view(session())


main()
