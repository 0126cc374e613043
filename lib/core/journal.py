"""Files that survive a process killed at any instant: the one way Lens appends records it
reads back later, and the one way it replaces a file another reader may open.

- `read(path)`: the JSON-object lines of an append-only journal. A line that does not parse
  (the last one, cut off when a process was killed mid-write) is skipped and counted, never
  taken as the end of the file.
- `repair(path)`: before appending again, cut a torn last line off, so the next record
  starts on a fresh line instead of being glued to the fragment (and lost with it).
- `cached(path, read, build, write)`: a disk cache entry read back, or built and written in
  one step; an entry that cannot be read is built again.
- `write_atomic(path, data)` / `atomic_path(path)`: the whole new content or the old one,
  never half a file (a temporary file beside it, then renamed over it).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Journal:
    """What a journal holds: its whole records in order, and how many lines were dropped."""

    records: list[dict[str, Any]] = field(default_factory=list)
    dropped: int = 0


def read(path: Path) -> Journal:
    """Every whole JSON-object line of `path` (an absent file is an empty journal)."""
    journal = Journal()
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return journal
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            journal.dropped += 1
            continue
        if isinstance(record, dict):
            journal.records.append(record)
        else:
            journal.dropped += 1
    return journal


def repair(path: Path) -> int:
    """Cut a torn last line (bytes after the last newline) off `path`; returns the bytes cut."""
    try:
        with open(path, "rb+") as f:
            size = f.seek(0, os.SEEK_END)
            if not size:
                return 0
            pos, tail = size, b""
            while pos > 0 and b"\n" not in tail:
                step = min(65536, pos)
                pos -= step
                f.seek(pos)
                tail = f.read(step) + tail
            keep = pos + tail.rfind(b"\n") + 1 if b"\n" in tail else 0
            if keep < size:
                f.truncate(keep)
            return size - keep
    except FileNotFoundError:
        return 0


def append(path: Path, records: list[dict[str, Any]], fh=None) -> None:
    """Append `records` as JSON lines and flush (to `fh` when the caller keeps it open)."""
    text = "".join(json.dumps(r) + "\n" for r in records)
    if fh is not None:
        fh.write(text)
        fh.flush()
        return
    with open(path, "a", encoding="utf-8") as out:
        out.write(text)


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside `path` to write to; renamed over `path` when the block ends
    without an error (removed otherwise), so readers see the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_atomic(path: Path, data: str | bytes) -> None:
    """Replace `path` with `data` in one step (flushed to disk before the rename)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data.encode() if isinstance(data, str) else data)
        fh.flush()
        os.fsync(fh.fileno())


def cached(cache: Path, read: Callable[[Path], Any], build: Callable[[], Any],
            write: Callable[[Any, Path], None]) -> Any:
    """`read(cache)`, else `build()` written to the cache in one step (a process killed while
    writing leaves no half file); a cache file that cannot be read is built again."""
    if cache.is_file():
        try:
            return read(cache)
        except (OSError, ValueError, TypeError):
            cache.unlink(missing_ok=True)
    value = build()
    try:
        with atomic_path(cache) as tmp:
            write(value, tmp)
    except (ValueError, TypeError, ImportError):
        pass  # e.g. mixed-type columns Parquet cannot hold: kept in memory only
    return value
