"""AppTest for the runs page on generated offline runs, bad folders and the cloud form."""

import shutil

import pytest

from lib.models import checkpoints
from lib.runs import sweep
from tests.app.test_pages import run_page
from tests.helpers import http_error


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LENS_CACHE", str(tmp_path / "cache"))
    import streamlit as st
    st.cache_data.clear()


def test_demo_pack_runs_on_first_start_and_spirals_one_click_away():
    at = run_page("runs")
    assert not at.exception
    assert any("demo pack's training runs" in i.value for i in at.info)
    table = at.dataframe[0].value
    demo = sorted(p.name for p in checkpoints.checkpoints_dir().glob("demo-*/wandb"))
    assert len(demo) >= 2 and len(table) == len(demo)   # one training run per demo model
    assert set(table["state"]) == {"finished"}
    at.selectbox(key="bundled").set_value("spirals sweep").run()
    assert any("sample runs" in i.value for i in at.info)
    table = at.dataframe[0].value
    assert len(table) == 4 and set(table["state"]) == {"finished"}
    assert len(at.multiselect(key="selected").value) == 4


def test_compare_generated_runs(project, tmp_path, monkeypatch):
    monkeypatch.setenv("LENS_DATA_ROOTS", str(project.parent))
    at = run_page("runs")
    at.text_input(key="folder").set_value(str(project)).run()
    assert not at.exception
    assert sorted(at.dataframe[0].value["name"]) == ["alpha", "beta", "gamma"]
    at.multiselect(key="selected").set_value(["beta", "gamma"]).run()
    diff = at.dataframe[1].value
    assert list(diff.index) == ["model.arch"]
    assert not at.get("plotly_chart")      # only the open tab (Config diff) is computed
    at.session_state["tab"] = "Curves"
    at.run()
    at.text_input(key="metrics").set_value("train/*, val/acc").run()
    assert len(at.get("plotly_chart")) >= 2
    stats = at.dataframe[1].value          # after the runs table
    assert set(stats["metric"]) == {"train/loss", "val/acc"} and len(stats) == 4
    assert at.query_params["runs"] == "beta,gamma"
    at.selectbox(key="group_by").set_value("model.arch").run()
    assert not at.exception


def test_unreadable_runs_are_counted_by_reason_and_the_rest_shown(project, tmp_path,
                                                                   monkeypatch):
    root = tmp_path / "mixed"
    shutil.copytree(project, root)
    for i, content in enumerate([b"garbage", b"", b"more garbage"]):
        bad = root / "wandb" / f"offline-run-bad-zz{i}"
        bad.mkdir()
        (bad / f"run-zz{i}.wandb").write_bytes(content)
    monkeypatch.setenv("LENS_DATA_ROOTS", str(tmp_path))
    at = run_page("runs")
    at.text_input(key="folder").set_value(str(root)).run()
    assert not at.exception
    warning = next(w.value for w in at.warning if "Skipped" in w.value)
    assert "Skipped 3 of 6 runs" in warning
    assert "3 × not a readable W&B run log (bad header)" in warning
    assert len(at.dataframe[0].value) == 3


