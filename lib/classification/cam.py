"""Class activation maps with pytorch_grad_cam: target layers, every method computed.

Methods that read the target layer's activations and gradients (`methods.FAST`) run on a
fast path: the model's parameters stay frozen and the target layer's output is made a leaf of
the autograd graph, so one forward pass plus a backward pass through only the layers after the
target produce the activations and gradients, shared by every such method of a call. Each map
is then computed by pytorch_grad_cam's own method object (its `get_cam_image` and scaling), so
heatmaps equal the library's. The others (ScoreCAM, AblationCAM, ShapleyCAM...) run through
the library as is; attention rollout is `lib.classification.attention`.

Every function that touches hooks takes the model's lock (from `lib.models.cache`), so concurrent
sessions never see each other's hooks.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import threading
import time
from dataclasses import dataclass

import numpy as np

from lib.classification.classify import model_view, to_tensor
from lib.classification.layers import (
    default_target_layer,
    get_layer,
    layer_choices,
    refine_layers,
    reshape_transform,
)
from lib.classification.methods import (
    ATTENTION,
    CATALOGUE,
    FAST,
    FAST_METHODS,
    OCCLUSION,
    SLOW,
    Method,
    applicable,
    installed,
    is_vit,
    method,
)
from lib.core.errors import ExplainError
from lib.models.registry import LoadedModel

__all__ = [  # what callers use as cam.*, the layer and method helpers included
    "ATTENTION", "BATCH", "CATALOGUE", "COLORMAPS", "FAST", "FAST_METHODS", "MEASURED", "SLOW",
    "CamResult", "Method", "applicable", "check_target",
    "compute_cam", "compute_cams", "default_target_layer", "detector_cam", "explain",
    "fast_activations", "get_layer", "heatmap_rgb", "installed", "is_vit", "layer_choices",
    "library_cam", "measured_time", "method", "overlay", "refine_layers", "reshape_transform",
]

# -- computing CAMs ---------------------------------------------------------------------------

#: Images per forward pass where a method makes many (ScoreCAM, AblationCAM): the fastest per
#: image on the team's CPU (`bench/cam_rank.py`); the maps do not depend on it.
BATCH = 4


def _options(m: Method, given: dict | None) -> tuple[dict, dict]:
    """(constructor kwargs, call kwargs) from a method's defaults overridden by `given`."""
    values = {**m.defaults(), **{k: v for k, v in (given or {}).items() if k in m.defaults()}}
    for o in m.options:
        if len(o.choices) == 2 and isinstance(o.default, (int, float)) and not isinstance(
                o.default, bool):
            low, high = o.choices
            try:
                v = type(o.default)(values[o.name])
            except (TypeError, ValueError):
                raise ExplainError(f"{m.name}: '{o.name}' must be a number.") from None
            if not (low <= v <= high and math.isfinite(v)):
                raise ExplainError(f"{m.name}: '{o.name}' must be between {low} and {high}.")
            values[o.name] = v
        elif o.choices and values[o.name] not in o.choices:
            raise ExplainError(f"{m.name}: '{o.name}' must be one of {', '.join(o.choices)}.")
    init = {o.name: values[o.name] for o in m.options if o.at == "init"}
    call = {o.name: values[o.name] for o in m.options if o.at == "call"}
    return init, call


@dataclass(frozen=True)
class CamResult:
    """One method's map on one image for one class: the one result every CAM path returns
    (one method, every method at once, an explanation with the image as the model saw it).
    A method that failed has no map and says why; `seconds` is what it cost alone here."""

    method: str
    heatmap: np.ndarray | None     # HxW float32 in [0, 1], at the model's input size
    layer: str = ""
    target_index: int = -1
    target_label: str = ""
    seconds: float = 0.0
    error: str = ""
    view: np.ndarray | None = None  # HxWx3 uint8: the resized, cropped model input (`explain`)

    def overlay(self, colormap: str = "jet", opacity: float = 0.5) -> np.ndarray:
        """The map over the image as the model saw it (results of `explain`)."""
        return overlay(self.view, self.heatmap, colormap, opacity)


