"""What this machine offers: compute device and library versions (cheap to call)."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from importlib import metadata

LIBRARIES = ["streamlit", "torch", "torchvision", "timm", "grad-cam", "transformers",
             "opencv-python-headless", "plotly", "wandb", "faster-coco-eval", "pycocotools",
             "av", "pillow"]


@dataclass(frozen=True)
class DeviceInfo:
    kind: str          # cuda | mps | cpu
    name: str          # e.g. "NVIDIA H100" or the CPU's description
    memory_gb: float | None


def library_versions() -> dict[str, str]:
    """Installed versions, read from package metadata (no imports)."""
    out = {}
    for lib in LIBRARIES:
        try:
            out[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            out[lib] = "not installed"
    return out


def device_info() -> DeviceInfo:
    """The best compute device torch can use here."""
    import torch  # heavy: imported on first use
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        return DeviceInfo("cuda", props.name, round(props.total_memory / 2**30, 1))
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return DeviceInfo("mps", "Apple Metal (MPS)", None)
    return DeviceInfo("cpu", f"{platform.processor() or platform.machine()} "
                             f"({os.cpu_count()} cores)", None)
