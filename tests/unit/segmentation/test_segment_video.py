"""Video tracking at full length on tiny random SAM 2 models: frames streamed, the memory
bank bounded (and tracking unchanged by it), masks on disk, objects added after tracking,
Cancel, a processing rate, the memory budget, and streamed exports checked by pycocotools;
and the classical (flow + GrabCut) tracker, measured on synthetic clips."""

import gc
import json
import zipfile

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from lib.core import errors
from lib.media import video as video_io
from lib.models import cache
from lib.segmentation import memory_bank, segment, segment_video, video_export
from lib.segmentation.mask_store import MaskStore
from tests.helpers import write_video


@pytest.fixture(scope="module")
def model():
    return segment_video.tiny_video_model()


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    rng = np.random.default_rng(0)
    colors = [tuple(int(v) for v in rng.integers(0, 255, 3)) for _ in range(40)]
    path = write_video(tmp_path_factory.mktemp("v") / "clip.mp4", frames=40, size=(96, 64),
                       colors=colors)
    return segment_video.open_clip(path)


def _all_masks(tracker):
    return [tracker.masks_on(f) for f in range(tracker.num_frames)]


@pytest.mark.slow
def test_tracking_streams_frames_spills_masks_and_exports(model, clip, tmp_path):
    tracker = model.tracker(clip)
    with pytest.raises(video_io.VideoError, match="Prompt at least one object"):
        tracker.propagate()
    first = tracker.add_prompt(3, 1, [(30, 20, 1)], label="ball")
    assert first.shape == (64, 96) and np.array_equal(tracker.mask(3, 1), first)
    seen = []
    assert tracker.propagate(seen.append) == 40 and tracker.propagated
    assert [p.done for p in seen] == list(range(1, 41)) and seen[-1].eta_s == 0
    assert tracker.store.frames() == list(range(40))        # on disk, every frame
    assert len(tracker.frames._buffer) <= 16                # streamed, never the whole clip
    made = tracker.session.processed_frames
    assert made.made >= 40 and len(made._lru) <= 4
    out = video_export.mp4(tracker, tmp_path / "out.mp4", effect="blur")
    rendered = video_io.open_video(out)
    assert rendered.frame_count == 40 and (rendered.width, rendered.height) == (96, 64)
    doc = json.loads(video_export.coco(tracker, tmp_path / "m.json", "clip").read_text())
    assert len(doc["images"]) == 40 and [c["name"] for c in doc["categories"]] == ["ball"]
    assert doc["videos"][0]["length"] == 40 and doc["tracks"] == [
        {"id": 1, "video_id": 1, "category_id": 1, "name": "ball"}]
    coco = COCO()                         # pycocotools reads it as COCO, and decodes what
    coco.dataset = doc                    # the page shows
    coco.createIndex()
    for ann in coco.loadAnns(coco.getAnnIds()):
        frame = coco.imgs[ann["image_id"]]["frame_index"]
        mask = coco.annToMask(ann).astype(bool)
        assert np.array_equal(mask, tracker.mask(frame, ann["track_id"]))
        assert ann["area"] == mask.sum() > 0 and ann["instance_id"] == 1
    empty = sum(not tracker.mask(f, 1).any() for f in range(40))
    assert len(doc["annotations"]) == 40 - empty
    z = zipfile.ZipFile(video_export.png_zip(tracker, tmp_path / "m.zip"))
    assert len(z.namelist()) == 40 and "frame00000_obj1.png" in z.namelist()


@pytest.mark.slow
def test_bounded_memory_bank_tracks_exactly_as_the_whole_history(model, clip, monkeypatch):
    """Two objects prompted on different frames, 40 frames: more than twice the memory
    window (15 frames), so the bounded session drops outputs the whole-history one keeps,
    and its masks are identical on every frame."""
    def run():
        tracker = model.tracker(clip)
        tracker.add_prompt(2, 1, [(30, 20, 1)])
        tracker.add_prompt(20, 2, [], box=(40, 10, 90, 60))
        tracker.propagate()
        kept = [len(d["non_cond_frame_outputs"])
                for d in tracker.session.output_dict_per_obj.values()]
        return _all_masks(tracker), kept
    bounded, kept = run()
    monkeypatch.setattr(segment_video, "prune_memory", lambda *a, **k: 0)
    whole, kept_whole = run()
    assert bounded == whole
    window = segment_video.memory_window(model.model.config)
    assert window == 15 and max(kept) <= 2 * window + 2 < min(kept_whole) == 39


