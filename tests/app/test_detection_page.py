"""AppTest for the detection page on the COCO sample (or the demo split where it is absent)."""

import json

import pytest

from tests import reference
from tests.app.test_pages import run_page
from tests.helpers import gt_results


@pytest.fixture
def page(coco, monkeypatch):
    import streamlit as st
    st.cache_data.clear()
    monkeypatch.setenv("LENS_DATA_ROOTS", str(coco.images_dir.parent.parent))
    at = run_page("detection", timeout=300)
    at.radio(key="data_source").set_value("Path").run(timeout=300)
    at.text_input(key="ann_path").set_value(str(coco.annotations_path))
    at.text_input(key="img_path").set_value(str(coco.images_dir))
    return at.run(timeout=300)


def metrics_table(at):
    """The 12 COCO numbers side by side (rows AP … ARl)."""
    return next(d.value for d in at.dataframe if "AP75" in getattr(d.value, "index", []))


def open_tab(at, label: str):
    """Open a tab as a click does: its value and the URL's `tab` both say so (a value set in
    session state alone can lose to the URL the last run wrote, the tab being bound to it)."""
    at.session_state["tab"] = label
    at.query_params["tab"] = label
    return at.run(timeout=300)


def upload(at, slot, name, payload: bytes):
    at.file_uploader(key=f"preds_{slot}").set_value((name, payload, "application/json"))
    return at.run(timeout=300)


def test_imported_predictions_compared(page, coco):
    assert not page.exception
    a, b = gt_results(coco, 0.05, 0.1, seed=1), gt_results(coco, 0.3, 0.3, seed=2)
    upload(page, "A", "good.json", json.dumps(a).encode())
    upload(page, "B", "worse.json", json.dumps(b).encode())
    assert not page.exception
    table = metrics_table(page)
    assert list(table.columns) == ["good", "worse", "B − A", "good ±", "worse ±"]
    low, high = (float(x) for x in table.loc["AP", "good ±"].split())   # "-0.0123 +0.0101"
    assert low < high and table.loc["APs", "good ±"] == ""
    # the page's numbers against the reference implementation, not against its own code
    assert table.loc["AP", "good"] == pytest.approx(reference.pycocotools(coco, a)["AP"],
                                                    abs=1e-6)
    assert table.loc["AP", "B − A"] < 0
    assert not page.get("image")             # only the open tab (Metrics) is drawn
    open_tab(page, "Errors")
    errors_table = [d.value for d in page.dataframe if "missed" in getattr(d.value, "columns", [])]
    assert errors_table and errors_table[0].loc["worse", "missed"] > errors_table[0].loc["good",
                                                                                        "missed"]
    open_tab(page, "Images")
    page.selectbox(key="bucket").set_value("missed").run(timeout=300)
    assert not page.exception and page.get("image")
    open_tab(page, "Metrics")    # the image filter is kept while Images is closed
    open_tab(page, "Images")
    assert page.selectbox(key="bucket").value == "missed"


@pytest.mark.parametrize("payload,message", [
    (b"{ nope", "not valid JSON"),
    (json.dumps([{"image_id": 123456789, "category_id": 1, "bbox": [0, 0, 1, 1],
                  "score": 1}]).encode(), "another dataset"),
])
def test_bad_predictions_file_shows_error(page, payload, message):
    upload(page, "A", "bad.json", payload)
    assert not page.exception
    assert any(message in e.value for e in page.error)


def test_bad_dataset_path_and_missing_weights(page, coco, tmp_path):
    bad = coco.images_dir.parent.parent / "nope.json"
    page.text_input(key="ann_path").set_value(str(bad)).run(timeout=300)
    assert any("does not exist" in e.value for e in page.error)
    page.text_input(key="ann_path").set_value(str(coco.annotations_path)).run(timeout=300)
    page.selectbox(key="model_A").set_value("fasterrcnn_resnet50_fpn").run(timeout=300)
    assert any("python -m lib.weights fetch 'fasterrcnn_resnet50_fpn'" in e.value
               for e in page.error)