def test_summary_importance_and_no_run_cap(tmp_path, monkeypatch):
    """100 runs: all selected at once, summary diff and parameter importance computed."""
    import wandb
    root = tmp_path / "sweep"
    for i in range(12):            # real wandb runs, copied to 100 run folders below
        run = wandb.init(mode="offline", dir=str(root / "made"), project="sweep",
                         name=f"s{i}", config={"lr": 10 ** (-4 + i / 4), "opt": "adam"
                                               if i % 2 else "sgd", "batch": 32},
                         settings=wandb.Settings(silent=True, console="off",
                                                 x_disable_stats=True))
        run.log({"val/acc": 0.5 + 0.03 * i}, step=0)
        run.finish()
    logs = sorted((root / "made").glob("wandb/offline-run-*/*.wandb"))
    for i in range(100):
        dst = root / "wandb" / f"offline-run-x-c{i:03d}"
        dst.mkdir(parents=True)
        shutil.copy(logs[i % len(logs)], dst / f"run-c{i:03d}.wandb")
    shutil.rmtree(root / "made")
    monkeypatch.setenv("LENS_DATA_ROOTS", str(tmp_path))
    at = run_page("runs")
    at.text_input(key="folder").set_value(str(root)).run()
    assert len(at.dataframe[0].value) == 100
    at.toggle(key="all_shown").set_value(True).run()
    assert not at.exception
    diff = at.dataframe[1].value                             # past 40 runs: a row per run
    names = list(diff.index)                                 # copies: told apart by folder
    assert len(names) == len(set(names)) == 100 and all(" · offline-run-x-c" in n for n in names)
    assert list(diff.columns) == ["lr", "opt"] and diff.shape[0] == 100
    at.session_state["tab"] = "Summary"
    at.run()
    assert "val/acc" in at.dataframe[1].value.columns
    at.session_state["tab"] = "Parameter importance"
    at.run()
    table = next(d.value for d in at.dataframe if "importance" in d.value.columns)
    assert table["parameter"].iloc[0] == "lr" and "batch" not in set(table["parameter"])
    assert [c.key for c in at.get("plotly_chart")] == ["importance", "trend"]   # open tab only
    at.toggle(key="imp_intervals").set_value(True).run(timeout=300)
    assert not at.exception
    ranges = next(d.value for d in at.dataframe if "above noise" in d.value.columns)
    assert set(ranges["parameter"]) == {"lr", "opt=adam", "opt=sgd", sweep.NOISE}
    assert (ranges["low"] <= ranges["high"]).all()
    # twelve distinct runs copied to 100: the verdict is computed, either way in words
    assert any(("noise floor" in m.value or "says nothing yet" in m.value)
               for m in [*at.success, *at.info])
    at.toggle(key="imp_intervals").set_value(False).run()
    assert at.selectbox(key="trend_param").value == "lr" and "trend" in [
        c.key for c in at.get("plotly_chart")]
    at.toggle(key="imp_pairs").set_value(True).run(timeout=300)
    at.toggle(key="imp_best").set_value(True).run(timeout=300)
    assert not at.exception
    assert "interactions" in [c.key for c in at.get("plotly_chart")]
    best = next(m.value for m in at.success if m.value.startswith("Best run:"))
    assert "s11" in best and "95% interval" in best       # val/acc rises with lr: s11 is best
    at.session_state["tab"] = "Curves"
    at.run()
    assert not at.exception                               # 100 runs: bands, not 100 lines
    assert any("mean and min–max band of all of them" in c.value for c in at.caption)
    at.session_state["tab"] = "Parallel coordinates"
    at.run()
    assert [c.key for c in at.get("plotly_chart")] == ["parallel", "scatter"]
    assert "by config · 100 runs" in at.get("plotly_chart")[0].proto.spec
    # a brush on lr (from the browser, or a link) keeps the runs inside it, in the table too
    at.session_state["brush"] = {"lr": [(-3.1, -1.9)]}          # lr's axis is log10
    at.run()
    inside = {f"s{i}" for i in range(12) if -3.1 <= -4 + i / 4 <= -1.9}
    kept = {n.split(" · ")[0] for n in at.dataframe[0].value["name"]}
    assert kept == inside and len(at.dataframe[0].value) < 100
    assert any("of 100 runs inside the brush" in c.value for c in at.caption)
    at.button(key="clear_brush_table").click().run()
    assert len(at.dataframe[0].value) == 100


def test_live_toggle_follows_a_run_being_written(tmp_path, monkeypatch):
    """The page reads more rows while another process writes the run (polled reruns)."""
    import subprocess
    import sys
    import time

    from tests.helpers import LIVE_WRITER
    monkeypatch.setenv("LENS_DATA_ROOTS", str(tmp_path))
    writer = subprocess.Popen([sys.executable, "-c", LIVE_WRITER, str(tmp_path), "3000"])
    try:
        deadline = time.time() + 120
        while not list(tmp_path.glob("wandb/offline-run-*/*.wandb")) and time.time() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)
        at = run_page("runs")
        at.text_input(key="folder").set_value(str(tmp_path)).run()
        at.session_state["tab"] = "Curves"
        at.run()
        at.text_input(key="metrics").set_value("loss").run()
        at.toggle(key="live").set_value(True).run()
        seen = []
        while writer.poll() is None and time.time() < deadline:
            at.run()
            caption = next(c.value for c in at.caption if c.value.startswith("Live:"))
            seen.append(int(caption.split()[1]))
            time.sleep(0.5)
        assert writer.wait(60) == 0
    finally:
        writer.kill()
    assert not at.exception
    assert len(set(seen)) >= 2 and seen == sorted(seen)     # the row count grew as we watched
    at.run()
    caption = next(c.value for c in at.caption if c.value.startswith("Live:"))
    assert caption.startswith("Live: 3000 rows read so far (live: finished)")


