"""A tracked clip's exports, streamed frame by frame: the clip with masks drawn or an effect
applied (H.264 MP4), a zip of mask PNGs, and COCO JSON with RLE masks. Nothing holds more
than the frame at hand: frames are decoded in order, masks read back from the tracker's
store, and each file is written as it goes."""

from __future__ import annotations

import json
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np

from lib.core.progress import Progress
from lib.media import masks as mask_ops
from lib.segmentation.segment_video import Tracker


def mp4(tracker: Tracker, path: Path, effect: str | None = None,
        obj_ids: Sequence[int] | None = None, strength: int = 25, opacity: float = 0.5,
        progress: Callable[[Progress], None] | None = None) -> Path:
    """Write the clip with masks drawn (or the effect applied) as H.264 MP4, frame by
    frame (decoded, masked, encoded: nothing held but the frame at hand)."""
    import av  # heavy: imported on first use
    t0 = time.perf_counter()
    info = tracker.info
    # H.264 in 4:2:0 needs even sides: an odd side gets one more row or column (its edge
    # repeated), so a 1-pixel-wide clip still exports
    w, h = info.width + info.width % 2, info.height + info.height % 2
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=Fraction(info.fps).limit_denominator(1000))
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for i in range(tracker.num_frames):    # in order: the clip's one running decoder
            rgb = tracker.render_frame(i, opacity, effect, obj_ids, strength)
            if rgb.shape[:2] != (h, w):
                rgb = np.pad(rgb, ((0, h - rgb.shape[0]), (0, w - rgb.shape[1]), (0, 0)),
                             mode="edge")
            for packet in stream.encode(av.VideoFrame.from_ndarray(
                    np.ascontiguousarray(rgb), format="rgb24")):
                out.mux(packet)
            if progress:
                progress(Progress(i + 1, tracker.num_frames, time.perf_counter() - t0))
        for packet in stream.encode():
            out.mux(packet)
    return path


def _all_frames_masks(tracker: Tracker) -> Iterator[tuple[int, dict[int, dict]]]:
    for f in range(tracker.num_frames):
        yield f, tracker.masks_on(f)


def png_zip(tracker: Tracker, path: Path) -> Path:
    """A zip of one PNG per frame and object, written one frame at a time."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for f, on in _all_frames_masks(tracker):
            for o, rle in sorted(on.items()):
                z.writestr(f"frame{f:05d}_obj{o}.png",
                           mask_ops.png_bytes(mask_ops.from_rle(rle)))
    return path


def coco(tracker: Tracker, path: Path) -> Path:
    """COCO JSON with the masks as RLE (straight from the store, never decoded), one image
    per frame and one category per object, written one frame at a time."""
    names = {o: obj.name for o, obj in tracker.objects.items()}
    ann_id = 0
    with open(path, "w", encoding="utf-8") as out:
        out.write('{"images": [')
        out.write(", ".join(json.dumps({"id": f + 1, "file_name": f"frame{f:05d}.png",
                                        "width": tracker.info.width,
                                        "height": tracker.info.height})
                            for f in range(tracker.num_frames)))
        out.write('], "annotations": [')
        for f, on in _all_frames_masks(tracker):
            for o, rle in sorted(on.items()):
                ann = mask_ops.rle_annotation(rle, ann_id + 1, f + 1, o)
                if ann["area"]:                    # an object not on this frame: no entry
                    ann_id += 1
                    out.write((", " if ann_id > 1 else "") + json.dumps(ann))
        out.write('], "categories": ')
        out.write(json.dumps([{"id": int(i), "name": n} for i, n in sorted(names.items())]))
        out.write("}")
    return path
