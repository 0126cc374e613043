"""Training data for a promptable segmenter, from any COCO instance-mask dataset.

`open_masks` checks a dataset once (through the detection page's COCO validation) and keeps
only an index of usable objects; masks and images are decoded when a sample needs them, a few
images at a time, so a dataset of 100,000 annotations costs its index, not its pixels.
`Sampler` makes the windows a zooming segmenter sees (`lib.segmentation.prompts.zoom_window`)
around one object, with copy-paste of objects by their masks onto other images (Ghiasi et
al., 2021), scale, flip and colour jitter; it mixes in shapes filled with real photo
textures (the photos scikit-image ships) and `lib.synth` shapes, so the demo clips keep
working.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lib.core.errors import DatasetError
from lib.detection.datasets import CocoDataset, load_coco
from lib.media import images as image_io
from lib.segmentation.prompts import crop_window, zoom_window

#: objects smaller than this (pixels of mask) teach nothing at the model's input size
MIN_OBJECT_AREA = 64


@dataclass
class MaskSet:
    """The usable objects of a COCO dataset: (image id, annotation) pairs, decoded on demand.
    `skipped` counts what was left out and why."""

    dataset: CocoDataset
    objects: list[tuple[int, dict]]
    skipped: dict[str, int] = field(default_factory=dict)
    cache_images: int = 32
    _images: OrderedDict = field(default_factory=OrderedDict, repr=False)

    @property
    def image_ids(self) -> list[int]:
        return sorted({i for i, _ in self.objects})

    def image(self, image_id: int) -> np.ndarray:
        """The RGB pixels of one image (a few kept); `DatasetError` when the file no longer
        decodes or its size disagrees with the annotations."""
        if image_id in self._images:
            self._images.move_to_end(image_id)
            return self._images[image_id]
        info = self.dataset.image_info(image_id)
        pixels = np.asarray(image_io.load_image(self.dataset.image_path(image_id)).image
                            .convert("RGB"))
        if pixels.shape[:2] != (info["height"], info["width"]):
            raise DatasetError(f"Image {info['file_name']} is {pixels.shape[1]} x "
                               f"{pixels.shape[0]} px but the annotations say "
                               f"{info['width']} x {info['height']}.",
                               "Fix the image's width and height in the annotations file.")
        self._images[image_id] = pixels
        while len(self._images) > self.cache_images:
            self._images.popitem(last=False)
        return pixels

    def mask(self, image_id: int, ann: dict) -> np.ndarray:
        info = self.dataset.image_info(image_id)
        return decode_mask(ann["segmentation"], info["height"], info["width"])

    def object(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        image_id, ann = self.objects[k]
        return self.image(image_id), self.mask(image_id, ann)


def decode_mask(segmentation, height: int, width: int) -> np.ndarray:
    """A COCO segmentation (polygons, RLE or uncompressed RLE) as a height x width mask."""
    from pycocotools import mask as coco_mask  # heavy: imported on first use
    if isinstance(segmentation, list):
        rles = coco_mask.frPyObjects([p for p in segmentation if len(p) >= 6], height, width)
        rle = coco_mask.merge(rles)
    elif isinstance(segmentation["counts"], list):
        rle = coco_mask.frPyObjects(segmentation, height, width)
    else:
        rle = segmentation
    return coco_mask.decode(rle).astype(bool)


def _usable(ann: dict, info: dict) -> str | None:
    """Why an annotation cannot teach a segmenter, or None when it can."""
    if ann.get("iscrowd"):
        return "crowd regions (not one object)"
    seg = ann.get("segmentation")
    if seg is None:
        return "no mask"
    if isinstance(seg, list):
        if not any(len(p) >= 6 for p in seg):
            return "polygons of fewer than 3 points"
    elif list(seg["size"]) != [info["height"], info["width"]]:
        return "masks whose size disagrees with their image"
    x, y, w, h = ann["bbox"]
    if x >= info["width"] or y >= info["height"] or x + w <= 0 or y + h <= 0:
        return "boxes outside their image"
    if ann.get("area", w * h) < MIN_OBJECT_AREA:
        return f"objects under {MIN_OBJECT_AREA} px"
    return None


def open_masks(annotations: str | Path, images_dir: str | Path,
               image_ids: set[int] | None = None) -> MaskSet:
    """The usable objects of a COCO instances file whose images are in `images_dir`
    (optionally only `image_ids`); `DatasetError` naming the fix when none is usable."""
    annotations, images_dir = Path(annotations), Path(images_dir)
    if annotations.is_dir():
        raise DatasetError(f"--annotations {annotations.name} is a folder.",
                           "Point it at the COCO instances .json file.")
    if images_dir.exists() and not images_dir.is_dir():
        raise DatasetError(f"--coco {images_dir.name} is a file, not a folder of images.",
                           "Point --coco at the folder that holds the images.")
    dataset = load_coco(annotations, images_dir)
    unreadable = set(dataset.missing_images) | set(dataset.refused_images)
    skipped: dict[str, int] = {}
    if dataset.refused_boxes:
        skipped["zero-area or non-finite boxes"] = dataset.refused_boxes
    objects = []
    for ann in dataset.data["annotations"]:
        if image_ids is not None and ann["image_id"] not in image_ids:
            continue
        info = dataset.image_info(ann["image_id"])
        why = "images missing on disk" if info["file_name"] in unreadable else _usable(ann, info)
        if why:
            skipped[why] = skipped.get(why, 0) + 1
        else:
            objects.append((ann["image_id"], ann))
    if not objects:
        detail = "; ".join(f"{n} {why}" for why, n in skipped.items()) or "it has none"
        raise DatasetError(f"'{annotations.name}' has no object a segmenter can learn from "
                           f"({detail}).",
                           "Give a COCO instances file with polygon or RLE masks of objects "
                           f"of at least {MIN_OBJECT_AREA} px whose images are in --coco.")
    return MaskSet(dataset, objects, skipped)


# -- samples ---------------------------------------------------------------------------------

def texture_photos() -> list[np.ndarray]:
    """The real photos scikit-image ships (textures for synthetic shapes), RGB uint8."""
    from skimage import data  # heavy: imported on first use
    out = []
    for name in ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry",
                 "motorcycle_left", "brick", "grass", "gravel", "camera", "moon", "text"):
        try:
            img = np.asarray(getattr(data, name)())
        except Exception:   # noqa: BLE001 - a photo missing from this scikit-image: use the rest
            continue
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        out.append(np.ascontiguousarray(img[..., :3]).astype(np.uint8))
    return out


def _flat_shape(rng, size: int) -> np.ndarray:
    """A random polygon or ellipse mask (a shape with a real texture inside)."""
    import cv2  # heavy: imported on first use
    mask = np.zeros((size, size), np.uint8)
    c = rng.uniform(0.3, 0.7, 2) * size
    r = rng.uniform(0.15, 0.35) * size
    if rng.random() < 0.3:
        axes = (int(r), int(r * rng.uniform(0.4, 1)))
        cv2.ellipse(mask, (int(c[0]), int(c[1])), axes, rng.uniform(0, 180), 0, 360, 1, -1)
    else:
        n = int(rng.integers(3, 11))
        ang = np.sort(rng.uniform(0, 2 * math.pi, n))
        rad = r * rng.uniform(0.4, 1.0, n)
        pts = np.stack([c[0] + rad * np.cos(ang), c[1] + rad * np.sin(ang)], 1)
        cv2.fillPoly(mask, [pts.astype(np.int32)], 1)
    return mask.astype(bool)


def _photo_crop(rng, photo: np.ndarray, size: int) -> np.ndarray:
    import cv2  # heavy: imported on first use
    h, w = photo.shape[:2]
    side = int(rng.uniform(0.3, 1.0) * min(h, w))
    y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    return cv2.resize(photo[y:y + side, x:x + side], (size, size), interpolation=cv2.INTER_AREA)


def _colour_jitter(rng, img: np.ndarray) -> np.ndarray:
    out = img.astype(np.float32)
    out = out * rng.uniform(0.75, 1.25) + rng.uniform(-20, 20)                 # brightness
    mean = out.mean()
    out = (out - mean) * rng.uniform(0.75, 1.25) + mean                        # contrast
    grey = out.mean(axis=2, keepdims=True)
    out = (out - grey) * rng.uniform(0.7, 1.3) + grey                          # saturation
    return np.clip(out, 0, 255).astype(np.uint8)


def textured_scene(rng, photos: list[np.ndarray], size: int, background=None):
    """A crop of a photo (`background`, else one of `photos`) with 1-3 random shapes filled
    with other photos' textures; returns it and the mask of one shape (what shows of it)."""
    bg = photos[int(rng.integers(len(photos)))] if background is None else background
    image = _photo_crop(rng, bg, size)
    target = None
    for _ in range(int(rng.integers(1, 4))):
        shape = _flat_shape(rng, size)
        tex = _photo_crop(rng, photos[int(rng.integers(len(photos)))], size)
        image = np.where(shape[..., None], tex, image)
        if target is not None:
            target &= ~shape
        if target is None or rng.random() < 0.4:
            target = shape
    return image, target


