"""The demo pack's segmenter for real photos, `checkpoints/demo-segmenter-photos`: the
synthetic demo segmenter (`checkpoints/demo-segmenter`) fine-tuned (`lib.training.seg_finetune`)
on the real COCO sample's training images, measured on the held-out ones.

    python -m lib.train demo-segmenter --coco ../shared/assets/data/coco_val2017_tiny [--from F]

Held out for every figure, never trained or tuned on: the images whose id % 3 == 0.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from lib.core import journal
from lib.core.errors import InputError
from lib.models import checkpoints, registry
from lib.training.mask_data import open_masks
from lib.training.seg_finetune import Recipe, finetune, log_line


def HELD_OUT(image_id: int) -> bool:
    """The real COCO sample's held-out images (id % 3 == 0): never trained or tuned on."""
    return image_id % 3 == 0


#: the recipe of the demo pack's segmenter on real photos (from its synthetic stage)
DEMO_RECIPE = Recipe(steps=4500, batch=12, train="last")
DEMO_LABEL_SET = "COCO sample + synthetic shapes"
NAME = "demo-segmenter-photos"


def _sample(coco) -> Path:
    """The COCO sample's folder, checked before anything trains or loads."""
    coco = Path(coco)
    if not (coco / "annotations" / "instances_val2017.json").is_file():
        raise InputError(f"--coco {coco}: no annotations/instances_val2017.json there.",
                         "Point it at ../shared/assets/data/coco_val2017_tiny.")
    return coco


def held_out_figures(folder: Path, coco: Path, min_area: float = 1024, log=log_line) -> dict:
    """The figures of `bench/seg_quality.py` (image part) for a checkpoint folder, on the
    held-out images of the COCO sample at `coco` (through the page's code)."""
    from lib.segmentation import photo_quality, segment
    masks = open_masks(coco / "annotations" / "instances_val2017.json", coco / "val2017")
    objs = [(i, a) for i, a in masks.objects if HELD_OUT(i) and a["area"] >= min_area]
    seg = segment.build_segmenter(registry.checkpoint_spec(checkpoints.read_checkpoint(folder)),
                                  device="cpu")
    log(f"measuring on {len(objs)} held-out objects…")
    figs = photo_quality.measure(seg, ((masks.image(i), masks.mask(i, a)) for i, a in objs),
                                 len(objs))
    held = sorted({i for i, _ in objs})
    return {**figs.as_dict(), "min_area": min_area,
            "unfamiliar_share": float(np.mean([seg.unfamiliar(masks.image(i)) for i in held])),
            "images": "COCO sample, image id % 3 == 0 (never trained or tuned on)"}


def demo_segmenter(coco: Path, out_root: Path, start: Path | None = None,
                   log=log_line) -> Path:
    """`python -m lib.train demo-segmenter --coco DIR [--from FOLDER]`: the synthetic demo
    segmenter (`start`, else OUT/demo-segmenter, trained first when it is not there)
    fine-tuned on the COCO sample's training images (id % 3 != 0) into OUT/NAME; measured on
    the held-out images (id % 3 == 0) and on real-texture clips made from them."""
    from lib.training import train_sam
    coco = _sample(coco)
    if start is None:
        start = Path(out_root) / train_sam.NAME
        if not checkpoints.read_checkpoint(start).ok:
            start = train_sam.demo_segmenter(Path(out_root), log=log)
    command = f"python -m lib.train demo-segmenter --coco {coco.name}"
    folder = finetune(coco / "val2017", coco / "annotations" / "instances_val2017.json",
                      Path(out_root) / NAME, init=str(start), recipe=DEMO_RECIPE,
                      exclude=HELD_OUT, log=log, extra_manifest={
                          "label_set": DEMO_LABEL_SET, "command": command,
                          "backbone": "tf_efficientnet_lite0",
                          "description": "Demo pack: the demo segmenter (EdgeTAM-style, "
                          "EfficientNet-Lite0 ImageNet backbone, width 128, 256 px) fine-tuned "
                          "on the real COCO sample's training images (id % 3 != 0) with "
                          "copy-paste, shapes filled with real photo textures and synthetic "
                          "shapes; it segments through a window around the object "
                          "(prompt_zoom). Its memory path is not trained: it tracks by "
                          "points."})
    manifest = json.loads((folder / checkpoints.MANIFEST).read_text())
    manifest["held_out"] = held_out_figures(folder, coco, log=log)
    manifest["real_clips"] = real_clip_figures(folder, coco, log=log)
    journal.write_atomic(folder / checkpoints.MANIFEST, json.dumps(manifest, indent=2) + "\n")
    return folder


