"""The models Lens can name: those registered next to their builders, typed timm and Hugging
Face ids, and the folders under `checkpoints/`."""

from __future__ import annotations

import re
from pathlib import Path

from lib.models import checkpoints as ckpts
from lib.models.build import known_specs
from lib.models.spec import ModelCreateError, ModelSpec, Preprocess, Task

#: the classifier offered first offline (registered by `lib.classification.classify`)
DEFAULT_CLASSIFIER = "EfficientNet-Lite0 ImageNet (packaged)"


def builtin_specs() -> list[ModelSpec]:
    """The models Lens knows by name: each registered next to the code that builds it
    (`lib.models.build.known`)."""
    return known_specs()


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
    import timm  # heavy: imported on first use
    return timm.is_model(name.split(".")[0])
