"""Local checkpoint folders: scanning `checkpoints/`, manifests, label files, safe loading.

A checkpoint is a folder `checkpoints/<name>/` with a `model.json` manifest and a weights
file. Weights load from safetensors, or from `.pt`/`.pth` with `torch.load(weights_only=True)`;
a pickle that would run code is refused. Nothing outside the checkpoints root is ever read.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lib.core import settings
from lib.core.errors import CheckpointError, UnsafeCheckpointError
from lib.core.paths import safe_relative

MANIFEST = "model.json"
WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin")
TASKS = ("classification", "segmentation", "detection", "grounding")
_PREFIXES = ("module.", "_orig_mod.")




def safe_path(user_path: str | Path, root: Path | None = None) -> Path:
    """Resolve a user-typed path inside `root` (default: checkpoints/); refuse escapes.

    `..` components, absolute paths elsewhere and symlinks leading out are refused.
    """
    root = (root or checkpoints_dir()).resolve()
    raw = Path(user_path)
    if ".." in raw.parts:
        raise CheckpointError(f"'{user_path}' contains '..'; only paths inside {root} are loaded.")
    candidate = raw if raw.is_absolute() else root / raw
    resolved = candidate.resolve()
    if resolved != root and root not in resolved.parents:
        raise CheckpointError(f"'{user_path}' leads outside {root} (a link or an absolute path); "
                              "only files inside the checkpoints folder are loaded.")
    return resolved


def strip_prefixes(state: dict[str, Any]) -> dict[str, Any]:
    """Remove `module.` (DataParallel) and `_orig_mod.` (torch.compile) key prefixes."""
    out = {}
    for key, value in state.items():
        changed = True
        while changed:
            changed = False
            for prefix in _PREFIXES:
                if key.startswith(prefix):
                    key = key[len(prefix):]
                    changed = True
        out[key] = value
    return out


def load_state_dict(path: str | Path, root: Path | None = None) -> dict[str, Any]:
    """Load a state dict safely from inside the checkpoints root."""
    path = safe_path(path, root)
    if not path.is_file():
        raise CheckpointError(f"Weights file '{path.name}' not found.")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file  # heavy: imported on first use
        try:
            state = load_file(str(path))
        except Exception as exc:  # safetensors raises its own error types
            raise CheckpointError(f"'{path.name}' is not a valid safetensors file: {exc}") from exc
    else:

        import torch  # heavy: imported on first use
        try:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            raise UnsafeCheckpointError(
                f"'{path.name}' was refused: it is a pickle holding Python objects that would run "
                "code when loaded. Save a plain state_dict (torch.save(model.state_dict(), ...)) "
                "or a .safetensors file instead.") from exc
        except (RuntimeError, EOFError, OSError) as exc:
            raise CheckpointError(f"'{path.name}' is corrupt or not a PyTorch file: {exc}") from exc
        for key in ("state_dict", "model_state_dict", "model", "module"):
            if isinstance(state, dict) and isinstance(state.get(key), dict):
                state = state[key]
                break
    if not isinstance(state, dict) or not state:
        raise CheckpointError(f"'{path.name}' holds no state dict.")
    return strip_prefixes(state)


def parse_labels(text: str, filename: str = "") -> list[str]:
    """Parse a label file: one name per line, JSON (list or {index: name}), or Places365.

    Places365 lines look like `/a/abbey 0` and become "abbey" (`/b/bus_interior 1` →
    "bus interior").
    """
    stripped = text.strip()
    if filename.endswith(".json") or stripped.startswith(("[", "{")):
        data = json.loads(stripped)
        if isinstance(data, list):
            return [str(x) for x in data]
        if isinstance(data, dict):
            try:
                return [str(data[k]) for k in sorted(data, key=lambda k: int(k))]
            except (TypeError, ValueError):
                raise CheckpointError(f"Label file '{filename}' maps non-numbers to names.") \
                    from None
        raise CheckpointError(f"Label file '{filename}' is JSON but neither a list nor a dict.")
    lines = [ln.strip() for ln in stripped.splitlines() if ln.strip()]
    if lines and all(ln.startswith("/") and ln.rsplit(" ", 1)[-1].isdigit() for ln in lines):
        pairs = []
        for ln in lines:
            path, index = ln.rsplit(" ", 1)
            name = path.split("/", 2)[-1]  # drop "/a/"
            pairs.append((int(index), name.replace("/", " / ").replace("_", " ")))
        return [name for _, name in sorted(pairs)]
    return lines


def parse_indoor_outdoor(text: str) -> list[str]:
    """Parse an `IO_places365.txt`-style file (`/a/abbey 2`; 1 = indoor, 2 = outdoor)."""
    out = []
    for ln in text.strip().splitlines():
        code = ln.strip().rsplit(" ", 1)[-1]
        out.append({"1": "indoor", "2": "outdoor"}.get(code, "unknown"))
    return out


def checkpoints_dir() -> Path:
    """Where local model folders live (`LENS_CHECKPOINTS`)."""
    return settings.get().checkpoints


# -- manifest schema --------------------------------------------------------------------------

MAX_CLASSES = 100_000
INTERPOLATIONS = ("bilinear", "bicubic", "nearest", "box", "hamming", "lanczos")
CROP_MODES = ("center", "squash", "border")


def _is_int(v: Any, lo: int = 1, hi: int = 1 << 16) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _file_field(m: dict, key: str) -> list[str]:
    v = m.get(key)
    if v is None:
        return []
    if not safe_relative(v):
        return [f"'{key}' must be a file name inside the folder"]
    return []


def manifest_problems(m: dict[str, Any]) -> list[str]:
    """Every problem with a `model.json`, each naming the field and what it should be."""
    problems = []
    task = m.get("task", "classification")
    if task not in TASKS:
        problems.append(f"'task' must be one of {', '.join(TASKS)}")
    arch = m.get("architecture")
    if not isinstance(arch, str) or not arch.strip() or len(arch) > 200:
        problems.append("'architecture' must be a model architecture name (text)")
    for key in ("weights", "labels", "indoor_outdoor"):
        problems += _file_field(m, key)
    for key in ("cam_layer", "description", "label_set", "backbone"):
        if key in m and not isinstance(m[key], str):
            problems.append(f"'{key}' must be text")
    if "num_classes" in m and not _is_int(m["num_classes"], 1, MAX_CLASSES):
        problems.append(f"'num_classes' must be a whole number from 1 to {MAX_CLASSES}")
    for key in ("fpn_channels", "min_size", "max_size", "img_size"):
        if key in m and not _is_int(m[key], 1, 4096):
            problems.append(f"'{key}' must be a whole number from 1 to 4096")
    if "detr" in m:
        d = m["detr"]
        if not isinstance(d, dict) or not all(
                _is_int(v, 0, 4096) for k, v in d.items() if k != "out_indices") or not (
                isinstance(d.get("out_indices", [0]), list)
                and all(_is_int(v, 0, 8) for v in d.get("out_indices", [0]))):
            problems.append("'detr' must hold whole numbers (d_model, layers, num_queries, "
                            "out_indices)")
    pre = m.get("preprocessing")
    if pre is not None:
        if not isinstance(pre, dict):
            problems.append("'preprocessing' must be an object")
        else:
            size = pre.get("input_size", [3, 224, 224])
            if not (isinstance(size, list) and len(size) == 3 and size[0] in (1, 3)
                    and all(_is_int(v, 1, 4096) for v in size)):
                problems.append("'preprocessing.input_size' must be [3, height, width] "
                                "(at most 4096)")
            for key in ("mean", "std"):
                v = pre.get(key, [0.5, 0.5, 0.5])
                if not (isinstance(v, list) and len(v) == 3 and all(_is_num(x) for x in v)
                        and (key == "mean" or all(x > 0 for x in v))):
                    problems.append(f"'preprocessing.{key}' must be 3 numbers"
                                    + (" above 0" if key == "std" else ""))
            if pre.get("interpolation", "bicubic") not in INTERPOLATIONS:
                problems.append(f"'preprocessing.interpolation' must be one of "
                                f"{', '.join(INTERPOLATIONS)}")
            crop = pre.get("crop_pct", 0.875)
            if not (_is_num(crop) and 0 < crop <= 2):
                problems.append("'preprocessing.crop_pct' must be a number in (0, 2]")
            if pre.get("crop_mode", "center") not in CROP_MODES:
                problems.append(f"'preprocessing.crop_mode' must be one of {', '.join(CROP_MODES)}")
    return problems


def _read_text(path: Path, limit: int = 16 << 20) -> str:
    with path.open("rb") as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise CheckpointError(f"'{path.name}' is larger than {limit >> 20} MB")
    return data.decode("utf-8", "replace")


@dataclass
class Checkpoint:
    """One folder under checkpoints/: its manifest, or why it cannot be used."""

    name: str
    folder: Path
    manifest: dict[str, Any] = field(default_factory=dict)
    weights: Path | None = None
    labels: list[str] | None = None
    indoor_outdoor: list[str] | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def task(self) -> str:
        return self.manifest.get("task", "classification")

    @property
    def architecture(self) -> str:
        return str(self.manifest.get("architecture", ""))


def read_checkpoint(folder: Path) -> Checkpoint:
    """Read and validate one checkpoint folder; problems end up in `.error`, never raised."""
    ckpt = Checkpoint(name=folder.name, folder=folder)
    try:
        root = folder.parent
        manifest_path = safe_path(folder / MANIFEST, root)
        if not manifest_path.is_file():
            raise CheckpointError(f"no {MANIFEST} manifest in the folder")
        try:
            manifest = json.loads(_read_text(manifest_path, 1 << 20))
        except json.JSONDecodeError as exc:
            raise CheckpointError(f"{MANIFEST} is not valid JSON ({exc})") from exc
        if not isinstance(manifest, dict):
            raise CheckpointError(f"{MANIFEST} must be a JSON object")
        problems = manifest_problems(manifest)
        if problems:
            raise CheckpointError(f"{MANIFEST}: " + "; ".join(problems))
        ckpt.manifest = manifest
        weights_name = manifest.get("weights")
        if weights_name:
            weights = safe_path(folder / weights_name, root)
        else:
            found = sorted(p for p in folder.iterdir() if p.suffix in WEIGHT_SUFFIXES)
            if not found:
                raise CheckpointError("no weights file (*.safetensors, *.pt, *.pth)")
            weights = safe_path(found[0], root)
        if not weights.is_file():
            raise CheckpointError(f"weights file '{weights.name}' is missing")
        ckpt.weights = weights
        if manifest.get("labels"):
            labels_path = safe_path(folder / manifest["labels"], root)
            if not labels_path.is_file():
                raise CheckpointError(f"labels file '{manifest['labels']}' is missing")
            ckpt.labels = parse_labels(_read_text(labels_path), labels_path.name)
        n = manifest.get("num_classes")
        if n is not None and ckpt.labels is not None and len(ckpt.labels) != int(n):
            raise CheckpointError(f"labels file has {len(ckpt.labels)} names but the model has "
                                  f"{n} classes")
        if manifest.get("indoor_outdoor"):
            io_path = safe_path(folder / manifest["indoor_outdoor"], root)
            if io_path.is_file():
                ckpt.indoor_outdoor = parse_indoor_outdoor(_read_text(io_path))
    except (CheckpointError, OSError, ValueError) as exc:
        ckpt.error = str(exc)
    except Exception as exc:  # noqa: BLE001 - one broken folder never breaks a page
        ckpt.error = f"cannot be read ({type(exc).__name__})"
    if ckpt.error:
        ckpt.manifest = {k: v for k, v in ckpt.manifest.items() if k == "task"
                         and v in TASKS}
    return ckpt


def scan(root: Path | None = None) -> list[Checkpoint]:
    """Every folder under the checkpoints root, usable or not (with the reason); read-only.

    Pages ask on every rerun, several times. The folders are read again only when a name,
    size or modification time in the root or in one of its folders changed (`_signature`):
    otherwise the last reading is returned."""
    root = root or checkpoints_dir()
    signature = _signature(root)
    if signature is None:
        return []
    with _scan_lock:
        last = _scanned.get(root)
    if last is not None and last[0] == signature:
        return list(last[1])
    found = [read_checkpoint(root / name) for name, _ in signature]
    with _scan_lock:
        _scanned[root] = (signature, found)
    return list(found)


_scanned: dict[Path, tuple[tuple, list[Checkpoint]]] = {}   # root -> (signature, reading)
_scan_lock = threading.Lock()


def _signature(root: Path) -> tuple | None:
    """What `scan` reads, in names, sizes and modification times (links followed): each
    checkpoint folder and the entries inside it; None when the root is not a folder."""
    def listing(folder) -> tuple:
        out = []
        with os.scandir(folder) as entries:
            for e in entries:
                try:
                    st = e.stat()
                    out.append((e.name, st.st_size, st.st_mtime_ns))
                except OSError:          # a dangling link: read_checkpoint says what it is
                    out.append((e.name, -1, -1))
        return tuple(sorted(out))
    try:
        folders = sorted(e.name for e in os.scandir(root)
                         if e.is_dir() and not e.name.startswith((".", "_")))
        return tuple((name, listing(root / name)) for name in folders)
    except OSError:
        return None
