"""AppTest for the segmentation page: the offline GrabCut path, SAM2 candidates (tiny model),
text prompts, effects and exports, bad input, and video mode's messages."""

import numpy as np
import pytest

from lib.models import registry
from lib.segmentation import figures, grounding, segment, segment_video
from tests.app.test_pages import run_page
from tests.helpers import write_video


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setattr(registry, "hub_reachable", lambda timeout=2.0: False)


@pytest.fixture
def tiny_sam(monkeypatch):
    """A tiny random SAM2 in place of the real weights (the page marks it untrained)."""
    tiny = segment.tiny_segmenter()
    monkeypatch.setattr(segment, "model_choices",
                        lambda: [(tiny.name, True), (segment.GRABCUT, True)])
    monkeypatch.setattr(segment, "load_segmenter",
                        lambda name: tiny if name == tiny.name else segment.grabcut_segmenter())
    return tiny


def set_box(at, box: str):
    next(t for t in at.text_input if t.label.startswith("Box")).set_value(box)
    next(b for b in at.button if b.label == "Apply edits").click()
    return at.run()


def texts(at) -> str:
    return "\n".join([c.value for c in at.caption] + [m.value for m in at.markdown])


def with_grabcut(at):
    at.sidebar.selectbox[0].set_value(segment.GRABCUT)
    return at.run()


def test_offline_defaults_to_the_photo_segmenter_and_grabcut_exports(offline):
    """Offline, the demo pack's segmenter for photos is offered first (its held-out figures
    beside it); the labelled GrabCut fallback segments and exports."""
    from lib.training.seg_real import NAME
    at = run_page("segmentation")
    assert not at.exception
    assert at.sidebar.selectbox[0].value == NAME
    assert segment.GRABCUT in at.sidebar.selectbox[0].options
    assert any("held-out real photos" in c.value for c in at.sidebar.caption)
    info = at.info[0].value
    assert "lib.weights fetch" in info and "GrabCut" in info and f"**{NAME}**" in info
    at = set_box(with_grabcut(at), "120, 20, 330, 300")     # a box around the cat's head
    assert not at.exception
    assert f"object 1: 1 mask from {segment.GRABCUT}" in texts(at)
    listed = at.dataframe[0].value.iloc[0]
    assert listed["box"] == "120, 20, 330, 300" and listed["mask px"] > 1000
    assert listed["from"] == segment.GRABCUT
    labels = [d.label for d in at.download_button]
    assert "Mask: object 1" in labels and "All masks (COCO JSON, RLE)" in labels
    effect = next(s for s in at.selectbox if s.label == "Effect")
    effect.set_value("pixelate").run()
    assert "Download edited image (PNG)" in [d.label for d in at.download_button]
    assert_downloads_never_rerun(at)
    assert "pixelate on 1 object(s)" in [i.caption for img in at.get("image")
                                         for i in img.proto.imgs]


def test_zero_area_box_warns_and_keeps_prompts(offline):
    at = set_box(with_grabcut(run_page("segmentation")), "120, 20, 330, 300")
    at = set_box(at, "50, 50, 50, 200")
    assert not at.exception
    assert any("no area" in w.value for w in at.warning)
    assert f"1 mask from {segment.GRABCUT}" in texts(at)           # the earlier mask is kept
    at = set_box(at, "1, 2, 3")
    assert any("four numbers" in w.value for w in at.warning)


def test_sam2_candidates_are_listed_with_predicted_iou(tiny_sam):
    at = set_box(run_page("segmentation"), "120, 20, 330, 300")
    assert not at.exception
    assert any("Untrained test model" in w.value for w in at.warning)
    radio = next(r for r in at.radio if r.label.startswith("Candidates for object 1"))
    assert len(radio.options) == 3 and all("predicted IoU" in o for o in radio.options)
    radio.set_value(2).run()
    assert not at.exception


def test_text_prompt_boxes_then_masks(tiny_sam, monkeypatch):
    class Stub:
        def boxes(self, image, phrase):
            return [] if phrase == "unicorn" else [
                grounding.Region("cat", (120.0, 20.0, 330.0, 300.0)),
                grounding.Region("cat", (10.0, 200.0, 60.0, 290.0))]
    monkeypatch.setattr(grounding, "load_grounder", lambda name, threshold=None: Stub())
    at = run_page("segmentation")
    find = next(b for b in at.button if b.label == "Find boxes")
    find.click().run()
    assert any("Type what to find" in w.value for w in at.warning)
    at.text_input(key="seg_phrase").set_value("unicorn").run()
    next(b for b in at.button if b.label == "Find boxes").click().run()
    assert any("Nothing in the image matched 'unicorn'" in i.value for i in at.info)
    at.text_input(key="seg_phrase").set_value("cat").run()
    next(b for b in at.button if b.label == "Find boxes").click().run()
    next(b for b in at.button if b.label == "Segment these 2 box(es)").click().run()
    assert not at.exception
    downloads = [d.label for d in at.download_button]
    assert downloads.count("Mask: cat") == 2


