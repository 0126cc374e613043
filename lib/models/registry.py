"""The model registry: the models package's interface for finding, checking and building
models. The modules behind it: `spec` (ModelSpec, the `Model` protocol), `catalogue` (names
Lens knows, typed ids, checkpoint folders), `sources` (are the weights here; fetching them),
`build` (builders and model names registered next to their model code). Loading goes through
`lib.models.cache.load`, never through `build` directly."""

from lib.models.build import BUILDERS, build, builder, builders, known, known_specs
from lib.models.catalogue import (
    DEFAULT_CLASSIFIER,
    all_specs,
    builtin_specs,
    check_model_id,
    checkpoint_spec,
    find,
    timm_spec,
    transformers_detector_spec,
)
from lib.models.sources import (
    SOURCES,
    Availability,
    availability,
    best_device,
    fetch,
    hub_reachable,
    imagenet_labels,
    package_state_dict,
)
from lib.models.spec import (
    TASKS,
    LoadedModel,
    Model,
    ModelCreateError,
    ModelSpec,
    Preprocess,
    Source,
    Task,
    WeightsMissingError,
    from_module,
    weights_missing,
)

__all__ = [
    "BUILDERS", "DEFAULT_CLASSIFIER", "SOURCES", "TASKS", "Availability", "LoadedModel",
    "Model", "ModelCreateError", "ModelSpec", "Preprocess", "Source", "Task", "WeightsMissingError",
    "all_specs", "availability", "best_device", "build", "builder", "builders",
    "builtin_specs", "check_model_id", "checkpoint_spec", "fetch", "find", "from_module",
    "hub_reachable", "imagenet_labels", "known", "known_specs", "package_state_dict",
    "timm_spec", "transformers_detector_spec", "weights_missing",
]
