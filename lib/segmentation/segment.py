"""Promptable image segmentation: SAM 2.1 / EdgeTAM (transformers), or a labelled GrabCut
fallback. `build_segmenter` (through `lib.models.cache.load`) loads real weights or raises
`WeightsMissingError` naming the fetch command; `grabcut_segmenter()` is the classical
fallback for box prompts, and its masks say so. The image embedding is computed once per
(model, image) and kept in a small process-wide LRU, so each click only runs SAM2's prompt
encoder and mask decoder. How far to trust a mask: `confidence`; what each checkpoint
measured: `figures`."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from lib.core.errors import PromptError
from lib.core.progress import Callback, Ticker
from lib.media import masks as mask_ops
from lib.models import cache, registry
from lib.models.build import builder
from lib.models.spec import HubModel, Source, Task
from lib.segmentation.confidence import FeatureStats, IouCalibration
from lib.segmentation.figures import SYNTHETIC_LABEL_SET
from lib.segmentation.prompts import (
    check_prompts,
    crop_window,
    paste_window,
    processor_inputs,
    zoom_window,
)

GRABCUT = "GrabCut (classical fallback, not SAM2)"


EMBED_CACHE_SIZE = 8     # embeddings kept per process (about 6 MB each for SAM 2.1 at 1024 px)


#: the windows a zooming segmenter tries for clicks alone, as shares of the image's shorter
#: side (chosen on the demo segmenter's validation images, against one window and against a
#: window around a first pass's mask; docs/guides/segmentation.md)
CLICK_WINDOWS = (0.2, 0.35, 0.5, 0.8)


@dataclass
class MaskResult:
    """Candidate masks for one object's prompts, best first by predicted IoU."""

    masks: np.ndarray            # k x H x W bool
    scores: np.ndarray           # k predicted IoU (GrabCut: NaN, it predicts none)
    source: str                  # model name, or the GrabCut label

    @property
    def best(self) -> int:
        return int(np.nanargmax(self.scores)) if np.isfinite(self.scores).any() else 0

    def filling(self, box) -> int:
        """The candidate whose own box best fits `box`: a box prompt is drawn tight around
        its object, so a candidate spilling onto a neighbour (or only part of it) is not it."""
        fits = [mask_ops.box_iou(b, box) if (b := mask_ops.bbox(m)) else 0.0 for m in self.masks]
        return int(np.argmax(fits))


@dataclass
class AutoMask:
    mask: np.ndarray
    predicted_iou: float
    stability: float
    area: int
    bbox: tuple[int, int, int, int]