@pytest.mark.slow
def test_objects_prompted_together_run_as_one_batch_with_the_same_masks(model, clip,
                                                                      monkeypatch):
    """Four objects, three prompted on frame 0 (one batch) and one on frame 9 (its own): the
    masks equal those of the model's own one-object-at-a-time `forward` (IoU >= 0.999; float
    sums in another order may flip a pixel), and the batch is one pass a frame."""
    from lib.segmentation import batched

    def run():
        tracker = model.tracker(clip)
        for k, (x, y) in enumerate([(20, 20), (50, 30), (80, 50)]):
            tracker.add_prompt(0, k + 1, [(x, y, 1)])
        tracker.add_prompt(9, 4, [], box=(30, 10, 70, 50))
        tracker.propagate()
        return [{o: tracker.mask(f, o) for o in tracker.objects} for f in range(40)]
    calls = []
    one_batch = batched._run_batch
    monkeypatch.setattr(batched, "_run_batch", lambda *a: calls.append(a[3]) or one_batch(*a))
    together = run()
    sizes = [len(c) for c in calls]     # frame 0 has their prompts, frame 9 object 4's
    assert sizes.count(3) == 39 and sizes.count(1) == 39 and len(sizes) == 78

    def one_at_a_time(model_, session, j, reverse=False):
        out = model_(inference_session=session, frame_idx=j, reverse=reverse)
        return list(out.object_ids), out.pred_masks
    monkeypatch.setattr(segment_video, "track_frame", one_at_a_time)
    alone = run()
    ious = [mask_iou(a[o], b[o]) for a, b in zip(together, alone) for o in a]
    assert min(ious) >= 0.999


def mask_iou(a, b) -> float:
    union = (a | b).sum()
    return float((a & b).sum() / union) if union else 1.0


@pytest.mark.slow
def test_objects_added_after_tracking_are_tracked_on_their_own(model, clip):
    tracker = model.tracker(clip)
    tracker.add_prompt(0, 1, [(30, 20, 1)])
    tracker.propagate()
    before = _all_masks(tracker)
    tracker.add_prompt(10, 2, [], box=(40, 10, 90, 60))
    assert not tracker.propagated and len(tracker.groups) == 2
    assert tracker.propagate() == 40                         # the new object's frames only
    after = _all_masks(tracker)
    assert all(a[1] == b[1] and set(a) == {1, 2} for a, b in zip(after, before))
    # a new prompt on a tracked object tracks its group again (its old masks stop counting)
    tracker.add_prompt(30, 1, [(60, 40, 1)])
    assert not tracker.groups[0].tracked and tracker.groups[1].tracked
    assert tracker.propagate() == 40 and tracker.propagated


@pytest.mark.slow
def test_cancel_keeps_what_was_tracked(model, clip):
    tracker = model.tracker(clip)
    tracker.add_prompt(0, 1, [(30, 20, 1)])

    def cancel(p):
        if p.done == 12:
            raise KeyboardInterrupt     # what Streamlit's stop does inside a callback
    with pytest.raises(KeyboardInterrupt):
        tracker.propagate(cancel)
    assert not tracker.propagated and tracker.tracked_frames == 12
    assert tracker.store.frames() == list(range(12))
    assert tracker.propagate() == 40 and tracker.store.frames() == list(range(40))


def test_processing_rate_tracks_one_frame_in_n_and_carries_masks(model, clip):
    tracker = model.tracker(clip, every=3)
    tracker.add_prompt(7, 1, [(30, 20, 1)])          # lands on tracked frame 6
    assert list(tracker.objects[1].prompts) == [6]
    assert tracker.propagate() == 14                 # frames 0, 3, ..., 39
    assert tracker.store.frames() == list(range(0, 40, 3))
    for f in range(40):
        assert tracker.masks_on(f) == tracker.masks_on(f - f % 3)


@pytest.mark.slow
def test_tracking_state_is_counted_in_the_memory_budget_and_released(model, clip,
                                                                     monkeypatch):
    tracker = model.tracker(clip)
    tracker.add_prompt(0, 1, [(30, 20, 1)])
    tracker.propagate()
    assert 0 < tracker.state_bytes <= tracker.peak_state_bytes
    held = dict((id(o), n) for o, n in [(tracker, tracker.state_bytes)])
    assert cache.Held("tracking session", "clip.mp4", held[id(tracker)]) in cache.STORE.summary()
    path = tracker.store.path
    assert path.is_file()
    del tracker
    gc.collect()
    assert not path.exists()                                        # the masks' file goes
    assert "tracking session" not in cache.STORE.by_kind()
    small = cache.ModelCache(budget_bytes=1)
    monkeypatch.setattr(cache, "STORE", small)
    tracker = model.tracker(clip)
    with pytest.raises(errors.ModelTooLargeError, match="memory budget"):
        tracker.add_prompt(0, 1, [(30, 20, 1)])


def test_limits_and_bad_prompts(model, clip):
    with pytest.raises(video_io.VideoError, match="at most 1 s"):
        segment_video.check_limits(clip, max_seconds=1)
    with pytest.raises(video_io.VideoError, match="Downscale"):
        segment_video.check_limits(clip, max_pixels=1000)
    tracker = model.tracker(clip)
    with pytest.raises(video_io.VideoError, match="outside the clip"):
        tracker.add_prompt(99, 1, [(3, 3, 1)])
    with pytest.raises(segment.PromptError, match="outside"):
        tracker.add_prompt(0, 1, [(300, 3, 1)])
    tracker.add_prompt(0, 1, [(3, 3, 1)])
    with pytest.raises(segment.PromptError, match="no area"):
        tracker.add_prompt(1, 1, [], box=(5, 5, 5, 40))
    assert list(tracker.objects[1].prompts) == [0]        # the earlier prompt is kept


