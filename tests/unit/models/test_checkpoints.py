"""Checkpoint folders: manifests, labels, safe paths, safe unpickling."""

import json
import os
import pickle

import pytest
import timm
import torch
from safetensors.torch import save_file

from lib.models import checkpoints, registry
from lib.models.checkpoints import (
    CheckpointError,
    UnsafeCheckpointError,
    load_state_dict,
    parse_indoor_outdoor,
    parse_labels,
    safe_path,
)

TINY = "test_efficientnet"  # timm's tiny registered test model


def make_checkpoint(root, name="tiny", num_classes=3, fmt="safetensors", prefix="",
                    labels="a\nb\nc\n", manifest_extra=None):
    """Write checkpoints/<name>/ with a tiny timm model's real state dict."""
    folder = root / name
    folder.mkdir(parents=True)
    model = timm.create_model(TINY, pretrained=False, num_classes=num_classes)
    state = {prefix + k: v.contiguous() for k, v in model.state_dict().items()}
    if fmt == "safetensors":
        save_file(state, folder / "weights.safetensors")
    else:
        torch.save(state, folder / f"weights.{fmt}")
    (folder / "labels.txt").write_text(labels)
    manifest = {"task": "classification", "architecture": TINY, "num_classes": num_classes,
                "labels": "labels.txt", **(manifest_extra or {})}
    (folder / "model.json").write_text(json.dumps(manifest))
    return folder, model


class Exploit:
    """Unpickling this would run a shell command."""

    def __reduce__(self):
        return (os.system, ("echo pwned > /tmp/lens-pwned",))


def test_safe_path_refuses_escapes(tmp_path):
    root = tmp_path / "checkpoints"
    (root / "ok").mkdir(parents=True)
    outside = tmp_path / "secret"
    outside.mkdir()
    (root / "link").symlink_to(outside)
    assert safe_path("ok", root) == (root / "ok").resolve()
    with pytest.raises(CheckpointError, match=r"'\.\.'"):
        safe_path("../secret", root)
    with pytest.raises(CheckpointError, match="outside"):
        safe_path(str(outside), root)
    with pytest.raises(CheckpointError, match="outside"):
        safe_path("link/file.pt", root)


def test_code_running_pickle_is_refused(tmp_path):
    root = tmp_path / "checkpoints"
    (root / "evil").mkdir(parents=True)
    with open(root / "evil" / "weights.pt", "wb") as fh:
        pickle.dump({"w": Exploit()}, fh)
    if os.path.exists("/tmp/lens-pwned"):
        os.remove("/tmp/lens-pwned")
    with pytest.raises(UnsafeCheckpointError, match="would run code"):
        load_state_dict("evil/weights.pt", root)
    assert not os.path.exists("/tmp/lens-pwned")


@pytest.mark.parametrize("fmt,prefix", [("safetensors", ""), ("pth", "module."),
                                        ("pt", "_orig_mod.module.")])
def test_checkpoint_round_trip_through_registry(checkpoints_dir, fmt, prefix):
    _, model = make_checkpoint(checkpoints_dir, fmt=fmt, prefix=prefix)
    spec = registry.find("tiny")
    assert spec.source == "checkpoint" and spec.error is None
    assert spec.labels == ("a", "b", "c")
    loaded = registry.build(spec, device="cpu")
    x = torch.randn(1, 3, 64, 64)
    model.eval()
    assert torch.allclose(loaded.model(x), model(x), atol=1e-6)
    assert loaded.labels == ["a", "b", "c"]
    assert loaded.preprocess.input_size[0] == 3


def test_new_folder_appears_without_code_change(checkpoints_dir):
    assert not [s for s in registry.all_specs() if s.source == "checkpoint"]
    make_checkpoint(checkpoints_dir, name="places-demo")
    assert "places-demo" in [s.name for s in registry.all_specs("classification")]