def test_size_ranges_without_objects_show_na(tmp_path, monkeypatch):
    """Synthetic 128-px images have no large objects: COCO's -1 for APl is shown as n/a."""
    import math

    import streamlit as st

    from lib.demo import synth
    st.cache_data.clear()
    out = synth.generate(tmp_path / "synth", seed=1, train=0, val=6, size=128, splits=("val",))
    ann, imgs = out / "detection/val/annotations.json", out / "detection/val/images"
    monkeypatch.setenv("LENS_DATA_ROOTS", str(tmp_path))
    at = run_page("detection", timeout=300)
    at.radio(key="data_source").set_value("Path").run(timeout=300)
    at.text_input(key="ann_path").set_value(str(ann))
    at.text_input(key="img_path").set_value(str(imgs)).run(timeout=300)
    truth = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"],
              "score": 1.0} for a in json.loads(ann.read_text())["annotations"]]
    upload(at, "A", "truth.json", json.dumps(truth).encode())
    table = metrics_table(at)
    assert table.loc["AP", "truth"] == pytest.approx(1.0)
    assert math.isnan(table.loc["APl", "truth"])


def test_offline_defaults_to_the_demo_pack(monkeypatch, tmp_path):
    """No hub: the demo validation split and the demo detectors are preselected, and the page
    says why."""
    import streamlit as st

    from lib.models import registry
    st.cache_data.clear()
    monkeypatch.setattr(registry, "hub_reachable", lambda timeout=2.0: False)
    monkeypatch.setenv("LENS_CACHE", str(tmp_path))
    at = run_page("detection", timeout=300)
    assert not at.exception
    assert at.radio(key="data_source").value == "Demo (synthetic shapes)"
    assert any("150 images" in c.value and "4 categories" in c.value for c in at.caption)
    assert {at.selectbox(key="model_A_demo").value, at.selectbox(key="model_B_demo").value} \
        == {"demo-fasterrcnn", "demo-conditional-detr"}
    assert any("Showing the demo pack" in i.value for i in at.info)


# -- built-in detectors from the page: run, cancel, resume, EigenCAM, what-if -------------------

@pytest.fixture
def demo_page(monkeypatch, tmp_path):
    """The offline detection page on 12 images of the demo split, predictions cached in tmp."""
    import streamlit as st

    from lib.models import registry
    st.cache_data.clear()
    monkeypatch.setattr(registry, "hub_reachable", lambda timeout=2.0: False)
    monkeypatch.setenv("LENS_CACHE", str(tmp_path))
    at = run_page("detection", timeout=300)
    at.number_input(key="subset").set_value(12).run(timeout=300)
    yield at
    from lib.detection import jobs
    for job in jobs._JOBS.values():   # no job thread outlives its test
        job.cancel()
        job.wait(60)


def _wait(job, until, timeout=300):
    import time
    end = time.time() + timeout
    while not until(job) and time.time() < end:
        time.sleep(0.1)
    assert until(job), (job.done, job.total, job.error)


def test_run_cancel_resume_then_cam_and_what_if(demo_page, monkeypatch, tmp_path):
    import time

    from lib.detection import jobs
    from tests.security.attacks import png_bytes
    at = demo_page
    assert at.selectbox(key="model_B_demo").value == "demo-fasterrcnn"
    real_read = jobs.InferenceJob._read
    monkeypatch.setattr(jobs.InferenceJob, "_read",       # slow enough to cancel
                        lambda self, i: time.sleep(0.15) or real_read(self, i))
    at.button(key="run_B").click().run(timeout=300)
    (job,) = [j for j in jobs._JOBS.values()
              if j.results_path.is_relative_to(tmp_path) and (j.running or j.done)]
    _wait(job, lambda j: j.done >= 2)
    at.button(key="cancel_B").click().run(timeout=300)
    _wait(job, lambda j: not j.running)
    stopped_at = job.done
    assert 0 < stopped_at < 12 and not job.finished
    at.run(timeout=300)
    assert at.button(key="run_B").label == "Resume"
    assert any(f"Stopped at {stopped_at}/12" in c.value for c in at.caption)
    before = job.partial_path.read_text().splitlines()
    at.button(key="run_B").click().run(timeout=300)
    _wait(job, lambda j: j.finished)
    at.run(timeout=300)
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("Cached predictions" in c.value for c in at.caption)
    assert len(before) == stopped_at and not job.partial_path.exists()  # resumed, then merged
    # the page's AP50 is pycocotools' on the same detections
    table = metrics_table(at)
    assert table.loc["AP50", "demo-fasterrcnn"] == pytest.approx(
        reference.pycocotools(job.dataset, job.results())["AP50"], abs=1e-6)
    # EigenCAM of one of its false positives (Images tab, "What fired?")
    at.session_state["tab"] = "Images"
    at.run(timeout=300)
    captions = [i.caption for img in at.get("image") for i in img.proto.imgs]
    assert any("EigenCAM of demo-fasterrcnn's backbone" in c for c in captions), captions
    # What-if: one upload through the detector that ran
    at.file_uploader(key="whatif_image").set_value(("shape.png", png_bytes((128, 128)),
                                                   "image/png")).run(timeout=300)
    assert not at.exception and not at.error
    captions = [i.caption for img in at.get("image") for i in img.proto.imgs]
    assert any(c.startswith("demo-fasterrcnn · clean: ") for c in captions), captions
    # ... under fog 3: the change counted, and the sweep of what each corruption keeps
    at.selectbox(key="dwi_corruption").set_value("fog").run(timeout=300)
    assert not at.exception and not at.error
    captions = [i.caption for img in at.get("image") for i in img.proto.imgs]
    assert any(c.startswith("demo-fasterrcnn · fog 3: ") for c in captions), captions
    assert any("kept" in m.value and "gained" in m.value for m in at.markdown)
    at.button(key="dwi_sweep").click().run(timeout=300)
    assert not at.exception and at.get("plotly_chart")


