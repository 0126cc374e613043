"""A clip's masks spilled to disk as they are made: COCO RLE, one JSON line per frame and group.

`MaskStore.put(frame, {obj: mask})` appends a line to a journal in the scratch area and keeps
only its offset; `get(frame)` reads the frame's lines back. A clip's masks never sit in RAM
as arrays, and the index is a few integers per frame. Tracking an object again (a new
prompt after it was tracked) bumps its epoch, so its older lines stop counting without
rewriting the file; an object re-tracked from a frame on (a correction) gets lines with no
mask (`None`) on the frames it no longer has one. The journal is the one Lens appends
everywhere (`lib.core.journal`): reopened after a crash, a torn last line is cut off and the
whole lines are indexed again. The file goes when the store is closed or collected (a
visitor's session ending).
"""

from __future__ import annotations

import json
import threading
import weakref
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from lib.core import journal, scratch
from lib.media import masks as mask_ops


def _close(fh, path: Path, delete: bool) -> None:
    fh.close()
    if delete:
        path.unlink(missing_ok=True)


class MaskStore:
    """Masks per (frame, object id) as RLE in an append-only file (see the module docstring)."""

    def __init__(self, path: Path | None = None, delete: bool = True):
        self.path = Path(path) if path else scratch.new_file(".jsonl", prefix="masks-")
        journal.repair(self.path)
        self._index: dict[int, list[tuple[int, int]]] = {}
        self._epoch: dict[int, int] = {}
        self._lock = threading.Lock()
        self._fh = open(self.path, "a+b")  # noqa: SIM115 (closed by close() or the finalizer)
        self._close = weakref.finalize(self, _close, self._fh, self.path, delete)
        self._reindex()

    def _reindex(self) -> None:
        self._fh.seek(0)
        offset = 0
        for line in self._fh:
            try:
                record = json.loads(line)
                frame = int(record["f"])
                for o, (epoch, _) in record["o"].items():
                    self._epoch[int(o)] = max(self._epoch.get(int(o), 0), int(epoch))
            except (ValueError, KeyError, TypeError):
                offset += len(line)
                continue
            self._index.setdefault(frame, []).append((offset, len(line)))
            offset += len(line)

    # -- writing ----------------------------------------------------------------------------
    def put(self, frame: int, masks: Mapping[int, np.ndarray | dict | None]) -> None:
        """Append the masks (arrays or RLE; None: no mask any more) of some objects on
        `frame`."""
        objs = {str(int(o)): [self._epoch.get(int(o), 0),
                              m if m is None or isinstance(m, dict) else mask_ops.to_rle(m)]
                for o, m in masks.items()}
        line = (json.dumps({"f": int(frame), "o": objs}, separators=(",", ":")) + "\n").encode()
        with self._lock:
            offset = self._fh.seek(0, 2)
            self._fh.write(line)
            self._fh.flush()
            self._index.setdefault(int(frame), []).append((offset, len(line)))

    def forget(self, obj_ids) -> None:
        """The masks written so far for these objects stop counting (they are tracked anew)."""
        with self._lock:
            for o in obj_ids:
                self._epoch[int(o)] = self._epoch.get(int(o), 0) + 1

    # -- reading ----------------------------------------------------------------------------
    def get(self, frame: int) -> dict[int, dict]:
        """Object id -> RLE on `frame` (the latest line wins; forgotten objects left out)."""
        with self._lock:
            spans = list(self._index.get(int(frame), ()))
            out: dict[int, dict] = {}
            for offset, length in spans:
                self._fh.seek(offset)
                record = json.loads(self._fh.read(length))
                for o, (epoch, rle) in record["o"].items():
                    if epoch == self._epoch.get(int(o), 0):
                        out[int(o)] = rle
            return {o: rle for o, rle in out.items() if rle is not None}

    def frames(self) -> list[int]:
        """Frames with at least one line, in order."""
        with self._lock:
            return sorted(self._index)

    @property
    def disk_bytes(self) -> int:
        with self._lock:
            return self._fh.seek(0, 2)

    def close(self) -> None:
        """Close the file and delete it (a store opened with `delete=False` keeps it)."""
        self._close()