def test_grounding_without_weights_names_the_fix(offline):
    at = run_page("segmentation")
    florence = next(o for o in at.selectbox(key="seg_grounder").options if "Florence-2" in o)
    at.selectbox(key="seg_grounder").set_value(florence).run()
    at.text_input(key="seg_phrase").set_value("cat").run()
    next(b for b in at.button if b.label == "Find boxes").click().run()
    assert not at.exception
    assert any("Florence-2" in e.value and "lib.weights fetch" in e.value for e in at.error)


@pytest.mark.parametrize("phrase,expect", [
    ("", "Type what to find"),
    ("dog", "'dog' is not a class demo-conditional-detr knows. It knows: circle, square, "
            "star, triangle."),
    ("<script>star</script>", "'scriptstarscript' is not a class"),
    (", ".join(["star"] * 500), "at most 10 things to find"),
])
def test_a_detector_grounds_only_the_words_it_knows(offline, phrase, expect):
    """Offline, the demo detectors are closed-vocabulary grounders, offered first; what they
    do not know gets one message naming what they do."""
    at = run_page("segmentation")
    assert at.selectbox(key="seg_grounder").value == "demo-conditional-detr (closed vocabulary)"
    assert any("circle, square, star, triangle" in c.value for c in at.caption)
    at.text_input(key="seg_phrase").set_value(phrase).run()
    next(b for b in at.button if b.label == "Find boxes").click().run()
    assert not at.exception
    assert any(expect in m.value for m in [*at.error, *at.warning]), \
        [m.value for m in [*at.error, *at.warning]]


def test_video_mode_messages(offline, tmp_path, monkeypatch):
    at = run_page("segmentation")
    at.radio(key="seg_mode").set_value("Video").run()
    at.file_uploader(key="seg_video").set_value(("notes.mp4", b"not a video", "video/mp4")).run()
    assert not at.exception and "not a video Lens can read" in at.error[0].value
    clip = write_video(tmp_path / "clip.mp4", frames=6, size=(64, 48))
    at.file_uploader(key="seg_video").set_value(("clip.mp4", clip.read_bytes(),
                                                 "video/mp4")).run()
    assert not at.error and any("Classical tracking (optical flow + GrabCut, not SAM 2)"
                                in i.value for i in at.info)
    monkeypatch.setenv("LENS_SAM_MAX_SECONDS", "1")
    long_clip = write_video(tmp_path / "long.mp4", frames=18, size=(64, 48))
    at.file_uploader(key="seg_video").set_value(("long.mp4", long_clip.read_bytes(),
                                                 "video/mp4")).run()
    assert not at.exception and any("over the limit of 1 s" in e.value for e in at.error)


def test_a_clip_typed_as_a_path_is_read_in_place_and_contained(offline, tmp_path,
                                                               monkeypatch):
    """A large recording needs no upload: a path under the data roots is tracked where it
    lies; a path outside them (or through a link out of them) is refused, unread."""
    inside, outside = tmp_path / "data", tmp_path / "elsewhere"
    inside.mkdir()
    outside.mkdir()
    write_video(inside / "clip.mp4", frames=6, size=(64, 48))
    write_video(outside / "secret.mp4", frames=6, size=(64, 48))
    (inside / "link.mp4").symlink_to(outside / "secret.mp4")
    monkeypatch.setenv("LENS_DATA_ROOTS", str(inside))
    at = run_page("segmentation")
    at.radio(key="seg_mode").set_value("Video").run()
    for typed in (str(outside / "secret.mp4"), str(inside / "link.mp4")):
        at.text_input(key="seg_video_path").set_value(typed).run()
        assert not at.exception and "not inside the folders" in at.error[0].value
        assert "64×48" not in texts(at)
    at.text_input(key="seg_video_path").set_value(str(inside / "clip.mp4")).run()
    assert not at.exception and not at.error
    assert "64×48, 6 frames" in texts(at)


