"""Class activation maps with pytorch_grad_cam: methods, target layers, faithfulness.

Gradient methods run on a fast path: the model's parameters stay frozen and the target
layer's output is made a leaf of the autograd graph, so one forward pass plus a backward pass
through only the layers after the target produce the activations and gradients. The CAM
itself is then computed by pytorch_grad_cam's own method object (its `get_cam_image` and
scaling), so heatmaps equal the library's. Gradient-free methods that need many forward
passes (ScoreCAM, AblationCAM) run through the library as is.

Every function that touches hooks takes the model's lock (from `lib.models.cache`), so concurrent
sessions never see each other's hooks.
"""

from __future__ import annotations

import contextlib
import math
import threading
from dataclasses import dataclass

import numpy as np

from lib.classification.classify import model_view, to_tensor
from lib.core.errors import ExplainError
from lib.models.registry import LoadedModel

#: Method name -> pytorch_grad_cam class name.
METHODS = {"GradCAM": "GradCAM", "GradCAM++": "GradCAMPlusPlus", "XGradCAM": "XGradCAM",
           "LayerCAM": "LayerCAM", "HiResCAM": "HiResCAM", "EigenCAM": "EigenCAM",
           "ScoreCAM": "ScoreCAM", "AblationCAM": "AblationCAM"}
#: Methods computed on the fast path (one forward, a short backward, or none).
FAST_METHODS = {"GradCAM", "GradCAM++", "XGradCAM", "LayerCAM", "HiResCAM", "EigenCAM"}
GRADIENT_FREE = {"EigenCAM", "ScoreCAM", "AblationCAM"}
_RNG_LOCK = threading.Lock()


@dataclass(frozen=True)
class CamResult:
    heatmap: np.ndarray      # HxW float32 in [0, 1], at the model's input size
    method: str
    layer: str
    target_index: int
    target_label: str


@dataclass(frozen=True)
class Faithfulness:
    """How much the explanation matters to the model (pytorch_grad_cam.metrics)."""

    keep_top_change: float         # probability change when only the top-25% region is kept
    road: float                    # ROADCombined; higher means a more faithful map
    random_keep_top_change: float  # the same two scores for a random CAM (the baseline)
    random_road: float


# -- target layers ----------------------------------------------------------------------------

def _is_channels_last_model(model) -> bool:
    return type(model).__name__.lower().startswith("swin")


def default_target_layer(model) -> str:
    """Last convolutional stage for CNNs; last block's norm for ViT / DeiT / Swin."""
    names = dict(model.named_modules())
    if "conv_head" in names and not isinstance(names["conv_head"], type(None)):
        return "conv_head"
    if "blocks" in names and hasattr(model, "num_prefix_tokens"):  # ViT / DeiT / BEiT ...
        return f"blocks.{len(model.blocks) - 1}.norm1"
    if _is_channels_last_model(model) and "layers" in names:
        last = len(model.layers) - 1
        return f"layers.{last}.blocks.{len(model.layers[last].blocks) - 1}.norm1"
    info = getattr(model, "feature_info", None)
    if info:
        last = info[-1]
        return last["module"] if isinstance(last, dict) else info.module_name()[-1]
    convs = [n for n, m in model.named_modules() if type(m).__name__ == "Conv2d"]
    if not convs:
        raise ExplainError("No convolutional or transformer layer found for a CAM.")
    return convs[-1]


def layer_choices(model) -> list[str]:
    """Layers a user may pick as the CAM target: the default plus stages and blocks."""
    skip = ("Dropout", "Identity", "Linear", "Flatten", "SelectAdaptivePool2d",
            "AdaptiveAvgPool2d", "DropPath")
    out = [default_target_layer(model)]
    for name, module in model.named_modules():
        if not name or name in out or name.count(".") > 2 or type(module).__name__ in skip:
            continue
        if name.split(".")[0] in ("head", "classifier", "fc", "global_pool", "fc_norm",
                                  "pre_logits"):
            continue
        out.append(name)
    return out


def get_layer(model, name: str):
    modules = dict(model.named_modules())
    if name not in modules:
        raise ExplainError(f"The model has no layer named '{name}'.")
    return modules[name]


