"""What each segmentation checkpoint measured, read from its manifest (numbers only: a
manifest is input like any other), and what follows for the page: trained on synthetic shapes
only, trained by Lens on real masks, a memory path never trained."""

from __future__ import annotations

import math

from lib.models import registry

SYNTHETIC_LABEL_SET = "synthetic shapes"


def _figures(spec: registry.ModelSpec, key: str, prefix: str = "") -> dict[str, float]:
    """The numeric figures of a manifest's `key` section, named `prefix` + their name
    (numbers only: a manifest is input like any other)."""
    section = (spec.manifest or {}).get(key)
    section = section if isinstance(section, dict) else {}
    return {prefix + k: v for k, v in section.items() if isinstance(v, (int, float))
            and not isinstance(v, bool) and math.isfinite(v)}


def synthetic_models() -> dict[str, dict]:
    """Segmentation checkpoints trained on synthetic shapes only, name -> the figures their
    manifest measured."""
    return {spec.name: _figures(spec, "metrics") for spec in registry.all_specs("segmentation")
            if spec.label_set == SYNTHETIC_LABEL_SET}


def measured_figures() -> dict[str, dict]:
    """Every segmentation checkpoint that records measured figures, name -> its figures:
    `metrics` as they are (the demo pack's, on synthetic data), then `val:` (its own
    validation images, `lib.train segmenter`), `held_out:` (real photos never trained or
    tuned on) and `real_clips:` (tracking on real-texture clips) before each name."""
    out = {}
    for spec in registry.all_specs("segmentation"):
        figs = {**_figures(spec, "metrics"), **_figures(spec, "val", "val:"),
                **_figures(spec, "held_out", "held_out:"),
                **_figures(spec, "real_clips", "real_clips:")}
        if spec.source == "checkpoint" and figs:
            out[spec.name] = figs
    return out


def untrained_memory() -> set[str]:
    """Segmentation checkpoints whose memory path (SAM 2 / EdgeTAM video) was never trained:
    those trained on synthetic shapes only, and those whose manifest says so (`memory_path`
    "untrained", as Lens' demo segmenter fine-tuned on photos). They track by points."""
    return {spec.name for spec in registry.all_specs("segmentation")
            if spec.label_set == SYNTHETIC_LABEL_SET
            or (spec.manifest or {}).get("memory_path") == "untrained"}


def own_models() -> set[str]:
    """Checkpoints Lens trained on real masks (`lib.train segmenter`): they record figures
    on held-out or validation photos."""
    return {name for name, figs in measured_figures().items()
            if "held_out:box_miou" in figs or "val:box_miou" in figs}