def test_dataset_zip_upload(monkeypatch, tmp_path):
    """A zip of a COCO dataset (annotations + images) uploaded from the sidebar."""
    import io
    import zipfile

    import streamlit as st

    from lib.demo import synth
    st.cache_data.clear()
    monkeypatch.setenv("LENS_CACHE", str(tmp_path / "cache"))
    split = synth.demo_val(tmp_path / "demo")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.write(split / "annotations.json", "set/annotations/instances_val.json")
        for image in sorted((split / "images").iterdir()):
            z.write(image, f"set/images/{image.name}")
    at = run_page("detection", timeout=300)
    at.radio(key="data_source").set_value("Upload zip").run(timeout=300)
    at.file_uploader(key="data_zip").set_value(("set.zip", buf.getvalue(),
                                                "application/zip")).run(timeout=300)
    assert not at.exception and not at.error
    assert any("150 images" in c.value and "instances_val.json" in c.value for c in at.caption)


def test_leaderboard_of_every_model_evaluated_here(page, coco):
    """Three imported result files through two slots: all three stay on the leaderboard,
    ordered by AP as pycocotools computes it; any two can be compared."""
    files = {"sharp": gt_results(coco, 0.02, 0.05, seed=1), "medium": gt_results(
        coco, 0.15, 0.2, seed=2), "blurry": gt_results(coco, 0.35, 0.4, seed=3)}
    upload(page, "A", "sharp.json", json.dumps(files["sharp"]).encode())
    upload(page, "B", "medium.json", json.dumps(files["medium"]).encode())
    upload(page, "A", "blurry.json", json.dumps(files["blurry"]).encode())
    assert not page.exception
    board = next(d.value for d in page.dataframe if "ΔAP missed" in getattr(d.value, "columns",
                                                                           []))
    expected = sorted(files, key=lambda n: -reference.pycocotools(coco, files[n])["AP"])
    assert board["model"].tolist() == expected
    for name, results in files.items():
        row = board[board["model"] == name].iloc[0]
        assert row["AP"] == pytest.approx(reference.pycocotools(coco, results)["AP"],
                                          abs=1e-6)
    page.multiselect(key="drill_down_blurry|medium").set_value(["sharp", "blurry"]).run(
        timeout=300)
    assert list(metrics_table(page).columns)[:3] == ["sharp", "blurry", "B − A"]