def reshape_transform(model):
    """Per-architecture reshape of a layer's output to NCHW (a plain function, or None)."""
    prefix = int(getattr(model, "num_prefix_tokens", 0) or 0)
    channels_last = _is_channels_last_model(model)

    def to_nchw(t):
        if t.ndim == 3:  # tokens (B, N, C): drop class/register tokens, fold into a grid
            tokens = t[:, prefix:, :] if t.shape[1] - prefix > 0 else t
            side = int(math.isqrt(tokens.shape[1]))
            if side * side != tokens.shape[1]:
                raise ExplainError(f"Cannot fold {tokens.shape[1]} tokens into a square grid.")
            return tokens.reshape(t.shape[0], side, side, t.shape[2]).permute(0, 3, 1, 2)
        if t.ndim == 4 and channels_last:
            return t.permute(0, 3, 1, 2)
        return t

    needs = prefix > 0 or channels_last or hasattr(model, "blocks") and hasattr(
        model, "num_prefix_tokens")
    return to_nchw if needs else None


# -- computing CAMs ---------------------------------------------------------------------------

def _method(name: str, model, layer, reshape):
    import pytorch_grad_cam  # heavy: imported on first use
    if name not in METHODS:
        raise ExplainError(f"Unknown CAM method '{name}'; one of {', '.join(METHODS)}.")
    return getattr(pytorch_grad_cam, METHODS[name])(model=model, target_layers=[layer],
                                                     reshape_transform=reshape)


@contextlib.contextmanager
def _leaf_at(layer, store: dict):
    """Make `layer`'s output a fresh autograd leaf: backward stops there."""
    def hook(_module, _inputs, output):
        leaf = output.detach().requires_grad_(True)
        store["activation"] = leaf
        return leaf.clone()  # in-place ops after the layer act on the clone, not the leaf
    handle = layer.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def fast_activations(lm: LoadedModel, tensor, layer_name: str, target_index: int | None,
                     need_grads: bool = True):
    """(logits, activation, gradient) at `layer_name`, with only post-layer backward."""
    import torch  # heavy: imported on first use
    layer = get_layer(lm.model, layer_name)
    store: dict = {}
    with _leaf_at(layer, store), torch.enable_grad():
        logits = lm.model(tensor)
        act = store["activation"]
        grad = None
        if need_grads:
            idx = int(logits[0].argmax()) if target_index is None else target_index
            (grad,) = torch.autograd.grad(logits[:, idx].sum(), act)
    return logits.detach(), act.detach(), grad


def compute_cam(lm: LoadedModel, tensor, method: str = "GradCAM", target_index: int | None = None,
                layer_name: str | None = None, lock: threading.RLock | None = None) -> CamResult:
    """The CAM of one preprocessed image (a 1-image batch) for a class (default: the top one)."""
    from pytorch_grad_cam.utils.model_targets import (
        ClassifierOutputTarget,  # heavy: imported on first use
    )
    model = lm.model
    layer_name = layer_name or lm.spec.cam_layer or default_target_layer(model)
    layer = get_layer(model, layer_name)
    reshape = reshape_transform(model)
    with lock or lm.lock:
        cam = _method(method, model, layer, reshape)
        try:
            if method in FAST_METHODS:
                cam.activations_and_grads.release()  # our own hook does the work
                logits, act, grad = fast_activations(lm, tensor, layer_name, target_index,
                                                     need_grads=method not in GRADIENT_FREE)
                target = int(logits[0].argmax()) if target_index is None else target_index
                to_nchw = reshape or (lambda t: t)
                # clones: the library's release() detaches in place, which views refuse
                cam.activations_and_grads.activations = [to_nchw(act).cpu().clone()]
                cam.activations_and_grads.gradients = (
                    [to_nchw(grad).cpu().clone()] if grad is not None else [])
                per_layer = cam.compute_cam_per_layer(tensor, [ClassifierOutputTarget(target)],
                                                      False)
                heat = cam.aggregate_multi_layers(per_layer)[0]
            else:
                if target_index is None:
                    import torch  # heavy: imported on first use
                    with torch.inference_mode():
                        target_index = int(model(tensor)[0].argmax())
                target = target_index
                with _params_trainable(model, method not in GRADIENT_FREE):
                    heat = cam(input_tensor=tensor, targets=[ClassifierOutputTarget(target)])[0]
        finally:
            cam.activations_and_grads.release()
    return CamResult(heatmap=heat.astype(np.float32), method=method, layer=layer_name,
                     target_index=target, target_label=lm.labels[target])


