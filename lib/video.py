"""The one video intake: probe a clip, check limits, stream frames (never all in memory).

Decoding is PyAV's. `open_video` checks the container and the limits and returns a `VideoInfo`;
`iter_frames` yields RGB frames one at a time, optionally sampled at a given rate.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ACCEPTED_EXTENSIONS = ["mp4", "mov", "webm", "avi", "m4v", "mkv"]
#: PyAV/FFmpeg container names we accept (mov,mp4,... is one demuxer in FFmpeg).
_CONTAINERS = ("mov", "mp4", "m4a", "3gp", "matroska", "webm", "avi")
DEFAULT_MAX_SECONDS = float(os.environ.get("LENS_MAX_VIDEO_SECONDS", 120))
DEFAULT_MAX_PIXELS = int(os.environ.get("LENS_MAX_VIDEO_PIXELS", 1920 * 1080))


class VideoError(ValueError):
    """An input that is not a usable video; the message is meant for the user."""


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    container: str
    codec: str
    width: int
    height: int
    fps: float
    frame_count: int
    duration_s: float


@dataclass(frozen=True)
class Frame:
    index: int          # index of the frame in the clip
    time_s: float       # presentation time in seconds
    rgb: np.ndarray     # HxWx3 uint8


def save_upload(data: bytes, name: str) -> Path:
    """Write uploaded bytes to a temporary file (PyAV needs a seekable file) and return it."""
    suffix = Path(name).suffix.lower() or ".bin"
    fd, tmp = tempfile.mkstemp(prefix="lens-video-", suffix=suffix)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return Path(tmp)


def open_video(path: str | Path, max_seconds: float | None = None,
               max_pixels: int | None = None) -> VideoInfo:
    """Probe a video file and check it against the limits; raise `VideoError` if unusable."""
    import av

    path = Path(path)
    name = path.name
    max_seconds = max_seconds or DEFAULT_MAX_SECONDS
    max_pixels = max_pixels or DEFAULT_MAX_PIXELS
    if not path.is_file() or path.stat().st_size == 0:
        raise VideoError(f"'{name}' is empty or missing.")
    try:
        with av.open(str(path)) as container:
            fmt = container.format.name
            if not any(c in fmt.split(",") for c in _CONTAINERS):
                raise VideoError(f"'{name}' is a {fmt} file; Lens reads MP4, MOV, WebM and AVI.")
            if not container.streams.video:
                raise VideoError(f"'{name}' has no video stream.")
            stream = container.streams.video[0]
            width, height = stream.codec_context.width, stream.codec_context.height
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            fps = float(rate) if rate else 0.0
            if stream.duration and stream.time_base:
                duration = float(stream.duration * stream.time_base)
            elif container.duration:
                duration = container.duration / 1_000_000
            else:
                duration = 0.0
            frames = stream.frames or (round(duration * fps) if fps else 0)
            if not frames:  # some containers (WebM) carry no count: count packets instead
                frames = sum(1 for p in container.demux(stream) if p.size)
                if fps and not duration:
                    duration = frames / fps
            codec = stream.codec_context.name
    except VideoError:
        raise
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError, IndexError) as exc:
        raise VideoError(f"'{name}' is not a video Lens can read (MP4, MOV, WebM, AVI): "
                         f"{exc}") from exc
    if width * height > max_pixels:
        raise VideoError(f"'{name}' is {width}x{height}, over the limit of "
                         f"{max_pixels / 1e6:.1f} megapixels per frame; downscale it first.")
    if duration > max_seconds:
        raise VideoError(f"'{name}' lasts {duration:.0f} s, over the limit of {max_seconds:.0f} s; "
                         "trim it first.")
    if fps <= 0 or frames <= 0:
        raise VideoError(f"'{name}' has no decodable frames.")
    return VideoInfo(path=path, container=fmt, codec=codec, width=width, height=height,
                     fps=fps, frame_count=int(frames), duration_s=duration)


def iter_frames(info: VideoInfo, every_s: float | None = None,
                max_frames: int | None = None) -> Iterator[Frame]:
    """Stream RGB frames; with `every_s`, yield one frame per `every_s` seconds."""
    import av

    next_t = 0.0
    yielded = 0
    with av.open(str(info.path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for index, frame in enumerate(container.decode(stream)):
            t = float(frame.time) if frame.time is not None else index / info.fps
            if every_s is not None:
                if t + 1e-6 < next_t:
                    continue
                next_t += every_s
                while next_t <= t:
                    next_t += every_s
            yield Frame(index=index, time_s=t, rgb=frame.to_ndarray(format="rgb24"))
            yielded += 1
            if max_frames is not None and yielded >= max_frames:
                return


def read_frame(info: VideoInfo, index: int) -> Frame:
    """Decode one frame by index (streams up to it; for scrubbing short clips)."""
    for frame in iter_frames(info):
        if frame.index == index:
            return frame
    raise VideoError(f"Frame {index} is past the end of the clip ({info.frame_count} frames).")
