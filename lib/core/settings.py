"""Every `LENS_*` setting, read in one place (the README's Settings table lists the same).

`get()` reads the environment on each call (cheap), so a test or an operator that changes a
variable after import is honoured. Defaults are the values documented in the README.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path

from lib.core.errors import SettingError

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Setting:
    env: str
    default: str
    help: str


#: name -> (environment variable, default as text, what it is). Order = README order.
SETTINGS: dict[str, Setting] = {s.env: s for s in [
    Setting("LENS_MODEL_BUDGET_MB", "6144", "memory for everything Lens keeps: models "
            "(detector jobs' too), SAM2 embeddings, video tracking sessions"),
    Setting("LENS_MAX_IMAGE_PIXELS", "50000000", "larger images are refused before decoding"),
    Setting("LENS_MAX_VIDEO_SECONDS", "120", "longest video, checked on the decoded frames"),
    Setting("LENS_MAX_VIDEO_PIXELS", "2073600", "largest video frame (1920×1080), checked on "
            "every decoded frame"),
    Setting("LENS_MAX_VIDEO_FRAMES", "7200", "most frames read from one video"),
    Setting("LENS_SAM_MAX_SECONDS", "600", "longest clip the video tracker takes (frames are "
            "streamed, so memory does not grow with it)"),
    Setting("LENS_SAM_MAX_PIXELS", "2073600", "largest frame the video tracker takes "
            "(1920×1080)"),
    Setting("LENS_SAM_OFFLOAD_STATE", "1", "1: a tracking session's memory bank lives in CPU "
            "memory (less GPU memory); 0: on the model's device (faster on a GPU)"),
    Setting("LENS_MAX_JSON_MB", "200", "largest JSON file read (COCO annotations, results, "
            "manifests)"),
    Setting("LENS_MAX_ZIP_ENTRIES", "20000", "most entries in an uploaded zip"),
    Setting("LENS_MAX_ZIP_MB", "2048", "most bytes an uploaded zip may unpack to"),
    Setting("LENS_MAX_ZIP_RATIO", "200", "highest compression ratio of a zip entry"),
    Setting("LENS_MAX_CATEGORIES", "2000", "most categories in a COCO dataset"),
    Setting("LENS_CHECKPOINTS", str(PROJECT_ROOT / "checkpoints"),
            "where local model folders are scanned"),
    Setting("LENS_DATA_ROOTS", os.pathsep.join([str(PROJECT_ROOT.parent),
                                                str(PROJECT_ROOT.parent / "shared")]),
            "folders typed paths may read (os.pathsep-separated; links resolved): by default "
            "the folder holding the project and the team's `../shared`"),
    Setting("LENS_CACHE", str(Path.home() / ".cache" / "lens"),
            "Lens' cache: detections, runs, demo data, temporary files"),
    Setting("LENS_SCRATCH_MB", "4096", "cap on temporary files (uploads, unpacked zips, "
            "renders) under LENS_CACHE/scratch; the oldest go first"),
    Setting("LENS_HEAVY_SLOTS", "auto", "heavy tasks (CAMs, SAM2, evaluations, detector "
            "batches) run at once; the rest wait in a fair queue. auto: the CPU cores minus "
            "one, so a core stays free for opening pages and other light work; torch in "
            "heavy tasks then uses (cores - 1) / slots threads (set the GPU count on a GPU "
            "server)"),
    Setting("LENS_RAY_ADDRESS", "", "Ray cluster for dataset-scale inference (`host:port`, "
            "`ray://host:10001` or `auto`); empty: Ray's own RAY_ADDRESS, else a local Ray"),
    Setting("LENS_RAY_WORKERS", "2", "actors of a local Ray (and its CPUs)"),
    Setting("LENS_EMBED_MAX_OBJECTS", "1000000", "most boxes one embedding job takes (the "
            "projections of 10^6 objects hold about 0.5 GB)"),
    Setting("LENS_WANDB_DIR", str(Path.home() / ".cache" / "lens" / "benchmarks"),
            "where 'Log to W&B' writes offline benchmark runs"),
    Setting("LENS_RUN_LOG", "", "if set, a file each page run's duration is appended to "
            "(JSON lines: page, seconds, whether it did heavy work); bench/load.py reads it"),
]}


@dataclass(frozen=True)
class Settings:
    model_budget_mb: int
    max_image_pixels: int
    max_video_seconds: float
    max_video_pixels: int
    max_video_frames: int
    sam_max_seconds: float
    sam_max_pixels: int
    sam_offload_state: bool
    max_json_mb: float
    max_zip_entries: int
    max_zip_mb: float
    max_zip_ratio: float
    max_categories: int
    checkpoints: Path
    data_roots: tuple[Path, ...]
    cache: Path
    scratch_mb: float
    heavy_slots: int            # 0: auto
    ray_address: str
    ray_workers: int
    embed_max_objects: int
    wandb_dir: Path
    run_log: str


def _text(env: str) -> str:
    value = os.environ.get(env, "").strip()
    return value or SETTINGS[env].default


def _number(env: str, kind=int):
    text = _text(env)
    try:
        value = kind(float(text)) if kind is int else kind(text)
    except ValueError:
        raise SettingError(f"{env}={text!r} is not a number; unset it or give a number "
                         f"(default {SETTINGS[env].default}).") from None
    if value <= 0:
        raise SettingError(f"{env}={text!r} must be positive.")
    return value


def get() -> Settings:
    """The settings as the environment gives them now."""
    roots = tuple(Path(p).expanduser() for p in _text("LENS_DATA_ROOTS").split(os.pathsep) if p)
    cache = _cache()
    return Settings(
        model_budget_mb=_number("LENS_MODEL_BUDGET_MB"),
        max_image_pixels=_number("LENS_MAX_IMAGE_PIXELS"),
        max_video_seconds=_number("LENS_MAX_VIDEO_SECONDS", float),
        max_video_pixels=_number("LENS_MAX_VIDEO_PIXELS"),
        max_video_frames=_number("LENS_MAX_VIDEO_FRAMES"),
        sam_max_seconds=_number("LENS_SAM_MAX_SECONDS", float),
        sam_max_pixels=_number("LENS_SAM_MAX_PIXELS"),
        sam_offload_state=_text("LENS_SAM_OFFLOAD_STATE").strip() != "0",
        max_json_mb=_number("LENS_MAX_JSON_MB", float),
        max_zip_entries=_number("LENS_MAX_ZIP_ENTRIES"),
        max_zip_mb=_number("LENS_MAX_ZIP_MB", float),
        max_zip_ratio=_number("LENS_MAX_ZIP_RATIO", float),
        max_categories=_number("LENS_MAX_CATEGORIES"),
        checkpoints=Path(_text("LENS_CHECKPOINTS")).expanduser(),
        data_roots=roots,
        cache=cache,
        scratch_mb=_number("LENS_SCRATCH_MB", float),
        heavy_slots=0 if _text("LENS_HEAVY_SLOTS") == "auto" else _number("LENS_HEAVY_SLOTS"),
        ray_address=os.environ.get("LENS_RAY_ADDRESS", "").strip(),
        ray_workers=_number("LENS_RAY_WORKERS"),
        embed_max_objects=_number("LENS_EMBED_MAX_OBJECTS"),
        wandb_dir=Path(os.environ.get("LENS_WANDB_DIR", "").strip() or cache / "benchmarks"),
        run_log=os.environ.get("LENS_RUN_LOG", "").strip(),
    )


def cache_dir(*parts: str) -> Path:
    """A folder under LENS_CACHE (not created); the setting read alone (hot paths ask for
    it once per file)."""
    return _cache().joinpath(*parts)


def _cache() -> Path:
    return Path(_text("LENS_CACHE")).expanduser()


assert len(SETTINGS) == len(fields(Settings)), "every setting has a field"
