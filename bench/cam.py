"""Time a plain forward pass, pytorch_grad_cam's GradCAM and Lens' GradCAM on one model/input.

    python bench/cam.py [--model efficientnet_b0] [--repeats 20]

Prints the three medians, then `cam/forward ratio: X` (Lens' CAM over a plain forward pass) on
the last line. Weights are random (timing only), so no hub access is needed.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import timm
import torch
from common import median_time

from lib.classification import cam
from lib.models import registry


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="efficientnet_b0")
    parser.add_argument("--method", default="GradCAM")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    lm = registry.from_module(timm.create_model(args.model, pretrained=False),
                              [str(i) for i in range(1000)], name=args.model)
    x = torch.randn(1, 3, 224, 224)
    layer = cam.default_target_layer(lm.model)

    def forward():
        with torch.inference_mode():
            lm.model(x)

    t_fwd = median_time(forward, args.repeats)
    t_lib = median_time(lambda: cam.library_cam(lm, x, args.method, 1, layer), args.repeats)
    t_lens = median_time(lambda: cam.compute_cam(lm, x, args.method, 1, layer), args.repeats)
    same = np.abs(cam.library_cam(lm, x, args.method, 1, layer)
                  - cam.compute_cam(lm, x, args.method, 1, layer).heatmap).max()
    print(f"model {args.model}, layer {layer}, method {args.method}, "
          f"{torch.get_num_threads()} threads, median of {args.repeats}")
    print(f"forward:              {t_fwd * 1000:8.1f} ms")
    print(f"pytorch_grad_cam:     {t_lib * 1000:8.1f} ms  ({t_lib / t_fwd:.2f}x forward)")
    print(f"Lens CAM:             {t_lens * 1000:8.1f} ms  (max |diff| vs library {same:.1e})")
    print(f"cam/forward ratio: {t_lens / t_fwd:.2f}")


if __name__ == "__main__":
    main()
