"""A run's console output (`files/output.log`, what wandb captures from stdout and stderr),
read from its end: a 2 GB log costs the same as a small one.

Only a regular file inside the run's own folder is read (a link leading out is refused), and
at most `limit` bytes from its end; a line cut by that start is dropped, as is a half-written
last line of a running run's log.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from lib.core.paths import contained
from lib.runs.info import RunInfo

TAIL_BYTES = 256 * 1024
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\r")


@dataclass
class Console:
    text: str          # the last lines, terminal colour codes removed
    size: int          # the whole log's size in bytes
    shown: int         # bytes shown (the end of the log)
    note: str = ""     # why nothing is shown, when nothing is


def run_folder(info: RunInfo) -> Path | None:
    """An offline run's folder (the one holding its .wandb log)."""
    return Path(info.path).parent if info.source == "offline" and info.path else None


def console(info: RunInfo, limit: int = TAIL_BYTES) -> Console:
    folder = run_folder(info)
    if folder is None:
        return Console("", 0, 0, "Console output is read from a run's local folder; this run "
                                 "has none here.")
    path = folder / "files" / "output.log"
    inside = contained(path, folder)
    if inside is None:
        return Console("", 0, 0, "The run's output.log leads outside its folder and is not read.")
    try:
        with open(inside, "rb") as f:
            stat = os.fstat(f.fileno())
            if not os.path.isfile(inside):
                return Console("", 0, 0, "The run's output.log is not a regular file.")
            start = max(0, stat.st_size - limit)
            f.seek(start)
            data = f.read(limit)
    except FileNotFoundError:
        return Console("", 0, 0, "This run logged no console output (wandb writes "
                                 "files/output.log when console capture is on).")
    except OSError as exc:
        return Console("", 0, 0, f"The run's output.log cannot be read ({exc.strerror}).")
    if start > 0 and b"\n" in data:
        data = data[data.index(b"\n") + 1:]          # the first line began before the tail
    if data and not data.endswith(b"\n") and info.state == "running":
        data = data[: data.rfind(b"\n") + 1]          # a line still being written
    text = _ANSI.sub("", data.decode("utf-8", errors="replace"))
    return Console(text, stat.st_size, len(data))
