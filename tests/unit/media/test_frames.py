"""Streamed frames: random access equals PyAV's own sequential decode, whatever the order,
with a bounded buffer; a lying, cut, resized or variable-rate clip is handled."""

from fractions import Fraction

import numpy as np
import pytest

from lib.media.frames import FrameSource
from lib.media.video import VideoError, iter_frames, open_video


def _packets(w, h, n, seed, pts=None, gop=10):
    """H.264 packets of `n` random-noise frames (each one different), SPS/PPS repeated at
    every keyframe so that a stream can change size between them."""
    import av
    cc = av.CodecContext.create("libx264", "w")
    cc.width, cc.height, cc.pix_fmt = w, h, "yuv420p"
    cc.time_base = Fraction(1, 25)
    cc.options = {"x264-params": "repeat-headers=1", "g": str(gop), "crf": "18"}
    rng = np.random.default_rng(seed)
    packets = []
    for i in range(n):
        frame = av.VideoFrame.from_ndarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8),
                                           format="rgb24")
        frame.pts = pts[i] if pts else i
        packets += cc.encode(frame)
    return packets + cc.encode(None)


def _noise_clip(path, parts, pts=None, gop=10, options=None):
    """A clip of `parts` [(w, h, frames), ...]: random-noise frames, each part another size,
    at timestamps `pts` (1/25 s units; default one per frame)."""
    import av
    with av.open(str(path), "w", options=options or {}) as out:
        stream = out.add_stream("h264", rate=25)
        stream.width, stream.height = parts[0][:2]
        stream.time_base = Fraction(1, 25)
        done = 0
        for k, (w, h, n) in enumerate(parts):
            stamps = pts[done:done + n] if pts else list(range(done, done + n))
            for p in _packets(w, h, n, k, stamps, gop):
                p.stream = stream
                out.mux(p)
            done += n
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = _noise_clip(tmp_path_factory.mktemp("f") / "noise.mp4", [(64, 48, 60)])
    info = open_video(path)
    return info, [f.rgb for f in iter_frames(info)]


@pytest.mark.parametrize("order", ["forward", "backward", "random"])
def test_any_order_gives_the_frames_a_sequential_decode_gives(clip, order):
    info, truth = clip
    source = FrameSource(info, buffer_frames=8)
    idx = list(range(len(truth)))
    if order == "backward":
        idx = idx[::-1]
    elif order == "random":
        idx = list(np.random.default_rng(1).permutation(idx))
    for i in idx:
        assert np.array_equal(source[i], truth[i]), i
        assert len(source._buffer) <= 8
    if order != "random":     # in order, either way: a block at a time, not a seek a frame
        assert source.seeks <= len(truth) // 8 + 2
        assert source.decoded <= 3 * len(truth)


def test_outside_the_clip_is_a_clear_error(clip):
    info, truth = clip
    with pytest.raises(VideoError, match="outside the clip"):
        FrameSource(info)[len(truth)]


def test_a_clip_cut_short_ends_where_its_frames_end(tmp_path):
    """The index up front (faststart) promises 60 frames; the data stops two thirds in.
    Every frame handed out equals the uncut file's (x264 can encode the same frames to other
    bytes under load, so the reference is this very file, not another encode)."""
    whole = _noise_clip(tmp_path / "whole.mp4", [(64, 48, 60)],
                        options={"movflags": "faststart"})
    truth = [f.rgb for f in iter_frames(open_video(whole))]
    data = whole.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 2 // 3])
    cinfo = open_video(cut)
    source = FrameSource(cinfo)
    got = 0
    with pytest.raises(VideoError, match="ends at frame"):
        for i in range(cinfo.frame_count):
            assert np.array_equal(source[i], truth[i])
            got += 1
    assert 0 < got < cinfo.frame_count and len(source) == got


def test_variable_frame_rate_and_a_size_change_mid_stream(tmp_path):
    """Irregular timestamps, and frames 10-19 at half the size (MKV, SPS in-band): the
    index follows the timestamps, and every frame comes at the first frame's size."""
    import cv2
    pts = [0, 1, 2, 5, 6, 10, 11, 12, 20, 21, 22, 23, 30, 31, 40, 41, 42, 43, 44, 45]
    info = open_video(_noise_clip(tmp_path / "vfr.mkv", [(64, 48, 10), (32, 24, 10)],
                                  pts=pts, gop=4))
    decoded = [f.rgb for f in iter_frames(info)]
    assert decoded[12].shape == (24, 32, 3)                  # the file really changes size
    source = FrameSource(info, buffer_frames=3)
    assert len(source) == len(decoded) == 20
    for i in [15, 3, 19, 0, 8, 7, 6, 12]:
        want = cv2.resize(decoded[i], (64, 48), interpolation=cv2.INTER_AREA)
        assert np.array_equal(source[i], want), i
