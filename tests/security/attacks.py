"""Builders of hostile inputs (zips, videos, run logs) and a watcher of what the process reads."""

from __future__ import annotations

import contextlib
import io
import json
import struct
import sys
import threading
import zipfile
import zlib
from pathlib import Path

import numpy as np

# -- reads outside the roots --------------------------------------------------------------------

_WATCH: dict[str, list] = {}
_WATCH_LOCK = threading.Lock()


def _audit(event: str, args) -> None:
    if not _WATCH or event not in ("open", "os.listdir", "os.scandir"):
        return
    path = args[0] if args else None
    if isinstance(path, (str, bytes, Path)):
        text = str(path if not isinstance(path, bytes) else path.decode("utf-8", "replace"))
        with _WATCH_LOCK:
            for prefix, seen in _WATCH.items():
                if text.startswith(prefix):
                    seen.append(text)


sys.addaudithook(_audit)   # audit hooks cannot be removed: this one idles unless watching


@contextlib.contextmanager
def reads_under(folder: Path):
    """Collect every file opened or folder listed under `folder` (any thread) in the block."""
    prefix = str(folder.resolve())
    seen: list[str] = []
    with _WATCH_LOCK:
        _WATCH[prefix] = seen
    try:
        yield seen
    finally:
        with _WATCH_LOCK:
            _WATCH.pop(prefix, None)


# -- COCO -------------------------------------------------------------------------------------

def coco(images: list[dict], annotations=None, categories=None) -> dict:
    return {"images": images, "annotations": annotations or [],
            "categories": categories or [{"id": 1, "name": "thing"}]}


def png_bytes(size=(16, 16), color=(200, 30, 30)) -> bytes:
    from PIL import Image
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def zip_bytes(entries: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buf.getvalue()


def zip_with_bad_crc() -> bytes:
    data = bytearray(zip_bytes({"a/b.txt": b"hello world" * 100}, zipfile.ZIP_STORED))
    i = data.index(b"hello world")
    data[i] ^= 0xFF                       # the stored bytes no longer match their CRC
    return bytes(data)


def zip_with_lying_size() -> bytes:
    """A member whose headers claim 10 bytes but that inflates to 1 MB."""
    data = bytearray(zip_bytes({"a/big.bin": b"\0" * (1 << 20)}))
    for sig, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):   # local / central headers
        i = data.index(sig)
        data[i + offset:i + offset + 4] = struct.pack("<I", 10)
    return bytes(data)


# -- videos -----------------------------------------------------------------------------------

def write_avi(path: Path, frames: int, size=(64, 48), codec="mpeg4", fps=10) -> Path:
    import av
    w, h = size
    with av.open(str(path), "w", format="avi") as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height = w, h
        stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        for i in range(frames):
            arr = np.full((h, w, 3), (i * 7) % 256, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def mjpeg_growing(path: Path, small=(64, 48), large=(640, 480)) -> Path:
    """An MJPEG AVI whose header and first frames say `small`, and whose later frames are
    `large` JPEGs (each MJPEG frame carries its own size)."""
    from fractions import Fraction

    import av
    with av.open(str(path), "w", format="avi") as out:
        stream = out.add_stream("mjpeg", rate=10)
        stream.width, stream.height, stream.pix_fmt = *small, "yuvj420p"
        big = av.CodecContext.create("mjpeg", "w")
        big.width, big.height, big.pix_fmt = *large, "yuvj420p"
        big.time_base = Fraction(1, 10)
        for i in range(5):
            w, h = small if i < 2 else large
            frame = av.VideoFrame.from_ndarray(np.full((h, w, 3), 90, np.uint8), format="rgb24")
            frame = frame.reformat(format="yuvj420p")
            frame.pts = i
            for packet in (stream.encode(frame) if i < 2 else big.encode(frame)):
                packet.stream, packet.pts, packet.dts = stream, i, i
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def avi_claiming(path: Path, frames: int | None = None, size: tuple[int, int] | None = None):
    """Rewrite an AVI's headers to claim another frame count or frame size (the data stays)."""
    data = bytearray(path.read_bytes())
    avih = data.index(b"avih") + 8                       # MainAVIHeader
    strh = data.index(b"strh") + 8                       # AVIStreamHeader
    strf = data.index(b"strf") + 8                       # BITMAPINFOHEADER
    if frames is not None:
        data[avih + 16:avih + 20] = struct.pack("<I", frames)      # dwTotalFrames
        data[strh + 32:strh + 36] = struct.pack("<I", frames)      # dwLength
    if size is not None:
        w, h = size
        data[avih + 32:avih + 40] = struct.pack("<II", w, h)       # dwWidth, dwHeight
        data[strf + 4:strf + 12] = struct.pack("<ii", w, h)        # biWidth, biHeight
    path.write_bytes(bytes(data))
    return path


# -- W&B run logs -----------------------------------------------------------------------------

def tamper_history_value(src: Path, dst: Path, fix_crc: bool) -> Path:
    """Copy a .wandb log with one digit of a history value replaced by a letter; with
    `fix_crc` the chunk's checksum is recomputed (a valid log holding bad data)."""
    data = bytearray(src.read_bytes())
    pos = 7
    while pos + 7 <= len(data):
        left = 32768 - pos % 32768
        if left < 7:
            pos += left
            continue
        length, kind = int.from_bytes(data[pos + 4:pos + 6], "little"), data[pos + 6]
        if kind == 0 and length == 0:
            pos += left
            continue
        chunk = bytes(data[pos + 7:pos + 7 + length])
        if kind == 1 and _is_history(chunk):
            j = chunk.rindex(b"e+09") - 3 if b"e+09" in chunk else max(
                k for k in range(1, len(chunk)) if chr(chunk[k]).isdigit()
                and chr(chunk[k - 1]).isdigit())
            data[pos + 7 + j] = ord("x")              # 1.79x4e+09: not a number any more
            if fix_crc:
                crc = zlib.crc32(bytes(data[pos + 6:pos + 7 + length]))
                data[pos:pos + 4] = crc.to_bytes(4, "little")
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_bytes(bytes(data))
            return dst
        pos += 7 + length
    raise AssertionError("no history record found")


def _is_history(chunk: bytes) -> bool:
    from wandb.proto import wandb_internal_pb2 as pb
    record = pb.Record()
    try:
        record.ParseFromString(chunk)
    except Exception:  # noqa: BLE001 - any undecodable chunk is simply not a history record
        return False
    return record.WhichOneof("record_type") == "history"


def secret_coco() -> str:
    return json.dumps(coco([{"id": 1, "file_name": "secret.png"}],
                           [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5]}]))