def test_a_logged_benchmark_link_reopens_its_data_and_models(coco, monkeypatch):
    """The Runs page's link (runs.detection_link) opens this page on the same data/models."""
    from urllib.parse import parse_qs, urlsplit

    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from lib import runs
    from tests.app.test_pages import ROOT
    st.cache_data.clear()
    monkeypatch.setenv("LENS_DATA_ROOTS", str(coco.images_dir.parent.parent))
    info = runs.RunInfo(id="r", name="b", project="p", tags=["benchmark", "detection"],
                        config={"data": "path", "dataset": str(coco.annotations_path),
                                "images_dir": str(coco.images_dir), "subset": 7, "seed": 2,
                                "models": ["demo-fasterrcnn", "my-imported"]})
    query = {k: v[0] for k, v in parse_qs(urlsplit(runs.detection_link(info)).query).items()}
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300).run()
    at.switch_page("pages/detection.py")
    for key, value in query.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception
    assert at.radio(key="data_source").value == "Path"
    from lib.core import paths  # the link shows paths relative to a data root
    assert at.text_input(key="ann_path").value == paths.shown(coco.annotations_path)
    assert not at.text_input(key="ann_path").value.startswith("/")
    assert at.number_input(key="subset").value == 7 and at.number_input(key="seed").value == 2
    assert at.selectbox(key="model_A").value == "demo-fasterrcnn"
    assert at.selectbox(key="model_B").value.startswith("Import")   # imported: upload again
    assert at.text_input(key="name_B").value == "my-imported"
    assert any("upload that file again" in c.value for c in at.caption)
    assert any("7 images" in c.value for c in at.caption)
    # a hostile link is input like any other: refused with the usual message
    at2 = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300).run()
    at2.switch_page("pages/detection.py")
    hostile = {**query, "ann": "/etc/passwd", "models": "demo-fasterrcnn,x](javascript:1)`<b>"}
    for key, value in hostile.items():
        at2.query_params[key] = value
    at2.run()
    assert any("not inside the folders Lens may read" in e.value for e in at2.error)
    at3 = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300).run()
    at3.switch_page("pages/detection.py")
    for key, value in {**query, "models": "demo-fasterrcnn,x](javascript:1)`<b>"}.items():
        at3.query_params[key] = value
    at3.run()
    assert at3.text_input(key="name_B").value == "xjavascript1b"   # a plain name, no markup


def test_statistics_tab_intervals_paired_and_slices(page, coco):
    """Two imported results: every model's interval holds pycocotools' AP, the paired
    comparison calls the better one by name, slices find their images; bad counts and area
    ranges get a message and the page stays up."""
    good = gt_results(coco, 0.03, 0.1, seed=1) + gt_results(coco, 0.7, 0.5, seed=3)  # + misses
    worse = gt_results(coco, 0.1, 0.3, seed=2)
    upload(page, "A", "good.json", json.dumps(good).encode())
    upload(page, "B", "worse.json", json.dumps(worse).encode())
    page.session_state["tab"] = "Statistics"
    page.run(timeout=300)
    page.number_input(key="resamples").set_value(300)
    page.number_input(key="slice_min").set_value(1)
    page.run(timeout=300)
    assert not page.exception and not page.error, [e.value for e in page.error]
    rows = next(d.value for d in page.dataframe if "AP75" in getattr(d.value, "columns", [])
                and isinstance(d.value["AP"].iloc[0], str))
    for name, results in (("good", good), ("worse", worse)):
        cell = rows.loc[rows["model"] == name, "AP"].iloc[0]          # "0.4523 (0.43–0.47)"
        point, span = cell.split(" ", 1)
        low, high = (float(x) for x in span.strip("()").split("–"))
        ref = reference.pycocotools(coco, results)["AP"]
        assert float(point) == pytest.approx(ref, abs=1e-4) and low - 1e-4 <= ref <= high + 1e-4
        assert high - low > 1e-3
    assert any(s.value.startswith("good is better") for s in page.success)
    paired = next(d.value for d in page.dataframe if "B ahead in" in getattr(d.value, "columns",
                                                                           []))
    assert paired.set_index("metric").loc["AP", "high"] < 0
    worst = next(d.value for d in page.dataframe if "ΔAP" in getattr(d.value, "columns", [])
                 and "low" in d.value.columns)
    assert len(worst) and (worst["low"] <= worst["AP"]).all()
    assert page.get("image")                          # the worst slice's images
    calib = next(d.value for d in page.dataframe if "D-ECE" in getattr(d.value, "columns", []))
    assert calib["scores"].tolist() == ["as scored", "temperature"]
    assert calib["D-ECE"].between(0, 1).all()
    page.radio(key="calib_method").set_value("isotonic").run(timeout=300)
    calib = next(d.value for d in page.dataframe if "D-ECE" in getattr(d.value, "columns", []))
    assert calib["D-ECE"].iloc[1] < calib["D-ECE"].iloc[0]     # fitted on the other half
    page.toggle(key="slice_all_ci").set_value(True).run(timeout=300)
    every = next(d.value for d in page.dataframe if {"kind", "low"} <= set(getattr(
        d.value, "columns", [])))
    assert len(every) >= len(worst) and (every["low"] <= every["high"]).all()
    page.number_input(key="resamples").set_value(0).run(timeout=300)
    assert "from 1 to 10,000" in page.error[0].value and not page.exception
    page.number_input(key="resamples").set_value(10**9).run(timeout=300)
    assert "from 1 to 10,000" in page.error[0].value and not page.exception
    page.number_input(key="resamples").set_value(200).run(timeout=300)
    page.text_input(key="slice_areas").set_value("300-20").run(timeout=300)
    assert "0 ≤ low < high" in page.error[0].value and not page.exception
    page.text_input(key="slice_areas").set_value("0-256")
    page.text_input(key="slice_groups").set_value("mine: 1 424242").run(timeout=300)
    assert "does not have: [424242]" in page.error[0].value and not page.exception


