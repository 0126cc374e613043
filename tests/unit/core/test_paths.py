"""Typed paths contained in the allowed roots, relative names in files, and W&B dir tidying."""

import pytest

from lib.core import paths
from lib.core.errors import PathNotAllowedError


@pytest.fixture
def root(tmp_path, monkeypatch):
    allowed = tmp_path / "root"
    (allowed / "data").mkdir(parents=True)
    (allowed / "data" / "a.json").write_text("{}")
    (tmp_path / "outside.json").write_text("{}")
    monkeypatch.setenv("LENS_DATA_ROOTS", str(allowed))
    return allowed


def test_a_typed_path_inside_the_roots_is_resolved(root):
    assert paths.data_path(str(root / "data" / "a.json"), "file") == root / "data" / "a.json"
    assert paths.data_path(str(root / "data"), "dir") == root / "data"


@pytest.mark.parametrize("typed,message", [
    ("{root}/../outside.json", "contains '..'"),
    ("{tmp}/outside.json", "not inside the folders Lens may read"),
    ("{tmp}/missing.json", "not inside the folders Lens may read"),
])
def test_paths_outside_are_refused_alike_whether_or_not_they_exist(root, typed, message):
    with pytest.raises(PathNotAllowedError, match=message):
        paths.data_path(typed.format(root=root, tmp=root.parent), "file")


def test_contained_follows_links_out(root):
    (root / "link").symlink_to(root.parent, target_is_directory=True)
    assert paths.contained(root / "data" / "a.json") == root / "data" / "a.json"
    assert paths.contained(root / "link" / "outside.json") is None
    assert paths.contained(root / "data" / "a.json", base=root / "data") is not None


@pytest.mark.parametrize("name,ok", [
    ("img/1.png", True), ("1.png", True), ("../1.png", False), ("/etc/x", False),
    ("C:/x.png", False), ("a\x00b", False), ("", False), (5, False), ("a\\..\\b", False),
])
def test_relative_names_from_files(name, ok):
    assert paths.safe_relative(name) is ok


def test_a_wandb_dir_keeps_logs_and_files_only(tmp_path):
    run = tmp_path / "wandb" / "offline-run-1"
    (run / "files").mkdir(parents=True)
    (run / "logs").mkdir()
    (run / "run-1.wandb").write_bytes(b":W&B")
    (run / "files" / "config.yaml").write_text("a: 1")
    (run / "logs" / "debug.log").write_text("x")
    (tmp_path / "wandb" / "debug.log").write_text("x")
    (tmp_path / "wandb" / "latest-run").symlink_to(run)
    paths.tidy_wandb_dir(tmp_path / "wandb")
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    assert left == ["wandb", "wandb/offline-run-1", "wandb/offline-run-1/files",
                    "wandb/offline-run-1/files/config.yaml", "wandb/offline-run-1/run-1.wandb"]


def test_a_path_as_shown_is_read_back_and_a_hostile_one_refused(root):
    """`shown` writes a path under a root as `<root>/…` (never the server's absolute path);
    `data_path` reads that form back, with the same refusals as any typed path."""
    shown = paths.shown(root / "data" / "a.json")
    assert shown == "<root>/data/a.json" and str(root) not in paths.shown(f"at {root}/data.")
    assert paths.data_path(shown, "file") == root / "data" / "a.json"
    for hostile, message in (("<root>/../outside.json", "contains '..'"),
                             ("<nowhere>/a.json", "not inside the folders"),
                             ("<root>/data/missing.json", "does not exist")):
        with pytest.raises(PathNotAllowedError, match=message):
            paths.data_path(hostile, "file")