def test_video_mode_with_a_video_model_shows_the_frame(tiny_sam, tmp_path, monkeypatch):
    monkeypatch.setattr(segment_video, "load_video_model",
                        lambda name: segment_video.tiny_video_model())
    at = run_page("segmentation")
    at.radio(key="seg_mode").set_value("Video").run()
    clip = write_video(tmp_path / "clip.mp4", frames=6, size=(64, 48))
    at.file_uploader(key="seg_video").set_value(("clip.mp4", clip.read_bytes(),
                                                 "video/mp4")).run()
    assert not at.exception and not at.error
    assert "64×48, 6 frames" in texts(at)
    assert at.slider(key="seg_frame").max == 5


def test_video_text_prompt_adds_tracked_objects(tiny_sam, tmp_path, monkeypatch):
    class Stub:
        def boxes(self, image, phrase):
            return [grounding.Region("logo", (5.0, 5.0, 30.0, 30.0))] if phrase == "logo" else []
    monkeypatch.setattr(segment_video, "load_video_model",
                        lambda name: segment_video.tiny_video_model())
    monkeypatch.setattr(grounding, "load_grounder", lambda name, threshold=None: Stub())
    at = run_page("segmentation")
    at.radio(key="seg_mode").set_value("Video").run()
    clip = write_video(tmp_path / "clip.mp4", frames=5, size=(64, 48))
    at.file_uploader(key="seg_video").set_value(("clip.mp4", clip.read_bytes(),
                                                 "video/mp4")).run()
    at.toggle(key="seg_vwhole").set_value(False).run()       # this frame only
    at.text_input(key="seg_vphrase").set_value("cat").run()
    at.button(key="seg_vfind").click().run()
    assert any("Nothing on frame 0 matched 'cat'" in i.value for i in at.info)
    at.text_input(key="seg_vphrase").set_value("logo").run()
    at.button(key="seg_vfind").click().run()
    assert not at.exception
    assert at.dataframe[0].value["object"].tolist() == ["logo"]
    at.button(key="seg_propagate").click().run()
    assert not at.exception
    assert any("Tracked 1 object(s) through 5 frames" in s.value for s in at.success)
    labels = [d.label for d in at.download_button]
    assert "Masks: zip of PNGs" in labels and "Tracks: COCO video JSON (RLE)" in labels
    at.button(key="seg_render").click().run()
    assert not at.exception and "Download MP4" in [d.label for d in at.download_button]
    assert_downloads_never_rerun(at)
    # found again after tracking: a new object, tracked on its own
    at.button(key="seg_vfind").click().run()
    assert at.dataframe[0].value["tracked"].tolist() == ["yes", "not yet"]
    assert at.button(key="seg_propagate").label == "Track the new objects"
    at.button(key="seg_propagate").click().run()
    assert not at.exception
    assert any("Tracked 2 object(s) through 5 frames" in s.value for s in at.success)


def assert_downloads_never_rerun(at):
    """A click on a download must not rerun the page: the rerun can drop the deferred
    callable the browser asks for before Streamlit looks it up (the download never came)."""
    buttons = at.get("download_button")
    assert buttons and all(b.proto.ignore_rerun for b in buttons), \
        [b.proto.label for b in buttons if not b.proto.ignore_rerun]