@dataclass
class Sampler:
    """Windows around one object, at the model's input side, with its mask.

    `mix` is the share of (COCO objects, shapes with real photo textures, `lib.synth`
    shapes); without a mask set, the COCO share goes to the textured shapes."""

    masks: MaskSet | None
    size: int = 256
    mix: tuple[float, float, float] = (0.6, 0.25, 0.15)
    whole_image: float = 0.15        # share of windows that show the whole image (first pass)
    paste: float = 0.5               # share of COCO samples with another object pasted in
    photos: list = field(default_factory=list)

    def __post_init__(self):
        if not self.photos:
            self.photos = texture_photos()
        if self.masks is None:
            self.mix = (0.0, self.mix[0] + self.mix[1], self.mix[2])

    def __call__(self, rng, context: float) -> tuple[np.ndarray, np.ndarray]:
        """One (window pixels S x S x 3 uint8, object mask S x S bool)."""
        kind = int(rng.choice(3, p=np.array(self.mix) / sum(self.mix)))
        for _ in range(20):
            if kind == 0:
                image, mask = self._coco(rng)
            elif kind == 1:
                image, mask = self._textured(rng)
            else:
                image, mask = self._synthetic(rng)
            if mask.sum() >= MIN_OBJECT_AREA // 4:
                break
        window, target = self._window(rng, image, mask, context)
        while target.sum() < MIN_OBJECT_AREA // 4:     # a sliver lost in the window: a shape
            window, target = self._window(rng, *self._synthetic(rng), context)
        if rng.random() < 0.5:
            window, target = window[:, ::-1], target[:, ::-1]
        return _colour_jitter(rng, np.ascontiguousarray(window)), np.ascontiguousarray(target)

    # -- sources -------------------------------------------------------------------------
    def _coco(self, rng):
        k = int(rng.integers(len(self.masks.objects)))
        image, mask = self.masks.object(k)
        if rng.random() < 0.25:     # the object onto another image of the set
            other = self.masks.image(self.masks.objects[int(rng.integers(
                len(self.masks.objects)))][0])
            image, mask = _paste(rng, other, np.zeros(other.shape[:2], bool), image, mask,
                                 anywhere=True)
        if rng.random() < self.paste:    # another object over part of it
            src_img, src_mask = self.masks.object(int(rng.integers(len(self.masks.objects))))
            image, mask = _paste(rng, image, mask, src_img, src_mask)
        return image, mask

    def _textured(self, rng):
        size = int(rng.choice([192, 256, 384]))
        bg = None
        if self.masks is not None and rng.random() < 0.5:
            bg = self.masks.image(self.masks.objects[int(rng.integers(
                len(self.masks.objects)))][0])
        return textured_scene(rng, self.photos, size, bg)

    def _synthetic(self, rng):
        from lib.demo import synth
        img, shapes = synth.make_image(rng, int(rng.choice([128, 256])), int(rng.integers(1, 4)))
        return np.asarray(img), shapes[int(rng.integers(len(shapes)))][1]

    # -- geometry ------------------------------------------------------------------------
    def _window(self, rng, image, mask, context: float):
        import cv2  # heavy: imported on first use
        h, w = mask.shape
        if rng.random() < self.whole_image or not mask.any():   # the whole image, squashed
            win_img, win_mask = image, mask
        else:
            ys, xs = np.nonzero(mask)
            x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
            side = max(x1 - x0, y1 - y0)
            shift = rng.uniform(-0.1, 0.1, 2) * side
            box = (x0 + shift[0], y0 + shift[1], x1 + shift[0], y1 + shift[1])
            win = zoom_window(box, w, h, context * rng.uniform(0.8, 1.3))
            win_img = crop_window(image, win)
            win_mask = crop_window(mask.astype(np.uint8), win).astype(bool)
            # crop_window pads with grey; the mask's padding must be background
            pad = crop_window(np.ones_like(mask, np.uint8), win) != 1
            win_mask &= ~pad
        s = self.size
        out = cv2.resize(win_img, (s, s), interpolation=cv2.INTER_AREA
                         if win_img.shape[0] > s else cv2.INTER_LINEAR)
        target = cv2.resize(win_mask.astype(np.uint8), (s, s),
                            interpolation=cv2.INTER_NEAREST).astype(bool)
        return out, target


