"""Procedural demo data, deterministic by seed: shapes on textured backgrounds.

    python -m lib.synth --out data/synth [--seed 0] [--train 400] [--val 120] [--size 128]

Writes
  OUT/detection/{train,val}/images/*.png + annotations.json   (COCO: boxes, RLE masks)
  OUT/classification/{train,val}/<class>/*.png + boxes.json    (one object per image)
Classes are shapes (circle, square, triangle, star) drawn with solid or striped fills over
gradient, noise and line-clutter backgrounds.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

CLASSES = ["circle", "square", "triangle", "star"]
DEMO = {"seed": 0, "train": 600, "val": 150, "size": 128}   # the demo pack's data recipe


def _background(rng: np.random.Generator, size: int) -> Image.Image:
    y, x = np.mgrid[0:size, 0:size] / size
    c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    angle = rng.uniform(0, 2 * math.pi)
    t = (np.cos(angle) * x + np.sin(angle) * y + 1) / 2
    arr = c0[None, None] * (1 - t[..., None]) + c1[None, None] * t[..., None]
    arr += rng.normal(0, rng.uniform(4, 20), arr.shape)
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(rng.integers(2, 8)):  # clutter lines
        pts = [tuple(rng.uniform(0, size, 2)) for _ in range(2)]
        draw.line(pts, fill=tuple(int(v) for v in rng.uniform(0, 255, 3)),
                  width=int(rng.integers(1, 3)))
    return img


def _polygon(kind: str, cx: float, cy: float, r: float, rot: float) -> list[tuple[float, float]]:
    if kind == "square":
        angles = [rot + math.pi / 4 + k * math.pi / 2 for k in range(4)]
        return [(cx + r * math.cos(a), cy + r * math.sin(a)) for a in angles]
    if kind == "triangle":
        angles = [rot - math.pi / 2 + k * 2 * math.pi / 3 for k in range(3)]
        return [(cx + r * math.cos(a), cy + r * math.sin(a)) for a in angles]
    if kind == "star":
        pts = []
        for k in range(10):
            rr = r if k % 2 == 0 else r * 0.45
            a = rot - math.pi / 2 + k * math.pi / 5
            pts.append((cx + rr * math.cos(a), cy + rr * math.sin(a)))
        return pts
    raise ValueError(kind)


def draw_object(img: Image.Image, rng: np.random.Generator, kind: str, cx: float, cy: float,
                r: float) -> np.ndarray:
    """Draw one shape; return its boolean mask."""
    size = img.size[0]
    mask_img = Image.new("L", img.size, 0)
    mdraw = ImageDraw.Draw(mask_img)
    if kind == "circle":
        mdraw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
    else:
        mdraw.polygon(_polygon(kind, cx, cy, r, rng.uniform(0, 2 * math.pi)), fill=255)
    color = rng.uniform(0, 255, 3)
    fill = np.zeros((size, size, 3)) + color
    if rng.random() < 0.5:  # striped texture
        y, x = np.mgrid[0:size, 0:size]
        period = rng.uniform(4, 10)
        stripes = (np.sin((x * math.cos(r) + y * math.sin(r)) / period * 2 * math.pi) > 0)
        fill[stripes] = rng.uniform(0, 255, 3)
    fill_img = Image.fromarray(fill.astype(np.uint8))
    img.paste(fill_img, (0, 0), mask_img)
    return np.asarray(mask_img) > 127


def make_image(rng: np.random.Generator, size: int, n_objects: int):
    """An image and its objects [(class index, mask)], objects not overlapping much."""
    img = _background(rng, size)
    objects, taken = [], np.zeros((size, size), bool)
    for _ in range(50):
        if len(objects) == n_objects:
            break
        r = rng.uniform(size * 0.12, size * 0.3)
        cx, cy = rng.uniform(r, size - r, 2)
        probe = np.zeros_like(taken)
        probe[int(max(0, cy - r)):int(cy + r), int(max(0, cx - r)):int(cx + r)] = True
        if (probe & taken).sum() > 0.1 * probe.sum():
            continue
        cls = int(rng.integers(len(CLASSES)))
        mask = draw_object(img, rng, CLASSES[cls], cx, cy, r)
        if mask.sum() < 30:
            continue
        taken |= probe
        objects.append((cls, mask))
    img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0, 0.8)))
    return img, objects


def _box(mask: np.ndarray) -> list[float]:
    ys, xs = np.nonzero(mask)
    x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    return [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]


def write_detection(out: Path, count: int, size: int, seed: int) -> Path:
    from pycocotools import mask as mask_utils
    rng = np.random.default_rng(seed)
    (out / "images").mkdir(parents=True, exist_ok=True)
    images, anns = [], []
    for i in range(count):
        img, objects = make_image(rng, size, int(rng.integers(1, 4)))
        name = f"{i:05d}.png"
        img.save(out / "images" / name)
        images.append({"id": i + 1, "file_name": name, "width": size, "height": size})
        for cls, mask in objects:
            rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
            rle["counts"] = rle["counts"].decode()
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": cls + 1,
                         "bbox": _box(mask), "area": float(mask.sum()), "iscrowd": 0,
                         "segmentation": rle})
    data = {"info": {"description": f"Lens synthetic shapes, seed {seed}"}, "images": images,
            "annotations": anns,
            "categories": [{"id": k + 1, "name": c} for k, c in enumerate(CLASSES)]}
    path = out / "annotations.json"
    path.write_text(json.dumps(data))
    return path


def write_classification(out: Path, count: int, size: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    boxes = {}
    for c in CLASSES:
        (out / c).mkdir(parents=True, exist_ok=True)
    for i in range(count):
        img, objects = make_image(rng, size, 1)
        cls, mask = objects[0]
        rel = f"{CLASSES[cls]}/{i:05d}.png"
        img.save(out / rel)
        boxes[rel] = _box(mask)
    path = out / "boxes.json"
    path.write_text(json.dumps(boxes))
    return path


def generate(out: str | Path, seed: int = 0, train: int = 400, val: int = 120,
             size: int = 128, splits: tuple[str, ...] = ("train", "val")) -> Path:
    """Both versions of each split; a split depends only on (seed, its size, image size)."""
    out = Path(out)
    for split, count, offset in (("train", train, 0), ("val", val, 1)):
        if split not in splits:
            continue
        write_detection(out / "detection" / split, count, size, seed * 1000 + offset)
        write_classification(out / "classification" / split, count, size, seed * 1000 + 10 + offset)
    return out


def demo_val(cache_root: str | Path | None = None) -> Path:
    """The demo pack's validation split (detection COCO layout), generated once into the cache.

    Returns the split folder (`annotations.json` + `images/`); the same images the demo
    checkpoints' manifests were measured on.
    """
    import shutil
    import tempfile
    from lib import settings
    root = Path(cache_root or settings.get().cache)
    name = "synth-demo-" + "-".join(f"{k}{v}" for k, v in DEMO.items())
    folder = root / name / "detection" / "val"
    if not (folder / "annotations.json").is_file():
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=root, prefix=".synth-"))
        generate(tmp, DEMO["seed"], DEMO["train"], DEMO["val"], DEMO["size"], splits=("val",))
        shutil.rmtree(root / name, ignore_errors=True)
        tmp.rename(root / name)    # atomic: concurrent sessions never see a half-written split
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lib.synth", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="data/synth")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train", type=int, default=400)
    parser.add_argument("--val", type=int, default=120)
    parser.add_argument("--size", type=int, default=128)
    args = parser.parse_args(argv)
    print(generate(args.out, args.seed, args.train, args.val, args.size))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
