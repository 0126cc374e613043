"""Shared fixtures: the team's real assets in ../shared/assets (skipped cleanly when absent),
the COCO data the detection tests use (the COCO sample, or the demo split where it is absent),
W&B runs made by wandb itself; and, under CI, a failure for any skip not listed as expected."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
SHARED_ASSETS = Path(os.environ.get("LENS_SHARED_ASSETS", ROOT.parent / "shared" / "assets"))
#: Set by .ci/run's second pass: the tests that use ../shared run as on a fresh clone.
HIDDEN = os.environ.get("LENS_SHARED_ASSETS_HIDDEN", "") == "1"
if HIDDEN:
    SHARED_ASSETS = ROOT / ".no-shared-assets"


@pytest.fixture(scope="session")
def shared_assets() -> Path:
    """../shared/assets (real weights, labels, COCO sample); skips where it is absent."""
    if HIDDEN:
        pytest.skip("shared assets hidden (the fresh-clone pass)")
    if not (SHARED_ASSETS / "README.md").is_file():
        pytest.skip(f"shared assets not found at {SHARED_ASSETS} (a fresh clone elsewhere)")
    return SHARED_ASSETS


@pytest.fixture
def checkpoints_dir(tmp_path, monkeypatch) -> Path:
    """An empty checkpoints/ folder that the registry scans instead of the project's."""
    root = tmp_path / "checkpoints"
    root.mkdir()
    monkeypatch.setenv("LENS_CHECKPOINTS", str(root))
    return root


@pytest.fixture(scope="session")
def coco(tmp_path_factory):
    """The COCO val2017 sample from ../shared, or where it is absent the demo pack's synthetic
    validation split (made by lib.synth): the agreement tests run on a fresh clone too."""
    from lib.demo import synth
    from lib.detection import datasets
    base = SHARED_ASSETS / "data" / "coco_val2017_tiny"
    if (base / "annotations" / "instances_val2017.json").is_file():
        return datasets.load_coco(base / "annotations" / "instances_val2017.json",
                                  base / "val2017")
    split = synth.demo_val(tmp_path_factory.mktemp("demo-cache"))
    return datasets.load_coco(split / "annotations.json", split / "images")


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """Three offline runs made by wandb itself: two finished, one with a nested config."""
    import wandb
    root = tmp_path_factory.mktemp("wb")
    specs = [("alpha", {"lr": 0.1, "model": {"arch": "b0", "depth": 2}}, ["a"]),
             ("beta", {"lr": 0.01, "model": {"arch": "b0", "depth": 3}}, ["b", "x"]),
             ("gamma", {"lr": 0.01, "model": {"arch": "b3", "depth": 3}}, [])]
    for i, (name, config, tags) in enumerate(specs):
        run = wandb.init(mode="offline", dir=str(root), project="proj", name=name, config=config,
                         tags=tags, notes=f"notes {name}",
                         settings=wandb.Settings(silent=True, console="off"))
        for step in range(50):
            run.log({"train/loss": 1.0 / (step + 1 + i), "val/acc": step / 50 + i / 10,
                     "lr_now": 0.1 * 0.9 ** step}, step=step)
        run.summary["best"] = 0.5 + i / 10
        run.finish()
    return root


# -- skips: under CI, only the expected ones ----------------------------------------------------

#: Skips CI expects on its machine (no GPU, no hub): anything else fails the run.
EXPECTED_SKIPS = ("no real SAM2 weights on this machine",
                  *(("shared assets hidden",) if HIDDEN else ()))


#: Whole folders and modules left out of the fast tier (`-m "not slow"`): they run pages
#: (AppTest, a browser) for seconds each. Single slow tests elsewhere carry
#: `@pytest.mark.slow` themselves (they train, kill processes, start Ray or write wandb runs).
SLOW_PATHS = ("tests/app/", "tests/e2e/", "tests/security/test_pages_under_attack.py")


def pytest_collection_modifyitems(config, items):
    """Mark the tests that read ../shared (marker `shared_assets`): CI runs them a second
    time with the folder hidden, as a fresh clone has it. Mark `SLOW_PATHS` slow."""
    for item in items:
        if {"coco", "shared_assets"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.shared_assets)
        if Path(item.fspath).relative_to(ROOT).as_posix().startswith(SLOW_PATHS):
            item.add_marker(pytest.mark.slow)
_UNEXPECTED: list[str] = []


def pytest_runtest_logreport(report):
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        if not any(expected in reason for expected in EXPECTED_SKIPS):
            _UNEXPECTED.append(f"{report.nodeid}: {reason}")


def pytest_sessionfinish(session, exitstatus):
    if os.environ.get("CI", "").lower() in ("1", "true", "yes") and _UNEXPECTED:
        print("\nUnexpected skips under CI (each is a failure):\n  " + "\n  ".join(_UNEXPECTED))
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
