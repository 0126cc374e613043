"""How well a segmenter segments real photos: the held-out images of the real COCO sample in
`../shared/assets` (image id % 3 == 0, never trained or tuned on), every object of at least
1,024 px, prompted as a user prompts (`lib.segmentation.photo_quality`).

    python bench/seg_quality.py [--model demo-segmenter-photos] [--limit N] [--zoom Z]
                                [--coco DIR] [--min-area 1024] [--clips 6] [--seed 0]

- box mIoU: each object's true box;
- 1 click: one click at the point farthest from the object's edge;
- 3 clicks: that click and two corrections in the error region of the mask shown;
- IoU ECE: calibration of the shown mask's predicted IoU against its true IoU;
- references on the same objects: the box itself used as the mask, and GrabCut from the box
  (`--references`).
- real-texture clips (`lib.demo.real_clips`, 90 frames, 480 x 360): the held-out images'
  whole objects cut out by their masks over a panning held-out photo, one crossing another,
  one leaving the frame and coming back; each object prompted with its true box on frame 0,
  then point tracking + re-finding on the same segmenter: J, J after an occlusion, share of
  hidden objects back with their id within 5 frames. `--seed S` makes other clips (the
  figures are checked on a fresh seed nothing was tuned on); `--clips 0` skips them.

`--zoom Z` overrides the model's own `prompt_zoom` (0: whole image only), to compare.
Goals (#41): box mIoU >= 0.70, 1 click >= 0.55, 3 clicks >= 0.75, ECE <= 0.10; clips J >= 0.70,
after occlusion >= 0.50, ids regained >= 70%. The last line is the result.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

COCO = ROOT.parent / "shared" / "assets" / "data" / "coco_val2017_tiny"


def held_out(coco: Path, min_area: float, limit: int | None):
    """(image, true mask) of every held-out object of at least `min_area` px (COCO's area)."""
    from lib.training.mask_data import open_masks
    from lib.training.seg_real import HELD_OUT
    ann = coco / "annotations" / "instances_val2017.json"
    masks = open_masks(ann, coco / "val2017")
    objects = [(i, a) for i, a in masks.objects if HELD_OUT(i) and a["area"] >= min_area]
    objects = objects[:limit]
    return len(objects), ((masks.image(i), masks.mask(i, a)) for i, a in objects)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="demo-segmenter-photos")
    ap.add_argument("--coco", default=str(COCO))
    ap.add_argument("--min-area", type=float, default=1024)
    ap.add_argument("--limit", type=int)
    ap.add_argument("--zoom", type=float)
    ap.add_argument("--clips", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--references", action="store_true",
                    help="also the box as the mask, and GrabCut from the box")
    args = ap.parse_args()

    from lib.core.progress import TerminalBar
    from lib.media import masks as mask_ops
    from lib.segmentation import photo_quality, segment

    coco = Path(args.coco)
    if not (coco / "annotations" / "instances_val2017.json").is_file():
        sys.exit(f"no COCO sample at {coco}: this benchmark needs ../shared/assets")
    seg = segment.load_segmenter(args.model)
    if args.zoom is not None:
        seg.zoom = args.zoom
    n, objects = held_out(coco, args.min_area, args.limit)
    print(f"{args.model}: zoom {seg.zoom}, calibrated {seg.calibration is not None}, "
          f"{n} held-out objects")
    t0 = time.perf_counter()
    figs = photo_quality.measure(seg, objects, n, progress=TerminalBar("objects"))
    print(f"measured in {time.perf_counter() - t0:.0f} s")
    if args.references:
        box_alone, grabcut = [], []
        for image, truth in held_out(coco, args.min_area, args.limit)[1]:
            x0, y0, x1, y1 = mask_ops.bbox(truth)
            as_box = np.zeros_like(truth)
            as_box[y0:y1, x0:x1] = True
            box_alone.append(photo_quality.iou(as_box, truth))
            grabcut.append(photo_quality.iou(mask_ops.grabcut(image, (x0, y0, x1, y1)), truth))
        print(f"references: the box as the mask {np.mean(box_alone):.3f}, "
              f"GrabCut from the box {np.mean(grabcut):.3f}")
    photos = (f"real photos ({figs.objects} objects held out): box mIoU {figs.box_miou:.3f}, "
              f"1 click {figs.click_miou:.3f}, 3 clicks {figs.clicks_miou:.3f}, "
              f"IoU ECE {figs.ece:.3f}")
    if not args.clips:
        print(photos)
        return
    from lib.segmentation import point_track, quality
    from lib.training.seg_real import real_texture_clips
    clip_dir = real_texture_clips(coco, args.clips, args.seed)
    t0 = time.perf_counter()
    j = quality.box_prompted(point_track.PointVideoModel(seg).tracker, clip_dir, args.clips)
    print(f"tracked {j.frames} object-frames of {j.clips} clips in "
          f"{time.perf_counter() - t0:.0f} s ({j.regained}/{j.hidden} hidden objects back)")
    if args.references:
        from lib.segmentation import classical
        c = quality.box_prompted(classical.FlowTracker, clip_dir, args.clips)
        print(f"reference: classical flow + GrabCut J {c.j:.3f}, after occlusion "
              f"{c.j_occluded:.3f}")
    print(f"{photos}; real-texture clips: J {j.j:.3f}, after occlusion {j.j_occluded:.3f}, "
          f"ids regained {100 * j.regained_share:.0f}%")


if __name__ == "__main__":
    main()
