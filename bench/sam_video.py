"""Peak memory of video tracking for 50, 100 and 200 frames of 480p video.

    python bench/sam_video.py [--frames 50,100,200] [--model facebook/sam2.1-hiera-tiny]
                              [--reduced]
    python bench/sam_video.py --model demo-segmenter     # the trained demo pack model

Each length runs in a fresh subprocess (one object prompted on frame 0, propagated through the
clip, exactly as the viewer does) and reports that process's peak resident memory and, on a
GPU, peak allocated GPU memory. Real weights are used when present; otherwise the same
architecture with random weights (memory does not depend on weight values).

`--reduced` is for CPU-only machines, where the full model takes seconds per frame: it keeps
every per-frame shape of SAM 2.1 (1024 px input, 256-d features, 64-channel memories, 256 px
masks), so the memory that grows with the clip is the real one, but shrinks the Hiera backbone
and uses one memory-attention layer, so the constant part (weights) is smaller than the real
model's. The last lines give the growth per frame and a 300-frame estimate with the real
model's weights added (goal: 300 frames in 8 GB of RAM).
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

REAL_LARGE_WEIGHTS_MB = 224.4e6 * 4 / 2**20   # SAM 2.1 hiera-large, fp32


def _model(name: str, reduced: bool):
    import torch

    from lib.models import registry
    from lib.segmentation import segment_video
    spec = registry.find(name)
    if registry.availability(spec).ready and not reduced:
        return segment_video.build_video_model(spec), "real weights"
    from transformers import (
        Sam2HieraDetConfig,
        Sam2ImageProcessor,
        Sam2VideoConfig,
        Sam2VideoModel,
        Sam2VideoProcessor,
        Sam2VideoVideoProcessor,
        Sam2VisionConfig,
    )
    torch.manual_seed(0)
    if reduced:
        dims = [16, 32, 64, 128]
        backbone = Sam2HieraDetConfig(hidden_size=16, blocks_per_stage=[1, 1, 2, 1],
                                      embed_dim_per_stage=dims,
                                      num_attention_heads_per_stage=[1, 1, 1, 1],
                                      window_size_per_stage=[8, 4, 14, 7],
                                      global_attention_blocks=[3])
        config = Sam2VideoConfig(vision_config=Sam2VisionConfig(
            backbone_config=backbone, backbone_channel_list=dims[::-1]),
            memory_attention_num_layers=1)
        how = "reduced stand-in (random weights, real per-frame shapes)"
    else:
        config, how = Sam2VideoConfig(), "random weights, SAM 2.1 hiera-tiny architecture"
    processor = Sam2VideoProcessor(image_processor=Sam2ImageProcessor(),
                                   video_processor=Sam2VideoVideoProcessor())
    device = registry.best_device()
    model = Sam2VideoModel(config).eval().to(device)
    if device == "cuda":
        model = model.half()
    return segment_video.VideoModel("bench", model, processor, device, untrained=True), how


def child(frames: int, model: str, reduced: bool) -> None:
    """Run one tracking job and print a JSON line with its numbers."""
    import numpy as np
    import torch

    from lib.media import video as video_io
    from tests.helpers import write_video
    with tempfile.TemporaryDirectory() as tmp:
        rng = np.random.default_rng(0)
        colors = [tuple(int(v) for v in rng.integers(0, 255, 3)) for _ in range(frames)]
        path = write_video(Path(tmp) / "clip.mp4", frames=frames, fps=25, size=(854, 480),
                           codec="libx264", colors=colors)
        info = video_io.open_video(path)
        vm, how = _model(model, reduced)
        baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        tracker = vm.tracker(info)
        t0 = time.perf_counter()
        tracker.add_prompt(0, 1, [(427, 240, 1)])
        tracker.propagate()
        elapsed = time.perf_counter() - t0
    gpu = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None
    print(json.dumps({"frames": frames, "peak_rss_mb": resource.getrusage(
        resource.RUSAGE_SELF).ru_maxrss / 1024, "before_mb": baseline, "gpu_peak_mb": gpu,
        "seconds": elapsed, "how": how, "device": vm.device}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", default="50,100,200")
    parser.add_argument("--model", default="facebook/sam2.1-hiera-tiny")
    parser.add_argument("--reduced", action="store_true")
    parser.add_argument("--child", type=int)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.model, args.reduced)
        return
    rows = []
    for n in (int(v) for v in args.frames.split(",")):
        cmd = [sys.executable, __file__, "--child", str(n), "--model", args.model]
        out = subprocess.run(cmd + (["--reduced"] if args.reduced else []), capture_output=True,
                             text=True, cwd=ROOT, env={**os.environ, "PYTHONWARNINGS": "ignore"})
        if out.returncode:
            sys.exit(f"{n} frames failed:\n{out.stderr[-3000:]}")
        row = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append(row)
        gpu = f", GPU peak {row['gpu_peak_mb']:.0f} MB" if row["gpu_peak_mb"] else ""
        print(f"{n:4d} frames of 854x480: peak RSS {row['peak_rss_mb']:.0f} MB{gpu}, "
              f"{row['seconds']:.0f} s ({row['seconds'] / n:.2f} s/frame)", flush=True)
    print(f"model: {rows[0]['how']} on {rows[0]['device']}")
    if len(rows) >= 2:
        a, b = rows[0], rows[-1]
        slope = (b["peak_rss_mb"] - a["peak_rss_mb"]) / (b["frames"] - a["frames"])
        est = a["peak_rss_mb"] + slope * (300 - a["frames"])
        weights = "this model's weights"
        if args.reduced:
            est += REAL_LARGE_WEIGHTS_MB
            weights = "hiera-large weights"
        print(f"growth: {slope:.2f} MB/frame; 300 frames (with {weights}): "
              f"about {est / 1024:.2f} GB of RAM")


if __name__ == "__main__":
    main()
