"""The video intake: containers, sampling, limits on the decoded frames, non-videos refused."""

import pytest

from lib.core.scratch import store_bytes
from lib.media.video import VideoError, iter_frames, open_video, read_frame
from tests.helpers import write_video

CONTAINERS = [("mp4", "mpeg4"), ("mov", "h264"), ("webm", "libvpx"), ("avi", "mpeg4")]


@pytest.mark.parametrize("ext,codec", CONTAINERS)
def test_each_container_reports_fps_and_frames(tmp_path, ext, codec):
    path = write_video(tmp_path / f"clip.{ext}", frames=12, fps=6, codec=codec)
    info = open_video(path)
    assert (info.width, info.height) == (64, 48)
    assert info.fps == pytest.approx(6, rel=0.01)
    assert info.frame_count == 12
    assert info.duration_s == pytest.approx(2.0, abs=0.2)
    frames = list(iter_frames(info))
    assert len(frames) == 12 and frames[0].rgb.shape == (48, 64, 3)


def test_sampling_rate_and_streaming(tmp_path):
    path = write_video(tmp_path / "clip.mp4", frames=12, fps=6)
    info = open_video(path)
    every_half_second = list(iter_frames(info, every_s=0.5))
    assert [f.index for f in every_half_second] == [0, 3, 6, 9]
    assert len(list(iter_frames(info, max_frames=2))) == 2
    assert read_frame(info, 5).index == 5
    with pytest.raises(VideoError, match="past the end"):
        read_frame(info, 99)


def test_limits_give_clear_messages(tmp_path):
    path = write_video(tmp_path / "clip.mp4", frames=12, fps=6)
    with pytest.raises(VideoError, match="over the limit of 1 s"):
        open_video(path, max_seconds=1)
    with pytest.raises(VideoError, match="pixels per frame"):
        open_video(path, max_pixels=1000)


@pytest.mark.parametrize("data,message", [
    (b"", "empty"),
    (b"this is not a video at all" * 10, "not a video"),
    (b"\x89PNG\r\n\x1a\n" + b"\0" * 100, "not a video|is a"),
])
def test_non_videos_are_refused(data, message):
    path = store_bytes(data, ".mp4")
    with pytest.raises(VideoError, match=message):
        open_video(path)


def test_image_file_is_not_a_video(tmp_path):
    from PIL import Image
    path = tmp_path / "photo.png"
    Image.new("RGB", (8, 8)).save(path)
    with pytest.raises(VideoError, match="png_pipe|image2|not a video|MP4"):
        open_video(path)
