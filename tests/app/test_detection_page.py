"""AppTest for the detection page on the COCO sample with imported predictions."""

import json

import pytest

from lib import coco_eval
from tests.app.test_pages import run_page
from tests.unit.test_detection import coco, gt_results  # noqa: F401


@pytest.fixture
def page(coco, monkeypatch):  # noqa: F811
    import streamlit as st
    st.cache_data.clear()
    monkeypatch.setenv("LENS_DATA_ROOTS", str(coco.images_dir.parent.parent))
    at = run_page("detection", timeout=300)
    at.radio(key="data_source").set_value("Path")
    return at.run(timeout=300)


def upload(at, slot, name, payload: bytes):
    at.file_uploader(key=f"preds_{slot}").set_value((name, payload, "application/json"))
    return at.run(timeout=300)


def test_imported_predictions_compared(page, coco):  # noqa: F811
    assert not page.exception
    a, b = gt_results(coco, 0.05, 0.1, seed=1), gt_results(coco, 0.3, 0.3, seed=2)
    upload(page, "A", "good.json", json.dumps(a).encode())
    upload(page, "B", "worse.json", json.dumps(b).encode())
    assert not page.exception
    table = page.dataframe[0].value
    assert list(table.columns) == ["good", "worse", "B − A"]
    assert table.loc["AP", "good"] == pytest.approx(coco_eval.evaluate(coco, a).stats["AP"])
    assert table.loc["AP", "B − A"] < 0
    errors_table = [d.value for d in page.dataframe if "missed" in getattr(d.value, "columns", [])]
    assert errors_table and errors_table[0].loc["worse", "missed"] > errors_table[0].loc["good",
                                                                                        "missed"]
    page.selectbox(key="bucket").set_value("missed").run(timeout=300)
    assert not page.exception and page.get("image")


@pytest.mark.parametrize("payload,message", [
    (b"{ nope", "not valid JSON"),
    (json.dumps([{"image_id": 123456789, "category_id": 1, "bbox": [0, 0, 1, 1],
                  "score": 1}]).encode(), "another dataset"),
])
def test_bad_predictions_file_shows_error(page, payload, message):
    upload(page, "A", "bad.json", payload)
    assert not page.exception
    assert any(message in e.value for e in page.error)


def test_bad_dataset_path_and_missing_weights(page, coco, tmp_path):  # noqa: F811
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

    from lib import synth
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
    table = at.dataframe[0].value
    assert table.loc["AP", "truth"] == pytest.approx(1.0)
    assert math.isnan(table.loc["APl", "truth"])


def test_offline_defaults_to_the_demo_pack(monkeypatch, tmp_path):
    """No hub: the demo validation split and the demo detectors are preselected, and the page
    says why."""
    import streamlit as st

    from lib import registry
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
