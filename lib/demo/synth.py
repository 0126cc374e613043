"""Procedural demo data, deterministic by seed: shapes on textured backgrounds.

    python -m lib.synth --out data/synth [--seed 0] [--train 400] [--val 120] [--size 128]

Writes
  OUT/detection/{train,val}/images/*.png + annotations.json   (COCO: boxes, RLE masks)
  OUT/classification/{train,val}/<class>/*.png + boxes.json    (one object per image)
Classes are shapes (circle, square, triangle, star) drawn with solid or striped fills over
gradient, noise and line-clutter backgrounds.

    python -m lib.synth --out data/synth --video 20 [--frames 30]

also writes OUT/video/clipNNN.mp4 + clips.json: shapes moving across a background, passing in
front of each other (occlusions) and entering later, with every object's visible mask on
every frame (RLE) for measuring a tracker.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from lib.core import command_line, settings
from lib.core.errors import InputError
from lib.media import masks as mask_ops

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
    from pycocotools import mask as mask_utils  # heavy: imported on first use
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
    root, name, folder = _demo_val_place(cache_root)
    if not demo_val_ready(cache_root):
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=root, prefix=".synth-"))
        generate(tmp, DEMO["seed"], DEMO["train"], DEMO["val"], DEMO["size"], splits=("val",))
        shutil.rmtree(root / name, ignore_errors=True)
        tmp.rename(root / name)    # atomic: concurrent sessions never see a half-written split
    return folder


def demo_val_ready(cache_root: str | Path | None = None) -> bool:
    """Whether `demo_val` returns at once (the split was generated before)."""
    return (_demo_val_place(cache_root)[2] / "annotations.json").is_file()


def _demo_val_place(cache_root: str | Path | None) -> tuple[Path, str, Path]:
    """(cache root, the split's folder name, its val folder)."""
    root = Path(cache_root or settings.get().cache)
    name = "synth-demo-" + "-".join(f"{k}{v}" for k, v in DEMO.items())
    return root, name, root / name / "detection" / "val"


def _sprite(rng: np.random.Generator, kind: str, r: float) -> tuple[np.ndarray, np.ndarray]:
    """One shape drawn once (its colours and texture move with it): RGB and alpha mask."""
    side = int(2 * r + 4)
    canvas = Image.new("RGB", (side, side))
    mask = draw_object(canvas, rng, kind, side / 2, side / 2, r)
    return np.asarray(canvas), mask


def iter_clip(rng: np.random.Generator, frames: int = 30, size: int = 128):
    """A clip of 3 shapes on a still background, made one frame at a time: object 1 passes
    in front of object 0 (an occlusion mid-clip), object 2 enters later; on long clips they
    drift out of the frame. First yields {obj: (class index, first frame)}, then per frame
    (frame, masks) with masks[obj] the object's visible mask on that frame (absent when
    hidden or not there)."""
    background = np.asarray(_background(rng, size))
    rs = rng.uniform(0.11, 0.17, 3) * size
    kinds = [int(k) for k in rng.integers(len(CLASSES), size=3)]
    sprites = [_sprite(rng, CLASSES[k], r) for k, r in zip(kinds, rs)]
    mid = frames // 2
    y0 = rng.uniform(0.35, 0.65) * size
    start = [np.array([rng.uniform(0.3, 0.45) * size, y0]),                # slow, behind
             np.array([rng.uniform(0.05, 0.15) * size, y0 + rng.uniform(-3, 3)]),
             np.array([rng.uniform(0.2, 0.8) * size, rng.choice([0.15, 0.85]) * size])]
    speed = [np.array(rng.uniform(-0.4, 0.4, 2)),
             np.zeros(2), np.array(rng.uniform(-1.2, 1.2, 2))]
    meet = start[0] + speed[0] * mid                                       # 1 crosses 0 mid-clip
    speed[1] = (meet - start[1]) / mid
    first = [0, 0, int(rng.integers(frames // 4, frames // 2))]
    yield {k: (kinds[k], first[k]) for k in range(3)}
    for f in range(frames):
        img = background.copy()
        layers = []
        for k in range(3):
            if f < first[k]:
                continue
            cx, cy = start[k] + speed[k] * (f - first[k])
            rgb, alpha = sprites[k]
            full = np.zeros((size, size), bool)
            x0, y0_ = int(round(cx - rgb.shape[1] / 2)), int(round(cy - rgb.shape[0] / 2))
            xa, ya = max(0, x0), max(0, y0_)
            xb, yb = min(size, x0 + rgb.shape[1]), min(size, y0_ + rgb.shape[0])
            if xb <= xa or yb <= ya:
                continue
            part = alpha[ya - y0_:yb - y0_, xa - x0:xb - x0]
            img[ya:yb, xa:xb][part] = rgb[ya - y0_:yb - y0_, xa - x0:xb - x0][part]
            full[ya:yb, xa:xb] = part
            layers.append((k, full))
        visible = {}
        for i, (k, full) in enumerate(layers):      # later layers are drawn on top
            above = np.zeros_like(full)
            for _, other in layers[i + 1:]:
                above |= other
            shown = full & ~above
            if shown.sum() >= 4:
                visible[k] = shown
        yield img, visible


def make_clip(rng: np.random.Generator, frames: int = 30, size: int = 128):
    """`iter_clip` as lists. Returns (frames, masks, objects): masks[f][obj] is the object's
    visible mask on frame f; objects[obj] = (class index, first frame)."""
    it = iter_clip(rng, frames, size)
    objects = next(it)
    out_frames, masks = [], []
    for img, visible in it:
        out_frames.append(img)
        masks.append(visible)
    return out_frames, masks, objects


def encode_clip(path: Path, frames, width: int, height: int, fps: int, crf: int) -> list[dict]:
    """Encode (frame, {obj: visible mask}) pairs as an H.264 MP4 at `path`, one frame at a
    time (a long clip is never in RAM); returns each frame's masks as {obj: RLE}."""
    import av  # heavy: imported on first use
    masks = []
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps, options={"crf": str(crf)})
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        for img, visible in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
            masks.append({str(k): mask_ops.to_rle(m) for k, m in visible.items()})
        for packet in stream.encode():
            container.mux(packet)
    return masks


def write_clips(out: str | Path, count: int, frames: int = 30, size: int = 128,
                seed: int = 0, fps: int = 10) -> Path:
    """`count` clips as OUT/clipNNN.mp4 (H.264) and OUT/clips.json with their masks (RLE)."""
    if count < 0 or frames < 4 or size < 32 or fps < 1:
        raise InputError(f"Clips need count >= 0, frames >= 4, size >= 32 and fps >= 1 "
                         f"(got {count}, {frames}, {size}, {fps}).",
                         "e.g. python -m lib.synth --video 20 --frames 30 --size 128")
    rng = np.random.default_rng(seed)
    clips = (iter_clip(rng, frames, size) for _ in range(count))   # frame by frame
    return write_clip_set(out, clips, seed, frames, size, size, fps, crf=10,
                          category=lambda cls: CLASSES[cls])


def write_clip_set(out: str | Path, clips, seed: int, frames: int, width: int, height: int,
                   fps: int, crf: int, category=str) -> Path:
    """Clips as OUT/clipNNN.mp4 (H.264) and OUT/clips.json (every object's visible mask per
    frame as RLE). Each of `clips` yields {object: (class, first frame)} first, then
    (frame, {object: visible mask}) pairs; `category(class)` names a class."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    index = []
    for c, it in enumerate(clips):
        objects = next(it)
        name = f"clip{c:03d}.mp4"
        clip_masks = encode_clip(out / name, it, width, height, fps, crf=crf)
        index.append({"file": name, "frames": frames, "width": width, "height": height,
                      "objects": [{"id": k, "category": category(cls), "first_frame": f0}
                                  for k, (cls, f0) in objects.items()],
                      "masks": clip_masks})
    (out / "clips.json").write_text(json.dumps({"seed": seed, "clips": index}))
    return out


def sample_image(seed: int = 7, size: int = 256) -> Image.Image:
    """The Segmentation page's synthetic sample: three shapes like those the demo segmenter
    was trained on (deterministic, made in milliseconds)."""
    img, _ = make_image(np.random.default_rng(seed), size, 3)
    return img


def sample_clip(cache_root: str | Path | None = None) -> Path:
    """A sample clip for the Segmentation page's video mode (generated once into the cache):
    three shapes moving, one passing in front of another, one entering later."""

    root = Path(cache_root or settings.get().cache)
    folder = root / "synth-sample-clip-seed7"
    if not (folder / "clip000.mp4").is_file():
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=root, prefix=".clip-"))
        write_clips(tmp, 1, frames=40, size=256, seed=7)
        shutil.rmtree(folder, ignore_errors=True)
        tmp.rename(folder)           # atomic: concurrent sessions never see half a clip
    return folder / "clip000.mp4"


def detection_population(images: int, seed: int = 0, size: int = 256,
                         weather: tuple[str, ...] = ("clear", "rain", "fog")):
    """A COCO dataset (no pixels) and one fixed detector's results on it, for measuring
    statistics: objects of the demo classes with boxes, sizes, an `occluded` flag and an image
    `weather` field; the detector finds an object less often, with a worse box and a lower
    score when it is small, occluded or in fog, and adds false positives. Returns (COCO dict,
    results list). Deterministic by seed; any draw of its images is a sample of one population.
    """
    rng = np.random.default_rng(seed)
    cats = [{"id": k + 1, "name": name} for k, name in enumerate(CLASSES)]
    data = {"images": [], "annotations": [], "categories": cats}
    results = []
    for i in range(1, images + 1):
        sky = str(weather[rng.integers(len(weather))])
        data["images"].append({"id": i, "file_name": f"{i:06d}.png", "width": size,
                               "height": size, "weather": sky})
        hard = 0.25 if sky == "fog" else 0.0
        for _ in range(int(rng.integers(1, 6))):
            w, h = rng.uniform(8, size / 2, 2)
            x, y = rng.uniform(0, size - w), rng.uniform(0, size - h)
            cat = int(rng.integers(1, len(CLASSES) + 1))
            occluded = int(rng.random() < 0.3)
            data["annotations"].append({"id": len(data["annotations"]) + 1, "image_id": i,
                                        "category_id": cat, "bbox": [x, y, w, h],
                                        "area": w * h, "iscrowd": 0, "occluded": occluded})
            difficulty = hard + 0.3 * occluded + (0.2 if w * h < 32 ** 2 else 0.0)
            if rng.random() < 0.9 - difficulty:
                jitter = rng.normal(0, 0.05 + 0.15 * difficulty, 4) * [w, h, w, h]
                label = cat if rng.random() > 0.05 else int(rng.integers(1, len(CLASSES) + 1))
                score = float(np.clip(rng.normal(0.75 - difficulty, 0.15), 0.01, 1.0))
                results.append({"image_id": i, "category_id": label, "score": score,
                                "bbox": [x + jitter[0], y + jitter[1],
                                         max(w + jitter[2], 1.0), max(h + jitter[3], 1.0)]})
        for _ in range(int(rng.poisson(1.5))):
            w, h = rng.uniform(8, size / 3, 2)
            results.append({"image_id": i, "category_id": int(rng.integers(1, len(CLASSES) + 1)),
                            "score": float(rng.uniform(0.01, 0.6)),
                            "bbox": [float(rng.uniform(0, size - w)),
                                     float(rng.uniform(0, size - h)), w, h]})
    for r in results:
        r["bbox"] = [float(v) for v in r["bbox"]]
    for a in data["annotations"]:
        a["bbox"] = [float(v) for v in a["bbox"]]
        a["area"] = float(a["area"])
    return data, results


@command_line.command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lib.synth", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="data/synth")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train", type=int, default=400)
    parser.add_argument("--val", type=int, default=120)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--video", type=int, default=0, metavar="N",
                        help="also write N clips of moving, occluding shapes to OUT/video")
    parser.add_argument("--frames", type=int, default=30)
    args = parser.parse_args(argv)
    if min(args.train, args.val, args.video) < 0 or args.size < 32 or args.frames < 4:
        raise InputError("Out of range: --train, --val and --video must be >= 0, --size >= 32 "
                         "and --frames >= 4.", "e.g. python -m lib.synth --video 20")
    print(generate(args.out, args.seed, args.train, args.val, args.size))
    if args.video:
        print(write_clips(Path(args.out) / "video", args.video, args.frames, args.size,
                          args.seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