def test_offline_video_mode_tracks_and_blurs_the_sample_clip(offline, monkeypatch):
    """No SAM 2 here: the sample clip, classical tracking (labelled), blur, MP4 and masks."""
    import json

    from lib.demo import synth
    from lib.media import masks as mask_ops
    clip = synth.sample_clip()
    truth = json.loads((clip.parent / "clips.json").read_text())["clips"][0]["masks"]
    ys, xs = np.nonzero(mask_ops.from_rle(truth[0]["0"]))
    box = (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))

    class Grounder:            # the text prompt path adds the object by its box
        def boxes(self, image, phrase):
            return [grounding.Region("circle", box)]
    monkeypatch.setattr(grounding, "load_grounder", lambda name, threshold=None: Grounder())
    at = run_page("segmentation")
    at.radio(key="seg_mode").set_value("Video").run()
    at.toggle(key="seg_video_sample").set_value(True).run()
    assert not at.exception and not at.error
    assert any("not SAM 2" in i.value for i in at.info)
    at.toggle(key="seg_vwhole").set_value(False).run()       # this frame only
    at.text_input(key="seg_vphrase").set_value("shape").run()
    at.button(key="seg_vfind").click().run()
    at.button(key="seg_propagate").click().run()
    assert not at.exception
    assert any("Tracked 1 object(s) through 40 frames" in s_.value for s_ in at.success)
    tracker = at.session_state["_lens_service_segmentation"].clip.tracker
    ious = []
    for f in range(1, 8):                   # before the occlusion: the mask follows the shape
        gt = mask_ops.from_rle(truth[f]["0"])
        pred = tracker.mask(f, min(tracker.objects))
        ious.append((pred & gt).sum() / (pred | gt).sum())
    assert min(ious) > 0.7
    table = next(d for d in at.dataframe if "screen time (s)" in d.value.columns).value
    seen = sum(tracker.mask(f, min(tracker.objects)).any() for f in range(40))
    assert table["screen time (s)"].tolist() == [round(seen / 10, 2)]   # the clip is 10 fps
    assert "Timeline: CSV" in [d.label for d in at.download_button]
    at.selectbox(key="seg_veffect").set_value("blur").run()
    at.button(key="seg_render").click().run()
    assert not at.exception and "Download MP4" in [d.label for d in at.download_button]
    assert_downloads_never_rerun(at)


def test_a_synthetic_shapes_model_is_offered_after_grabcut_and_said_plainly(
        offline, checkpoints_dir, monkeypatch):
    """A segmentation checkpoint trained on synthetic shapes only (label set "synthetic
    shapes") is listed after GrabCut, named as such with the figures its manifest measured;
    it runs on the synthetic sample without a warning and warns on a photo."""
    import json

    from lib.demo import samples
    folder = checkpoints_dir / "shapes-sam"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"")
    (folder / "model.json").write_text(json.dumps({
        "task": "segmentation", "architecture": "edgetam", "weights": "model.safetensors",
        "label_set": "synthetic shapes",
        "metrics": {"click_iou": 0.512, "box_iou": 0.634, "images": 150}}))
    tiny = segment.tiny_segmenter()
    monkeypatch.setattr(segment, "load_segmenter",
                        lambda name: tiny if name == "shapes-sam" else segment.grabcut_segmenter())
    at = run_page("segmentation")
    picker = at.sidebar.selectbox[0]
    assert picker.value == segment.GRABCUT                         # photos keep GrabCut first
    assert picker.options[:2] == [segment.GRABCUT, "shapes-sam (trained on synthetic shapes)"]
    info = at.info[0].value
    assert ("**shapes-sam** is **trained on synthetic shapes** (mean IoU 0.51 from one click, "
            "0.63 from a box, on 150 synthetic images)") in info
    next(s for s in at.selectbox if s.label == "…or a sample").set_value(samples.SYNTHETIC)
    at.sidebar.selectbox[0].set_value("shapes-sam").run()
    assert not at.exception
    assert not any("synthetic shapes only" in w.value for w in at.warning)
    next(s for s in at.selectbox if s.label == "…or a sample").set_value("coffee").run()
    assert any("trained on synthetic shapes only" in w.value for w in at.warning)


def test_a_synthetic_shapes_manifest_with_hostile_figures_does_not_take_the_page_down(
        offline, checkpoints_dir):
    """Figures in a dropped manifest are input: text, NaN or a list instead of numbers give
    "no measured figures", never an exception."""
    import json
    for name, metrics in (("text-figures", {"click_iou": "<b>1.0</b>", "box_iou": 0.9,
                                            "images": 150}),
                          ("nan-figures", {"click_iou": float("nan"), "box_iou": 0.9,
                                           "images": 150}),
                          ("list-figures", [0.9])):
        folder = checkpoints_dir / name
        folder.mkdir()
        (folder / "model.safetensors").write_bytes(b"")
        (folder / "model.json").write_text(json.dumps({
            "task": "segmentation", "architecture": "edgetam", "weights": "model.safetensors",
            "label_set": "synthetic shapes", "metrics": metrics}))
    at = run_page("segmentation")
    assert not at.exception
    info = at.info[0].value
    for name in ("text-figures", "nan-figures", "list-figures"):
        assert f"**{name}** is **trained on synthetic shapes** (no measured figures)" in info
    assert "<b>" not in info


def test_a_long_thin_upload_is_shown_not_crashed(offline):
    """A 20000×3 PNG: the display resize must keep at least one pixel of height."""
    import io

    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(np.full((3, 20000, 3), 200, np.uint8)).save(buf, format="PNG")
    at = run_page("segmentation")
    at.file_uploader(key="seg_upload").set_value(("strip.png", buf.getvalue(), "image/png"))
    at.run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]


