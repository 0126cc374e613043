"""Building a model from its spec, timm's `@register_model` shape: next to its model code,
each builder registers itself (`@builder(task, source)`) and the models it knows by name
(`known(spec, ...)`); `build` is the builders' only caller and `cache.load` the only caller
of `build` outside tests and training.

The registering modules are found, not listed: `discover` imports every package of `lib`, and
a package whose modules build models imports them in its `__init__` (as `timm.models` does),
so adding a model family never edits this package.
"""

from __future__ import annotations

import importlib
import pkgutil
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

#: name -> spec of every model Lens knows by name, in registration order. Filled by `known`
#: next to each model's code.
KNOWN: dict[str, ModelSpec] = {}


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


def known(*specs: ModelSpec) -> None:
    """Register models Lens knows by name (called next to the code that builds them)."""
    for spec in specs:
        if KNOWN.get(spec.name, spec) != spec:
            raise RuntimeError(f"two models named {spec.name!r}")
        KNOWN[spec.name] = spec


_discovered = False


def discover() -> None:
    """Import every package of `lib` once, so each has registered its builders and models.
    The tables are never read half full: `builders` and `known_specs` call this first."""
    global _discovered
    if _discovered:
        return
    import lib
    whole = True
    for found in pkgutil.iter_modules(lib.__path__):
        if found.ispkg:
            package = importlib.import_module(f"lib.{found.name}")
            # asked while that package is still being imported (a look-up at import time):
            # what it registers is not there yet, so look again next time
            whole = whole and not getattr(package.__spec__, "_initializing", False)
    _discovered = whole


def builders() -> dict[tuple[Task, Source], Builder]:
    """The whole table, every package's builders registered."""
    discover()
    return BUILDERS


def known_specs() -> list[ModelSpec]:
    """Every model Lens knows by name, every package's registered: by task, then in the order
    they were registered (the same in every process, whatever was imported first)."""
    discover()
    order = list(Task)
    return sorted(KNOWN.values(), key=lambda spec: order.index(Task(spec.task)))


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