@contextlib.contextmanager
def _params_trainable(model, on: bool):
    """Temporarily let gradients flow through the parameters (the library path needs it)."""
    if not on:
        yield
        return
    flags = [p.requires_grad for p in model.parameters()]
    model.requires_grad_(True)
    try:
        yield
    finally:
        for p, f in zip(model.parameters(), flags):
            p.requires_grad_(f)


def library_cam(lm: LoadedModel, tensor, method: str, target_index: int, layer_name: str,
                lock: threading.RLock | None = None) -> np.ndarray:
    """pytorch_grad_cam's own default path (reference for tests and benchmarks)."""
    from pytorch_grad_cam.utils.model_targets import (
        ClassifierOutputTarget,  # heavy: imported on first use
    )
    layer = get_layer(lm.model, layer_name)
    with (lock or lm.lock, _params_trainable(lm.model, True),
          _method(method, lm.model, layer, reshape_transform(lm.model)) as cam):
        return cam(input_tensor=tensor, targets=[ClassifierOutputTarget(target_index)])[0]


def random_cam(lm: LoadedModel, tensor, layer_name: str, seed: int = 0) -> np.ndarray:
    """RandomCAM's baseline (uniform random channel weights), deterministic by seed."""
    from pytorch_grad_cam.utils.image import scale_cam_image  # heavy: imported on first use
    with lm.lock:
        _, act, _ = fast_activations(lm, tensor, layer_name, None, need_grads=False)
    reshape = reshape_transform(lm.model)
    act = (reshape(act) if reshape else act).cpu().numpy()
    weights = np.random.default_rng(seed).uniform(-1, 1, size=(act.shape[0], act.shape[1]))
    cam = np.maximum((weights[:, :, None, None] * act).sum(axis=1), 0)
    h, w = tensor.shape[-2:]
    return scale_cam_image(scale_cam_image(cam, (w, h)))[0]


def faithfulness(lm: LoadedModel, tensor, heatmap: np.ndarray, target_index: int,
                 layer_name: str, lock: threading.RLock | None = None,
                 percentiles=(20, 80), seed: int = 0) -> Faithfulness:
    """Confidence change keeping only the top-25% region, and ROAD, for this CAM and a random one.

    A faithful map keeps (or raises) the confidence when only its salient region is kept and
    scores a higher ROAD than the random baseline.
    """
    from pytorch_grad_cam.utils.model_targets import (
        ClassifierOutputSoftmaxTarget,  # heavy: imported on first use
    )

    targets = [ClassifierOutputSoftmaxTarget(target_index)]
    with lock or lm.lock:   # every forward pass below: no other thread's hooks see them
        return _faithfulness(lm, tensor, heatmap, targets, layer_name, percentiles, seed)


def _faithfulness(lm, tensor, heatmap, targets, layer_name, percentiles, seed) -> Faithfulness:
    import torch  # heavy: imported on first use
    from pytorch_grad_cam.metrics.cam_mult_image import (
        CamMultImageConfidenceChange,  # heavy: imported on first use
    )
    from pytorch_grad_cam.metrics.road import ROADCombined  # heavy: imported on first use
    rand = random_cam(lm, tensor, layer_name, seed=seed)
    scores = []
    for cam in (heatmap, rand):
        keep = (cam >= np.percentile(cam, 75)).astype(np.float32)[None]
        # ROAD's imputer adds noise from torch's global RNG: seed it so scores repeat
        with _RNG_LOCK, torch.random.fork_rng(devices=[]), torch.inference_mode():
            torch.manual_seed(seed)
            change = CamMultImageConfidenceChange()(tensor, keep, targets, lm.model)
            road = ROADCombined(percentiles=list(percentiles))(tensor, cam[None], targets,
                                                              lm.model)
        scores += [float(change[0]), float(road[0])]
    return Faithfulness(keep_top_change=scores[0], road=scores[1],
                        random_keep_top_change=scores[2], random_road=scores[3])