def test_video_text_prompt_offline_finds_shapes_by_class_name(offline):
    """Offline, 'Find and track' on the sample clip with the demo detector as the grounder:
    the shape named is added as an object, labelled with its class, where the shape is."""
    import json

    from lib.demo import synth
    from lib.media import masks as mask_ops
    clip = synth.sample_clip()
    meta = json.loads((clip.parent / "clips.json").read_text())["clips"][0]
    kind = meta["objects"][0]["category"]
    truth = mask_ops.from_rle(meta["masks"][0]["0"])
    at = run_page("segmentation")
    at.radio(key="seg_mode").set_value("Video").run()
    at.toggle(key="seg_video_sample").set_value(True).run()
    at.text_input(key="seg_vphrase").set_value(f"{kind}s").run()
    at.button(key="seg_vfind").click().run()
    assert not at.exception and not at.error
    tracker = at.session_state["_lens_service_segmentation"].clip.tracker
    found = [o for o in tracker.objects.values() if o.label == kind]
    assert found and max(mask_ops.iou(tracker.mask(0, o.obj_id), truth) for o in found) >= 0.5


def test_text_through_the_whole_clip_finds_the_late_entrant(offline):
    """Offline, the demo detector as a closed-vocabulary grounder, grounded every 5 frames of
    the sample clip: every shape is tracked, the one entering later too, with its class as
    its label; a k of 0 and a word it does not know get messages."""
    import json

    from lib.demo import synth
    clip = synth.sample_clip()
    objects = json.loads((clip.parent / "clips.json").read_text())["clips"][0]["objects"]
    at = run_page("segmentation")
    at.radio(key="seg_mode").set_value("Video").run()
    at.toggle(key="seg_video_sample").set_value(True).run()
    closed = next(o for o in at.selectbox(key="seg_vgrounder").options
                  if o.startswith("demo-fasterrcnn") and o.endswith(grounding.CLOSED))
    at.selectbox(key="seg_vgrounder").set_value(closed).run()
    at.number_input(key="seg_vevery").set_value(0).run()
    at.text_input(key="seg_vphrase").set_value("star").run()
    at.button(key="seg_vfind").click().run()
    assert any("from 1 to 40" in e.value for e in at.error)
    at.number_input(key="seg_vevery").set_value(5).run()
    at.text_input(key="seg_vphrase").set_value("dragon").run()
    at.button(key="seg_vfind").click().run()
    assert any("'dragon' is not a class" in e.value for e in at.error)
    words = ", ".join(sorted({o["category"] for o in objects}))
    at.text_input(key="seg_vphrase").set_value(words).run()
    at.button(key="seg_vfind").click().run(timeout=300)
    assert not at.exception and not at.error
    tracker = at.session_state["_lens_service_segmentation"].clip.tracker
    late = [o for o in objects if o["first_frame"] > 0]
    assert late and len(tracker.objects) >= len(objects)
    starts = {min(obj.prompts): obj.label for obj in tracker.objects.values()}
    for o in late:
        assert any(o["first_frame"] <= f <= o["first_frame"] + 5 and label == o["category"]
                   for f, label in starts.items()), (o, starts)


def test_point_tracking_on_the_demo_segmenter_is_offered_and_labelled(offline):
    """The demo segmenter's video mode tracks by points by default (its memory path is
    untrained; the memory path stays a choice, with the recommendation); the tracker says
    which runs, and text prompts track through the clip."""
    import json

    from lib.demo import synth
    from lib.segmentation import point_track
    from lib.training.train_sam import NAME
    clip = synth.sample_clip()
    objects = json.loads((clip.parent / "clips.json").read_text())["clips"][0]["objects"]
    at = run_page("segmentation")
    at.radio(key="seg_mode").set_value("Video").run()
    at.selectbox(key="seg_video_model").set_value(NAME).run()
    at.toggle(key="seg_video_sample").set_value(True).run()
    assert at.radio(key="seg_vmethod").value == "points"
    assert not any("Recommended for" in c.value for c in at.caption)
    at.radio(key="seg_vmethod").set_value("memory").run()
    assert any("Recommended for" in c.value for c in at.caption)
    at.radio(key="seg_vmethod").set_value("points").run()
    assert not at.exception and any(point_track.LABEL in c.value for c in at.caption)
    tracker = at.session_state["_lens_service_segmentation"].clip.tracker
    assert isinstance(tracker, point_track.PointTracker)
    closed = next(o for o in at.selectbox(key="seg_vgrounder").options
                  if o.startswith("demo-fasterrcnn") and o.endswith(grounding.CLOSED))
    at.selectbox(key="seg_vgrounder").set_value(closed).run()
    at.number_input(key="seg_vevery").set_value(5).run()
    words = ", ".join(sorted({o["category"] for o in objects}))
    at.text_input(key="seg_vphrase").set_value(words).run()
    at.button(key="seg_vfind").click().run(timeout=300)
    assert not at.exception and not at.error
    tracker = at.session_state["_lens_service_segmentation"].clip.tracker
    assert tracker.propagated and len(tracker.objects) >= len(objects)


