"""The Segmentation page's service without Streamlit: an image's objects kept while it is
the same image, a clip's tracker closed when another replaces it or the visitor leaves."""

from lib.segmentation.service import SegmentationSession


class FakeTracker:
    def __init__(self):
        self.closed = False

    def close(self):
        self.closed = True


def test_an_image_s_objects_are_kept_until_another_image():
    session = SegmentationSession()
    work = session.open_image("a")
    work.new_object()
    assert [o.obj_id for o in work.objects] == [1, 2] and work.active.obj_id == 2
    assert session.open_image("a") is work
    fresh = session.open_image("b")
    assert fresh is not work and [o.obj_id for o in fresh.objects] == [1]


def test_a_tracker_is_closed_when_replaced_and_when_the_visitor_leaves():
    session = SegmentationSession()
    first = session.open_clip(("clip", "model", 1), FakeTracker).tracker
    assert session.open_clip(("clip", "model", 1), FakeTracker).tracker is first
    second = session.open_clip(("clip", "model", 2), FakeTracker).tracker   # another rate
    assert first.closed and not second.closed
    session.close()
    assert second.closed and session.clip.tracker is None
