"""Text prompts through a whole clip: grounded again every k frames, objects entering later
are found within k frames; bad k and bad text get messages."""

import json

import numpy as np
import pytest

from lib.core.errors import PromptError
from lib.media import masks as mask_ops
from lib.segmentation import classical, grounding, text_track
from lib.segmentation.segment_video import open_clip

K = 5


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    from lib.demo import synth
    return synth.write_clips(tmp_path_factory.mktemp("clips"), 6, frames=30, size=128, seed=1)


@pytest.fixture(scope="module")
def grounder():
    from lib.models import cache
    return grounding.DetectorGrounder("demo-fasterrcnn" + grounding.CLOSED,
                                      cache.load("demo-fasterrcnn", "detection").model)


@pytest.mark.slow
def test_objects_entering_later_are_found_within_k_frames(clips, grounder):
    """Every object that enters after frame 0 is started within K frames of entering, on
    its own box (the generator's mask), with its class as the label; the other tracks keep
    their ids (each started once)."""
    index = json.loads((clips / "clips.json").read_text())["clips"]
    entering = found = 0
    for clip in index:
        tracker = classical.FlowTracker(open_clip(clips / clip["file"]))
        words = ", ".join(sorted({o["category"] for o in clip["objects"]}))
        done = text_track.ground_through(tracker, grounder, words, K)
        assert done.frames == list(range(0, 30, K))
        ids = [i for _, i, _ in done.started]
        assert len(ids) == len(set(ids)) and set(ids) <= set(tracker.objects)
        for obj in clip["objects"]:
            if obj["first_frame"] == 0:
                continue
            entering += 1
            for f, i, label in done.started:
                if not obj["first_frame"] <= f <= obj["first_frame"] + K:
                    continue
                truth = clip["masks"][f].get(str(obj["id"]))
                mask = tracker.mask(f, i)
                if truth is None or mask is None or label != obj["category"]:
                    continue
                truth = mask_ops.from_rle(truth)
                if (mask & truth).sum() / max(1, (mask | truth).sum()) >= 0.5:
                    found += 1
                    break
    assert entering == 6 and found == entering


def test_a_grounded_box_on_a_tracked_object_starts_nothing(clips, grounder):
    tracker = classical.FlowTracker(open_clip(clips / "clip001.mp4"))
    first = text_track.ground_through(tracker, grounder, "star, circle", 30)   # frame 0 only
    again = text_track.ground_through(tracker, grounder, "star, circle", 30)
    assert first.started and again.started == [] and again.frames == [0]


@pytest.mark.parametrize("k", [0, -3, 31, 10**9, True, 2.5, "5"])
def test_a_k_outside_the_clip_is_refused(clips, grounder, k):
    tracker = classical.FlowTracker(open_clip(clips / "clip000.mp4"))
    with pytest.raises(PromptError, match="from 1 to 30"):
        text_track.ground_through(tracker, grounder, "star", k)
    assert not tracker.objects


@pytest.mark.parametrize("phrase,message", [
    ("", "Type what to find"), ("   ", "Type what to find"),
    ("person", "'person' is not a class"),
    (" ".join(["star"] * 500), "at most"),
    ("<script>alert(1)</script>", "is not a class")])
def test_bad_text_gets_a_message(clips, grounder, phrase, message):
    tracker = classical.FlowTracker(open_clip(clips / "clip000.mp4"))
    with pytest.raises(PromptError, match=message) as err:
        text_track.ground_through(tracker, grounder, phrase, 5)
    assert "<" not in str(err.value) and not tracker.objects


def test_a_box_with_no_area_is_skipped_not_fatal(clips):
    """A grounder may return a sliver of a box (seen with the demo detector on the
    validation clips): it starts nothing, and the other boxes still start their objects."""
    class Slivers:
        def boxes(self, image, phrase):
            return [grounding.Region("star", (40.0, 40.0, 40.5, 40.5)),
                    grounding.Region("star", (10.0, 10.0, 50.0, 50.0))]
    tracker = classical.FlowTracker(open_clip(clips / "clip000.mp4"))
    done = text_track.ground_through(tracker, Slivers(), "star", 30)
    assert [(f, o) for f, o, _ in done.started] == [(0, 1)] and list(tracker.objects) == [1]


def test_two_boxes_on_one_object_start_one_track(clips):
    """A grounder may box one object twice on a frame (whole, and a part of it, below the
    overlap a box IoU would catch): one track starts, not two that trade the object."""
    from lib.segmentation import quality
    clip = quality.load_clips(clips, 1)[0]
    ys, xs = np.nonzero(clip.masks[0][1])
    whole = (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))
    part = (whole[0], whole[1], (whole[0] + whole[2]) / 2, (whole[1] + whole[3]) / 2)
    assert mask_ops.box_iou(whole, part) <= text_track.OVERLAP

    class Twice:
        def boxes(self, image, phrase):
            return [grounding.Region("star", whole), grounding.Region("star", part)]
    tracker = classical.FlowTracker(open_clip(clip.path))
    done = text_track.ground_through(tracker, Twice(), "star", 30)
    assert [(f, o) for f, o, _ in done.started] == [(0, 1)] and list(tracker.objects) == [1]


def test_each_caller_sets_its_own_confidence_on_the_shared_model(clips):
    """Two visitors' thresholds do not leak into each other (the model is the process's
    cached one); a lower threshold finds at least the boxes a higher one does."""
    name = "demo-fasterrcnn" + grounding.CLOSED
    strict, default = grounding.load_grounder(name, 0.9), grounding.load_grounder(name)
    assert (strict.threshold, default.threshold) == (0.9, grounding.THRESHOLD)
    assert strict.detector is default.detector
    frame = np.asarray(classical.FlowTracker(open_clip(clips / "clip000.mp4")).frames[0])
    words = "star, circle, square, triangle"
    assert len(default.boxes(frame, words)) >= len(strict.boxes(frame, words))