def test_a_checkpoint_trained_on_real_masks_is_offered_first_with_its_figures(
        offline, checkpoints_dir, monkeypatch):
    """A checkpoint `lib.train segmenter` wrote (figures on held-out photos in its manifest) is
    offered first, its figures beside it, GrabCut still offered; the mask shown carries the
    page's confidence, and an unsure one asks for a correction click."""
    import json
    folder = checkpoints_dir / "photo-sam"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"")
    (folder / "model.json").write_text(json.dumps({
        "task": "segmentation", "architecture": "edgetam", "weights": "model.safetensors",
        "label_set": "COCO sample", "memory_path": "untrained",
        "held_out": {"objects": 203, "box_miou": 0.612, "click_miou": 0.401,
                     "clicks3_miou": 0.55, "iou_ece": 0.05},
        "real_clips": {"clips": 6, "point_J": 0.41, "classical_J": 0.52}}))
    tiny = segment.tiny_segmenter()
    monkeypatch.setattr(segment, "load_segmenter",
                        lambda name: tiny if name == "photo-sam" else segment.grabcut_segmenter())
    at = run_page("segmentation")
    assert not at.exception
    picker = at.sidebar.selectbox[0]
    assert picker.value == "photo-sam" and segment.GRABCUT in picker.options
    said = ("Measured on 203 objects of held-out real photos: mean IoU 0.61 from a box, 0.40 "
            "from one click.")
    assert any(c.value == said for c in at.sidebar.caption)
    info = at.info[0].value
    assert "**photo-sam** is a small segmenter trained by Lens on real photos" in info
    assert "lib.weights fetch" in info
    at = set_box(at, "120, 20, 330, 300")
    assert not at.exception
    # the tiny random model's predicted IoU is low: the page says it is unsure
    assert any("Unsure" in w.value and "correct" in w.value for w in at.warning), \
        [w.value for w in at.warning]
    assert "predicted IoU (uncalibrated)" in "\n".join(w.value for w in at.warning)
    # video: its memory path is untrained (points by default), and the real-clip figures
    # recommend the classical tracker, which measured better here
    assert figures.untrained_memory() >= {"photo-sam"}
    from pages import segmentation_common
    assert segmentation_common.recommended_tracker("photo-sam") == "classical"


def test_whatif_masks_the_same_box_on_a_corrupted_image_and_sweeps(offline):
    """The photo segmenter, a box on the cat: its mask under fog 3 beside the clean one, the
    IoU between them as `masks.iou` computes it, and the sweep's heatmap."""
    from lib.demo import samples
    from lib.media import corruptions, images, masks
    from lib.segmentation import whatif
    at = set_box(run_page("segmentation"), "120, 20, 330, 300")
    assert not at.exception
    assert not any(m.value.startswith("Mask IoU") for m in at.markdown)   # off until asked
    at.toggle(key="seg_wi_on").set_value(True).run()
    said = next(m.value for m in at.markdown if m.value.startswith("Mask IoU, clean"))
    seg = segment.load_segmenter(at.sidebar.selectbox[0].value)
    photo = np.array(images.load_image(samples.sample_bytes("cat (chelsea)")).image)
    box = (120.0, 20.0, 330.0, 300.0)
    want = masks.iou(whatif.best_mask(seg, photo, [], box),
                     whatif.best_mask(seg, corruptions.corrupt(photo, "fog", 3), [], box))
    assert said.endswith(f"**{want:.3f}**")
    assert "fog 3" in [i.caption for img in at.get("image") for i in img.proto.imgs]
    at.button(key="seg_wi_sweep").click().run(timeout=600)
    assert not at.exception and at.get("plotly_chart")
