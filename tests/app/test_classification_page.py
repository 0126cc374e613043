"""AppTest for the classification page: upload, CAM method, class, compare, evaluate, video."""

import io

import numpy as np
import pytest
from PIL import Image
from skimage import data
from streamlit.testing.v1 import AppTest

from tests.app.test_pages import run_page
from tests.conftest import ROOT
from tests.helpers import write_video


def png(arr) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def page() -> AppTest:
    """A fresh classification page per test (no test sees another's widget changes)."""
    return run_page("classification")


def texts(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown)


def captions(at: AppTest) -> list[str]:
    return [i.caption for img in at.get("image") for i in img.proto.imgs]


def test_sample_photo_is_explained_by_default(page):
    assert not page.exception
    assert "top-1 **tiger cat**" in texts(page)
    assert "overlay · tiger cat" in captions(page)
    assert page.get("download_button")


@pytest.mark.parametrize("name,data_bytes,message", [
    ("notes.png", b"just some text", "text file"),
    ("empty.jpg", b"", "empty"),
    ("page.png", b"<html><body>x</body></html>", "HTML"),
])
def test_bad_upload_shows_error_and_page_keeps_working(name, data_bytes, message):
    at = run_page("classification")
    at.file_uploader(key="uploads").set_value((name, data_bytes, "image/png")).run()
    assert not at.exception
    assert any(message in e.value for e in at.error)
    at.file_uploader(key="uploads").set_value(
        [(name, data_bytes, "image/png"), ("coffee.png", png(data.coffee()), "image/png")]).run()
    assert not at.exception and "top-1 **espresso**" in texts(at)


def test_change_method_and_class(page):
    page.selectbox(key="method").set_value("EigenCAM").run()
    assert not page.exception
    assert any(c.startswith("EigenCAM") for c in captions(page))
    page.selectbox(key="target").set_value(285).run()
    assert "overlay · Egyptian cat" in captions(page)


def test_compare_methods_grid(page):
    assert "compare_mode" not in [r.key for r in page.radio]   # Compare is closed: not run
    page.session_state["tab"] = "Compare"
    page.run()
    page.radio(key="compare_mode").set_value("methods").run()
    page.multiselect(key="compare_methods").set_value(["GradCAM", "LayerCAM", "EigenCAM"]).run()
    assert not page.exception
    grid = [c for c in captions(page) if "EfficientNet-Lite0" in c]
    assert len(grid) == 3 and any("LayerCAM" in c for c in grid)
    page.session_state["tab"] = "Explain"   # the choices are kept while Compare is closed
    page.run()
    page.session_state["tab"] = "Compare"
    page.run()
    assert page.radio(key="compare_mode").value == "methods"
    assert page.multiselect(key="compare_methods").value == ["GradCAM", "LayerCAM", "EigenCAM"]


def labelled_set(tmp_path, monkeypatch) -> None:
    """tmp_path/set: a cat and a coffee photo in class folders, readable by the page."""
    monkeypatch.setenv("LENS_DATA_ROOTS", str(tmp_path))
    for cls, arr in [("tiger cat", data.chelsea()), ("espresso", data.coffee())]:
        (tmp_path / "set" / cls).mkdir(parents=True)
        Image.fromarray(arr).save(tmp_path / "set" / cls / "a.png")


def test_evaluate_folder_and_bad_folder(tmp_path, monkeypatch):
    labelled_set(tmp_path, monkeypatch)
    (tmp_path / "flat").mkdir()
    at = run_page("classification")
    at.text_input(key="eval_path").set_value(str(tmp_path / "flat"))
    at.button(key="run_eval").click().run()
    assert any("no class subfolders" in e.value for e in at.error)
    at.text_input(key="eval_path").set_value(str(tmp_path / "set"))
    at.button(key="run_eval").click().run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Accuracy"] == "100.0%" and metrics["Top-5 accuracy"] == "100.0%"


def test_video_scenes(tmp_path):
    path = write_video(tmp_path / "clip.mp4", frames=12, fps=4, size=(96, 64))
    at = run_page("classification")
    at.slider(key="every_s").set_value(1.0)
    at.file_uploader(key="clip").set_value(("clip.mp4", path.read_bytes(), "video/mp4")).run()
    assert not at.exception
    assert any(s.value.endswith(("scene", "scenes")) for s in at.subheader)
    at.file_uploader(key="clip").set_value(("bad.mp4", b"nope" * 100, "video/mp4")).run()
    assert any("not a video" in e.value for e in at.error)