def test_tracked_frames_bitmap_answers_like_a_dict():
    bits, ref = memory_bank.TrackedFrames(), {}
    for i, rev in [(0, False), (9, True), (70, False), (9, False), (1000, True)]:
        bits[i] = {"reverse": rev}
        ref[i] = {"reverse": rev or ref.get(i, {}).get("reverse", False)}
    assert len(bits) == len(ref)
    for i in range(1100):
        assert (i in bits) == (i in ref)
    assert bits[1000] == {"reverse": True} and bits[70] == {"reverse": False}


def test_mask_store_survives_a_torn_line_and_forgets_retracked_objects(tmp_path):
    path = tmp_path / "masks.jsonl"
    store = MaskStore(path, delete=False)
    a = np.zeros((8, 10), bool)
    a[2:5, 3:7] = True
    store.put(0, {1: a, 2: ~a})
    store.put(1, {1: ~a})
    store.forget([2])
    store.put(1, {2: a})
    assert set(store.get(0)) == {1} and set(store.get(1)) == {1, 2}
    store.close()
    with open(path, "ab") as fh:
        fh.write(b'{"f": 2, "o": {"1": [0, {"si')        # killed mid-write
    again = MaskStore(path, delete=False)
    assert again.frames() == [0, 1]
    assert np.array_equal(mask_utils.decode(
        {**again.get(1)[2], "counts": again.get(1)[2]["counts"].encode()}).astype(bool), a)
    again.put(2, {1: a})
    assert again.frames() == [0, 1, 2]
    again.close()
    assert path.is_file()


@pytest.mark.slow
def test_classical_tracker_is_measured_on_synthetic_clips(tmp_path):
    """Optical flow + GrabCut, through the page's Tracker interface: J on regenerated clips
    (0.68 on the 20 validation clips, in the README; it has no memory, so occluded objects
    are lost)."""
    from lib.demo import synth
    from lib.segmentation import classical, quality
    out = synth.write_clips(tmp_path / "clips", 6, frames=30, size=128, seed=1)
    result = quality.box_prompted(
        lambda info, frames: classical.FlowTracker(info, frames), out)
    assert result.clips == 6 and result.frames > 300
    assert 0.6 < result.j < 0.85
    assert result.j_occluded < 0.3


def _thin_clip(path):
    """A 1x64 clip (MPEG-4 in AVI takes a 1-pixel width; H.264 does not)."""
    import av
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 1, 64, "yuv420p"
        for i in range(6):
            frame = np.full((64, 1, 3), 40 * i, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def _audio_only(path):
    import av
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=44100)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp",
                                           layout="mono")
        frame.sample_rate = 44100
        for i in range(8):
            frame.pts = i * 1024
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def test_odd_clips_track_or_get_one_clear_message(model, tmp_path):
    """A 1x64 clip tracks and exports (the MP4 one column wider); an audio-only file and a
    clip with no frames are refused with one message each."""
    thin = segment_video.open_clip(_thin_clip(tmp_path / "thin.avi"))
    tracker = model.tracker(thin)
    tracker.add_prompt(0, 1, [(0, 20, 1)])
    assert tracker.propagate() == 6 and tracker.mask(5, 1).shape == (64, 1)
    out = video_io.open_video(video_export.mp4(tracker, tmp_path / "thin.mp4", effect="blur"))
    assert (out.width, out.height, out.frame_count) == (2, 64, 6)
    with pytest.raises(video_io.VideoError, match="no video stream"):
        segment_video.open_clip(_audio_only(tmp_path / "audio.mp4"))
    empty = write_video(tmp_path / "empty.mp4", frames=0)
    with pytest.raises(video_io.VideoError, match="is empty|no decodable frames"):
        segment_video.open_clip(empty)


@pytest.mark.slow
def test_timeline_counts_screen_time_from_the_masks_on_disk(model, clip):
    """Areas and frames from the stored RLE equal counting the decoded masks' pixels; the
    object most on screen comes first."""
    from lib.segmentation import timeline
    tracker = model.tracker(clip, every=2)
    tracker.add_prompt(0, 1, [(30, 20, 1)], label="ball")
    tracker.add_prompt(0, 2, [], box=(40, 10, 90, 60))
    tracker.propagate()
    rows = timeline.presence(tracker)
    for f in range(0, 40, 2):
        for o in (1, 2):
            area = int(tracker.mask(f, o).sum())
            got = rows[(rows["frame"] == f) & (rows["object"] == o)]["area"].tolist()
            assert got == ([area] if area else [])
    table = timeline.screen_time(tracker, rows)
    seen = {o: int(sum(tracker.mask(f, o).any() for f in range(0, 40, 2))) for o in (1, 2)}
    assert table["screen time (s)"].tolist() == sorted(table["screen time (s)"], reverse=True)
    for _, row in table.iterrows():
        assert row["screen time (s)"] == round(seen[row["object"]] * 2 / clip.fps, 2)
    assert set(table["label"]) == {"ball", "object 2"}