def test_empty_and_forbidden_folders(tmp_path, monkeypatch):
    monkeypatch.setenv("LENS_DATA_ROOTS", str(tmp_path))
    at = run_page("runs")
    at.text_input(key="folder").set_value(str(tmp_path)).run()
    assert any("No W&B runs found" in w.value for w in at.warning)
    at.text_input(key="folder").set_value("/etc").run()
    assert any("not inside the folders Lens may read" in e.value for e in at.error)


class FakeApi:
    """A stand-in for wandb.Api that, like W&B, answers only to the right key."""

    SECRET = "k" * 40
    made: list = []

    def __init__(self, api_key=None, timeout=None):
        if api_key != self.SECRET:
            raise http_error(401)        # what the W&B client raises for a refused key
        FakeApi.made.append(self)

    def runs(self, path, filters=None, per_page=100):
        from types import SimpleNamespace as NS
        return [NS(id=f"r{i}", name=f"run-{i}", state="finished", tags=[], notes="",
                   created_at="2026-01-01", summary={"val/acc": 0.5 + i / 10},
                   config={"lr": 0.1 * (i + 1)}) for i in range(2)]

    def run(self, path):
        from types import SimpleNamespace as NS
        i = int(path.rsplit("r", 1)[-1])
        return NS(scan_history=lambda: [{"_step": s, "val/acc": 0.1 * s + i} for s in range(5)])


def test_cloud_key_reaches_runs_and_histories_and_is_never_kept(tmp_path, monkeypatch):
    import wandb
    monkeypatch.setattr(wandb, "Api", FakeApi)
    monkeypatch.setenv("LENS_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    secret = FakeApi.SECRET
    at = run_page("runs")
    at.radio(key="source").set_value("W&B cloud").run()
    at.text_input(key="entity").set_value("team")
    at.text_input(key="project").set_value("proj")
    password = [t for t in at.text_input if t.label.startswith("API key")][0]
    password.set_value("wrong")
    at.button[0].click().run()
    assert any("refused the API key" in e.value for e in at.error)
    password = [t for t in at.text_input if t.label.startswith("API key")][0]
    password.set_value(secret)
    at.button[0].click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert len(at.dataframe[0].value) == 2
    at.session_state["tab"] = "Curves"
    at.run()
    # the Curves tab fetched both histories with the key typed above (no key anywhere else)
    assert [c for c in at.get("plotly_chart")], "curves drawn from the cloud histories"
    assert all(secret not in repr(at.session_state[k]) for k in at.session_state)
    shown = [e for e in at.main if not getattr(e, "label", "").startswith("API key")]
    assert shown and all(secret not in str(getattr(e, "value", "")) for e in shown)


def test_a_run_added_to_the_folder_appears_on_the_next_rerun(project, tmp_path,
                                                             monkeypatch):
    root = tmp_path / "growing"
    shutil.copytree(project, root)
    monkeypatch.setenv("LENS_DATA_ROOTS", str(tmp_path))
    at = run_page("runs")
    at.text_input(key="folder").set_value(str(root)).run()
    assert len(at.dataframe[0].value) == 3
    first = sorted(root.glob("wandb/offline-run-*"))[0]
    shutil.copytree(first, root / "wandb" / "offline-run-20990101_000000-copy")
    at.run()
    assert len(at.dataframe[0].value) == 4


def test_console_pane_shows_a_runs_output(project, tmp_path, monkeypatch):
    """The Console tab: a run's output.log (its end), and a clear note for a run without one
    or whose log links out of its folder."""
    import os
    monkeypatch.setenv("LENS_DATA_ROOTS", str(project.parent))
    logs = {p.parent.name: p for p in project.glob("wandb/offline-run-*/*.wandb")}
    first = sorted(logs.values())[0]
    (first.parent / "files").mkdir(exist_ok=True)
    (first.parent / "files" / "output.log").write_text("epoch 1 loss 0.9\nepoch 2 loss 0.5\n")
    at = run_page("runs")
    at.text_input(key="folder").set_value(str(project)).run()
    at.session_state["tab"] = "Console & system"
    at.run()
    assert not at.exception
    shown = {}
    for name in at.selectbox(key="console_run").options:
        at.selectbox(key="console_run").set_value(name).run()
        shown[name] = ([c.value for c in at.code], [i.value for i in at.info])
        charts = [c.key for c in at.get("plotly_chart")]
        assert any(k.startswith("system_CPU") for k in charts) or any(
            "no system metrics" in i.value for i in at.info)
    assert sum("epoch 2 loss 0.5" in "".join(c) for c, _ in shown.values()) == 1
    assert sum(any("no console output" in i for i in infos) for _, infos in shown.values()) == 2
    secret = tmp_path / "secret.txt"
    secret.write_text("hunter2")
    os.remove(first.parent / "files" / "output.log")
    os.symlink(secret, first.parent / "files" / "output.log")
    for name in at.selectbox(key="console_run").options:
        at.selectbox(key="console_run").set_value(name).run()
        assert not any("hunter2" in c.value for c in at.code)


def test_media_pane_images_by_step_and_tables(tmp_path, monkeypatch):
    import numpy as np
    import wandb
    for r in range(2):
        run = wandb.init(mode="offline", dir=str(tmp_path / "m"), project="m", name=f"m{r}",
                         settings=wandb.Settings(silent=True, console="off"))
        for s in range(3):
            run.log({"pred": wandb.Image(np.full((16, 16, 3), 40 * s + r, np.uint8)),
                     "rows": wandb.Table(columns=["a"], data=[[s]])}, step=s)
        run.finish()
    monkeypatch.setenv("LENS_DATA_ROOTS", str(tmp_path))
    at = run_page("runs")
    at.text_input(key="folder").set_value(str(tmp_path / "m")).run()
    at.session_state["tab"] = "Media"
    at.run()
    assert not at.exception and at.selectbox(key="media_key").options == ["pred (image)",
                                                                          "rows (table)"]
    assert len(at.get("image")) == 2                        # both runs, side by side
    at.select_slider(key="media_step").set_value(0).run()
    assert not at.exception and not at.error
    at.selectbox(key="media_key").set_value("rows").run()
    tables = [d.value for d in at.dataframe if list(d.value.columns) == ["a"]]
    assert len(tables) == 2 and all(t["a"].tolist() == [0] for t in tables)


def test_the_comparison_as_an_html_report(project):
    """The report the page offers: runs, differences, curves and importance, self-contained."""
    import re

    from lib import runs
    from pages import runs_panes
    infos = runs.load_offline(project)[0]
    html = runs_panes.report(infos, ["lr"], ["best"], "val/*", 0.0, "best", ["lr"])
    for title in ("Config differences", "Summary differences", "Curves",
                  "Parallel coordinates", "Parameter importance for best"):
        assert title in html
    assert 'id="config"' in html and html.count("plotly.js v") == 1
    assert not re.search(r"<script[^>]+src=", html)
    assert "too few" in html                 # three runs: no ranking, said in the report
    assert '"type":"parcoords"' in html.replace(" ", "")


def test_a_linked_run_outside_the_filter_still_opens(project, monkeypatch):
    """A link naming runs the linked filter hides: they stay selected (offered beside the
    table's runs), the page does not fail."""
    from streamlit.testing.v1 import AppTest

    from tests.conftest import ROOT
    monkeypatch.setenv("LENS_DATA_ROOTS", str(project))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180).run()
    at.query_params.update(path=str(project), runs="alpha,gamma", run_filter="beta")
    at.switch_page("pages/runs.py")
    at.run()
    assert not at.exception
    assert list(at.dataframe[0].value["name"]) == ["beta"]
    assert at.multiselect(key="selected").value == ["alpha", "gamma"]