def overlay(rgb: np.ndarray, heatmap: np.ndarray, colormap: str = "jet",
            opacity: float = 0.5) -> np.ndarray:
    """Blend a [0,1] heatmap over an RGB uint8 image with an OpenCV colormap."""
    import cv2  # heavy: imported on first use
    cmap = getattr(cv2, f"COLORMAP_{colormap.upper()}")
    heat = heatmap if heatmap.shape == rgb.shape[:2] else cv2.resize(
        heatmap, (rgb.shape[1], rgb.shape[0]))
    colored = cv2.applyColorMap(np.uint8(255 * np.clip(heat, 0, 1)), cmap)
    colored = cv2.cvtColor(colored, cv2.COLOR_BGR2RGB).astype(np.float32)
    out = (1 - opacity) * rgb.astype(np.float32) + opacity * colored
    return np.clip(out, 0, 255).round().astype(np.uint8)


def heatmap_rgb(heatmap: np.ndarray, colormap: str = "jet") -> np.ndarray:
    return overlay(np.zeros((*heatmap.shape, 3), np.uint8), heatmap, colormap, 1.0)


COLORMAPS = ["jet", "turbo", "inferno", "viridis", "magma", "hot", "plasma"]


@dataclass(frozen=True)
class Explanation:
    """A CAM together with the image as the model saw it."""

    cam: CamResult
    view: np.ndarray          # HxWx3 uint8, the resized and cropped model input

    def overlay(self, colormap: str = "jet", opacity: float = 0.5) -> np.ndarray:
        return overlay(self.view, self.cam.heatmap, colormap, opacity)


def explain(lm: LoadedModel, image, method: str = "GradCAM", target_index: int | None = None,
            layer_name: str | None = None, lock: threading.RLock | None = None) -> Explanation:
    """Preprocess a PIL image and compute its CAM (default target: the top class)."""
    tensor = to_tensor(lm, image)
    return Explanation(compute_cam(lm, tensor, method, target_index, layer_name, lock),
                       model_view(lm, tensor))


def explain_faithfulness(lm: LoadedModel, image, explanation: Explanation,
                         lock: threading.RLock | None = None) -> Faithfulness:
    return faithfulness(lm, to_tensor(lm, image), explanation.cam.heatmap,
                        explanation.cam.target_index, explanation.cam.layer, lock)


def detector_cam(detector, image, boxes_xyxy: np.ndarray, model_labels: list[int],
                 lock: threading.RLock | None = None) -> np.ndarray:
    """EigenCAM of a torchvision Faster R-CNN's backbone (FPN) for an image, HxW in [0, 1].

    EigenCAM needs no gradients, so it shows what fired in the backbone for this image; the
    boxes and labels given are the detections being explained (pytorch_grad_cam's target).
    """
    from pytorch_grad_cam import EigenCAM  # heavy: imported on first use
    from pytorch_grad_cam.utils.model_targets import (
        FasterRCNNBoxScoreTarget,  # heavy: imported on first use
    )
    from pytorch_grad_cam.utils.reshape_transforms import (
        fasterrcnn_reshape_transform,  # heavy: imported on first use
    )
    from torchvision.transforms.functional import to_tensor  # heavy: imported on first use
    if detector.kind != "torchvision":
        raise ExplainError("Detector CAMs are available for torchvision Faster R-CNN models.")
    tensor = to_tensor(image.convert("RGB")).unsqueeze(0).to(detector.device)
    target = FasterRCNNBoxScoreTarget(labels=list(model_labels),
                                      bounding_boxes=np.asarray(boxes_xyxy).reshape(-1, 4))
    with lock or detector.lock, EigenCAM(detector.model, [detector.model.backbone],
                  reshape_transform=fasterrcnn_reshape_transform) as cam:
        return cam(tensor, targets=[target])[0].astype(np.float32)
