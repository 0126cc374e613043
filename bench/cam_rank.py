"""Rank every CAM method on one photo with Lens, and do the same by calling pytorch_grad_cam's
own method classes and metric classes for each method in turn.

    python bench/cam_rank.py [--slow | --no-slow]

The packaged EfficientNet-Lite0 (ImageNet) explains skimage's cat photo, centre-cropped to
224 px, for its top class. Both sides make every applicable method's map (those the library
has a class for) and the random
baseline's, and score each with ROAD MoRF and LeRF at 20 and 80 percent, the keep-top-25%
confidence change, and the deletion and insertion curves in 10 steps. The direct side calls
the library's metric class once per percentile, per step and per method, as its examples do.
Each side runs twice, in the order Lens, direct, direct, Lens (the mean of each side is
reported). Prints each side's time, then `rank all N methods with faithfulness: X s;
/ pytorch-grad-cam direct: R` (Lens over direct) on the last line.
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import torch
from PIL import Image
from skimage import data

from lib.classification import cam, classify, ranking
from lib.classification.faithfulness import Measuring
from lib.models import registry


def direct(lm, x, names, target, layer, settings: Measuring) -> float:
    """Every method through the library's own classes, scored with its metric classes."""
    import pytorch_grad_cam
    from pytorch_grad_cam.metrics.cam_mult_image import CamMultImageConfidenceChange
    from pytorch_grad_cam.metrics.perturbation_confidence import PerturbationConfidenceMetric
    from pytorch_grad_cam.metrics.road import ROADLeastRelevantFirst, ROADMostRelevantFirst
    from pytorch_grad_cam.utils.model_targets import (
        ClassifierOutputSoftmaxTarget,
        ClassifierOutputTarget,
    )
    from torchvision.transforms.functional import gaussian_blur

    soft = [ClassifierOutputSoftmaxTarget(target)]
    blurred = gaussian_blur(x, kernel_size=[11, 11], sigma=[5.0, 5.0])[0]
    start = time.perf_counter()
    maps = []
    lm.model.requires_grad_(True)
    for name in names:
        m = cam.method(name)
        cls = getattr(pytorch_grad_cam, m.cls)
        layers = [cam.get_layer(lm.model, n) for n in (
            cam.refine_layers(lm.model, layer) if name == "RefineCAM" else [layer])]
        init, call = cam._options(m, None)     # each method's defaults
        obj = cls(model=lm.model, target_layers=[] if name == "FullGrad" else layers, **init)
        with cam._hooked(obj):   # its hooks released afterwards, as `with cls(...)` does
            if name == "FinerCAM":
                maps.append(obj(input_tensor=x, targets=None, target_idx=target, **call)[0])
            else:
                maps.append(obj(input_tensor=x, targets=[ClassifierOutputTarget(target)])[0])
    rand = pytorch_grad_cam.RandomCAM(lm.model, [cam.get_layer(lm.model, layer)])
    maps.append(rand(input_tensor=x, targets=[ClassifierOutputTarget(target)])[0])
    rand.activations_and_grads.release()
    lm.model.requires_grad_(False)
    for heat in maps:
        for p in settings.percentiles:
            ROADMostRelevantFirst(p)(x, heat[None], soft, lm.model)
            ROADLeastRelevantFirst(p)(x, heat[None], soft, lm.model)
        keep = (heat >= np.percentile(heat, 75)).astype(np.float32)[None]
        CamMultImageConfidenceChange()(x, keep, soft, lm.model)
        order = np.argsort(-heat.ravel(), kind="stable")
        for k in range(settings.steps + 1):
            top = torch.from_numpy(order[: round(k / settings.steps * order.size)])

            def delete(t, _cam, top=top):
                flat = t.reshape(t.shape[0], -1).clone()
                flat[:, top] = 0
                return flat.reshape_as(t)

            def insert(t, _cam, top=top):
                flat = blurred.reshape(t.shape[0], -1).clone()
                flat[:, top] = t.reshape(t.shape[0], -1)[:, top]
                return flat.reshape_as(t)

            for perturb in (delete, insert):
                PerturbationConfidenceMetric(perturb)(x, heat[None], soft, lm.model,
                                                      return_diff=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--slow", action=argparse.BooleanOptionalAction, default=True,
                        help="include ScoreCAM, AblationCAM, FullGrad and SESS")
    args = parser.parse_args()
    torch.manual_seed(0)
    lm = registry.build(registry.find(registry.DEFAULT_CLASSIFIER), device="cpu")
    photo = Image.fromarray(data.chelsea())
    side = min(photo.size)
    photo = photo.crop(((photo.width - side) // 2, 0, (photo.width + side) // 2, side)).resize(
        (224, 224), Image.BICUBIC)
    x = classify.to_tensor(lm, photo)
    target = classify.classify(lm, photo, 1)[0].best.index
    layer = cam.default_target_layer(lm.model)
    # the methods the library has a class for (Occlusion is Lens' own: nothing to compare)
    names = [n for n in cam.applicable(lm.model)
             if cam.method(n).cls and (args.slow or n not in cam.SLOW)]
    settings = Measuring()
    with torch.inference_mode():   # the first pass at each batch shape pays for its kernels
        for batch in (1, 2, 3, 4, 16, 32):
            lm.model(x.expand(batch, -1, -1, -1).contiguous())

    def lens():
        t0 = time.perf_counter()
        out = ranking.rank_methods(lm, x, names, target, layer, settings=settings)
        return out, time.perf_counter() - t0

    # A-B-B-A order: this machine's speed drifts over minutes, and a linear drift cancels
    result, t_lens = lens()
    failed = [r.method for r in result.rows if r.scores is None]
    ok = [n for n in names if n not in failed]
    t_direct = direct(lm, x, ok, target, layer, settings)
    t_direct += direct(lm, x, ok, target, layer, settings)
    t_lens += lens()[1]
    t_lens, t_direct = t_lens / 2, t_direct / 2
    print(f"model {lm.spec.name}, layer {layer}, class '{lm.labels[target]}', "
          f"{torch.get_num_threads()} threads; failed: {failed or 'none'}")
    print(result.table()[["rank", "method", "mean rank", "beats random", "seconds"]]
          .to_string(index=False))
    print(f"Lens ranking:            {t_lens:8.1f} s")
    print(f"pytorch-grad-cam direct: {t_direct:8.1f} s")
    print(f"rank all {len(names)} methods with faithfulness: {t_lens:.1f} s; "
          f"/ pytorch-grad-cam direct: {t_lens / t_direct:.2f}")


if __name__ == "__main__":
    main()