def test_untrained_models_are_labelled(monkeypatch):
    """A test model with random weights is said to be one, never shown as if real."""
    import timm

    from lib.models import cache, registry
    lm = registry.from_module(timm.create_model("test_efficientnet", num_classes=3),
                              ["a", "b", "c"])
    monkeypatch.setattr(cache, "load", lambda name, task, device=None: cache.ModelHandle(
        lm.spec, lm, lm.lock, lm.untrained))
    at = run_page("classification")
    assert not at.exception
    assert any("Untrained test model" in w.value for w in at.warning)


def frame(at: AppTest, column: str):
    """The first data frame on the page that has this column."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def test_rank_every_method_on_the_sample_photo(page):
    page.checkbox(key="rank_slow").uncheck()
    page.button(key="rank_go").click().run()
    assert not page.exception
    table = frame(page, "beats random")
    from lib.classification import cam, ranking
    fast = {n for n in cam.applicable(__import__("timm").create_model("tf_efficientnet_lite0"))
            if n not in cam.SLOW}
    assert set(table["method"]) == fast | {ranking.BASELINE}
    assert list(table["rank"][:3]) == [1, 2, 3] and table["map"].str.startswith(
        "data:image/png;base64,").all()
    assert page.get("download_button")
    # each method's measured time now stands beside its name in the picker
    assert page.selectbox(key="method").format_func("GradCAM").startswith("GradCAM · ")


def test_sanity_checks_with_the_shuffled_label_twin():
    at = run_page("classification")
    at.selectbox(key="model").set_value("demo-classifier").run()
    assert "demo-classifier-shuffled" not in at.selectbox(key="model").options[0]
    assert not any("shuffled" in o for o in at.selectbox(key="model").options)
    at.multiselect(key="sanity_methods").set_value(["GradCAM", "EigenCAM"]).run()
    at.button(key="sanity_go").click().run()
    assert not at.exception
    assert at.get("plotly_chart")
    texts_md = "\n".join(m.value for m in at.markdown)
    assert "demo-classifier-shuffled" in texts_md
    twin = frame(at, "ssim")
    assert list(twin["method"]) == ["GradCAM", "EigenCAM"]


@pytest.mark.parametrize("query,warned", [("EigenCAM", False), ("<script>x</script>", True)])
def test_method_from_the_link(query, warned):
    from tests.app.test_pages import ROOT
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180).run()
    at.switch_page("pages/classification.py")
    at.query_params["method"] = query
    at.run()
    assert not at.exception
    assert any("does not have" in w.value for w in at.warning) == warned
    assert at.selectbox(key="method").value == ("GradCAM" if warned else "EigenCAM")


def test_a_one_pixel_image_is_explained():
    at = run_page("classification")
    at.file_uploader(key="uploads").set_value(
        ("dot.png", png(np.full((1, 1, 3), 200, np.uint8)), "image/png")).run()
    assert not at.exception and not at.error
    assert any(c.startswith("overlay · ") for c in captions(at))


def test_an_all_black_image_ranks_without_crashing(page):
    """Every method degenerates on a black image: the ranking still stands, no error."""
    page.file_uploader(key="uploads").set_value(
        ("black.png", png(np.zeros((64, 64, 3), np.uint8)), "image/png")).run()
    page.checkbox(key="rank_slow").uncheck()
    page.button(key="rank_go").click().run()
    assert not page.exception and not page.error
    assert len(frame(page, "beats random")) > 1


def test_folder_ranking_with_intervals(tmp_path, monkeypatch):
    labelled_set(tmp_path, monkeypatch)
    at = run_page("classification")
    at.text_input(key="eval_path").set_value(str(tmp_path / "set"))
    at.button(key="run_eval").click().run()
    at.slider(key="folder_rank_n").set_value(2)
    at.button(key="folder_rank_go").click().run()
    assert not at.exception
    table = frame(at, "mean rank")
    assert (table["images"] == 2).all() and "Random map (baseline)" in set(table["method"])
    assert table.iloc[0]["mean rank"].count("[") == 1


def _whatif(query: dict | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300).run()
    at.switch_page("pages/classification.py")
    at.query_params.update({"tab": "What-if", **(query or {})})
    return at.run()


def test_whatif_link_opens_fog_3_beside_the_clean_image():
    at = _whatif({"corruption": "fog", "severity": "3"})
    assert not at.exception, at.exception
    assert at.selectbox(key="wi_corruption").value == "fog"
    assert at.slider(key="wi_severity").value == 3
    said = texts(at)
    assert "**clean** · top-1 **tiger cat**" in said and "**fog 3** · top-1 **" in said
    assert sum(c.startswith("GradCAM · tiger cat") for c in captions(at)) >= 2
    at.slider(key="wi_severity").set_value(5).run()
    assert at.query_params["severity"] == "5" and at.query_params["corruption"] == "fog"


@pytest.mark.parametrize("query", [{"corruption": "<b>x</b>", "severity": "3"},
                                   {"corruption": "fog", "severity": "NaN"},
                                   {"corruption": "fog", "severity": "0"},
                                   {"corruption": "fog", "severity": "6"}])
def test_odd_whatif_links_are_named_or_clamped(query):
    at = _whatif(query)
    assert not at.exception, at.exception
    if query["corruption"] == "fog":
        assert at.selectbox(key="wi_corruption").value == "fog"
        assert at.slider(key="wi_severity").value in (1, 3, 5)
    else:
        assert any("Lens does not have" in e.value for e in at.error)
        assert at.selectbox(key="wi_corruption").value == "none"


def test_whatif_edits_and_the_sweep_with_flip_points():
    at = _whatif()
    at.slider(key="wi_rotate").set_value(90)
    at.checkbox(key="wi_flip").check()
    at.slider(key="wi_jpeg").set_value(10).run()
    assert not at.exception, at.exception
    assert "**rotated 90°, flipped, JPEG q=10** · top-1" in texts(at)
    at.button(key="wi_sweep").click().run()
    assert not at.exception, at.exception
    flips = next(t.value for t in at.table if "flip point (severity)" in t.value.columns)
    assert len(flips) == 19 and "Top-1 changes in" in texts(at)
    from lib.classification import whatif
    from lib.demo import samples
    from lib.media import images
    from lib.models import cache
    lm = cache.load(at.selectbox(key="model").value, "classification").model
    want = whatif.sweep(lm, images.load_image(samples.sample_bytes("cat (chelsea)")).image)
    assert dict(zip(flips.index, flips["flip point (severity)"])) == {
        k.replace("_", " "): str(v or "never") for k, v in want.flip_points().items()}


def test_folder_robustness_against_a_baseline(tmp_path, monkeypatch):
    labelled_set(tmp_path, monkeypatch)
    at = run_page("classification")
    at.text_input(key="eval_path").set_value(str(tmp_path / "set"))
    at.button(key="run_eval").click().run()
    at.multiselect(key="frob_corruptions").set_value(["gaussian_noise", "contrast"])
    at.multiselect(key="frob_severities").set_value([1, 5])
    at.selectbox(key="frob_baseline").set_value("EfficientNet-Lite1 ImageNet (packaged)")
    at.button(key="frob_run").click().run(timeout=600)
    assert not at.exception and not at.error, [e.value for e in at.error]
    from lib.classification import classify, robustness
    from lib.models import cache
    items = classify.find_labelled_images(tmp_path / "set")
    got = {name: robustness.evaluate(cache.load(name, "classification").model, items,
                                     ["gaussian_noise", "contrast"], [1, 5])
           for name in ("EfficientNet-Lite0 ImageNet (packaged)",
                        "EfficientNet-Lite1 ImageNet (packaged)")}
    ce = robustness.corruption_error(*got.values())
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["mCE vs EfficientNet-Lite1 ImageNet (packaged)"] == (
        f"{ce.mce:.1%}" if ce.mce == ce.mce else "nan%")
    assert metrics["Flip rate"] == f"{got['EfficientNet-Lite0 ImageNet (packaged)'].flip_rate:.1%}"
