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


def coco(tracker: Tracker, path: Path, name: str = "clip") -> Path:
    """The tracks as COCO video JSON (the TAO / CocoVID layout, which pycocotools also reads
    as plain COCO): one video; one image per frame with its `video_id` and `frame_index`; one
    track per object with its label's category; one annotation per frame an object is on,
    with its `track_id` (also `instance_id`) and its mask as RLE straight from the store.
    Written one frame at a time."""
    info, objects = tracker.info, tracker.objects
    labels = sorted({o.label or "object" for o in objects.values()})
    category = {o: labels.index(obj.label or "object") + 1 for o, obj in objects.items()}
    ann_id = 0
    with open(path, "w", encoding="utf-8") as out:
        head = {"description": f"Lens tracks of {name}", "tracker": tracker.name}
        video = {"id": 1, "name": name, "width": info.width, "height": info.height,
                 "length": tracker.num_frames, "fps": info.fps}
        out.write(f'{{"info": {json.dumps(head)}, "videos": [{json.dumps(video)}]')
        out.write(', "images": [')
        out.write(", ".join(json.dumps({"id": f + 1, "video_id": 1, "frame_index": f,
                                        "file_name": f"{name}/frame{f:05d}.png",
                                        "width": info.width, "height": info.height})
                            for f in range(tracker.num_frames)))
        out.write('], "tracks": ')
        out.write(json.dumps([{"id": int(o), "video_id": 1, "category_id": category[o],
                               "name": obj.name} for o, obj in sorted(objects.items())]))
        out.write(', "annotations": [')
        for f, on in _all_frames_masks(tracker):
            for o, rle in sorted(on.items()):
                if o not in category:
                    continue
                ann = mask_ops.rle_annotation(rle, ann_id + 1, f + 1, category[o])
                if ann["area"]:                    # an object not on this frame: no entry
                    ann.update(video_id=1, track_id=int(o), instance_id=int(o))
                    ann_id += 1
                    out.write((", " if ann_id > 1 else "") + json.dumps(ann))
        out.write('], "categories": ')
        out.write(json.dumps([{"id": k + 1, "name": n} for k, n in enumerate(labels)]))
        out.write("}")
    return path
