"""Video scenes: merged segments, keyframes, frames classified at the chosen rate."""


import pytest
import timm
import torch

from lib.classification import scenes
from lib.classification.scenes import FramePrediction
from lib.media.video import open_video
from lib.models import registry
from tests.helpers import write_video


def fp(t, cls, p=0.9):
    return FramePrediction(index=int(t * 10), time_s=t, label=f"L{cls}", class_index=cls,
                           probability=p)


@pytest.mark.parametrize("classes,min_len,expected", [
    ([0, 0, 0, 1, 1, 1], 0.0, [(0, 0.0, 3.0), (1, 3.0, 6.0)]),
    ([0, 0, 0, 1, 0, 0], 2.0, [(0, 0.0, 6.0)]),                       # 1-s blip absorbed
    ([0, 0, 0, 1, 1, 1], 4.0, [(1, 0.0, 6.0)]),                       # both short: one scene
    ([0, 1, 1, 1, 1, 2], 1.5, [(1, 0.0, 6.0)]),                       # both ends absorbed
    ([0, 0, 1, 1, 2, 2], 1.0, [(0, 0.0, 2.0), (1, 2.0, 4.0), (2, 4.0, 6.0)]),
])
def test_merge_segments(classes, min_len, expected):
    preds = [fp(float(t), c) for t, c in enumerate(classes)]
    segs = scenes.merge_segments(preds, min_len, clip_end_s=6.0)
    assert [(s.class_index, s.start_s, s.end_s) for s in segs] == expected
    assert sum(s.duration_s for s in segs) == pytest.approx(6.0)


def test_keyframe_is_most_confident_frame():
    preds = [fp(0, 0, 0.5), fp(1, 0, 0.95), fp(2, 0, 0.7)]
    seg = scenes.merge_segments(preds, 0.0, 3.0)[0]
    assert seg.keyframe_time_s == 1.0 and seg.mean_probability == pytest.approx(0.7166666)


def test_video_frames_classified_at_chosen_rate(tmp_path):
    torch.manual_seed(0)
    lm = registry.from_module(timm.create_model("test_efficientnet", num_classes=3),
                              ["a", "b", "c"], preprocess=registry.Preprocess((3, 32, 32)))
    info = open_video(write_video(tmp_path / "v.mp4", frames=24, fps=6))
    progress = []
    preds = scenes.classify_frames(lm, info, every_s=0.5, batch_size=3,
                                   progress=lambda p: progress.append(p.done))
    assert [p.index for p in preds] == [0, 3, 6, 9, 12, 15, 18, 21]
    assert progress[-1] == 8 and all(0 <= p.probability <= 1 for p in preds)