def test_scan_reads_folders_again_only_after_a_change(checkpoints_dir, monkeypatch):
    """Pages scan on every rerun: an unchanged root is not read again; a new folder, a
    rewritten manifest and a removed file are seen at the next scan."""
    make_checkpoint(checkpoints_dir, name="first")
    read = []
    real = checkpoints.read_checkpoint
    monkeypatch.setattr(checkpoints, "read_checkpoint", lambda f: read.append(f.name) or real(f))
    assert not checkpoints.scan()[0].error
    read.clear()
    assert [c.name for c in checkpoints.scan()] == ["first"] and read == []
    make_checkpoint(checkpoints_dir, name="second")
    assert [c.name for c in checkpoints.scan()] == ["first", "second"]
    (checkpoints_dir / "first" / "model.json").write_text("{not json")
    assert "not valid JSON" in checkpoints.scan()[0].error
    (checkpoints_dir / "second" / "weights.safetensors").unlink()
    assert "no weights file" in checkpoints.scan()[1].error


@pytest.mark.parametrize("breakage,reason", [
    ("no-manifest", "no model.json"),
    ("bad-json", "not valid JSON"),
    ("no-weights", "no weights file"),
    ("labels-mismatch", "labels file has 2 names but the model has 3 classes"),
    ("bad-task", "'task' must be one of"),
])
def test_broken_folder_is_listed_with_reason(checkpoints_dir, breakage, reason):
    folder, _ = make_checkpoint(checkpoints_dir, name="broken")
    if breakage == "no-manifest":
        (folder / "model.json").unlink()
    elif breakage == "bad-json":
        (folder / "model.json").write_text("{not json")
    elif breakage == "no-weights":
        (folder / "weights.safetensors").unlink()
    elif breakage == "labels-mismatch":
        (folder / "labels.txt").write_text("a\nb\n")
    elif breakage == "bad-task":
        (folder / "model.json").write_text(json.dumps({"task": "poetry", "architecture": TINY}))
    spec = registry.find("broken")
    assert reason in spec.error
    assert not registry.availability(spec).ready
    with pytest.raises(registry.ModelCreateError, match="cannot load"):
        registry.build(spec)


def test_unknown_architecture_and_wrong_shapes(checkpoints_dir):
    make_checkpoint(checkpoints_dir, name="alien", manifest_extra={"architecture": "alien_net"})
    with pytest.raises(registry.ModelCreateError, match="alien_net"):
        registry.build(registry.find("alien"))
    make_checkpoint(checkpoints_dir, name="shapes", manifest_extra={"num_classes": 4},
                    labels="a\nb\nc\nd\n")
    with pytest.raises(registry.ModelCreateError, match="does not fit"):
        registry.build(registry.find("shapes"))


def test_label_formats():
    assert parse_labels("cat\ndog\n\n") == ["cat", "dog"]
    assert parse_labels('["cat", "dog"]', "l.json") == ["cat", "dog"]
    assert parse_labels('{"1": "dog", "0": "cat"}', "l.json") == ["cat", "dog"]
    places = "/b/bus_interior 1\n/a/abbey 0\n/s/shoe_shop 2\n/a/apartment_building/outdoor 3\n"
    assert parse_labels(places) == ["abbey", "bus interior", "shoe shop",
                                    "apartment building / outdoor"]
    assert parse_indoor_outdoor("/a/abbey 2\n/a/airport_terminal 1\n") == ["outdoor", "indoor"]


def test_real_places365_label_file(shared_assets):
    labels = parse_labels((shared_assets / "labels/categories_places365.txt").read_text())
    io = parse_indoor_outdoor((shared_assets / "labels/IO_places365.txt").read_text())
    assert len(labels) == 365 == len(io)
    assert labels[0] == "airfield" and io[0] == "outdoor"


def test_strip_prefixes():
    assert list(checkpoints.strip_prefixes({"module._orig_mod.a": 1, "b": 2})) == ["a", "b"]
