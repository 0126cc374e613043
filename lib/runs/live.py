"""A run still being written, followed record by record as it grows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from lib.runs import summary
from lib.runs.info import RunInfo, info_from_summary
from lib.runs.offline import history_frame, scan_log


class LiveRun:
    """A run that is still being written, followed from where the last read stopped.

    `poll()` reads only the bytes appended since (from the last whole record; a record cut
    off at the end waits for the next poll), updates the run's summary and config and
    appends the new history rows. A log that shrank or was replaced is read again from the
    start.
    """

    def __init__(self, path: str | Path, source: str = "offline"):
        self.path, self.source = Path(path), source
        self._reset()

    def _reset(self) -> None:
        self.offset, self.size, self.identity = 0, 0, None
        self.meta: dict[str, Any] | None = None
        self.parts: list[pd.DataFrame] = []
        self._history: pd.DataFrame | None = pd.DataFrame()
        self.dropped = 0

    def poll(self) -> int:
        """Read what was appended; returns the number of new history rows."""
        st = self.path.stat()
        if (st.st_dev, st.st_ino) != self.identity or st.st_size < self.size:
            self._reset()
            self.identity = (st.st_dev, st.st_ino)
        if st.st_size == self.size:
            return 0
        scanned = scan_log(self.path, self.offset)
        self.meta = summary.summarize(scanned, into=self.meta)
        frame = history_frame(scanned)
        self.dropped += frame.attrs.get("dropped", 0)
        self.offset, self.size = scanned.resume, st.st_size
        if len(frame):
            self.parts.append(frame)
            self._history = None
        return len(frame)

    @property
    def history(self) -> pd.DataFrame:
        if self._history is None:
            self._history = pd.concat(self.parts, ignore_index=True) if self.parts \
                else pd.DataFrame()
            self.parts = [self._history] if len(self._history) else []
        return self._history

    @property
    def info(self) -> RunInfo:
        info = info_from_summary(self.meta or {}, str(self.path), self.source)
        info.dropped = self.dropped
        return info