def _paste(rng, image, mask, src_img, src_mask, anywhere: bool = False):
    """`src_img`'s object (by `src_mask`) pasted onto `image`, scaled and placed near
    `mask`'s object (over part of it) or `anywhere`; returns the new image and what stays
    visible of `mask` (or the pasted object's mask when `anywhere`)."""
    import cv2  # heavy: imported on first use
    ys, xs = np.nonzero(src_mask)
    if not len(xs) or not (anywhere or mask.any()):
        return image, mask
    x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    obj, om = src_img[y0:y1, x0:x1], src_mask[y0:y1, x0:x1]
    h, w = mask.shape
    if anywhere:
        scale = rng.uniform(0.5, 1.5) * min(1.0, 0.8 * min(h, w) / max(obj.shape[:2]))
    else:
        ty, tx = np.nonzero(mask)
        tside = max(tx.max() - tx.min(), ty.max() - ty.min()) + 1
        scale = rng.uniform(0.3, 0.9) * tside / max(obj.shape[:2])
    nw, nh = max(2, int(obj.shape[1] * scale)), max(2, int(obj.shape[0] * scale))
    if nw >= w or nh >= h:
        return image, mask
    obj = cv2.resize(obj, (nw, nh), interpolation=cv2.INTER_LINEAR)
    om = cv2.resize(om.astype(np.uint8), (nw, nh), interpolation=cv2.INTER_NEAREST).astype(bool)
    if anywhere:
        px, py = int(rng.integers(0, w - nw + 1)), int(rng.integers(0, h - nh + 1))
    else:   # centred somewhere on the target's box edge region
        cx = int(rng.uniform(tx.min(), tx.max() + 1))
        cy = int(rng.uniform(ty.min(), ty.max() + 1))
        px, py = min(max(0, cx - nw // 2), w - nw), min(max(0, cy - nh // 2), h - nh)
    full = np.zeros((h, w), bool)
    full[py:py + nh, px:px + nw] = om
    out = image.copy()
    out[py:py + nh, px:px + nw][om] = obj[om]
    if anywhere:
        return out, full
    visible = mask & ~full
    if visible.sum() < 0.4 * mask.sum():       # mostly hidden: keep the original
        return image, mask
    return out, visible


def cutouts(masks: MaskSet, min_area: float = 3000, limit: int = 200):
    """Whole objects of a mask set (their box off the image's edges, at least `min_area`
    px) cut out by their masks, and their images as backgrounds: the material of
    `lib.demo.real_clips`."""
    from lib.demo.real_clips import Cutout
    names = masks.dataset.categories
    out, backgrounds = [], {}
    for image_id, ann in masks.objects:
        info = masks.dataset.image_info(image_id)
        x, y, w, h = ann["bbox"]
        if ann["area"] < min_area or x < 2 or y < 2 or x + w > info["width"] - 2 or \
                y + h > info["height"] - 2:
            continue
        image, mask = masks.image(image_id), masks.mask(image_id, ann)
        ys, xs = np.nonzero(mask)
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        out.append(Cutout(image[y0:y1, x0:x1].copy(), mask[y0:y1, x0:x1].copy(),
                          names.get(ann["category_id"], "object")))
        backgrounds.setdefault(image_id, image)
        if len(out) >= limit:
            break
    return out, list(backgrounds.values())
