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
import stat
import threading
from collections.abc import Collection, Iterable
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


RUN_FOLDERS = ("offline-run-", "run-")


def list_logs(root: str | Path) -> list[tuple[str, int, int]]:
    """(path, size, modification ns) of every `.wandb` log under `root`: a log in `root`
    itself or directly in a run folder (`offline-run-*`, `run-*`). Run folders' own subfolders
    (files/, logs/) are not walked, nor links to folders; a linked log is read only if it
    resolves inside `root`."""
    root = Path(root)
    if root.is_file():
        st = root.stat()
        return [(str(root), st.st_size, st.st_mtime_ns)] if root.suffix == ".wandb" else []
    if not root.is_dir():
        raise RunReadError(f"'{root.name}' is not a folder.")
    found, stack = [], [str(root)]
    while stack:
        folder = stack.pop()
        is_run = folder == str(root) or os.path.basename(folder).startswith(RUN_FOLDERS)
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                if entry.name != "latest-run" and (folder == str(root) or not is_run):
                    stack.append(entry.path)
            elif is_run and entry.name.endswith(".wandb"):
                if entry.is_symlink() and contained(entry.path, root) is None:
                    continue                    # links out of the folder are not read
                try:
                    st = entry.stat()
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode):
                    found.append((entry.path, st.st_size, st.st_mtime_ns))
    return sorted(found)


def find_run_files(root: str | Path) -> list[Path]:
    """Every `.wandb` log under `root` (a wandb dir, a run dir, a file, or a folder of them)."""
    return [Path(path) for path, _, _ in list_logs(root)]


def folder_stamp(root: str | Path) -> tuple[int, int, int]:
    """(logs, total bytes, newest modification) of the run logs under `root`: changes when a
    run is added, removed or grows, so a cached run table keyed by it is re-read then."""
    logs = list_logs(root)
    return len(logs), sum(size for _, size, _ in logs), max((m for _, _, m in logs), default=0)


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
    gives them (a test checks), read in-process by `lib.runs.scanner` and cached on disk as
    `load_offline` caches a folder (this log's own index)."""
    infos, problems = load_offline(path, source)
    if problems:
        raise RunReadError(problems[0].message)
    if not infos:
        raise RunReadError(f"'{Path(path).name}' is not a W&B run log (.wandb).")
    return infos[0]


def _run_info(path: Path, source: str) -> RunInfo:
    """A run's metadata, config and summary read from its log (no cache)."""
    scanned = scan_log(path, verify=scanner.METADATA, reuse=True)
    data = summary.summarize(scanned)
    if not data["run_id"]:
        raise RunReadError(f"{path.parent.name}: the log has no run record (empty, or not "
                           "a W&B run)")
    info = info_from_summary(data, str(path), source)
    info.dropped = scanned.corrupt + scanned.undecodable
    return info


def history_frame(scanned: scanner.Scan, keys: Collection[str] | None = None) -> pd.DataFrame:
    """The history rows of a scan as a frame (only `keys` and `_step`, when given); rows
    whose values are not JSON are dropped and counted in `frame.attrs["dropped"]` with the
    scan's corrupt records."""
    frame, bad_rows = history_rows.history_table(scanned, keys)
    if any(str(c).startswith("_wandb") for c in frame.columns):
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


def read_columns(path: Path, keys: Collection[str]) -> pd.DataFrame:
    """Some columns of a run's history (those of `keys` it has, and `_step`): from the disk
    cache when the whole history is there, else parsed from the log alone (not cached: at
    sweep scale, a few columns of a short log parse faster than a cache file is written)."""
    cache = _cache_key(path, "history.parquet")
    if cache.is_file():
        frame = read_history(path)
        return frame[[c for c in frame.columns if c in keys or c == "_step"]]
    return history_frame(scan_log(path, reuse=True), keys)


def read_histories(paths: Iterable[str | Path], workers: int | None = None,
                   keys: Collection[str] | None = None
                   ) -> dict[str, pd.DataFrame | RunReadError]:
    """Histories of several offline runs, read in parallel: {path: frame, or the error}.
    `keys`: only these columns (see `read_columns`), for curves of many runs at once."""
    def one(path: str | Path):
        try:
            return read_history(Path(path)) if keys is None else read_columns(Path(path), keys)
        except (RunReadError, OSError, ValueError) as exc:
            return _unreadable(path, exc)
    paths = [str(p) for p in paths]
    batches = [paths[i:i + 16] for i in range(0, len(paths), 16)]   # see load_offline
    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 2) as pool:
        read = pool.map(lambda batch: [one(p) for p in batch], batches)
        return dict(zip(paths, (frame for frames in read for frame in frames)))


def _index_path(root: Path, source: str) -> Path:
    digest = hashlib.sha256(f"{root.resolve()}|{source}".encode()).hexdigest()
    return settings.cache_dir("runs") / f"{digest[:32]}.index.json"


def _read_index(path: Path) -> dict:
    """A folder's run index ({log: [size, mtime, info or None, problem or None]}); an index
    that cannot be read (torn by a kill, or another version's) is an empty one."""
    try:
        index = json.loads(path.read_bytes())
        return index["logs"] if index.get("version") == INDEX_VERSION else {}
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return {}


INDEX_VERSION = 1


def load_offline(root: str | Path, source: str = "offline",
                 progress: Callback | None = None,
                 workers: int | None = None) -> tuple[list[RunInfo], list[ReadProblem]]:
    """All runs under `root`; runs that cannot be read are reported, the others returned.

    A folder's runs are kept in one index file in Lens's cache, each entry keyed by its log's
    size and modification time, so a second load reads one file and only the logs that
    changed. Logs are scanned on `workers` threads (default: one per core); the compiled
    scanner releases the GIL, so they run in parallel.
    """
    root = Path(root)
    logs = list_logs(root)
    index_file = _index_path(root, source)
    old = _read_index(index_file)
    index, todo = {}, []
    for path, size, mtime in logs:
        entry = old.get(path)
        if isinstance(entry, list) and len(entry) == 4 and entry[:2] == [size, mtime]:
            index[path] = entry
        else:
            todo.append((path, size, mtime))
    tick = Ticker(len(todo), progress)

    def one(log: tuple[str, int, int]) -> list:
        path, size, mtime = log
        try:
            return [size, mtime, asdict(_run_info(Path(path), source)), None]
        except (RunReadError, OSError, ValueError) as exc:
            return [size, mtime, None, str(_unreadable(path, exc))]

    # batches, not one task per log: fewer hand-overs of the GIL between the threads
    batches = [todo[i:i + 64] for i in range(0, len(todo), 64)]
    if todo:
        with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 2) as pool:
            done = 0
            for batch, entries in zip(batches, pool.map(lambda b: [one(x) for x in b], batches)):
                index.update((log[0], entry) for log, entry in zip(batch, entries))
                done += len(batch)
                tick(done)
    if todo or len(index) != len(old):
        try:
            journal.write_atomic(index_file, json.dumps(
                {"version": INDEX_VERSION, "logs": index}, default=str))
        except OSError:
            pass                                  # a full disk: the next load reads again
    infos: list[RunInfo] = []
    problems: list[ReadProblem] = []
    for path, _, _ in logs:
        _, _, info, problem = index[path]
        if info is None:
            problems.append(ReadProblem(path, problem))
        else:
            infos.append(RunInfo(**info))
    return infos, problems