@contextlib.contextmanager
def _hooked(cam):
    """A method object whose hooks are released afterwards, whether or not the library's
    class is a context manager (RefineCAM and FinerCAM wrap other method objects)."""
    try:
        yield cam
    finally:
        for inner in [cam, getattr(cam, "base_cam", None),
                      *getattr(cam, "base_cam_per_layer", [])]:
            hooks = getattr(inner, "activations_and_grads", None)
            if hooks is not None:
                hooks.release()


def _method(name: str, model, layer_name: str, reshape, init: dict | None = None):
    import pytorch_grad_cam  # heavy: imported on first use
    m = method(name)
    cls = getattr(pytorch_grad_cam, m.cls)
    names = refine_layers(model, layer_name) if m.name == "RefineCAM" else [layer_name]
    layers = [] if m.name == "FullGrad" else [get_layer(model, n) for n in names]
    if m.name == "FullGrad":
        with contextlib.redirect_stdout(None):   # it prints that target layers are ignored
            return _hooked(cls(model=model, target_layers=layers, reshape_transform=reshape))
    obj = cls(model=model, target_layers=layers, reshape_transform=reshape, **init or {})
    if hasattr(obj, "batch_size") or m.name == "ScoreCAM":
        obj.batch_size = BATCH   # the library's 16 or 32 is slower per image on a CPU
    return _hooked(obj)


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


def check_target(lm: LoadedModel, target_index: int | None) -> None:
    if target_index is not None and not 0 <= int(target_index) < len(lm.labels):
        raise ExplainError(f"Class index {target_index} is out of range: the model has "
                           f"{len(lm.labels)} classes (0–{len(lm.labels) - 1}).")


def compute_cams(lm: LoadedModel, tensor, names: list[str], target_index: int,
                 layer_name: str, options: dict | None = None,
                 lock: threading.RLock | None = None, on_done=None) -> list[CamResult]:
    """Every named method's map for one image and class. Methods on the fast path share one
    forward (and short backward) pass; a method that fails gets its error, the rest go on.
    `options`: method name -> its options. `on_done(computed)` after each method."""
    from pytorch_grad_cam.utils.model_targets import (
        ClassifierOutputTarget,  # heavy: imported on first use
    )
    check_target(lm, target_index)
    model, reshape = lm.model, reshape_transform(lm.model)
    get_layer(model, layer_name)
    to_nchw = reshape or (lambda t: t)
    wanted = [method(n) for n in names]
    out: list[CamResult] = []
    shared: dict = {}
    with lock or lm.lock:
        for m in wanted:
            start = time.perf_counter()
            try:
                init, call = _options(m, (options or {}).get(m.name))
                if m.path == ATTENTION:
                    from lib.classification.attention import rollout
                    heat = rollout(model, tensor)
                elif m.path == OCCLUSION:
                    from lib.classification.occlusion import sensitivity
                    heat = sensitivity(model, tensor, target_index)
                elif m.path == FAST:
                    if not shared:   # the one pass every fast method of this call reads
                        _, act, grad = fast_activations(lm, tensor, layer_name, target_index)
                        # clones: the library's release() detaches in place, which views refuse
                        shared.update(act=to_nchw(act).cpu().clone(),
                                      grad=to_nchw(grad).cpu().clone(),
                                      pass_s=time.perf_counter() - start)
                        start = time.perf_counter()
                    with _method(m.name, model, layer_name, reshape, init) as cam:
                        cam.activations_and_grads.release()  # the shared pass did the work
                        cam.activations_and_grads.activations = [shared["act"].clone()]
                        cam.activations_and_grads.gradients = (
                            [shared["grad"].clone()] if m.gradients else [])
                        per_layer = cam.compute_cam_per_layer(
                            tensor, [ClassifierOutputTarget(target_index)], False)
                        heat = cam.aggregate_multi_layers(per_layer)[0]
                else:
                    with _params_trainable(model, m.gradients), \
                            _method(m.name, model, layer_name, reshape, init) as cam:
                        if m.name == "FinerCAM":
                            heat = cam(input_tensor=tensor, targets=None, target_idx=target_index,
                                       **call)[0]
                        else:
                            heat = cam(input_tensor=tensor,
                                       targets=[ClassifierOutputTarget(target_index)], **call)[0]
                seconds = time.perf_counter() - start
                if m.path == FAST:
                    seconds += shared["pass_s"]    # what it costs alone
                heat = np.nan_to_num(np.asarray(heat, dtype=np.float32))
                done = CamResult(m.name, heat, layer_name, target_index,
                                 lm.labels[target_index], seconds)
            except (ExplainError, RuntimeError, ValueError, IndexError, TypeError,
                    np.linalg.LinAlgError) as exc:   # one failing method must not stop the rest
                done = CamResult(m.name, None, layer_name, target_index,
                                 lm.labels[target_index], time.perf_counter() - start,
                                 f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
                                 if not isinstance(exc, ExplainError) else str(exc))
            _record_time(lm, m.name, done)
            out.append(done)
            if on_done:
                on_done(done)
    return out


