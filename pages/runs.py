"""Runs (coming): W&B run comparison."""

import streamlit as st

st.title("Runs")
st.info("Coming soon: W&B runs from the cloud and from local offline run folders, side by side: "
        "config diff, curves, parallel coordinates.")
