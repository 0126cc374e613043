"""Folders a user may name by path on the server (evaluation sets, run folders)."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class PathNotAllowedError(ValueError):
    """A typed path outside the allowed roots; the message says how to allow it."""


def data_roots() -> list[Path]:
    """LENS_DATA_ROOTS (os.pathsep-separated); default: the folder holding the project, which
    includes ../shared."""
    default = str(PROJECT_ROOT.parent)
    return [Path(p).resolve() for p in os.environ.get("LENS_DATA_ROOTS", default).split(os.pathsep)
            if p]


def data_path(text: str) -> Path:
    """Resolve a user-typed path; only paths under `data_roots()` are read."""
    path = Path(text.strip()).expanduser().resolve()
    roots = data_roots()
    if not any(path == r or r in path.parents for r in roots):
        raise PathNotAllowedError(f"'{text}' is outside the folders Lens may read "
                                  f"({', '.join(map(str, roots))}); set LENS_DATA_ROOTS to allow it.")
    return path