@pytest.mark.parametrize("brush,kept", [
    ('{"lr": [[0.05, 1]]}', 1),                       # a real brush: alpha's lr 0.1 only
    ("not json", 3), ('{"lr": "x"}', 3), ('{"lr": [[1]]}', 3), ("[1, 2]", 3),
    ('{"<script>": [[0, 1]]}', 3), ('{"lr": [[0, 1]]}' * 5000, 3)])
def test_a_brush_from_a_link_is_checked(project, monkeypatch, brush, kept):
    """A link's brush is used when it is one; anything else is ignored, never a failure."""
    from streamlit.testing.v1 import AppTest

    from tests.conftest import ROOT
    monkeypatch.setenv("LENS_DATA_ROOTS", str(project))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180).run()
    at.query_params.update(path=str(project), brush=brush)
    at.switch_page("pages/runs.py")
    at.run()
    assert not at.exception
    assert len(at.dataframe[0].value) == kept


def test_a_link_reopens_the_parallel_coordinates_as_they_were(project, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from tests.conftest import ROOT
    monkeypatch.setenv("LENS_DATA_ROOTS", str(project))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180).run()
    at.query_params.update(path=str(project), tab="Parallel coordinates",
                           pc_axes=["model.depth", "lr"], pc_metric="best")
    at.switch_page("pages/runs.py")
    at.run()
    assert not at.exception
    assert at.multiselect(key="pc_axes").value == ["model.depth", "lr"]
    assert at.selectbox(key="pc_metric").value == "best"
