"""A clip's frames decoded when they are asked for: nothing holds the whole clip.

`FrameSource(info)[i]` is frame `i` as uint8 RGB at the first frame's size. Frames asked for
in order come from one running decoder; a jump backwards or far ahead seeks (PyAV) to the
keyframe before it and decodes forward. The last few decoded frames stay in a small buffer
(bounded in frames and bytes), so tracking backwards decodes a block at a time instead of
seeking for every frame. Frame `i` is the clip's `i`-th frame in presentation order, found
by its timestamp among the packets' (counted when the source opens, as `open_video` counts
them), so a variable frame rate or a lying header does not shift the index. What the file
really holds wins: a clip that ends before its packet count says ends there (`length` drops
and `VideoError` names the frame), a frame of another size is resized to the first's.
"""

from __future__ import annotations

import bisect
import threading
from collections import OrderedDict

import numpy as np

from lib.core import settings
from lib.core.errors import VideoError
from lib.media.video import VideoInfo


class FrameSource:
    """Random access to a clip's frames with bounded memory (see the module docstring)."""

    def __init__(self, info: VideoInfo, buffer_frames: int = 16,
                 buffer_bytes: int = 96 * 2**20, max_pixels: int | None = None):
        self.info = info
        self.max_pixels = max_pixels or settings.get().max_video_pixels
        self.width, self.height = info.width, info.height
        frame_bytes = max(1, info.width * info.height * 3)
        self._keep = max(2, min(buffer_frames, buffer_bytes // frame_bytes))
        self.length = info.frame_count
        self._buffer: OrderedDict[int, np.ndarray] = OrderedDict()
        self._lock = threading.RLock()
        self._container = None
        self._frames = None          # the running decoder (an iterator of av frames)
        self._pending = None         # a frame read ahead past a damaged one
        self._next = 0               # index of the frame it yields next
        self._pts: list[int] | None = None
        self.decoded = 0             # frames decoded so far (all seeks included)
        self.seeks = 0

    # -- public -----------------------------------------------------------------------------
    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> np.ndarray:
        return self.get(int(index))

    @property
    def nbytes(self) -> int:
        """Bytes of decoded frames held now (the buffer)."""
        return sum(a.nbytes for a in list(self._buffer.values()))

    def get(self, index: int) -> np.ndarray:
        """Frame `index` as HxWx3 uint8 RGB; `VideoError` outside the clip or past its end."""
        with self._lock:
            if not 0 <= index < self.length:
                raise VideoError(f"Frame {index} is outside the clip (0-{self.length - 1}).")
            if index in self._buffer:
                self._buffer.move_to_end(index)
                return self._buffer[index]
            if self._frames is None or not self._next <= index <= self._next + 2 * self._keep:
                # backwards: decode the block that ends at `index`, so the next frames
                # asked for (index-1, index-2, ...) are already in the buffer
                start = index if self._frames is not None and index > self._next else \
                    max(0, index - self._keep + 1)
                self._seek(start)
            while True:
                i, rgb = self._decode_next(index)
                self._buffer[i] = rgb
                self._buffer.move_to_end(i)
                while len(self._buffer) > self._keep:
                    self._buffer.popitem(last=False)
                if i >= index:
                    return self._buffer.get(index, rgb)

    def close(self) -> None:
        """Release the decoder and the buffer (the source reopens if asked again)."""
        with self._lock:
            if self._container is not None:
                self._container.close()
            self._container = self._frames = self._pending = None
            self._buffer.clear()

    # -- decoding ---------------------------------------------------------------------------
    def _open(self):
        import av  # heavy: imported on first use

        self.close()
        try:
            self._container = av.open(str(self.info.path))
            stream = self._container.streams.video[0]
            if self._pts is None:
                pts = sorted(p.pts for p in self._container.demux(stream)
                             if p.size and p.pts is not None)
                # seeking needs one distinct timestamp per frame; without them, decode in order
                self._pts = pts if len(pts) == self.length and len(set(pts)) == len(pts) else []
                self._container.seek(0)
            stream.thread_type = "AUTO"
        except (av.error.FFmpegError, OSError, IndexError) as exc:
            self.close()
            raise VideoError(f"'{self.info.path.name}' could not be opened again.",
                             f"({type(exc).__name__})") from None
        return stream

    def _seek(self, index: int) -> None:
        """Position the decoder so that it yields frame `index` (or one shortly before)."""
        stream = self._open() if self._container is None else self._container.streams.video[0]
        self.seeks += 1
        if self._pts and index > 0:
            self._container.seek(self._pts[index], stream=stream, backward=True,
                                 any_frame=False)
            self._next = None                      # known from the first frame's timestamp
        else:
            self._container.seek(0)
            self._next = 0
        self._frames, self._pending = self._container.decode(stream), None
        self._buffer.clear()
        while self._next is None or self._next < index:
            i, rgb = self._decode_next(index)
            if i > index:                          # landed past it: decode from the start
                self._pts = []
                self._seek(index)
                return
            if i >= index - self._keep + 1:
                self._buffer[i] = rgb

    def _decode_next(self, wanted: int) -> tuple[int, np.ndarray]:

        frame, self._pending = self._pending or self._read(), None
        if frame is not None and frame.is_corrupt:
            # FFmpeg concealed damage: the last frame of a file cut short ends the clip here
            # (the frames up to it are exact); one with frames after it is kept
            self._pending = self._read()
            if self._pending is None:
                frame = None
        if frame is None:
            ended = self._next if self._next is not None else 0
            self.close()
            if ended <= wanted:
                self.length = max(1, min(self.length, ended))
            raise VideoError(f"'{self.info.path.name}' ends at frame {ended}, before frame "
                             f"{wanted} (its header promised {self.info.frame_count}).",
                             "The frames up to there are usable; re-encode the file to use "
                             "all of it.")
        if self._next is None:                     # after a seek: where did it land?
            pos = bisect.bisect_left(self._pts, frame.pts) if frame.pts is not None else 0
            self._next = min(pos, self.length - 1)
        index = self._next
        self._next += 1
        self.decoded += 1
        return index, self._rgb(frame)

    def _read(self):
        """The decoder's next frame, or None where the data ends or breaks."""
        import av  # heavy: imported on first use
        try:
            return next(self._frames, None)
        except (av.error.FFmpegError, OSError, MemoryError):
            return None

    def _rgb(self, frame) -> np.ndarray:
        if frame.width * frame.height > self.max_pixels:
            raise VideoError(f"'{self.info.path.name}' has {frame.width}x{frame.height} frames, "
                             f"over the limit of {self.max_pixels:,} pixels per frame (from "
                             f"frame {self._next - 1} on; its first frame is smaller).",
                             "Downscale it first.")
        rgb = frame.to_ndarray(format="rgb24")
        if rgb.shape[:2] != (self.height, self.width):   # resolution changed mid-stream
            import cv2  # heavy: imported on first use
            rgb = cv2.resize(rgb, (self.width, self.height), interpolation=cv2.INTER_AREA)
        return rgb
