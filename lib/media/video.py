"""The one video intake: probe a clip, check limits, stream frames (never all in memory).

Decoding is PyAV's. `open_video` checks the container and the limits and returns a `VideoInfo`;
`iter_frames` yields RGB frames one at a time, optionally sampled at a given rate.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lib.core import settings
from lib.core.errors import VideoError

ACCEPTED_EXTENSIONS = ["mp4", "mov", "webm", "avi", "m4v", "mkv"]
#: PyAV/FFmpeg container names we accept (mov,mp4,... is one demuxer in FFmpeg).
_CONTAINERS = ("mov", "mp4", "m4a", "3gp", "matroska", "webm", "avi")




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


def _limits(max_seconds: float | None, max_pixels: int | None,
            max_frames: int | None) -> tuple[float, int, int]:
    s = settings.get()
    return (max_seconds or s.max_video_seconds, max_pixels or s.max_video_pixels,
            max_frames or s.max_video_frames)


def _too_large(name: str, width: int, height: int, max_pixels: int) -> VideoError:
    return VideoError(f"'{name}' has {width}x{height} frames, over the limit of "
                      f"{max_pixels:,} pixels per frame.", "Downscale it first.")


def _too_long(name: str, seconds: float, max_seconds: float) -> VideoError:
    return VideoError(f"'{name}' lasts over {seconds:.0f} s, over the limit of "
                      f"{max_seconds:.0f} s.", "Trim it first.")


def _too_many(name: str, max_frames: int) -> VideoError:
    return VideoError(f"'{name}' has more than {max_frames} frames, over the limit.",
                      "Trim it or lower its frame rate (LENS_MAX_VIDEO_FRAMES).")


def open_video(path: str | Path, max_seconds: float | None = None,
               max_pixels: int | None = None, max_frames: int | None = None) -> VideoInfo:
    """Probe a video file and check it against the limits; raise `VideoError` if unusable.

    The container's header is not trusted: frames and duration are counted from the packets
    actually there, and the first frame is decoded to check its real size. `iter_frames`
    checks every decoded frame again.
    """
    import av  # heavy: imported on first use

    path = Path(path)
    name = path.name
    max_seconds, max_pixels, max_frames = _limits(max_seconds, max_pixels, max_frames)
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
            codec = stream.codec_context.name
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            fps = float(rate) if rate else 0.0
            tb = float(stream.time_base) if stream.time_base else 0.0
            frames, first, last = 0, None, 0.0
            for packet in container.demux(stream):   # what is there, not what the header says
                if not packet.size:
                    continue
                frames += 1
                if frames > max_frames:
                    raise _too_many(name, max_frames)
                if packet.pts is not None and tb:
                    t = packet.pts * tb
                    first = t if first is None else min(first, t)
                    last = max(last, t + (packet.duration or 0) * tb)
                    if last - first > max_seconds:
                        raise _too_long(name, max_seconds, max_seconds)
            duration = (last - first) if first is not None else (frames / fps if fps else 0.0)
            if not fps and duration:
                fps = frames / duration
            if frames and fps and frames / fps > max_seconds + 1:
                raise _too_long(name, frames / fps, max_seconds)
            container.seek(0)
            first_frame = next(container.decode(stream), None)
            if first_frame is None:
                raise VideoError(f"'{name}' has no decodable frames.")
            width, height = first_frame.width, first_frame.height
    except VideoError:
        raise
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError, IndexError, OSError,
            MemoryError, StopIteration) as exc:
        raise VideoError(f"'{name}' is not a video Lens can read (MP4, MOV, WebM, AVI).",
                         f"({type(exc).__name__})") from None
    if width * height > max_pixels:
        raise _too_large(name, width, height, max_pixels)
    if fps <= 0 or frames <= 0:
        raise VideoError(f"'{name}' has no decodable frames.")
    return VideoInfo(path=path, container=fmt, codec=codec, width=width, height=height,
                     fps=fps, frame_count=int(frames), duration_s=max(duration, frames / fps))


def iter_frames(info: VideoInfo, every_s: float | None = None,
                max_frames: int | None = None, max_seconds: float | None = None,
                max_pixels: int | None = None) -> Iterator[Frame]:
    """Stream RGB frames; with `every_s`, yield one frame per `every_s` seconds.

    Every decoded frame is checked against the limits (size, count, time), whatever the
    container claimed: a clip that breaks one raises `VideoError` at that frame.
    """
    import av  # heavy: imported on first use

    limit_s, limit_px, limit_n = _limits(max_seconds, max_pixels, None)
    next_t = 0.0
    yielded = 0
    try:
        with av.open(str(info.path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            start = None
            for index, frame in enumerate(container.decode(stream)):
                if frame.width * frame.height > limit_px:
                    raise _too_large(info.path.name, frame.width, frame.height, limit_px)
                if index >= limit_n:
                    raise _too_many(info.path.name, limit_n)
                t = float(frame.time) if frame.time is not None else index / info.fps
                start = t if start is None else start
                if t - start > limit_s + 1:
                    raise _too_long(info.path.name, t - start, limit_s)
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
    except (av.error.FFmpegError, OSError, MemoryError) as exc:
        raise VideoError(f"'{info.path.name}' could not be decoded past frame {yielded}.",
                         f"({type(exc).__name__})") from None


def read_frame(info: VideoInfo, index: int) -> Frame:
    """Decode one frame by index (streams up to it; for scrubbing short clips)."""
    for frame in iter_frames(info):
        if frame.index == index:
            return frame
    raise VideoError(f"Frame {index} is past the end of the clip ({info.frame_count} frames).")
