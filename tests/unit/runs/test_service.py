"""The Runs page's service without Streamlit: sources (bundled, typed, refused), the cloud
client released when the visitor leaves, runs followed live, and the page's link."""

import pytest

from lib.core import paths
from lib.core.errors import PathNotAllowedError
from lib.runs import cloud
from lib.runs.service import RunsComparison


def test_bundled_folders_open_by_the_path_they_are_shown_as():
    c = RunsComparison("visitor")
    demo, sample = c.bundled()
    assert demo.shown == "checkpoints" and not sample.shown.startswith("/")
    opened = c.open_folder(sample.shown)
    assert opened.bundled == sample and opened.infos and not opened.problems
    assert {r.source for r in opened.infos} == {"sample"}
    assert c.open_folder(str(sample.folder)).bundled == sample      # any path to it


def test_a_typed_folder_is_read_and_one_outside_the_roots_refused(project, monkeypatch):
    monkeypatch.setenv("LENS_DATA_ROOTS", str(project.parent))
    c = RunsComparison("visitor")
    opened = c.open_folder(str(project))
    assert opened.bundled is None
    assert sorted(r.name for r in opened.infos) == ["alpha", "beta", "gamma"]
    assert c.open_folder(paths.shown(project)).infos     # as the page shows it, typed back
    with pytest.raises(PathNotAllowedError):
        c.open_folder("/etc")


def test_the_visitor_s_client_goes_when_they_leave(project):
    c = RunsComparison("visitor-1")
    cloud.remember_client("visitor-1", object())
    assert c.client() is not None
    c.follow(next(iter(RunsComparison("x").open_folder("samples/runs").infos)))
    c.close()
    assert c.client() is None and not c.live and not c.cloud_runs


def test_the_page_link_is_read_field_by_field():
    link = RunsComparison.read_link({"source": "cloud", "runs": "a,b", "smooth": "2"})
    assert (link.source, link.runs, link.smooth) == ("cloud", ("a", "b"), 0.99)