@dataclass(kw_only=True)
class Segmenter(HubModel):
    """A promptable segmenter (SAM 2.1, EdgeTAM, the demo segmenters): `HubModel`'s fields
    and its manifest's settings. `GrabCutSegmenter` overrides what differs without a model."""
    kind: ClassVar[str] = "sam2"
    #: manifest `prompt_zoom`: segment through a window this many times the object's side
    #: (`_zoomed`); 0: the whole image only, as SAM 2.1 at 1024 px needs
    zoom: float = 0.0
    calibration: IouCalibration | None = None      # manifest `iou_calibration`
    familiar_stats: FeatureStats | None = None      # manifest `familiar`
    appearance: str = "features"    # manifest `track_appearance` (`appearance.Looks`)

    @property
    def label(self) -> str:
        return self.name

    # -- prompts -------------------------------------------------------------------------
    def predict(self, image: np.ndarray, points: Sequence[tuple[float, float, int]] = (),
                box: tuple[float, float, float, float] | None = None,
                multimask: bool = True) -> MaskResult:
        """Masks for one object from its points (x, y, 1 positive / 0 negative) and box."""
        h, w = image.shape[:2]
        check_prompts(points, box, w, h)
        if not self.zoom:
            return self._decode(image, points, box, multimask)
        return self._zoomed(image, list(points), box, multimask)

    def _zoomed(self, image: np.ndarray, points: list, box, multimask: bool) -> MaskResult:
        """Segment through a window around the box; for clicks alone, through windows of
        several sizes centred on the clicks, the best by predicted IoU kept."""
        h, w = image.shape[:2]
        if box is not None:
            return self._through(image, zoom_window(box, w, h, self.zoom), points, box,
                                 multimask)
        pos = [(x, y) for x, y, lab in points if lab == 1] or [(x, y) for x, y, _ in points]
        xs, ys = [x for x, _ in pos], [y for _, y in pos]
        spread = max(max(xs) - min(xs), max(ys) - min(ys))
        cx, cy = (min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2
        best = None
        for share in CLICK_WINDOWS:
            half = max(share * min(h, w), 1.3 * spread) / 2
            window = zoom_window((cx - half, cy - half, cx + half, cy + half), w, h, 1.0)
            res = self._through(image, window, points, None, multimask)
            if best is None or res.scores[res.best] > best.scores[best.best]:
                best = res
        return best

    def _through(self, image: np.ndarray, window, points, box, multimask: bool) -> MaskResult:
        """The model's candidates for prompts on the pixels inside `window`, placed back."""
        h, w = image.shape[:2]
        x0, y0 = window[:2]
        shifted = [(x - x0, y - y0, lab) for x, y, lab in points]
        moved = None if box is None else (box[0] - x0, box[1] - y0, box[2] - x0, box[3] - y0)
        res = self._decode(crop_window(image, window), shifted, moved, multimask)
        return MaskResult(paste_window(res.masks, window, h, w), res.scores, res.source)

    def _decode(self, image: np.ndarray, points, box, multimask: bool) -> MaskResult:
        """The model's candidates for prompts in `image`'s pixels (checked by the caller),
        best first by predicted IoU (calibrated where the manifest says how)."""
        import torch  # heavy: imported on first use
        h, w = image.shape[:2]
        emb = self.embed(image)
        kwargs = processor_inputs(points, box)
        enc = self.processor(images=None, original_sizes=[[h, w]], return_tensors="pt",
                             **kwargs)
        inputs = {k: self._to_device(enc[k]) for k in ("input_points", "input_labels",
                                                         "input_boxes") if k in enc}
        with torch.inference_mode():
            out = self.model(image_embeddings=emb, multimask_output=multimask, **inputs)
            full = self.processor.post_process_masks(out.pred_masks.float().cpu(), [[h, w]],
                                                     binarize=False)[0][0]
        scores = out.iou_scores[0, 0].float().cpu().numpy()
        if self.calibration is not None:
            scores = self.calibration(scores)
        order = np.argsort(-scores, kind="stable")
        return MaskResult((full > 0).numpy()[order], scores[order], self.name)

    def pooled(self, image: np.ndarray) -> np.ndarray:
        """The whole image's coarsest embedding, averaged over positions."""
        emb = self.embed(image)
        last = emb[-1] if isinstance(emb, (list, tuple)) else emb
        return last.float().mean(dim=(-2, -1))[0].cpu().numpy()

    def unfamiliar(self, image: np.ndarray) -> bool:
        """Whether `image` looks unlike every image the model was trained on (False when its
        manifest does not say what those look like)."""
        if self.familiar_stats is None:
            return False
        return self.familiar_stats.distance(self.pooled(image)) > self.familiar_stats.limit

    def embed(self, image: np.ndarray):
        """The image embedding for this model, from the process-wide cache."""
        key = (self.name, id(self.model), image_digest(image))
        return _EMBEDDINGS.get(key, lambda: self._embed(image))

    def _embed(self, image: np.ndarray):
        import torch  # heavy: imported on first use
        enc = self.processor(images=image, return_tensors="pt")
        with torch.inference_mode():
            return self.model.get_image_embeddings(self._to_device(enc["pixel_values"]))

    def _to_device(self, tensor):
        """On the model's device; floating tensors in its dtype (half precision on a GPU)."""
        if tensor.is_floating_point():
            return tensor.to(self.device, self.model.dtype)
        return tensor.to(self.device)

    # -- everything mode -----------------------------------------------------------------
    def everything(self, image: np.ndarray, points_per_side: int = 16, min_iou: float = 0.7,
                   min_stability: float = 0.85, max_overlap: float = 0.7,
                   min_area_frac: float = 0.0005, batch: int = 64,
                   progress: Callback | None = None) -> list[AutoMask]:
        """Automatic masks from a grid of single-point prompts, filtered by predicted IoU and
        stability, deduplicated by mask IoU, largest first."""
        import torch  # heavy: imported on first use
        h, w = image.shape[:2]
        emb = self.embed(image)
        step = 1.0 / points_per_side
        grid = [((i + 0.5) * step * w, (j + 0.5) * step * h)
                for j in range(points_per_side) for i in range(points_per_side)]
        cands, scores, stabs = [], [], []
        tick = Ticker(len(grid), progress)
        for s in range(0, len(grid), batch):
            chunk = grid[s:s + batch]
            enc = self.processor(images=None, original_sizes=[[h, w]], return_tensors="pt",
                                 input_points=[[[[x, y]] for x, y in chunk]],
                                 input_labels=[[[1] for _ in chunk]])
            with torch.inference_mode():
                out = self.model(image_embeddings=emb,
                                 input_points=self._to_device(enc["input_points"]),
                                 input_labels=self._to_device(enc["input_labels"]),
                                 multimask_output=True)
            low = out.pred_masks[0].float().cpu()           # points x 3 x h' x w'
            iou = out.iou_scores[0].float().cpu().numpy()   # points x 3
            for p in range(len(chunk)):
                for k in range(low.shape[1]):
                    stab = mask_ops.stability_score(low[p, k].numpy())
                    if iou[p, k] >= min_iou and stab >= min_stability:
                        cands.append(low[p, k])
                        scores.append(float(iou[p, k]))
                        stabs.append(stab)
            tick(s + len(chunk))
        if not cands:
            return []
        with torch.inference_mode():
            full = self.processor.post_process_masks(torch.stack(cands)[None, :, None],
                                                     [[h, w]], binarize=False)[0][:, 0] > 0
        full = full.numpy()
        keep = mask_ops.dedupe(full, scores, max_overlap)
        out_masks = []
        for i in keep:
            area = int(full[i].sum())
            if area >= min_area_frac * h * w:
                out_masks.append(AutoMask(full[i], scores[i], stabs[i], area,
                                          mask_ops.bbox(full[i])))
        return sorted(out_masks, key=lambda a: -a.area)


def image_digest(image: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest()[:16] + \
        f"-{image.shape[1]}x{image.shape[0]}"


class _Embeddings:
    """SAM2 image embeddings, kept in the process-wide cache (so the memory budget counts
    them), at most `size` at a time; one computation per key."""

    KIND = "image embedding"

    def __init__(self, size: int):
        self.size = size
        self.misses = 0

    def get(self, key, compute):
        name = "|".join(map(str, key))
        hit = cache.STORE.peek(name, self.KIND)
        if hit is not None:
            return hit
        value = compute()
        self.misses += 1
        cache.STORE.put(self.KIND, name, value, cache.tensor_nbytes(value))
        for old in cache.STORE.keys(self.KIND)[:-self.size]:
            cache.STORE.release(old, self.KIND)
        return value

    def clear(self) -> None:
        cache.STORE.clear(self.KIND)


_EMBEDDINGS = _Embeddings(EMBED_CACHE_SIZE)


@dataclass(kw_only=True)
class GrabCutSegmenter(Segmenter):
    """The labelled offline fallback: OpenCV's GrabCut inside a box (points refine it); no
    model, no predicted IoU, no everything mode."""
    kind: ClassVar[str] = "grabcut"

    @property
    def label(self) -> str:
        return GRABCUT

    def predict(self, image: np.ndarray, points: Sequence[tuple[float, float, int]] = (),
                box: tuple[float, float, float, float] | None = None,
                multimask: bool = True) -> MaskResult:
        h, w = image.shape[:2]
        check_prompts(points, box, w, h)
        if box is None:
            raise PromptError("The GrabCut fallback needs a box: drag a rectangle around the "
                              "object (points then refine it).")
        mask = mask_ops.grabcut(image, box, points)
        return MaskResult(mask[None], np.array([np.nan]), GRABCUT)

    def unfamiliar(self, image: np.ndarray) -> bool:
        return False

    def everything(self, image: np.ndarray, *args, **kwargs) -> list[AutoMask]:
        raise PromptError("Everything mode needs SAM2 weights; the GrabCut fallback only "
                          "segments inside a box.")


def grabcut_segmenter() -> Segmenter:
    return GrabCutSegmenter(name=GRABCUT)


def _model_class(arch: str):
    import transformers  # heavy: imported on first use
    return transformers.EdgeTamModel if "edgetam" in arch.lower() else transformers.Sam2Model


def load_pretrained(spec: registry.ModelSpec, model_cls, processor_cls,
                    device: str | None = None, half_on_gpu: bool = True):
    """(model, processor, device) for a transformers id (hub cache; the hub only when it
    answers) or a `checkpoints/` folder in transformers format; `WeightsMissingError` with the
    fetch command when the weights are not here. Half precision on a GPU."""
    device = device or registry.best_device()
    if spec.error:
        raise registry.ModelCreateError(f"Checkpoint '{spec.name}' cannot load: {spec.error}")
    if spec.source == "checkpoint":
        src, offline = str(spec.folder), True
    elif spec.source == "transformers":
        src, offline = spec.arch, not registry.hub_reachable()
    else:
        raise registry.ModelCreateError(f"'{spec.name}' is not a transformers model.")
    try:
        model = model_cls.from_pretrained(src, local_files_only=offline)
        processor = processor_cls.from_pretrained(src, local_files_only=offline)
    except OSError as exc:
        raise registry.weights_missing(spec, "not in the Hugging Face cache") from exc
    if device == "cuda" and half_on_gpu:
        model = model.half()
    return model.eval().to(device), processor, device


#: SAM 2.1 and EdgeTAM on the hub (transformers format); the first is the page's default
SAM2_IDS = ["facebook/sam2.1-hiera-tiny", "facebook/sam2.1-hiera-small",
            "facebook/sam2.1-hiera-base-plus", "facebook/sam2.1-hiera-large",
            "yonigozlan/EdgeTAM-hf"]


registry.known(*(registry.ModelSpec(
    name=i, task="segmentation", source="transformers", arch=i, weights=i,
    description="SAM 2.1" if "sam2" in i else "EdgeTAM (fast)") for i in SAM2_IDS))


@builder(Task.SEGMENTATION, Source.TRANSFORMERS, Source.CHECKPOINT)
def build_segmenter(spec: registry.ModelSpec, device: str | None = None) -> Segmenter:
    """SAM 2.1 / EdgeTAM with real weights (hub cache or a `checkpoints/` folder in
    transformers format), or `WeightsMissingError` with the fetch command."""
    from transformers import Sam2Processor  # heavy: imported on first use
    model, processor, device = load_pretrained(spec, _model_class(spec.arch), Sam2Processor,
                                               device)
    m = spec.manifest or {}
    zoom = m.get("prompt_zoom")
    return Segmenter(name=spec.name, model=model, processor=processor, device=device,
                     zoom=float(zoom) if isinstance(zoom, (int, float)) and 1 <= zoom <= 8 else 0,
                     calibration=IouCalibration.from_manifest(m.get("iou_calibration")),
                     familiar_stats=FeatureStats.from_manifest(m.get("familiar")),
                     appearance="colour" if m.get("track_appearance") == "colour" else "features")


def tiny_sam2_config(image_size: int = 256, hidden: int = 128):
    """A small random SAM2 configuration for tests (well under 1 M parameters). The video
    model needs `hidden` > its memory channels (64): transformers mis-shapes the object
    pointers when they are equal."""
    from transformers import (
        Sam2Config,
        Sam2HieraDetConfig,
        Sam2MaskDecoderConfig,
        Sam2PromptEncoderConfig,
        Sam2VisionConfig,
    )  # heavy: imported on first use
    s = image_size
    backbone = Sam2HieraDetConfig(hidden_size=16, image_size=[s, s], blocks_per_stage=[1, 1, 2, 1],
                                  embed_dim_per_stage=[16, 32, 64, 128],
                                  num_attention_heads_per_stage=[1, 1, 1, 1],
                                  window_size_per_stage=[8, 4, 4, 4], global_attention_blocks=[3])
    vision = Sam2VisionConfig(backbone_config=backbone, backbone_channel_list=[128, 64, 32, 16],
                              backbone_feature_sizes=[[s // 4] * 2, [s // 8] * 2, [s // 16] * 2],
                              fpn_hidden_size=hidden)
    return Sam2Config(vision_config=vision,
                      prompt_encoder_config=Sam2PromptEncoderConfig(hidden_size=hidden,
                                                                    image_size=s, patch_size=16),
                      mask_decoder_config=Sam2MaskDecoderConfig(
                          hidden_size=hidden, mlp_dim=64, num_attention_heads=2,
                          iou_head_hidden_dim=32))


def sam2_processor(image_size: int):
    from transformers import Sam2ImageProcessor, Sam2Processor  # heavy: imported on first use
    return Sam2Processor(image_processor=Sam2ImageProcessor(
        size={"height": image_size, "width": image_size}))


def tiny_segmenter(image_size: int = 256, seed: int = 0) -> Segmenter:
    """A randomly initialised small SAM2 for plumbing tests; marked untrained."""
    import torch  # heavy: imported on first use
    from transformers import Sam2Model  # heavy: imported on first use
    torch.manual_seed(seed)
    model = Sam2Model(tiny_sam2_config(image_size)).eval()
    return Segmenter(name=f"tiny-sam2-{seed}", model=model,
                     processor=sam2_processor(image_size), untrained=True)


def model_choices() -> list[tuple[str, bool]]:
    """(name, weights present): SAM2/EdgeTAM ids and segmentation checkpoints whose weights are
    here, then the GrabCut fallback, then models trained on synthetic shapes only (the demo
    segmenter), then the models whose weights are missing."""
    specs = [(s, registry.availability(s).ready) for s in registry.all_specs("segmentation")]
    real = [(s.name, ok) for s, ok in specs if ok and s.label_set != SYNTHETIC_LABEL_SET]
    demo = [(s.name, ok) for s, ok in specs if ok and s.label_set == SYNTHETIC_LABEL_SET]
    return real + [(GRABCUT, True)] + demo + [(s.name, ok) for s, ok in specs if not ok]


def load_segmenter(name: str) -> Segmenter:
    """A segmenter from the process-wide model cache (GrabCut needs no model)."""
    if name == GRABCUT:
        return grabcut_segmenter()
    return cache.load(name, "segmentation").model


def segmenter_loaded(name: str) -> bool:
    """Whether `load_segmenter` returns at once."""
    return name == GRABCUT or cache.loaded(name, "segmentation")
