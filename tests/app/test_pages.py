"""AppTest: the app and every page render without an exception."""

import json

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT

PAGES = ["home", "classification", "segmentation", "detection", "runs"]


def run_page(name: str, timeout: float = 180) -> AppTest:
    """Open a page through the router, as the browser does."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=timeout).run()
    at.switch_page(f"pages/{name}.py")
    return at.run()


def test_app_routes_to_all_pages():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    assert not at.exception
    assert at.title[0].value == "Lens"  # Home is the default page


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_without_exception(page):
    at = run_page(page)
    assert not at.exception, at.exception
    assert at.title, f"{page} has no title"


def test_home_lists_a_dropped_checkpoint(checkpoints_dir):
    import streamlit as st
    st.cache_data.clear()
    folder = checkpoints_dir / "my-places-model"
    folder.mkdir()
    (folder / "model.json").write_text(json.dumps({"architecture": "efficientnet_b0"}))
    at = run_page("home")
    table = at.dataframe[-1].value
    row = table[table["model"] == "my-places-model"].iloc[0]
    assert row["status"] == "broken" and "no weights file" in row["weights"]
    assert any("models ready to use offline" in m.value for m in at.markdown)


def test_no_page_shows_the_server_s_absolute_paths():
    """Home's weights column, the memory caption and the Runs page's folder box show paths
    relative to the project, a cache or a data root: a public demo never maps the server's
    disk for its visitors."""
    import streamlit as st
    st.cache_data.clear()
    root = str(ROOT)
    home = run_page("home")
    weights = home.dataframe[-1].value["weights"]
    assert (weights == "checkpoints/demo-classifier/model.safetensors").any()
    assert not weights.str.contains(root, regex=False).any()
    assert all(root not in c.value for c in home.caption)
    runs = run_page("runs")
    assert runs.text_input(key="folder").value == "checkpoints"
    assert not runs.exception and runs.dataframe          # and it reads the demo pack's runs