#: (model name, method) -> its latest measured time alone on this machine (the method picker).
MEASURED: dict[tuple[str, str], float] = {}


def _record_time(lm: LoadedModel, name: str, done: CamResult) -> None:
    if done.heatmap is not None:
        MEASURED[(lm.spec.name, name)] = done.seconds


def measured_time(model_name: str, name: str) -> float | None:
    return MEASURED.get((model_name, name))


def compute_cam(lm: LoadedModel, tensor, method: str = "GradCAM", target_index: int | None = None,
                layer_name: str | None = None, lock: threading.RLock | None = None,
                options: dict | None = None) -> CamResult:
    """The CAM of one preprocessed image (a 1-image batch) for a class (default: the top one)."""
    import torch  # heavy: imported on first use
    check_target(lm, target_index)
    layer_name = layer_name or lm.spec.cam_layer or default_target_layer(lm.model)
    get_layer(lm.model, layer_name)
    with lock or lm.lock:
        if target_index is None:
            with torch.inference_mode():
                target_index = int(lm.model(tensor)[0].argmax())
        (done,) = compute_cams(lm, tensor, [method], target_index, layer_name,
                               {method: options or {}}, lock)
    if done.heatmap is None:
        raise ExplainError(f"{method} failed on layer '{layer_name}': {done.error}",
                           "Pick another layer or method.")
    return done


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
        model.zero_grad(set_to_none=True)


def library_cam(lm: LoadedModel, tensor, method: str, target_index: int, layer_name: str,
                lock: threading.RLock | None = None, options: dict | None = None) -> np.ndarray:
    """pytorch_grad_cam's own default path (reference for tests and benchmarks)."""
    from pytorch_grad_cam.utils.model_targets import (
        ClassifierOutputTarget,  # heavy: imported on first use
    )
    m = globals()["method"](method)
    init, call = _options(m, options)
    with (lock or lm.lock, _params_trainable(lm.model, True),
          _method(method, lm.model, layer_name, reshape_transform(lm.model), init) as cam):
        if m.name == "FinerCAM":
            return cam(input_tensor=tensor, targets=None, target_idx=target_index, **call)[0]
        return cam(input_tensor=tensor, targets=[ClassifierOutputTarget(target_index)],
                   **call)[0]


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


def explain(lm: LoadedModel, image, method: str = "GradCAM", target_index: int | None = None,
            layer_name: str | None = None, lock: threading.RLock | None = None,
            options: dict | None = None) -> CamResult:
    """Preprocess a PIL image and compute its CAM (default target: the top class), with the
    image as the model saw it (`view`, for `overlay`)."""
    tensor = to_tensor(lm, image)
    return dataclasses.replace(compute_cam(lm, tensor, method, target_index, layer_name, lock,
                                           options), view=model_view(lm, tensor))


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
