"""Media a run logged: images (`wandb.Image`) and tables (`wandb.Table`), found in its history
and read from its own `files/` folder.

wandb writes a logged image or table as a file under the run's `files/media/` and puts its
description in the history row, flattened by key: `<key>._type` ("image-file", "table-file"),
`<key>.path`, caption, size. Every path comes from the log, so it is visitor input: only a
relative path (no `..`) that resolves inside the run's `files/` folder is read, images go
through the one image intake (`lib.media.images`: format sniffed, pixel limit before
decoding), and tables through the JSON reader (size limit) and a shape check.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from lib.core.errors import InputError, RunReadError
from lib.core.paths import contained, read_json, safe_relative
from lib.runs.info import RunInfo

KINDS = {"image-file": "image", "table-file": "table"}
MAX_FILE_MB = 64
MAX_TABLE_ROWS = 10_000


@dataclass
class MediaStep:
    step: int
    path: str                # relative to the run's files/ folder, as the log says
    caption: str = ""


def media_keys(history: pd.DataFrame) -> dict[str, str]:
    """Logged media keys and their kind ("image" or "table")."""
    out = {}
    for column in history.columns:
        if column.endswith("._type"):
            kinds = set(history[column].dropna().astype(str)) & set(KINDS)
            if kinds:
                out[column[: -len("._type")]] = KINDS[sorted(kinds)[0]]
    return out


def media_steps(history: pd.DataFrame, key: str) -> list[MediaStep]:
    """Every step at which `key` was logged, with its file."""
    path_col, caption_col = f"{key}.path", f"{key}.caption"
    if path_col not in history.columns:
        return []
    rows = history[history[path_col].notna()]
    steps = rows["_step"] if "_step" in rows.columns else pd.Series(rows.index, index=rows.index)
    captions = rows[caption_col] if caption_col in rows.columns else pd.Series("", rows.index)
    return [MediaStep(int(s), str(p), "" if c != c or c is None else str(c)[:200])
            for s, p, c in zip(steps, rows[path_col], captions)]


def _file(info: RunInfo, relative: str) -> Path:
    """The media file, checked: relative, inside the run's files/ folder, a regular file."""
    if info.source != "offline" or not info.path:
        raise RunReadError("Media are read from a run's local folder; this run has none here.")
    files = Path(info.path).parent / "files"
    if not safe_relative(relative):
        raise RunReadError(f"The log names a media file outside the run's folder "
                           f"('{str(relative)[:80]}'); it is not read.")
    path = contained(files / relative, files)
    if path is None:
        raise RunReadError("A media file of this run leads outside its folder (a link); it is "
                           "not read.")
    if not path.is_file():
        raise RunReadError(f"The media file '{Path(relative).name[:80]}' is not in the run's "
                           "folder (not synced, or deleted).")
    if path.stat().st_size > MAX_FILE_MB * 2**20:
        raise RunReadError(f"The media file '{path.name[:80]}' is over {MAX_FILE_MB} MB and is "
                           "not read.")
    return path


def load_image(info: RunInfo, relative: str):
    """A logged image (PIL), or `LensError` naming the problem."""
    from lib.media import images  # heavy: imported on first use
    return images.load_image(_file(info, relative)).image


def load_table(info: RunInfo, relative: str) -> pd.DataFrame:
    """A logged table as a data frame (its first MAX_TABLE_ROWS rows)."""
    data = read_json(_file(info, relative), Path(relative).name)
    columns = data.get("columns") if isinstance(data, dict) else None
    rows = data.get("data") if isinstance(data, dict) else None
    if not isinstance(columns, list) or not isinstance(rows, list) or not all(
            isinstance(r, list) and len(r) == len(columns) for r in rows[:MAX_TABLE_ROWS]):
        raise InputError(f"'{Path(relative).name[:80]}' is not a wandb table (columns and "
                         "rows of the same width).")
    return pd.DataFrame(rows[:MAX_TABLE_ROWS], columns=[str(c)[:100] for c in columns])
