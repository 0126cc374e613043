"""The tracking figures (`lib.segmentation.quality`) on trackers whose answers are known: one
that returns the generator's own masks scores 1 everywhere; one that hands an object's masks
to another id after it hides loses the id and counts a switch."""

import pytest

from lib.segmentation import quality, text_track


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    from lib.demo import synth
    return synth.write_clips(tmp_path_factory.mktemp("clips"), 4, frames=30, size=96, seed=5)


class Oracle:
    """Answers with the true visible masks; `swap_after_hiding` moves object 0's masks to
    a new id (99) once it has been hidden."""

    def __init__(self, clip: quality.Clip, swap_after_hiding: bool = False):
        self.clip, self.swap = clip, swap_after_hiding
        self.num_frames = len(clip.masks)
        self.objects: dict[int, object] = {}

    def add_prompt(self, frame_idx, obj_id, points=(), box=None, label=""):
        self.objects[obj_id] = label

    def propagate(self, progress=None):
        return self.num_frames

    def _hidden_before(self, f: int) -> bool:
        return any(self.clip.visible(g, 0) is None for g in range(1, f))

    def mask(self, f: int, obj_id: int):
        k = obj_id - 1
        if self.swap and k == 0 and self._hidden_before(f):
            return None
        if self.swap and obj_id == 99:
            k = 0 if self._hidden_before(f) else -1
        return self.clip.masks[f].get(k)


def _for(clips, **kw):
    by_path = {c.path.name: c for c in quality.load_clips(clips)}
    return lambda info, frames: Oracle(by_path[info.path.name], **kw)


def test_true_masks_score_one_and_every_hidden_object_is_regained(clips):
    q = quality.box_prompted(_for(clips), clips)
    assert q.clips == 4 and q.frames > 200
    assert q.j == pytest.approx(1.0) and q.j_occluded == pytest.approx(1.0)
    assert q.hidden >= 2 and q.regained == q.hidden        # object 0 passes behind object 1
    assert q.regained_share == 1.0


def test_an_id_lost_after_hiding_is_not_regained_and_is_one_switch(clips, monkeypatch):
    q = quality.box_prompted(_for(clips, swap_after_hiding=True), clips)
    hid = {c.path.name for c in quality.load_clips(clips)
           if any(c.visible(f, 0) is None for f in range(1, len(c.masks)))}
    assert q.regained == q.hidden - len(hid) and q.j_occluded < 1.0
    # text: every object is an id the "grounding" made; object 0 changes id once it hid
    monkeypatch.setattr(text_track, "ground_through",
                        lambda tracker, grounder, word, every: [
                            tracker.add_prompt(0, o + 1) for o in range(3)] + [
                            tracker.add_prompt(0, 99)])
    late_named_0 = 0
    for c in quality.load_clips(clips):
        late = [o for o in c.objects if o["first_frame"] > 0]
        late_named_0 += bool(late) and c.objects[0]["category"] == late[0]["category"] \
            and c.path.name in hid
    t = quality.text_prompted(_for(clips, swap_after_hiding=True), None, clips, every=5)
    assert t.entering >= 1 and t.entered_found == t.entering     # the true masks are found
    assert late_named_0 == 1 and t.id_switches == 1
    assert t.object_frames > 0
