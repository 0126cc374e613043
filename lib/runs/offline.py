"""Offline W&B runs, read in-process from their `.wandb` logs.

`lib.runs.scanner` (a compiled scanner) finds the records; wandb's own protobuf classes decode
the few that decide a run's metadata, config and summary. Results equal `wandb leet inspect
--summary --json`, the tests' reference. A log cut off mid-record is read up to its last whole
record. Parsed runs are cached on disk, keyed by the log's size and modification time (JSON for
the metadata, Parquet for histories), each cache file written in one step."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from lib.core import journal, settings
from lib.core.errors import RunReadError
from lib.core.paths import contained
from lib.core.progress import Callback, Ticker
from lib.runs import history_rows, scanner, summary
from lib.runs.info import ReadProblem, RunInfo, info_from_summary

SAMPLE_RUNS = settings.PROJECT_ROOT / "samples" / "runs"


def find_run_files(root: str | Path) -> list[Path]:
    """Every `.wandb` log under `root` (a wandb dir, a run dir, a file, or a folder of them)."""
    root = Path(root)
    if root.is_file():
        return [root] if root.suffix == ".wandb" else []
    if not root.is_dir():
        raise RunReadError(f"'{root.name}' is not a folder.")
    found = []
    for path in sorted(root.rglob("*.wandb")):
        parts = path.parts
        if "latest-run" in parts or contained(path, root) is None or not path.is_file():
            continue   # links out of the folder are not read
        if path.parent.name.startswith(("offline-run-", "run-")) or path.parent == root:
            found.append(path)
    return found


def folder_stamp(root: str | Path) -> tuple[int, int, int]:
    """(logs, total bytes, newest modification) of the run logs under `root`: changes when a
    run is added, removed or grows, so a cached run table keyed by it is re-read then."""
    sizes, newest = 0, 0
    files = find_run_files(root)
    for path in files:
        st = path.stat()
        sizes += st.st_size
        newest = max(newest, st.st_mtime_ns)
    return len(files), sizes, newest


def _cache_key(path: Path, kind: str) -> Path:
    st = path.stat()
    digest = hashlib.sha256(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()
    return settings.cache_dir("runs") / f"{digest[:32]}.{kind}"


_BUFFERS = threading.local()


def scan_log(path: Path, offset: int = 0, verify: np.ndarray = scanner.ALL,
             reuse: bool = False) -> scanner.Scan:
    """The whole records of a `.wandb` log from `offset` (0, or a previous scan's resume);
    `verify`: the record kinds whose CRCs are checked up front (see `scanner.scan`).

    `reuse`: read into this thread's buffer (no fresh pages per log); the scan is then only
    valid until this thread's next reusing read, so use its results before that.
    """
    with open(path, "rb", buffering=0) as f:
        if offset == 0 and f.read(4) != b":W&B":
            raise RunReadError(f"{path.parent.name}: not a readable W&B run log (bad header)")
        size = os.fstat(f.fileno()).st_size - offset
        f.seek(offset)
        if not reuse or size <= 0:
            data = np.fromfile(f, dtype=np.uint8)
        else:
            buffer = getattr(_BUFFERS, "buffer", None)
            if buffer is None or len(buffer) < size:
                buffer = _BUFFERS.buffer = np.empty(int(size * 1.25) + 4096, dtype=np.uint8)
            got = 0
            view = memoryview(buffer)
            while got < size:                   # a log may shrink while we read: stop there
                n = f.readinto(view[got:size])
                if not n:
                    break
                got += n
            data = buffer[:got]
    return scanner.scan(data, base=offset, verify=verify)


def read_run_info(path: Path, source: str = "offline") -> RunInfo:
    """Metadata, config and summary of one offline run, as `wandb leet inspect --summary`
    gives them (a test checks), read in-process by `lib.runs.scanner` and cached on disk."""
    def build() -> RunInfo:
        scanned = scan_log(path, verify=scanner.METADATA, reuse=True)
        data = summary.summarize(scanned)
        if not data["run_id"]:
            raise RunReadError(f"{path.parent.name}: the log has no run record (empty, or not "
                               "a W&B run)")
        info = info_from_summary(data, str(path), source)
        info.dropped = scanned.corrupt + scanned.undecodable
        return info
    return journal.cached(_cache_key(path, "info.json"),
                   lambda f: RunInfo(**json.loads(f.read_text())), build,
                   lambda info, f: f.write_text(json.dumps(asdict(info), default=str)))


def history_frame(scanned: scanner.Scan) -> pd.DataFrame:
    """The history rows of a scan as a frame; rows whose values are not JSON are dropped and
    counted in `frame.attrs["dropped"]` with the scan's corrupt records."""
    frame, bad_rows = history_rows.history_table(scanned)
    frame = frame[[c for c in frame.columns if not str(c).startswith("_wandb")]]
    frame.attrs["dropped"] = scanned.corrupt + scanned.undecodable + bad_rows
    return frame


def read_history(path: Path) -> pd.DataFrame:
    """Every history row of an offline run, up to its last whole record (cached on disk as
    Parquet, keyed by the log's size and modification time)."""
    return journal.cached(_cache_key(path, "history.parquet"), pd.read_parquet,
                   lambda: history_frame(scan_log(path, reuse=True)),
                   lambda frame, f: frame.to_parquet(f))


def _unreadable(path: str | Path, exc: Exception) -> RunReadError:
    """A failure reading one log as the message the page and the CLI show."""
    if isinstance(exc, RunReadError):
        return exc
    return RunReadError(f"{Path(path).parent.name}: not a readable W&B run log ({exc})")


def read_histories(paths: Iterable[str | Path], workers: int | None = None
                   ) -> dict[str, pd.DataFrame | RunReadError]:
    """Histories of several offline runs, read in parallel: {path: frame, or the error}."""
    def one(path: str | Path):
        try:
            return read_history(Path(path))
        except (RunReadError, OSError, ValueError) as exc:
            return _unreadable(path, exc)
    paths = [str(p) for p in paths]
    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 2) as pool:
        return dict(zip(paths, pool.map(one, paths)))


def load_offline(root: str | Path, source: str = "offline",
                 progress: Callback | None = None,
                 workers: int | None = None) -> tuple[list[RunInfo], list[ReadProblem]]:
    """All runs under `root`; runs that cannot be read are reported, the others returned.

    Logs are scanned on `workers` threads (default: one per core); the compiled scanner
    releases the GIL, so they run in parallel.
    """
    files = find_run_files(root)
    tick = Ticker(len(files), progress)
    infos: list[RunInfo] = []
    problems: list[ReadProblem] = []

    def one(path: Path):
        try:
            return read_run_info(path, source)
        except (RunReadError, OSError, ValueError) as exc:
            return ReadProblem(str(path), str(_unreadable(path, exc)))

    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 2) as pool:
        for done, result in enumerate(pool.map(one, files), 1):
            (problems if isinstance(result, ReadProblem) else infos).append(result)
            tick(done)
    return infos, problems

