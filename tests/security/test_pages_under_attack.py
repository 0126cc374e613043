"""Hostile input driven through the pages, where a visitor gives it (AppTest, widgets found by
label). Each attack asserts the visible message, that the app keeps running, and that nothing
outside the allowed roots was opened or listed (an audit hook watches every file the process
opens, on any thread).

The server layout every test gets: `root/` is the only allowed data root; `outside/` holds
secrets (a valid COCO file, an image, a W&B run); `root/link` is a symlink to `outside/`.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.app.test_pages import run_page
from tests.conftest import ROOT
from tests.security import attacks as A

SAMPLE_RUN = sorted((ROOT / "samples" / "runs" / "wandb").glob("offline-run-*/*.wandb"))[0]


@pytest.fixture
def server(tmp_path, monkeypatch):
    import streamlit as st
    st.cache_data.clear()
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret.json").write_text(A.secret_coco())
    (outside / "secret.png").write_bytes(A.png_bytes())
    run = outside / "wandb" / "offline-run-20260101_000000-secret"
    run.mkdir(parents=True)
    shutil.copy(SAMPLE_RUN, run / "run-secret.wandb")
    (root / "link").symlink_to(outside, target_is_directory=True)
    monkeypatch.setenv("LENS_DATA_ROOTS", str(root))
    monkeypatch.setenv("LENS_CACHE", str(tmp_path / "cache"))
    return root, outside


def widget(at: AppTest, kind: str, label: str):
    found = [w for w in getattr(at, kind) if w.label == label]
    assert found, f"no {kind} labelled {label!r}"
    return found[0]


def uploader(at: AppTest, label: str):
    found = [w for w in at.get("file_uploader") if w.proto.label == label]
    assert found, f"no uploader labelled {label!r}"
    return found[0]


def messages(at: AppTest) -> str:
    return "\n".join(e.value for e in [*at.error, *at.warning])


def ok(at: AppTest, expect: str) -> None:
    assert not at.exception, at.exception
    assert expect in messages(at), messages(at)


# -- detection: typed dataset paths ---------------------------------------------------------------

@pytest.fixture
def detection_page(server):
    at = run_page("detection", timeout=300)
    widget(at, "radio", "COCO data").set_value("Path")
    return at.run(timeout=300)


@pytest.mark.parametrize("typed,expect", [
    ("{root}/link/secret.json", "not inside the folders Lens may read"),
    ("{root}/link/../outside/secret.json", "contains '..'"),
    ("{root}/../outside/secret.json", "contains '..'"),
    ("{outside}/secret.json", "not inside the folders Lens may read"),
    ("/dev/zero", "not inside the folders Lens may read"),
    ("/etc/passwd", "not inside the folders Lens may read"),
    ("{root}/fifo", "not a regular file or folder"),
])
def test_typed_annotation_paths(detection_page, server, typed, expect):
    root, outside = server
    os.mkfifo(root / "fifo")
    at = detection_page
    with A.reads_under(outside) as reads:
        widget(at, "text_input", "Instances JSON").set_value(
            typed.format(root=root, outside=outside))
        widget(at, "text_input", "Images folder").set_value(str(root))
        at.run(timeout=300)
    ok(at, expect)
    assert not reads, reads


def test_outside_paths_get_one_message_whether_or_not_they_exist(detection_page, server):
    root, outside = server
    at = detection_page
    seen = []
    for name in ("secret.json", "no-such-file.json"):
        widget(at, "text_input", "Instances JSON").set_value(str(root / "link" / name))
        widget(at, "text_input", "Images folder").set_value(str(root))
        at.run(timeout=300)
        seen.append(messages(at).replace(name, "NAME"))
    assert seen[0] == seen[1] and "not inside" in seen[0]


def test_images_linked_out_of_the_images_folder_are_never_read(detection_page, server):
    root, outside = server
    data = root / "coco"
    (data / "images").mkdir(parents=True)
    (data / "images" / "ok.png").write_bytes(A.png_bytes())
    (data / "images" / "secret.png").symlink_to(outside / "secret.png")
    (data / "ann.json").write_text(json.dumps(A.coco(
        [{"id": 1, "file_name": "ok.png"}, {"id": 2, "file_name": "secret.png"}],
        [{"id": 1, "image_id": 2, "category_id": 1, "bbox": [1, 1, 5, 5]}])))
    at = detection_page
    with A.reads_under(outside) as reads:
        widget(at, "text_input", "Instances JSON").set_value(str(data / "ann.json"))
        widget(at, "text_input", "Images folder").set_value(str(data / "images"))
        at.run(timeout=300)
    ok(at, "lead outside the images folder")
    assert not reads, reads


# -- detection: uploaded dataset zips -------------------------------------------------------------

def _dataset_zip(images, annotations=None, categories=None, extra=None) -> bytes:
    entries = {"data/annotations/instances.json":
               json.dumps(A.coco(images, annotations, categories)).encode(),
               "data/images/a.png": A.png_bytes()}
    entries.update(extra or {})
    return A.zip_bytes(entries)


def _bad_zips(outside: Path) -> list[tuple[str, bytes, str]]:
    many = {f"d/{i}.txt": b"" for i in range(60)}
    return [
        ("absolute file_name", _dataset_zip([{"id": 1, "file_name": str(outside / "secret.png")}]),
         "file_name must be a relative path"),
        ("dotdot file_name", _dataset_zip([{"id": 1, "file_name": "../../../outside/secret.png"}]),
         "file_name must be a relative path"),
        ("images as a dict", A.zip_bytes({"d/instances.json": json.dumps(
            {"images": {"id": 1}, "annotations": [], "categories": []}).encode(),
            "d/a.png": A.png_bytes()}), "'images' must be a list of objects"),
        ("no file_name", _dataset_zip([{"id": 1}]), "file_name must be a relative path"),
        ("string boxes", _dataset_zip([{"id": 1, "file_name": "a.png"}],
                                      [{"image_id": 1, "category_id": 1, "bbox": "1,2,3,4"}]),
         "bbox must be [x, y, width, height] numbers"),
        ("list ids", _dataset_zip([{"id": [1], "file_name": "a.png"}]), "needs an integer 'id'"),
        ("a million categories", _dataset_zip([{"id": 1, "file_name": "a.png"}], [],
                                              [{"id": i, "name": str(i)}
                                               for i in range(1_000_000)]),
         "over the limit of"),
        ("too many entries", A.zip_bytes(many), "entries, over the limit"),
        ("zip bomb", A.zip_bytes({"d/zeros.bin": b"\0" * (20 << 20)}), "a zip bomb?"),
        ("bad CRC", A.zip_with_bad_crc(), "corrupt"),
        ("lying sizes", A.zip_with_lying_size(), "corrupt"),
        ("file and folder of one name", A.zip_bytes({"d/x": b"file", "d/x/y.png": b"png"}),
         "cannot be unpacked"),
        ("over-long name", A.zip_bytes({"d/" + "n" * 300 + ".png": b"x"}), "longer than"),
        ("not a zip", b"PK\x03\x04 garbage", "not a valid zip"),
    ]


def test_dataset_zips(server, monkeypatch):
    root, outside = server
    monkeypatch.setenv("LENS_MAX_ZIP_ENTRIES", "50")
    monkeypatch.setenv("LENS_MAX_CATEGORIES", "5000")
    at = run_page("detection", timeout=300)
    widget(at, "radio", "COCO data").set_value("Upload zip").run(timeout=300)
    for what, payload, expect in _bad_zips(outside):
        with A.reads_under(outside) as reads:
            uploader(at, "Zip with images and an instances JSON").set_value(
                (f"{what}.zip", payload, "application/zip"))
            at.run(timeout=300)
        assert not at.exception, (what, at.exception)
        assert expect in messages(at), (what, messages(at))
        assert not reads, (what, reads)
    # nothing half-extracted is left for a rerun to use as the dataset
    scratch = Path(os.environ["LENS_CACHE"]) / "scratch"
    assert not [p for p in scratch.iterdir() if p.name.startswith("zip-partial-")]
    import hashlib
    for what, payload, _ in _bad_zips(outside)[7:]:      # refused archives: no folder at all
        assert not (scratch / f"zip-{hashlib.sha256(payload).hexdigest()[:32]}").exists(), what


# -- detection: imported results ------------------------------------------------------------------

@pytest.mark.parametrize("payload,expect", [
    ('{"a": 1}', "JSON list of"),
    ('[{"image_id": [1], "category_id": 1, "bbox": [0, 0, 1, 1], "score": 1}]',
     "needs integer 'image_id'"),
    ('[{"image_id": 1, "category_id": 1, "bbox": ["0", 0, 1, 1], "score": 1}]',
     "'bbox' must be"),
    ('[{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "score": "high"}]',
     "'score' must be a number"),
    ('[{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "score": NaN},'
     ' {"image_id": 1, "category_id": 1, "bbox": [0, 0, -5, 1], "score": 0.5},'
     ' {"image_id": 1, "category_id": 1, "bbox": [2, 2, 8, 8], "score": 0.5}]',
     "2 predictions with empty, negative or non-finite boxes or scores were refused"),
    ("[" * 100_000, "not valid JSON"),
])
def test_results_files(detection_page, server, payload, expect):
    root, _ = server
    data = root / "coco"
    (data / "images").mkdir(parents=True)
    (data / "images" / "a.png").write_bytes(A.png_bytes())
    (data / "ann.json").write_text(json.dumps(A.coco(
        [{"id": 1, "file_name": "a.png"}],
        [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [2, 2, 8, 8]},
         {"id": 2, "image_id": 1, "category_id": 1, "bbox": [2, 2, float("nan"), 8]}])))
    at = detection_page
    widget(at, "text_input", "Instances JSON").set_value(str(data / "ann.json"))
    widget(at, "text_input", "Images folder").set_value(str(data / "images"))
    at.run(timeout=300)
    assert "1 annotations with empty, negative or non-finite boxes" in messages(at)
    at.file_uploader(key="preds_A").set_value(("r.json", payload.encode(), "application/json"))
    at.run(timeout=300)
    ok(at, expect)


# -- classification -------------------------------------------------------------------------------

@pytest.mark.parametrize("typed,expect", [
    ("{root}/link", "not inside the folders Lens may read"),
    ("{root}/link/../link", "contains '..'"),
    ("/etc", "not inside the folders Lens may read"),
    ("{root}/fifo", "not a regular file or folder"),
])
def test_evaluate_folder_paths(server, typed, expect):
    root, outside = server
    os.mkfifo(root / "fifo")
    at = run_page("classification")
    with A.reads_under(outside) as reads:
        widget(at, "text_input", "Folder path on the server").set_value(
            typed.format(root=root))
        widget(at, "button", "Evaluate").click()
        at.run()
    ok(at, expect)
    assert not reads, reads


def test_class_folders_linked_outside_are_not_listed(server):
    root, outside = server
    (outside / "tabby").mkdir()
    (outside / "tabby" / "cat.png").write_bytes(A.png_bytes())
    (root / "set").mkdir()
    (root / "set" / "tabby").symlink_to(outside / "tabby")
    at = run_page("classification")
    with A.reads_under(outside) as reads:
        widget(at, "text_input", "Folder path on the server").set_value(str(root / "set"))
        widget(at, "button", "Evaluate").click()
        at.run()
    ok(at, "has no class subfolders")
    assert not reads, reads


def test_evaluation_zip_bomb(server, monkeypatch):
    monkeypatch.setenv("LENS_MAX_ZIP_MB", "5")
    at = run_page("classification")
    uploader(at, "…or upload a zip").set_value(
        ("set.zip", A.zip_bytes({"set/cat/a.png": b"\0" * (8 << 20)}), "application/zip"))
    widget(at, "button", "Evaluate").click()
    at.run()
    ok(at, "over the limit of 5 MB")


@pytest.mark.parametrize("typed", ["a b", "hf-hub:../x", "../../etc/passwd", "x" * 500])
def test_model_id_typos(server, typed):
    at = run_page("classification")
    widget(at, "selectbox", "Classifier").set_value("Other timm model…").run()
    widget(at, "text_input", "timm model name or hf-hub: id").set_value(typed).run()
    ok(at, "is not a valid timm model name")


def test_video_whose_header_understates_its_frames(server, tmp_path, monkeypatch):
    monkeypatch.setenv("LENS_MAX_VIDEO_FRAMES", "20")
    clip = A.avi_claiming(A.write_avi(tmp_path / "c.avi", 40), frames=4)
    at = run_page("classification")
    uploader(at, "Upload a short clip").set_value(("c.avi", clip.read_bytes(), "video/avi"))
    at.run()
    ok(at, "more than 20 frames")


# -- segmentation ---------------------------------------------------------------------------------

def test_segmentation_video_whose_frames_outgrow_its_header(server, tmp_path, monkeypatch):
    """Frames are decoded when reached: the page opens on the small first frame, and the
    first large one (frame 2 of 5) is refused when scrubbed to, with the limit named."""
    monkeypatch.setenv("LENS_SAM_MAX_PIXELS", str(64 * 48 * 4))
    clip = A.mjpeg_growing(tmp_path / "m.avi")
    from lib.segmentation import segment, segment_video
    monkeypatch.setattr(segment, "model_choices", lambda: [("tiny", True), (segment.GRABCUT, True)])
    monkeypatch.setattr(segment_video, "load_video_model",
                        lambda name: segment_video.tiny_video_model())
    at = run_page("segmentation")
    widget(at, "radio", "Mode").set_value("Video").run()
    uploader(at, "Video (MP4, MOV, WebM, AVI)").set_value(("m.avi", clip.read_bytes(),
                                                           "video/avi"))
    at.run()
    assert not at.exception and not at.error
    widget(at, "slider", "Frame").set_value(4).run()
    ok(at, "640x480 frames, over the limit")


# -- runs -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("typed,expect", [
    ("{root}/link", "not inside the folders Lens may read"),
    ("{root}/link/../link/wandb", "contains '..'"),
    ("/", "not inside the folders Lens may read"),
])
def test_run_folder_paths(server, typed, expect):
    root, outside = server
    at = run_page("runs")
    with A.reads_under(outside) as reads:
        widget(at, "text_input", "Folder holding wandb/offline-run-* (or run-*) folders") \
            .set_value(typed.format(root=root)).run()
    ok(at, expect)
    assert not reads, reads


def test_run_logs_linked_outside_are_not_read(server):
    root, outside = server
    run = root / "wandb" / "offline-run-20260101_000000-mine"
    run.mkdir(parents=True)
    (run / "run-mine.wandb").symlink_to(outside / "wandb" / "offline-run-20260101_000000-secret"
                                        / "run-secret.wandb")
    at = run_page("runs")
    with A.reads_under(outside) as reads:
        widget(at, "text_input", "Folder holding wandb/offline-run-* (or run-*) folders") \
            .set_value(str(root)).run()
    ok(at, "No W&B runs found")
    assert not reads, reads


@pytest.mark.parametrize("fix_crc,expect", [
    (False, "corrupt records (bad checksum or values) were skipped"),
    (True, "corrupt records (bad checksum or values) were skipped"),
])
def test_tampered_run_log(server, tmp_path, monkeypatch, fix_crc, expect):
    root, _ = server
    run = root / "wandb" / SAMPLE_RUN.parent.name
    run.mkdir(parents=True)
    for f in SAMPLE_RUN.parent.iterdir():
        if f.is_file() and f.suffix != ".wandb":
            shutil.copy(f, run / f.name)
    A.tamper_history_value(SAMPLE_RUN, run / SAMPLE_RUN.name, fix_crc)
    at = run_page("runs")
    at.session_state["tab"] = "Curves"      # where the histories are read
    widget(at, "text_input", "Folder holding wandb/offline-run-* (or run-*) folders") \
        .set_value(str(root)).run()
    ok(at, expect)
    assert at.get("plotly_chart"), "the readable rows are still plotted"


# -- broken checkpoint folders --------------------------------------------------------------------

BAD_MANIFESTS = [
    {"architecture": "efficientnet_b0", "num_classes": [3]},
    {"architecture": "efficientnet_b0", "num_classes": 1e9},
    {"architecture": "efficientnet_b0", "num_classes": 1000000000},
    {"architecture": "efficientnet_b0", "weights": ["a", "b"]},
    {"architecture": "efficientnet_b0", "weights": "../../outside/secret.json"},
    {"architecture": "efficientnet_b0", "preprocessing": {"input_size": "big"}},
    {"architecture": "efficientnet_b0", "preprocessing": {"mean": [0, 0], "std": [0, 0, 0]}},
    {"architecture": "efficientnet_b0", "preprocessing": [1, 2]},
    {"architecture": ["efficientnet_b0"]},
    {"task": "detection", "architecture": "fasterrcnn_timm", "detr": "x", "img_size": -1},
    {"task": ["classification"], "architecture": "x"},
    [1, 2, 3],
]


@pytest.mark.parametrize("page", ["home", "classification", "segmentation", "detection"])
def test_broken_manifests_never_break_a_page(checkpoints_dir, page):
    import streamlit as st
    st.cache_data.clear()
    for i, manifest in enumerate(BAD_MANIFESTS):
        folder = checkpoints_dir / f"bad-{i}"
        folder.mkdir()
        (folder / "model.json").write_text(json.dumps(manifest))
        (folder / "model.safetensors").write_bytes(b"\0" * 16)
    at = run_page(page, timeout=300)
    assert not at.exception, at.exception
    if page == "home":
        table = at.dataframe[-1].value
        broken = table[table["model"].str.startswith("bad-")]
        assert len(broken) == len(BAD_MANIFESTS) and set(broken["status"]) == {"broken"}
        assert broken["weights"].str.contains("must|JSON object").all(), broken["weights"]


@pytest.mark.parametrize("smooth", ["abc", "5", "nan", "-1e308"])
def test_shared_links_with_hostile_parameters(server, smooth):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    at.query_params.update({"smooth": smooth, "path": "/etc", "runs": "x" * 5000})
    at.run()
    at.switch_page("pages/runs.py").run()
    assert not at.exception, at.exception
    assert "not inside the folders Lens may read" in messages(at)


def test_cloud_filters_that_are_not_an_object(server):
    at = run_page("runs")
    widget(at, "radio", "Source").set_value("W&B cloud").run()
    widget(at, "text_input", "Entity").set_value("team")
    widget(at, "text_input", "Project").set_value("proj")
    widget(at, "text_input", "Filters (MongoDB-style JSON, optional)").set_value("[" * 50_000)
    at.button[0].click().run()
    ok(at, "Filters must be a JSON object")


# -- the open tab from a link (`?tab=`) ----------------------------------------------------

@pytest.mark.parametrize("value", ["Errors", "curves", "<script>alert(1)</script>", "../" * 40,
                                   "Curves" * 500, ""])
def test_a_hostile_tab_in_the_link_opens_the_first_tab(value):
    """A tab value that is not one of the page's labels (another page's, a different case,
    markup, a path, 3,000 characters) opens the first tab, without an error; a real label
    opens its tab."""
    def runs_page(tab: str) -> AppTest:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180).run()
        at.switch_page("pages/runs.py")
        at.query_params["tab"] = tab
        return at.run()

    at = runs_page(value)
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert not at.get("plotly_chart")                         # Config diff, not Curves
    assert any(t.key == "diff_all" for t in at.toggle)
    assert runs_page("Curves").get("plotly_chart")            # while a real label opens it


# -- the map's selection from a link (`?selected=`) --------------------------------------------

@pytest.mark.parametrize("value, named", [
    ("<script>alert(1)</script>", True), ("../../etc/passwd,-1", True),
    ("99999999999999999999,0", True), ("1," * 5000, False), (",,,", False)])
def test_a_hostile_selection_in_the_link_is_named_not_obeyed(value, named, monkeypatch,
                                                             tmp_path):
    """Markup, paths, negative or unknown ids and 10,000 characters in `selected` on the
    Detection page: named in a warning (never as markup) or, for ids the demo set has,
    obeyed; the page stands."""
    from lib.models import registry
    monkeypatch.setattr(registry, "hub_reachable", lambda timeout=2.0: False)
    at = run_page("detection", timeout=300)
    at.query_params["selected"] = value
    at.run(timeout=300)
    assert not at.exception and not at.error, [e.value for e in at.error]
    warned = [w.value for w in at.warning if "does not have" in w.value]
    assert bool(warned) == named
    shown = [i.value for i in at.info if "images selected on the Dataset tab" in i.value]
    assert bool(shown) == value.startswith("1,")          # id 1 exists: a selection of one
