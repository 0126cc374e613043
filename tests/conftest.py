"""Shared fixtures: the team's real assets in ../shared/assets (skipped cleanly when absent)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
SHARED_ASSETS = Path(os.environ.get("LENS_SHARED_ASSETS", ROOT.parent / "shared" / "assets"))


@pytest.fixture(scope="session")
def shared_assets() -> Path:
    """../shared/assets (real weights, labels, COCO sample); skips where it is absent."""
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
