"""AppTest of the Detection page's Dataset tab on 12 demo images: embed, map, a selection
(by link) that the metrics follow, more like this, duplicates, label errors and export."""

import pytest

from tests import reference
from tests.app.test_detection_page import _wait, demo_page  # noqa: F401 - the fixture


def _run_models(at, tmp_path):
    from lib.detection import jobs
    for slot in "AB":
        at.button(key=f"run_{slot}").click().run(timeout=300)
    for job in [j for j in jobs._JOBS.values() if j.results_path.is_relative_to(tmp_path)
                and (j.running or j.done)]:
        _wait(job, lambda j: j.finished or j.error, timeout=600)
    return at.run(timeout=300)


def _embed(at, tmp_path):
    from lib.detection import jobs
    at.button(key="run_explore").click().run(timeout=300)
    (job,) = [j for j in jobs._JOBS.values()
              if j.key.startswith("emb-") and j.results_path.is_relative_to(tmp_path)
              and (j.running or j.done)]
    _wait(job, lambda j: j.finished or j.error, timeout=600)
    assert not job.error, job.error
    return job


def test_map_selection_by_link_recomputes_the_metrics(demo_page, tmp_path):  # noqa: F811
    at = _run_models(demo_page, tmp_path)
    at.session_state["tab"] = "Dataset"
    at.run(timeout=300)
    assert not at.exception
    assert at.selectbox(key="explore_model").value.startswith("EfficientNet-Lite0")
    at.selectbox(key="explore_level").set_value("objects: ground truth").run(timeout=300)
    job = _embed(at, tmp_path)
    at.run(timeout=300)
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.get("plotly_chart"), "the map is drawn"
    assert "outcome" in at.selectbox(key="explore_colour").options
    # a selection arrives by link: the leaderboard is then the selection's AP
    ids = job.dataset.image_ids[:5]
    at.query_params["selected"] = ",".join(map(str, ids)) + ",999999,abc"
    at.run(timeout=300)
    assert not at.exception
    assert any("does not have" in w.value and "999999" in w.value or "abc" in w.value
               for w in at.warning)
    assert any("Showing the 5 images selected" in i.value for i in at.info)
    board = next(d.value for d in at.dataframe if "ΔAP class" in d.value.columns
                 or "AP50" in d.value.columns)
    from lib.detection import jobs
    fr = next(j for j in jobs._JOBS.values() if not j.key.startswith("emb-") and j.finished
              and j.results_path.is_relative_to(tmp_path) and j.spec.name == "demo-fasterrcnn")
    subset = fr.dataset.only(ids)
    rows = [r for r in fr.results() if r["image_id"] in set(ids)]
    want = reference.pycocotools(subset, rows)["AP"]
    got = board.set_index("model").loc["demo-fasterrcnn", "AP"]
    assert got == pytest.approx(want, abs=1e-6)


def test_label_errors_ranked_and_exported(demo_page, tmp_path):  # noqa: F811
    at = _run_models(demo_page, tmp_path)
    at.session_state["tab"] = "Dataset"
    at.run(timeout=300)
    at.segmented_control(key="explore_section").set_value("Label errors").run(timeout=300)
    assert not at.exception and not at.error
    top = next(d.value for d in at.dataframe if "mislocated" in d.value.columns)
    assert list(top["score"]) == sorted(top["score"], reverse=True)
    assert at.get("download_button"), "the flagged boxes can be exported"


def test_duplicates_and_a_leaky_split_with_other_category_names(demo_page, tmp_path,  # noqa: F811
                                                                 monkeypatch):
    """The 12 demo images at image level; another split holding 3 of them again (new ids,
    categories renamed): a warning names the difference and exactly those 3 are leaks."""
    import json as _json

    from lib.demo import synth
    split = synth.demo_val()
    monkeypatch.setenv("LENS_DATA_ROOTS", f"{tmp_path}:{split}")
    at = _run_models(demo_page, tmp_path)
    at.session_state["tab"] = "Dataset"
    at.run(timeout=300)
    at.segmented_control(key="explore_section").set_value("Duplicates and leaks")
    at.run(timeout=300)
    job = _embed(at, tmp_path)
    at.run(timeout=300)
    assert not at.exception and not at.error, [e.value for e in at.error]
    ids = job.dataset.image_ids[:3]
    data = _json.loads((split / "annotations.json").read_text())
    images = [{**im, "id": 1000 + im["id"]} for im in data["images"] if im["id"] in ids]
    other = {"images": images, "annotations": [],
             "categories": [{**c, "name": c["name"] + "-x"} for c in data["categories"]]}
    (tmp_path / "other.json").write_text(_json.dumps(other))
    at.text_input(key="leak_ann").set_value(str(tmp_path / "other.json"))
    at.text_input(key="leak_img").set_value(str(split / "images")).run(timeout=300)
    assert any("categories differ" in w.value for w in at.warning)
    at.button(key="run_leaks").click().run(timeout=300)
    from lib.detection import jobs
    (theirs,) = [j for j in jobs._JOBS.values() if j.key.startswith("emb-")
                 and j.results_path.is_relative_to(tmp_path)
                 and j.dataset.annotations_path.name == "other.json"]
    _wait(theirs, lambda j: j.finished or j.error, timeout=600)
    at.run(timeout=300)
    assert not at.exception and not at.error, [e.value for e in at.error]
    leaked = next(d.value for d in at.dataframe if "other_image_id" in d.value.columns)
    assert sorted(zip(leaked["other_image_id"], leaked["image_id"])) == [
        (1000 + i, i) for i in sorted(ids)]
