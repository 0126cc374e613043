"""Which CAM methods pass the randomisation sanity checks on the demo models.

    python bench/cam_sanity.py [--images 6] [--slow]

For the demo classifier (on validation images `lib.synth` makes with the demo recipe, each
explained for its true class) and the packaged ImageNet EfficientNet-Lite0 (on the bundled
sample photos, each for its top class): the cascading model-parameter randomisation test, and,
for the demo classifier, data randomisation against its shuffled-label twin. A method passes
when its map's mean Spearman rank correlation with the trained model's map, once every layer is
random, is at most `sanity.STILL_SIMILAR` (or the map became constant: NaN). Prints a table
per model, then
`randomisation check passed: X of N methods (demo classifier), Y of N (ImageNet Lite0)`.
"""

import argparse
import io
import json
import sys
import tempfile
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import pandas as pd
from PIL import Image

from lib.classification import cam, classify, sanity
from lib.demo import samples, synth
from lib.demo.synth import DEMO
from lib.media import images
from lib.models import registry


def check(lm, pictures, names, twin=None) -> pd.DataFrame:
    """Mean Spearman after the full cascade (and against the twin) per method."""
    layer = cam.default_target_layer(lm.model)
    cascade, data = {m: [] for m in names}, {m: [] for m in names}
    for image, target in pictures:
        x = classify.to_tensor(lm, image)
        result = sanity.model_randomisation(lm, x, names, target, layer)
        for m in names:
            cascade[m].append(result.steps[-1].spearman[m])
        if twin is not None:
            d = sanity.data_randomisation(lm, twin, x, names, target, layer)
            for m in names:
                data[m].append(d.spearman[m])
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # all-NaN: the map became constant
        df = pd.DataFrame({"method": names, "spearman, all layers random": [
            np.nanmean(cascade[m]) for m in names]})
    if twin is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            df["spearman vs shuffled-label twin"] = [np.nanmean(data[m]) for m in names]
    # a map that became constant (NaN: no ranking left) no longer resembles the original
    df["passes"] = ~(df["spearman, all layers random"] > sanity.STILL_SIMILAR)
    return df


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=6)
    parser.add_argument("--slow", action="store_true", help="also ScoreCAM, AblationCAM...")
    args = parser.parse_args()
    demo = registry.build(registry.find("demo-classifier"), device="cpu")
    twin = registry.build(registry.find("demo-classifier-shuffled"), device="cpu")
    lite0 = registry.build(registry.find(registry.DEFAULT_CLASSIFIER), device="cpu")
    with tempfile.TemporaryDirectory() as tmp:
        root = synth.generate(Path(tmp), seed=DEMO["seed"], val=args.images, size=DEMO["size"],
                              splits=("val",)) / "classification" / "val"
        boxes = json.loads((root / "boxes.json").read_text())
        picked = sorted(boxes)[:: max(1, len(boxes) // args.images)][: args.images]
        demo_pics = [(images.load_image(root / rel).image, demo.labels.index(rel.split("/")[0]))
                     for rel in picked]
    photos = [Image.open(io.BytesIO(samples.sample_bytes(n))).convert("RGB")
              for n in list(samples.SAMPLES)[: args.images]]
    lite_pics = [(p, classify.classify(lite0, p, 1)[0].best.index) for p in photos]
    results = {}
    for name, lm, pics, other in (("demo classifier", demo, demo_pics, twin),
                                  ("ImageNet Lite0", lite0, lite_pics, None)):
        names = [n for n in cam.applicable(lm.model) if args.slow or n not in cam.SLOW]
        df = check(lm, pics, names, other)
        results[name] = df
        print(f"\n{name} ({len(pics)} images)")
        print(df.round(2).to_string(index=False))
    demo_df, lite_df = results["demo classifier"], results["ImageNet Lite0"]
    print(f"randomisation check passed: {int(demo_df['passes'].sum())} of {len(demo_df)} "
          f"methods (demo classifier), {int(lite_df['passes'].sum())} of {len(lite_df)} "
          "(ImageNet Lite0)")


if __name__ == "__main__":
    main()
