"""Small builders shared by tests: synthetic videos."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_video(path: Path, frames: int = 12, fps: int = 6, size=(64, 48), codec="mpeg4",
                colors=None) -> Path:
    """Write a clip with PyAV; frame i is filled with colors[i] (default: a grey ramp)."""
    import av
    w, h = size
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for i in range(frames):
            color = colors[i] if colors else (i * 20 % 256,) * 3
            arr = np.zeros((h, w, 3), np.uint8)
            arr[:] = color
            for packet in stream.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path
