"""Lens: route to the pages and draw the shared sidebar. Nothing heavy is imported here."""

import streamlit as st

st.set_page_config(page_title="Lens", page_icon=":material/center_focus_strong:", layout="wide")

PAGES = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", url_path="home", default=True),
    st.Page("pages/classification.py", title="Classification", icon=":material/image_search:",
            url_path="classification"),
    st.Page("pages/segmentation.py", title="Segmentation", icon=":material/content_cut:",
            url_path="segmentation"),
    st.Page("pages/detection.py", title="Detection", icon=":material/select_all:",
            url_path="detection"),
    st.Page("pages/runs.py", title="Runs", icon=":material/monitoring:", url_path="runs"),
]

page = st.navigation(PAGES)
st.session_state["lens_router"] = True  # pages check this: see the guard at their top
st.sidebar.caption("Lens · inspect, demo and compare vision models")
from lib.serving import page_log

with page_log.timed_run(page.title):
    page.run()
