"""The demo segmenter's figures, measured through the page's own code (`lib.segmentation`):
IoU from one click and from a box, and J on the validation clips."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from lib.core import journal
from lib.core.errors import InputError
from lib.demo import synth
from lib.media import images
from lib.media import masks as mask_ops
from lib.models import checkpoints, registry
from lib.segmentation import classical, quality, segment, segment_video
from lib.training.sam_data import val_clips


def measure_images(segmenter, val_dir: str | Path, limit: int | None = None) -> dict:
    """Mean mask IoU on a `lib.synth` COCO split through `Segmenter.predict`, as the page
    calls it (multimask on, the best candidate by predicted IoU): one click at each shape's
    centre, and its tight box. Also how often the top-ranked candidate is the truly best one."""
    val_dir = Path(val_dir)
    coco = json.loads((val_dir / "annotations.json").read_text())
    by_image: dict[int, list] = {}
    for a in coco["annotations"]:
        by_image.setdefault(a["image_id"], []).append(a)
    click, box, top_is_best, n_images = [], [], [], 0
    for info in coco["images"][:limit]:
        image = np.array(images.load_image(val_dir / "images" / info["file_name"]).image)
        n_images += 1
        for a in by_image.get(info["id"], []):
            truth = mask_ops.from_rle(a["segmentation"])
            x, y, w, h = a["bbox"]
            for prompt, out in (({"points": [(*mask_ops.interior_point(truth), 1)]}, click),
                                ({"box": (x, y, x + w, y + h)}, box)):
                res = segmenter.predict(image, multimask=True, **prompt)
                ious = [float((m & truth).sum() / max(1, (m | truth).sum())) for m in res.masks]
                out.append(ious[res.best])
                top_is_best.append(ious[0] >= max(ious) - 1e-9)
    return {"click_iou": float(np.mean(click)), "box_iou": float(np.mean(box)),
            "top_ranked_is_best": float(np.mean(top_is_best)), "images": n_images,
            "objects": len(click)}


#: the part of the validation data the test suite measures again; the whole of it is measured
#: when the model is trained or re-measured (`lib.train demo-segmenter --measure`)
CHECK = {"images": 40, "clips": 5}


def measure(folder: Path, clips: int | None = None, images: int | None = None,
            cache_root: Path | None = None) -> dict:
    """The manifest's figures, re-measured from a saved folder through
    `lib.segmentation.segment` and
    `lib.segmentation.segment_video` as the page calls them, on the first `images` validation
    images and `clips` clips (None: all)."""
    spec = registry.checkpoint_spec(checkpoints.read_checkpoint(folder))
    seg = segment.build_segmenter(spec, device="cpu")
    video = segment_video.build_video_model(spec, device="cpu")
    out = measure_images(seg, synth.demo_val(cache_root), images)
    clip_dir = val_clips(cache_root)
    j = quality.box_prompted(video.tracker, clip_dir, clips)
    out.update(video_J=j.j, video_J_after_occlusion=j.j_occluded, video_clips=j.clips,
               video_frames=j.frames)
    out.update(point_figures(seg, clip_dir, clips))
    out.update(classical_figures(clip_dir, clips))
    return out


def record(folder: Path, clips: int | None = None, images: int | None = None,
           log=print) -> dict:
    """Measure the folder's model (on the first `images` / `clips`, None: all) and on the
    CHECK part, and write both into its manifest (`metrics` and `check`); returns it."""
    ckpt = checkpoints.read_checkpoint(Path(folder))
    if not ckpt.ok or ckpt.task != "segmentation":
        raise InputError(f"{folder} is not a segmentation checkpoint "
                         f"({ckpt.error or 'its task is ' + repr(ckpt.task)})",
                         "train one first: python -m lib.train demo-segmenter")
    manifest = ckpt.manifest
    log("measuring through the page's code…")
    manifest["metrics"] = measure(folder, clips, images)
    on_images = CHECK["images"] if images is None else min(CHECK["images"], images)
    on_clips = CHECK["clips"] if clips is None else min(CHECK["clips"], clips)
    check = manifest["metrics"] if (on_images, on_clips) == (images, clips) else measure(
        folder, on_clips, on_images)
    manifest["check"] = {"images": on_images, "clips": on_clips, **check}
    journal.write_atomic(Path(folder) / checkpoints.MANIFEST,
                         json.dumps(manifest, indent=2) + "\n")
    log(json.dumps(manifest["metrics"]))
    return manifest


def point_figures(segmenter, clip_dir: Path, clips: int | None = None) -> dict:
    """Point tracking + re-finding on the same segmenter and clips (the page recommends it
    for this model: its memory path is not trained)."""
    from lib.segmentation import point_track
    j = quality.box_prompted(point_track.PointVideoModel(segmenter).tracker, clip_dir, clips)
    return {"point_J": j.j, "point_J_after_occlusion": j.j_occluded,
            "point_ids_regained": j.regained_share, "point_hidings": j.hidden}


def classical_figures(clip_dir: Path, clips: int | None = None) -> dict:
    """The classical tracker's J on the same clips, recorded beside the demo segmenter's so the
    page can compare the two with measured figures."""
    j = quality.box_prompted(classical.FlowTracker, clip_dir, clips)
    return {"classical_J": j.j, "classical_J_after_occlusion": j.j_occluded}