def test_results_with_masks_get_mask_and_boundary_metrics(page, coco):
    rows = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"],
             "segmentation": a["segmentation"], "score": 0.5 + 0.4 * (k % 2)}
            for k, a in enumerate(coco.data["annotations"])
            if not a.get("iscrowd") and "segmentation" in a and k % 3]
    upload(page, "A", "masks.json", json.dumps(rows).encode())
    assert not page.exception
    table = next(d.value for d in page.dataframe if "masks · segm" in getattr(d.value, "columns",
                                                                          []))
    ref = reference.pycocotools(coco, rows, "segm")
    assert table.loc["AP", "masks · segm"] == pytest.approx(ref["AP"], abs=1e-6)
    assert 0 < table.loc["AP", "masks · boundary"] <= 1


def test_coco_c_from_the_robustness_tab_reaches_the_leaderboard(demo_page, tmp_path):
    """Both demo detectors under fog 3 on 12 images: mPC on the tab and the leaderboard is
    pycocotools' AP of the corrupted run, with an interval; the HTML report holds it."""
    from lib.detection import jobs
    at = demo_page
    for slot in "AB":
        at.button(key=f"run_{slot}").click().run(timeout=300)
    started = [j for j in jobs._JOBS.values()
               if j.results_path.is_relative_to(tmp_path) and (j.running or j.done)]
    assert len(started) == 2
    for job in started:
        _wait(job, lambda j: j.finished or j.error, timeout=600)
    at.session_state["tab"] = "Robustness"
    at.run(timeout=300)
    at.multiselect(key="rob_corruptions").set_value(["fog"])
    at.multiselect(key="rob_severities").set_value([3]).run(timeout=300)
    assert at.multiselect(key="rob_models").value == ["demo-conditional-detr", "demo-fasterrcnn"]
    assert any("1 corruption × severity pairs × 12 images" in c.value for c in at.caption)
    at.button(key="rob_run").click().run(timeout=300)
    mine = [j for j in jobs._JOBS.values()
            if j.results_path.is_relative_to(tmp_path) and (j.running or j.done)]
    assert len(mine) == 4
    for job in mine:
        _wait(job, lambda j: j.finished or j.error, timeout=600)
    at.run(timeout=300)
    assert not at.exception and not at.error, [e.value for e in at.error]
    (fog,) = [j for j in mine if j.corruptions and j.spec.name == "demo-fasterrcnn"]
    want = reference.pycocotools(fog.dataset, fog.results())["AP"]
    summary = next(t.value for t in at.table if "mPC [95% interval]" in t.value.columns)
    cell = summary.loc["demo-fasterrcnn", "mPC [95% interval]"]      # "0.1234 [0.1, 0.2]"
    assert float(cell.split()[0]) == pytest.approx(want, abs=5e-5) and "[" in cell
    board = next(d.value for d in at.dataframe if "mPC" in d.value.columns)
    row = board.set_index("model").loc["demo-fasterrcnn"]
    assert row["mPC"] == pytest.approx(want, abs=1e-6) and row["mPC 95%"].startswith("[")
    assert row["rPC"] == pytest.approx(want / row["AP"], rel=1e-6)
