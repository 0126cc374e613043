"""The one place for temporary files: `LENS_CACHE/scratch`, capped at `LENS_SCRATCH_MB`.

Uploads that a library needs as a file (videos for PyAV), unpacked zips and rendered videos
live here, named by content where they have one, so a rerun reuses them instead of writing a
new copy. `prune()` removes the least recently used entries beyond the cap; entries are
touched on use.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from pathlib import Path

from lib.core import settings

_PARTIAL = ("zip-partial-", "tmp-")


def root() -> Path:
    path = settings.cache_dir("scratch")
    path.mkdir(parents=True, exist_ok=True)
    return path


def touch(path: Path) -> None:
    try:
        os.utime(path)
    except OSError:
        pass


def store_bytes(data: bytes, suffix: str = "") -> Path:
    """A file holding `data`, named by its content: written once, reused on every rerun."""
    suffix = "".join(c for c in suffix.lower() if c.isalnum() or c == ".")[:12]
    path = root() / f"blob-{hashlib.sha256(data).hexdigest()[:32]}{suffix}"
    if not path.is_file() or path.stat().st_size != len(data):
        fd, tmp = tempfile.mkstemp(dir=root(), prefix="tmp-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
        prune()
    touch(path)
    return path


def new_dir(prefix: str = "tmp-") -> Path:
    """A fresh folder in the scratch area (removed by `prune` once old and over the cap)."""
    return Path(tempfile.mkdtemp(dir=root(), prefix=prefix))


def new_file(suffix: str = "", prefix: str = "out-") -> Path:
    """A fresh, empty file path in the scratch area (for renders)."""
    fd, tmp = tempfile.mkstemp(dir=root(), prefix=prefix, suffix=suffix)
    os.close(fd)
    return Path(tmp)


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def usage() -> int:
    return sum(_size(p) for p in root().iterdir())


def prune(cap_bytes: int | None = None, partial_age_s: float = 3600,
          in_use_s: float = 60) -> int:
    """Remove the least recently used entries until the area fits the cap; returns bytes
    freed. Entries used in the last `in_use_s` stay; unfinished extractions older than
    `partial_age_s` go."""
    cap = cap_bytes if cap_bytes is not None else int(settings.get().scratch_mb * 2**20)
    now = time.time()
    entries = []
    for p in root().iterdir():
        try:
            entries.append((p.stat().st_mtime, _size(p), p))
        except OSError:
            continue
    total = sum(s for _, s, _ in entries)
    freed = 0
    for mtime, size, p in sorted(entries):
        stale_partial = p.name.startswith(_PARTIAL) and now - mtime > partial_age_s
        if (total <= cap or now - mtime < in_use_s) and not stale_partial:
            continue
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
        total -= size
        freed += size
    return freed
