"""Building a model from its spec: each builder registers itself next to its model code
(`@builder(task, source)`); `build` is their only caller and `cache.load` the only caller
of `build` outside tests and training."""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Callable

from lib.models.sources import best_device
from lib.models.spec import (
    Model,
    ModelCreateError,
    ModelSpec,
    Source,
    Task,
)

Builder = Callable[[ModelSpec, str], Model]

#: (what the model is loaded for, weight source) -> the function that builds it, as
#: builder(spec, device). Filled by `@builder` next to each model's code.
BUILDERS: dict[tuple[Task, Source], Builder] = {}

#: The modules whose builders register themselves: `build` imports them before its first
#: look-up, so the table is never found half empty (they import lib.models, so lib.models
#: cannot import them at its own import time).
BUILDER_MODULES = ("lib.classification.classify", "lib.detection.detectors",
                   "lib.segmentation.segment", "lib.segmentation.grounding",
                   "lib.segmentation.segment_video")


def builder(task: Task | str, *sources: Source | str) -> Callable[[Builder], Builder]:
    """Register the decorated function as the builder of `task` models from `sources`."""
    def register(fn: Builder) -> Builder:
        for source in sources:
            key = (Task(task), Source(source))
            if BUILDERS.get(key, fn) is not fn:
                raise RuntimeError(f"two builders for {key}: {BUILDERS[key]} and {fn}")
            BUILDERS[key] = fn
        return fn
    return register


def builders() -> dict[tuple[Task, Source], Builder]:
    """The whole table, every builder module imported."""
    for module in BUILDER_MODULES:
        importlib.import_module(module)
    return BUILDERS


# Two threads importing from transformers for the first time at once can fail ("cannot import
# name 'Sam2Processor'": seen when a page run built the demo segmenter while the run before it
# was still building its video model), so builds, which do those imports, take turns.
_BUILDING = threading.RLock()


def build(spec: ModelSpec, task: str | None = None, device: str | None = None) -> Model:
    """Build `spec` for `task` (default: its own) with its real weights, or raise a clear
    error. Never returns random weights in place of missing ones."""
    wanted = Task(task or spec.task)
    if spec.error:
        raise ModelCreateError(f"Checkpoint '{spec.name}' cannot load: {spec.error}")
    made_from = Task.SEGMENTATION if wanted == Task.TRACKING else wanted
    if spec.task != made_from:
        raise ModelCreateError(f"'{spec.name}' is a {spec.task} model, not a {wanted} model.",
                               "Load it from its own page.")
    make = builders().get((wanted, spec.source))
    if make is None:
        raise ModelCreateError(f"'{spec.name}' ({spec.source}) cannot be loaded for {wanted}.")
    with _BUILDING:      # one build at a time: transformers' lazy imports are not thread-safe
        model = make(spec, device or best_device())
    if not isinstance(model, Model):
        raise TypeError(f"the builder of {spec.name} returned {type(model).__name__}, "
                        "which is not a lib.models.spec.Model")
    return model


