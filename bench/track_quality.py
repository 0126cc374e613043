"""How well the demo pack tracks, on the 20 validation clips (`lib.synth`, fixed seed): the
figures #28 sets goals for, measured through the page's trackers (`lib.segmentation.quality`).

    python bench/track_quality.py [--clips 20] [--every 5] [--model demo-segmenter]
                                  [--grounder demo-fasterrcnn] [--threshold 0.3] [--seed S]

- Box prompts: each object prompted with its true box on its first frame, then point tracking
  + re-finding on the demo segmenter through the clip: J, J after an occlusion, and the
  share of hidden objects whose id is back within 5 frames of coming back.
- Text prompts: on each clip, the class of the shape that enters after frame 0 is typed and
  grounded every `--every` frames by the demo detector (closed vocabulary): the share of
  entering objects found within k frames, and id switches per 1,000 object-frames.
- Speed: seconds per tracked frame against the model's memory path (SAM 2 / EdgeTAM video)
  on the same clips and prompts.
- `--seed S`: `--clips` fresh clips made with another seed instead of the validation clips,
  to see how far figures tuned on the validation clips carry to clips nothing was tuned on.
- Box every frame: J of the segmenter alone, given each object's true box on every frame (no
  tracking): not a ceiling (a tracker that re-prompts with points and keeps masks apart
  can do better where boxes of touching objects overlap), a reference point.

Goals (#28): J >= 0.85, after occlusion >= 0.6, ids regained >= 80%, entries found >= 95%,
id switches <= 1 per 1,000 object-frames. The last line is the result.
"""

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def true_box_every_frame(segmenter, clip_dir: Path, clips: int) -> float:
    """J of the segmenter prompted with the true box on every scored frame."""
    from lib.segmentation import quality
    from lib.segmentation.segment_video import frame_source, open_clip
    scores = []
    for clip in quality.load_clips(clip_dir, clips):
        frames = frame_source(open_clip(clip.path))
        for obj in clip.objects:
            for f in range(obj["first_frame"] + 1, len(clip.masks)):
                truth = clip.visible(f, obj["id"])
                if truth is None:
                    continue
                ys, xs = np.nonzero(truth)
                res = segmenter.predict(np.asarray(frames[f]), [], (
                    float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)))
                mask = res.masks[res.best]
                scores.append(float((mask & truth).sum() / max(1, (mask | truth).sum())))
    return float(np.mean(scores))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=20)
    parser.add_argument("--every", type=int, default=5, help="k: ground every k frames")
    parser.add_argument("--model", default="demo-segmenter")
    parser.add_argument("--grounder", default="demo-fasterrcnn")
    parser.add_argument("--threshold", type=float, help="grounded boxes' confidence "
                        "(default: the page's)")
    parser.add_argument("--seed", type=int, help="fresh clips of this seed instead of the "
                        "validation clips (held out from any tuning)")
    args = parser.parse_args()

    from lib.segmentation import grounding, point_track, quality, segment, segment_video
    from lib.training import sam_data
    if args.seed is None:
        clips = sam_data.val_clips()
    else:
        from lib.core import scratch
        from lib.demo import synth
        clips = synth.write_clips(scratch.new_dir("track-quality-"), **{
            **sam_data.VAL_CLIPS, "count": args.clips, "seed": args.seed})
    seg = segment.load_segmenter(args.model)
    points = point_track.PointVideoModel(seg)
    boxed = quality.box_prompted(points.tracker, clips, args.clips)
    print(f"point tracking, box prompts ({boxed.clips} clips, {boxed.frames} object-frames): "
          f"J {boxed.j:.3f}, after occlusion {boxed.j_occluded:.3f}, ids regained "
          f"{boxed.regained}/{boxed.hidden}, {boxed.seconds_per_frame:.3f} s/frame", flush=True)
    grounder = grounding.load_grounder(args.grounder + grounding.CLOSED, args.threshold)
    texted = quality.text_prompted(points.tracker, grounder, clips, args.every, args.clips)
    print(f"point tracking, text prompts every {args.every} frames ({texted.clips} clips, "
          f"{texted.object_frames} object-frames of the named class): entries found "
          f"{texted.entered_found}/{texted.entering}, id switches {texted.id_switches}",
          flush=True)
    memory = quality.box_prompted(segment_video.load_video_model(args.model).tracker, clips,
                                  args.clips)
    print(f"memory path, box prompts: J {memory.j:.3f}, after occlusion "
          f"{memory.j_occluded:.3f}, {memory.seconds_per_frame:.3f} s/frame", flush=True)
    print(f"box every frame: {args.model} given the true box on every frame, no tracking: J "
          f"{true_box_every_frame(seg, clips, args.clips):.3f}", flush=True)
    print(f"track quality: J {boxed.j:.3f}, after occlusion {boxed.j_occluded:.3f}, "
          f"ids regained {100 * boxed.regained_share:.0f}%, entries found "
          f"{100 * texted.found_share:.0f}%, id switches per 1000 object-frames "
          f"{texted.switches_per_1000:.1f}; s/frame "
          f"{boxed.seconds_per_frame / memory.seconds_per_frame:.2f} x the memory-path tracker")


if __name__ == "__main__":
    main()
