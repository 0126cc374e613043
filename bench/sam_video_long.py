"""Video tracking at full length: memory flat in clip length, time per frame flat, twenty
objects at once.

    python bench/sam_video_long.py [--frames 1800] [--size 480] [--model demo-segmenter]

A synthetic clip (`lib.synth`, seed 0: three shapes, one crossing another, one entering
later, drifting out of the frame on a long clip) of `--frames` frames at 30 fps, `--size`
pixels square, is tracked by the page's `Tracker` in a fresh subprocess: one object prompted
by its box on frame 0, propagated through the whole clip. The process's resident memory and
the time per frame are read at frame 300 and at the last frame. A second subprocess tracks
the first 120 frames of a clip with 1 object, then with 20 (the first frame's shapes and
points spread over it, all prompted on frame 0, so one batch), and compares their times.

On a GPU, the peak GPU memory of the long run is printed too. The last line is the result:
memory growth from frame 300 to the end (goal: <= 50 MB), s/frame at the end over s/frame at
300 (goal: <= 1.1), and the cost of 20 objects over one (goal: <= 4).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WINDOW = 100          # frames over which s/frame is measured, ending at the frame named


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _box(rle: dict) -> tuple:
    import numpy as np

    from lib.media import masks as mask_ops
    ys, xs = np.nonzero(mask_ops.from_rle(rle))
    return float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)


def long_run(clip_dir: str, model: str, mark: int) -> None:
    """Track one object through the clip; print a JSON line of what was measured."""
    import torch

    from lib.segmentation import segment_video
    clip = json.loads((Path(clip_dir) / "clips.json").read_text())["clips"][0]
    info = segment_video.open_clip(Path(clip_dir) / clip["file"])
    tracker = segment_video.load_video_model(model).tracker(info)
    tracker.add_prompt(0, 1, box=_box(clip["masks"][0]["0"]))
    n = tracker.num_frames
    at: dict[int, tuple[float, float, int]] = {}      # frame -> (time, RSS MB, state bytes)
    wanted = {mark - WINDOW, mark, n - WINDOW, n}

    def record(p) -> None:
        if p.done in wanted:
            tracker._account()
            at[p.done] = (time.perf_counter(), _rss_mb(), tracker.state_bytes)
    t0 = time.perf_counter()
    tracker.propagate(record)
    gpu = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None
    print(json.dumps({
        "frames": n, "seconds": time.perf_counter() - t0, "device": tracker.device,
        "rss_mark": at[mark][1], "rss_end": at[n][1],
        "state_mark": at[mark][2], "state_end": at[n][2], "state_peak": tracker.peak_state_bytes,
        "spf_mark": (at[mark][0] - at[mark - WINDOW][0]) / WINDOW,
        "spf_end": (at[n][0] - at[n - WINDOW][0]) / WINDOW,
        "disk": tracker.store.disk_bytes, "gpu_peak_mb": gpu}))


def objects_run(clip_dir: str, model: str, count: int) -> None:
    """Seconds to track `count` objects through the clip (all prompted on frame 0)."""
    import numpy as np

    from lib.segmentation import segment_video
    clip = json.loads((Path(clip_dir) / "clips.json").read_text())["clips"][0]
    info = segment_video.open_clip(Path(clip_dir) / clip["file"])
    tracker = segment_video.load_video_model(model).tracker(info)
    shapes = [_box(rle) for rle in clip["masks"][0].values()]
    for k in range(count):
        if k < len(shapes):
            tracker.add_prompt(0, k + 1, box=shapes[k])
        else:
            x, y = np.random.default_rng(k).uniform(0.1, 0.9, 2) * info.width
            tracker.add_prompt(0, k + 1, [(float(x), float(y), 1)])
    t0 = time.perf_counter()
    tracker.propagate()
    print(json.dumps({"objects": count, "seconds": time.perf_counter() - t0}))


def _child(*args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True,
                         cwd=ROOT, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if out.returncode:
        sys.exit(f"{' '.join(args)} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=1800)
    parser.add_argument("--size", type=int, default=480)
    parser.add_argument("--mark", type=int, default=300)
    parser.add_argument("--model", default="demo-segmenter")
    parser.add_argument("--long", help=argparse.SUPPRESS)
    parser.add_argument("--objects", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--clip", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.long:
        return long_run(args.long, args.model, args.mark)
    if args.objects:
        return objects_run(args.clip, args.model, args.objects)
    from lib.demo import synth
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        long_dir = synth.write_clips(Path(tmp) / "long", 1, frames=args.frames, size=args.size,
                                     seed=0, fps=30)
        short_dir = synth.write_clips(Path(tmp) / "short", 1, frames=120, size=args.size,
                                      seed=0, fps=30)
        print(f"clips written in {time.perf_counter() - t0:.0f} s", flush=True)
        r = _child("--long", str(long_dir), "--model", args.model, "--mark", str(args.mark))
        one = _child("--objects", "1", "--clip", str(short_dir), "--model", args.model)
        twenty = _child("--objects", "20", "--clip", str(short_dir), "--model", args.model)
    n, m = r["frames"], args.mark
    growth = r["rss_end"] - r["rss_mark"]
    slope_kb = growth * 1024 / (n - m)
    print(f"{args.model} on {r['device']}, {n} frames of {args.size}x{args.size} at 30 fps, "
          f"1 object: {r['seconds']:.0f} s; RSS {r['rss_mark']:.0f} MB at frame {m}, "
          f"{r['rss_end']:.0f} MB at {n}; tracking state {r['state_mark'] / 2**20:.1f} MB at "
          f"{m}, {r['state_end'] / 2**20:.1f} MB at {n} (peak "
          f"{r['state_peak'] / 2**20:.1f} MB); masks on disk {r['disk'] / 2**20:.1f} MB")
    if r["gpu_peak_mb"] is not None:
        print(f"GPU: peak allocated {r['gpu_peak_mb']:.0f} MB")
    print(f"s/frame: {r['spf_mark']:.3f} over frames {m - WINDOW}-{m}, {r['spf_end']:.3f} over "
          f"{n - WINDOW}-{n}; 120 frames: 1 object {one['seconds']:.1f} s, 20 objects "
          f"{twenty['seconds']:.1f} s")
    ten_min = 18_000
    print(f"projection, 10 minutes at 30 fps ({ten_min:,} frames) of 1080p: memory "
          f"{max(0.0, slope_kb) * ten_min / 1024:.0f} MB above frame {m}'s (the measured "
          f"slope); masks on disk about "
          f"{r['disk'] / n * ten_min * 1080 / args.size / 2**20:.0f} MB (RLE grows with the "
          f"outline: scaled by 1080/{args.size})")
    print(f"{n} frames, 1 object: memory growth from frame {m} to {n} {growth:.0f} MB "
          f"({slope_kb:.1f} KB/frame); s/frame at {m} vs {n} "
          f"{r['spf_end'] / r['spf_mark']:.2f}; 20 objects cost "
          f"{twenty['seconds'] / one['seconds']:.1f} x one object")


if __name__ == "__main__":
    main()
