"""The model registry: specs, offline readiness, real packaged weights, missing weights."""

import pytest
import torch

from lib.models import registry, weights


def test_builtin_catalogue_covers_every_task():
    specs = registry.builtin_specs()
    assert {s.task for s in specs} == {"classification", "segmentation", "detection", "grounding"}
    names = [s.name for s in specs]
    assert len(names) == len(set(names))
    assert registry.DEFAULT_CLASSIFIER in names
    from lib.classification import classify
    for arch in classify.CURATED_TIMM:
        assert registry.find(arch).source == "timm"


def test_a_fresh_process_finds_every_builder_and_model_without_importing_them():
    """Nothing lists the registering modules: a process that imports only the registry finds
    the same builders and models as one that imported every capability."""
    import json
    import subprocess
    import sys

    from tests.conftest import ROOT
    code = ("import json; from lib.models import registry; print(json.dumps([sorted("
            "f'{t}/{s}' for t, s in registry.builders()), [s.name for s in "
            "registry.builtin_specs()]]))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    fresh_builders, fresh_names = json.loads(out)
    assert fresh_builders == sorted(f"{t}/{s}" for t, s in registry.builders())
    assert fresh_names == [s.name for s in registry.builtin_specs()]
    assert len(fresh_builders) == 12 and len(fresh_names) == 26


def test_a_second_model_of_the_same_name_is_refused():
    import dataclasses
    spec = registry.builtin_specs()[0]
    registry.known(spec)                                  # the same spec again: no change
    with pytest.raises(RuntimeError, match="two models named"):
        registry.known(dataclasses.replace(spec, description="another"))


def test_unknown_model_names_the_fix():
    with pytest.raises(registry.ModelCreateError,
                       match="Unknown model 'nope_net'.*lib.weights list"):
        registry.find("nope_net")


def test_packaged_default_is_ready_and_matches_reference_weights(shared_assets):
    from safetensors.torch import load_file
    spec = registry.find(registry.DEFAULT_CLASSIFIER)
    assert registry.availability(spec).ready
    loaded = registry.build(spec, device="cpu")
    reference = load_file(shared_assets / "models/tf_efficientnet_lite0_in1k.safetensors")
    state = loaded.model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in reference.items())
    assert loaded.preprocess.mean == (0.5, 0.5, 0.5)  # from timm's data config, not typed in
    assert loaded.preprocess.interpolation == "bicubic"
    assert loaded.labels[285] == "Egyptian cat" and not loaded.untrained


def test_missing_hub_weights_name_the_fetch_command(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    spec = registry.find("resnet50")
    assert not registry.availability(spec).ready
    with pytest.raises(registry.WeightsMissingError) as info:
        registry.build(spec)
    assert "python -m lib.weights fetch 'resnet50'" in str(info.value)


def test_a_model_is_built_only_for_its_own_task():
    with pytest.raises(registry.ModelCreateError, match="segmentation model, not a "
                                                       "classification model"):
        registry.build(registry.find("facebook/sam2.1-hiera-tiny"), "classification")
    with pytest.raises(registry.ModelCreateError, match="is not one Lens knows"):
        registry.ModelSpec(name="x", task="poetry", source="timm", arch="x", weights="x")


def test_every_known_model_has_a_builder_and_a_source_backend():
    """Builders register themselves next to their model code (`@registry.builder`); the
    table is whole once `builders()` discovered the packages, and each builder's module is
    one its package imports in its `__init__` (how discovery finds it)."""
    import importlib
    import sys
    table = registry.builders()
    for spec in registry.all_specs():
        assert spec.source in registry.SOURCES
        assert callable(table[(spec.task, spec.source)])
    for fn in table.values():
        package, module = fn.__module__.rsplit(".", 1)
        assert getattr(importlib.import_module(package), module) is sys.modules[fn.__module__]
    assert {(t.value, s.value) for t, s in table} >= {
        ("classification", "package"), ("classification", "timm"), ("detection", "torchvision"),
        ("detection", "checkpoint"), ("segmentation", "transformers"), ("tracking", "checkpoint"),
        ("grounding", "transformers")}


def test_a_second_builder_for_the_same_slot_is_refused():
    registry.builders()
    with pytest.raises(RuntimeError, match="two builders"):
        registry.builder("classification", "timm")(lambda spec, device: None)


def test_every_loaded_model_satisfies_the_model_protocol():
    """Each wrapper (classifier, detector, segmenter, grounder, tracker) is a `Model`."""
    from lib.detection import detectors
    from lib.segmentation import classical, grounding, segment, segment_video
    made = [registry.from_module(__import__("torch").nn.Linear(2, 2), ["a", "b"]),
            detectors.tiny_detector("torchvision", {1: "cat"}), segment.grabcut_segmenter(),
            grounding.Grounder("g", None, None), classical.ClassicalVideoModel(),
            segment_video.VideoModel("v", None, None)]
    for model in made:
        assert isinstance(model, registry.Model), type(model).__name__
        assert model.label and hasattr(model.lock, "acquire") and model.untrained in (True, False)


def test_cache_load_is_the_one_entry_point(monkeypatch):
    """One key format, one load per (task, name, device), the model's own lock."""
    from lib.models import cache
    models = cache.ModelCache(budget_bytes=1 << 30)
    monkeypatch.setattr(cache, "STORE", models)
    built = []
    monkeypatch.setattr(registry, "build", lambda spec, task, device: built.append(task) or
                        registry.from_module(__import__("torch").nn.Linear(2, 2), ["a", "b"]))
    a = cache.load(registry.DEFAULT_CLASSIFIER, "classification")
    b = cache.load(registry.DEFAULT_CLASSIFIER, "classification")
    assert a.model is b.model and built == ["classification"] and a.lock is a.model.lock
    assert a.untrained and [h.key for h in models.summary()] == [
        f"classification:{registry.DEFAULT_CLASSIFIER}@auto"]


def test_weights_cli_lists_every_model(capsys, checkpoints_dir):
    assert weights.main(["list"]) == 0
    out = capsys.readouterr().out
    assert f"ready    classification {registry.DEFAULT_CLASSIFIER}" in out
    assert "missing  segmentation   facebook/sam2.1-hiera-tiny" in out
    assert out.count("\n") == len(registry.builtin_specs())


def test_weights_cli_fetch_reports_failure(monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert weights.main(["fetch", "nope_net"]) == 1
    assert "error: nope_net: Unknown model" in capsys.readouterr().err


def test_discovery_asked_during_a_package_import_looks_again(monkeypatch):
    """A look-up made while a package is still being imported finds its models missing: the
    registry does not call itself discovered then, so the next look-up imports it again."""
    import lib.detection
    from lib.models import build
    monkeypatch.setattr(build, "_discovered", False)
    monkeypatch.setattr(lib.detection.__spec__, "_initializing", True, raising=False)
    build.discover()
    assert build._discovered is False
    monkeypatch.setattr(lib.detection.__spec__, "_initializing", False)
    build.discover()
    assert build._discovered is True