#: the real-texture clips the manifest's tracking figures are measured on (`lib.demo.real_clips`
#: from the held-out images; `bench/seg_quality.py` makes the same ones)
REAL_CLIPS = {"count": 6, "seed": 0}


def real_texture_clips(coco: Path, count: int = REAL_CLIPS["count"],
                       seed: int = REAL_CLIPS["seed"]) -> Path:
    """Real-texture clips made from the held-out images of the COCO sample, once per
    (count, seed), into Lens' cache folder."""
    from lib.core import settings
    from lib.demo import real_clips
    from lib.training.mask_data import MaskSet, cutouts
    folder = Path(settings.get().cache) / f"real-texture-clips-v1-n{count}-s{seed}"
    if not (folder / "clips.json").is_file():
        masks = open_masks(coco / "annotations" / "instances_val2017.json", coco / "val2017")
        held = MaskSet(masks.dataset, [o for o in masks.objects if HELD_OUT(o[0])])
        cuts, backgrounds = cutouts(held)
        real_clips.write_clips(folder, cuts, backgrounds, count, seed=seed)
    return folder


def real_clip_figures(folder: Path, coco: Path, log=log_line) -> dict:
    """Point tracking on the segmenter and the classical tracker, on the real-texture clips:
    what the page recommends a tracker by."""
    from lib.segmentation import classical, point_track, quality, segment
    seg = segment.build_segmenter(registry.checkpoint_spec(checkpoints.read_checkpoint(folder)),
                                  device="cpu")
    clip_dir = real_texture_clips(coco)
    log(f"tracking {REAL_CLIPS['count']} real-texture clips…")
    points = quality.box_prompted(point_track.PointVideoModel(seg).tracker, clip_dir)
    flow = quality.box_prompted(classical.FlowTracker, clip_dir)
    return {"clips": points.clips, "frames": points.frames, "point_J": points.j,
            "point_J_after_occlusion": points.j_occluded,
            "point_ids_regained": points.regained_share, "point_hidings": points.hidden,
            "classical_J": flow.j, "classical_J_after_occlusion": flow.j_occluded,
            "made_by": f"lib.demo.real_clips from the held-out images, {REAL_CLIPS}"}


def remeasure(folder: Path, coco: Path, log=log_line) -> dict:
    """`python -m lib.train demo-segmenter --coco DIR --measure`: every figure of a trained
    folder again (validation figures, window and calibration; held-out figures; real-texture
    clips), nothing trained; returns the manifest."""
    from lib.training.mask_data import MaskSet
    from lib.training.seg_finetune import measure_folder
    coco, folder = _sample(coco), Path(folder)
    manifest = json.loads((folder / checkpoints.MANIFEST).read_text())
    val = set(manifest.get("val_image_ids") or [])
    if not val:
        raise InputError(f"{folder.name} records no validation images (val_image_ids).",
                         "Train it with python -m lib.train demo-segmenter --coco DIR.")
    masks = open_masks(coco / "annotations" / "instances_val2017.json", coco / "val2017")
    pool = MaskSet(masks.dataset, [o for o in masks.objects if not HELD_OUT(o[0])],
                   masks.skipped)
    manifest = measure_folder(folder, pool, val, log=log)
    manifest["held_out"] = held_out_figures(folder, coco, log=log)
    manifest["real_clips"] = real_clip_figures(folder, coco, log=log)
    journal.write_atomic(folder / checkpoints.MANIFEST, json.dumps(manifest, indent=2) + "\n")
    return manifest
