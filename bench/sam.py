"""Time SAM2's image embedding and a new click on the cached embedding, as the viewer does.

    python bench/sam.py [--model facebook/sam2.1-hiera-tiny] [--repeats 10]
    python bench/sam.py --model demo-segmenter          # the trained demo pack model

Uses the real weights when they are on this machine; otherwise the same architecture
(transformers' default `Sam2Config` is SAM 2.1 hiera-tiny) with random weights, which has the
same cost. A click is `Segmenter.predict` with the embedding cached: prompt preprocessing,
prompt encoder, mask decoder and upscaling the masks to the photo's size. Prints both medians,
then `click/embed ratio: X` on the last line (goal: X <= 0.05).
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import torch
from common import median_time
from skimage import data

from lib.models import registry
from lib.segmentation import segment


def segmenter(name: str) -> tuple[segment.Segmenter, str]:
    spec = registry.find(name)
    if registry.availability(spec).ready:
        return segment.build_segmenter(spec), "real weights"
    from transformers import Sam2Config, Sam2Model
    torch.manual_seed(0)
    model = Sam2Model(Sam2Config()).eval().to(registry.best_device())
    return (segment.Segmenter("sam2.1-hiera-tiny (random)", "sam2", model,
                              segment.sam2_processor(1024), registry.best_device(),
                              untrained=True),
            "random weights, same architecture (no real weights here)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="facebook/sam2.1-hiera-tiny")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    seg, how = segmenter(args.model)
    image = data.astronaut()   # 512 x 512 RGB
    h, w = image.shape[:2]
    rng = np.random.default_rng(0)

    def embed():
        seg._embed(image)

    def click():
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        seg.predict(image, [(x, y, 1), (w / 2, h / 2, 1)])   # embedding from the cache

    torch.set_grad_enabled(False)
    t_embed = median_time(embed, args.repeats)
    segment._EMBEDDINGS.clear()
    seg.embed(image)
    t_click = median_time(click, args.repeats * 5)
    print(f"model: {seg.name} on {seg.device} ({how}); image {w}x{h}")
    print(f"embedding: {t_embed * 1000:.1f} ms (median of {args.repeats})")
    print(f"click -> mask with cached embedding: {t_click * 1000:.1f} ms "
          f"(median of {args.repeats * 5})")
    print(f"click/embed ratio: {t_click / t_embed:.3f}")


if __name__ == "__main__":
    main()
