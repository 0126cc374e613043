"""W&B runs: local offline run folders and the W&B cloud, read into one `Run` type.

Offline runs are read in-process from the `.wandb` transaction log by `lib.runlog` (a
compiled scanner; wandb's own protobuf classes decode the few records that decide a run's
metadata, config and summary). Results equal `wandb leet inspect --summary --json`, which the
tests use as the reference. A run still being written, or cut off mid-record, is read up to
its last whole record; `LiveRun` follows one as it grows. Parsed runs are cached on disk,
keyed by the log's size and modification time (JSON for the metadata, Parquet for histories).

    python -m lib.runs export PATH --format csv|json
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lib import cli, journal, runlog, settings
from lib.errors import RunReadError
from lib.progress import Callback, Ticker

SAMPLE_RUNS = Path(__file__).resolve().parent.parent / "samples" / "runs"


@dataclass
class RunInfo:
    """One run's metadata, config and summary (no history)."""

    id: str
    name: str
    project: str
    entity: str = ""
    state: str = ""
    tags: list[str] = field(default_factory=list)
    notes: str = ""
    created: str = ""             # ISO start time, as the reader reports it
    runtime: float | None = None  # seconds (summary `_runtime`)
    config: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    source: str = "offline"       # offline | cloud | sample
    path: str = ""                # .wandb file, or entity/project/id for cloud runs
    dropped: int = 0              # corrupt or undecodable records skipped while reading

    @property
    def key(self) -> str:
        return f"{self.source}:{self.path or self.id}"


@dataclass(frozen=True)
class ReadProblem:
    path: str
    message: str


# -- offline runs -----------------------------------------------------------------------------

def find_run_files(root: str | Path) -> list[Path]:
    """Every `.wandb` log under `root` (a wandb dir, a run dir, a file, or a folder of them)."""
    from lib.paths import contained
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


def scan_log(path: Path, offset: int = 0, verify: np.ndarray = runlog.ALL,
             reuse: bool = False) -> runlog.Scan:
    """The whole records of a `.wandb` log from `offset` (0, or a previous scan's resume);
    `verify`: the record kinds whose CRCs are checked up front (see `runlog.scan`).

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
    return runlog.scan(data, base=offset, verify=verify)


def info_from_summary(data: dict[str, Any], path: str, source: str = "offline") -> RunInfo:
    summary = {k: v for k, v in (data.get("summary") or {}).items() if k != "_wandb"}
    config = {k: v for k, v in (data.get("config") or {}).items() if k != "_wandb"}
    return RunInfo(id=data.get("run_id", ""), name=data.get("name") or data.get("run_id", ""),
                   project=data.get("project", ""), entity=data.get("entity", ""),
                   state=data.get("state", ""), tags=list(data.get("tags") or []),
                   notes=data.get("notes") or "", created=data.get("start_time", ""),
                   runtime=summary.get("_runtime"), config=config, summary=summary,
                   source=source, path=path)


def read_run_info(path: Path, source: str = "offline") -> RunInfo:
    """Metadata, config and summary of one offline run, as `wandb leet inspect --summary`
    gives them (a test checks), read in-process by `lib.runlog` and cached on disk."""
    def build() -> RunInfo:
        scanned = scan_log(path, verify=runlog.METADATA, reuse=True)
        data = runlog.summarize(scanned)
        if not data["run_id"]:
            raise RunReadError(f"{path.parent.name}: the log has no run record (empty, or not "
                               "a W&B run)")
        info = info_from_summary(data, str(path), source)
        info.dropped = scanned.corrupt + scanned.undecodable
        return info
    return _cached(_cache_key(path, "info.json"),
                   lambda f: RunInfo(**json.loads(f.read_text())), build,
                   lambda info, f: f.write_text(json.dumps(asdict(info), default=str)))


def _cached(cache: Path, read: Callable[[Path], Any], build: Callable[[], Any],
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
        with journal.atomic_path(cache) as tmp:
            write(value, tmp)
    except (ValueError, TypeError, ImportError):
        pass  # e.g. mixed-type columns Parquet cannot hold: kept in memory only
    return value


def history_frame(scanned: runlog.Scan) -> pd.DataFrame:
    """The history rows of a scan as a frame; rows whose values are not JSON are dropped and
    counted in `frame.attrs["dropped"]` with the scan's corrupt records."""
    frame, bad_rows = runlog.history_table(scanned)
    frame = frame[[c for c in frame.columns if not str(c).startswith("_wandb")]]
    frame.attrs["dropped"] = scanned.corrupt + scanned.undecodable + bad_rows
    return frame


def read_history(path: Path) -> pd.DataFrame:
    """Every history row of an offline run, up to its last whole record (cached on disk as
    Parquet, keyed by the log's size and modification time)."""
    return _cached(_cache_key(path, "history.parquet"), pd.read_parquet,
                   lambda: history_frame(scan_log(path, reuse=True)),
                   lambda frame, f: frame.to_parquet(f))


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
        self.meta = runlog.summarize(scanned, into=self.meta)
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


def tidy_wandb_dir(root: Path) -> None:
    """Keep run logs and files; drop debug logs, temp folders and the latest-run link."""
    import shutil
    for path in sorted(Path(root).rglob("*"), key=lambda p: -len(p.parts)):
        if path.is_symlink():
            path.unlink()
        elif path.name in ("logs", "tmp") and path.is_dir():
            shutil.rmtree(path)
        elif path.suffix == ".log" and path.exists() and "wandb" in path.parts:
            path.unlink()


# -- W&B cloud --------------------------------------------------------------------------------

def _with_backoff(fn: Callable[[], Any], tries: int = 5, base: float = 1.0,
                  sleep: Callable[[float], None] | None = None):
    """Retry `fn` on rate limits and transient network errors, doubling the wait."""
    sleep = sleep or time.sleep
    for attempt in range(tries):
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - wandb raises many error types
            text = str(exc).lower()
            transient = any(s in text for s in ("429", "rate limit", "timed out", "timeout",
                                                "temporarily", "503", "502"))
            if not transient or attempt == tries - 1:
                raise
            sleep(base * 2 ** attempt)
    raise AssertionError("unreachable")


def cloud_error_message(exc: Exception, entity: str, project: str) -> str:
    """A user-facing message for a failed cloud request (never includes the key)."""
    text = str(exc)
    low = text.lower()
    if any(s in low for s in ("connection", "resolve", "network", "max retries", "timed out",
                              "did not respond", "unreachable")):
        return "Cannot reach the W&B cloud from this machine (no network). Local runs still work."
    if any(s in low for s in ("401", "api key", "unauthorized", "credentials", "permission")):
        return "W&B refused the API key (wrong or expired key); check it and try again."
    if "404" in low or "not found" in low or "could not find" in low:
        return f"W&B has no project '{entity}/{project}' visible to this key."
    return f"W&B request failed ({type(exc).__name__})."


_CLIENTS: dict[str, Any] = {}     # a visitor's token -> their wandb.Api (it holds the key)
_CLIENTS_LOCK = threading.Lock()
MAX_CLIENTS = 64


def cloud_api(api_key: str | None = None) -> Any:
    """A `wandb.Api` for the key given (or the configured one)."""
    import wandb
    return _with_backoff(lambda: wandb.Api(api_key=api_key or None, timeout=30))


def remember_client(token: str, api: Any) -> None:
    """Keep a visitor's API client in server memory (never in session state, never shown),
    so later requests of theirs (histories) use the key they typed; oldest dropped first."""
    with _CLIENTS_LOCK:
        _CLIENTS.pop(token, None)
        _CLIENTS[token] = api
        while len(_CLIENTS) > MAX_CLIENTS:
            _CLIENTS.pop(next(iter(_CLIENTS)))


def client_for(token: str) -> Any | None:
    with _CLIENTS_LOCK:
        return _CLIENTS.get(token)


def forget_client(token: str) -> None:
    with _CLIENTS_LOCK:
        _CLIENTS.pop(token, None)


def load_cloud(entity: str, project: str, api_key: str | None = None,
               filters: dict | None = None, max_runs: int = 500,
               progress: Callback | None = None,
               api: Any = None) -> list[RunInfo]:
    """Runs of a W&B project through `wandb.Api()`. The key is used for this request only."""
    if api is None:
        api = cloud_api(api_key)
    runs = _with_backoff(lambda: list(api.runs(f"{entity}/{project}", filters=filters or {},
                                                per_page=100)[:max_runs]))
    infos = []
    tick = Ticker(len(runs), progress)
    for i, r in enumerate(runs):
        summary = {k: v for k, v in dict(r.summary).items() if not k.startswith("_wandb")
                   and isinstance(v, (int, float, str, bool, type(None)))}
        infos.append(RunInfo(id=r.id, name=r.name, project=project, entity=entity, state=r.state,
                             tags=list(r.tags or []), notes=r.notes or "",
                             created=str(r.created_at), runtime=summary.get("_runtime"),
                             config={k: v for k, v in dict(r.config).items()
                                     if not k.startswith("_")},
                             summary=summary, source="cloud", path=f"{entity}/{project}/{r.id}"))
        tick(i + 1)
    return infos


def cloud_history(info: RunInfo, api_key: str | None = None, full: bool = True,
                  samples: int = 1500, api: Any = None) -> tuple[pd.DataFrame, str]:
    """History of a cloud run (cached on disk): full via scan_history, or sampled."""
    name = hashlib.sha256(info.path.encode()).hexdigest()[:32]
    cache = settings.cache_dir("runs", "cloud") / f"{name}.{'full' if full else 'sampled'}.parquet"

    def build() -> pd.DataFrame:
        run = _with_backoff(lambda: (api or cloud_api(api_key)).run(info.path))
        return (pd.DataFrame(list(run.scan_history())) if full
                else run.history(samples=samples, pandas=True))
    frame = _cached(cache, pd.read_parquet, build, lambda f, path: f.to_parquet(path))
    note = "" if full else f"sampled to {len(frame)} points"
    return frame, note


# -- comparison -------------------------------------------------------------------------------

def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts to dotted keys: {"a": {"b": 1}} -> {"a.b": 1}."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and "value" in v and len(v) <= 2 and "desc" in v:
            v = v["value"]  # cloud configs wrap values as {"value": ..., "desc": ...}
        if isinstance(v, dict) and v:
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _cell(v: Any) -> Any:
    return json.dumps(v, sort_keys=True) if isinstance(v, (list, dict)) else v


def runs_table(infos: list[RunInfo], config_keys: Iterable[str] = (),
               summary_keys: Iterable[str] = ()) -> pd.DataFrame:
    """One row per run: name, state, tags, created, runtime, chosen config and summary keys."""
    rows = []
    for r in infos:
        flat = flatten(r.config)
        row = {"name": r.name, "id": r.id, "project": r.project, "state": r.state,
               "tags": ", ".join(r.tags), "created": r.created, "runtime_s": r.runtime,
               "source": r.source}
        row.update({f"config.{k}": _cell(flat.get(k)) for k in config_keys})
        row.update({k: _cell(r.summary.get(k)) for k in summary_keys})
        rows.append(row)
    return pd.DataFrame(rows)


def filter_table(table: pd.DataFrame, text: str = "", sort_by: str | None = None,
                 descending: bool = False) -> pd.DataFrame:
    """Rows whose name, tags or state contain `text` (any case), sorted by a column."""
    if text:
        needle = text.lower()
        hay = table["name"].astype(str) + "\n" + table["tags"].astype(str) + "\n" \
            + table["state"].astype(str)
        table = table[hay.str.lower().str.contains(needle, regex=False)]
    if sort_by and sort_by in table:
        table = table.sort_values(sort_by, ascending=not descending, kind="stable",
                                  na_position="last")
    return table


def export_rows(infos: list[RunInfo]) -> list[dict[str, Any]]:
    """One flat dict per run: id, name, project, state, tags, created, runtime, config, summary."""
    out = []
    for r in infos:
        row = {"id": r.id, "name": r.name, "project": r.project, "state": r.state,
               "tags": list(r.tags), "created": r.created, "runtime": r.runtime}
        row.update({f"config.{k}": v for k, v in flatten(r.config).items()})
        row.update({f"summary.{k}": v for k, v in flatten(r.summary).items()})
        out.append(row)
    return out


def _diff(flats: list[dict[str, Any]], names: list[str], all_keys: bool,
          label: str) -> pd.DataFrame:
    """Keys (rows) by run (columns): keys whose values differ first, then (with `all_keys`)
    the equal ones; alphabetical within each group. Any number of runs."""
    keys = sorted(set().union(*flats)) if flats else []
    differing, equal = {}, {}
    for key in keys:
        values = [_cell(f.get(key, "—")) for f in flats]
        distinct = len({json.dumps(v, default=str) for v in values}) > 1
        (differing if distinct else equal)[key] = values
    data = {**differing, **(equal if all_keys else {})}
    frame = pd.DataFrame(data, index=pd.Index(names)).T if data else \
        pd.DataFrame(columns=names)
    frame.index.name = label
    frame.attrs["differing"] = len(differing)
    return frame


def config_diff(infos: list[RunInfo], all_keys: bool = False) -> pd.DataFrame:
    """Flattened config keys (rows) by run (columns): differing keys first; equal keys only
    with `all_keys`."""
    return _diff([flatten(r.config) for r in infos], [r.name for r in infos], all_keys,
                 "config key")


def summary_diff(infos: list[RunInfo], all_keys: bool = False) -> pd.DataFrame:
    """Summary metrics (rows) by run (columns), as `config_diff`; W&B's internal `_` keys
    left out."""
    flats = [{k: v for k, v in flatten(r.summary).items() if not k.startswith("_")}
             for r in infos]
    return _diff(flats, [r.name for r in infos], all_keys, "summary key")


def parameter_importance(infos: list[RunInfo], metric: str, seed: int = 0) -> pd.DataFrame:
    """How each config key relates to a summary metric, as W&B's parameter importance panel
    computes it: the Pearson correlation of the key with the metric, and the importance of
    the key in a random forest (scikit-learn) that predicts the metric from all keys.

    Numeric keys are used as is (missing values are left to the forest), booleans as 0/1,
    categorical keys one-hot (one row per value, `key=value`). Keys that never vary, and runs
    without a numeric value of the metric, are left out. Columns: parameter, importance,
    correlation, runs; sorted by importance.
    """
    from sklearn.ensemble import RandomForestRegressor

    rows, target = [], []
    for r in infos:
        value = flatten(r.summary).get(metric)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
            continue
        rows.append({k: v for k, v in flatten(r.config).items() if not k.startswith("_")})
        target.append(float(value))
    empty = pd.DataFrame(columns=["parameter", "importance", "correlation", "runs"])
    if len(rows) < 3:
        return empty
    config = pd.DataFrame(rows)
    features: dict[str, pd.Series] = {}
    for key in config.columns:
        col = config[key]
        present = col.dropna()
        if present.map(lambda v: isinstance(v, bool)).all() and len(present):
            features[key] = col.map({True: 1.0, False: 0.0})
        elif present.map(lambda v: isinstance(v, (int, float))
                         and not isinstance(v, bool)).all() and len(present):
            features[key] = col.astype(float)
        else:                                     # categorical (or mixed): one-hot
            text = col.map(lambda v: _cell(v) if v is not None and v == v else None)
            for value in sorted(text.dropna().unique(), key=str):
                features[f"{key}={value}"] = (text == value).astype(float)
    x = pd.DataFrame(features)
    x = x.loc[:, [c for c in x.columns if x[c].nunique(dropna=False) > 1]]   # keys that vary
    if x.empty:
        return empty
    y = np.asarray(target)
    forest = RandomForestRegressor(n_estimators=200, random_state=seed)
    forest.fit(x.to_numpy(), y)
    correlation = [x[c].corr(pd.Series(y, index=x.index)) for c in x.columns]
    out = pd.DataFrame({"parameter": x.columns, "importance": forest.feature_importances_,
                        "correlation": correlation, "runs": x.notna().sum().to_numpy()})
    return out.sort_values("importance", ascending=False, kind="stable").reset_index(drop=True)


def disambiguate(infos: list[RunInfo]) -> list[RunInfo]:
    """Runs with the same name get their id added (and their folder, for copies of one log),
    so a name picks one run on the page and in shared links. Changes the names in place."""
    from collections import Counter
    counts = Counter(r.name for r in infos)
    for r in infos:
        if counts[r.name] > 1:
            r.name = f"{r.name} · {r.id}"
    counts = Counter(r.name for r in infos)
    for r in infos:
        if counts[r.name] > 1:
            r.name = f"{r.name} · {Path(r.path).parent.name if r.path else r.key}"
    return infos


def detection_link(info: RunInfo) -> str | None:
    """The Detection page URL that reopens a benchmark logged from it (same data, subset,
    seed and models), or None for other runs and for uploaded data (not kept)."""
    from urllib.parse import urlencode
    c = info.config
    if "benchmark" not in info.tags or c.get("data") not in ("demo", "path"):
        return None
    query: dict[str, Any] = {"data": c["data"]}
    if c["data"] == "path":
        if not c.get("dataset") or not c.get("images_dir"):
            return None
        query.update(ann=c["dataset"], img=c["images_dir"])
    models = c.get("models") or [c.get("model")]
    query.update(models=",".join(str(m) for m in models if m), subset=c.get("subset") or 0,
                 seed=c.get("seed") or 0, map_by=c.get("map_by") or "name")
    return "detection?" + urlencode(query)


def problem_reasons(problems: list[ReadProblem]) -> list[tuple[str, int]]:
    """Why runs were skipped: (reason, how many), most common first."""
    from collections import Counter
    counts = Counter(p.message.split(": ", 1)[-1] for p in problems)
    return counts.most_common()


def match_metrics(columns: Iterable[str], patterns: str) -> list[str]:
    """Metrics matching comma-separated glob patterns like `val/*, train/loss`."""
    pats = [p.strip() for p in patterns.split(",") if p.strip()]
    cols = [c for c in columns if not c.startswith("_")]
    return [c for c in cols if any(fnmatch.fnmatchcase(c, p) for p in pats)]


def numeric_metrics(history: pd.DataFrame) -> list[str]:
    return [c for c in history.columns if not c.startswith("_")
            and pd.api.types.is_numeric_dtype(history[c])]


def smooth_ema(values: pd.Series, weight: float) -> pd.Series:
    """W&B's debiased exponential moving average; weight 0 leaves the curve as is."""
    if weight <= 0:
        return values
    return values.ewm(alpha=1 - weight, adjust=True, ignore_na=True).mean()


def downsample_minmax(x: np.ndarray, y: np.ndarray, max_points: int = 2000):
    """Keep extremes: split into buckets and keep each bucket's first, min, max and last point.

    Spikes and dips survive (unlike striding or averaging); output has at most `max_points`.
    """
    n = len(x)
    if n <= max_points:
        return np.asarray(x), np.asarray(y)
    buckets = max(1, max_points // 4)
    edges = np.linspace(0, n, buckets + 1).astype(int)
    keep = []
    yv = np.asarray(y, dtype=float)
    for lo, hi in zip(edges[:-1], edges[1:]):
        if hi <= lo:
            continue
        seg = yv[lo:hi]
        finite = np.isfinite(seg)
        idx = {lo, hi - 1}
        if finite.any():
            idx |= {lo + int(np.nanargmin(np.where(finite, seg, np.nan))),
                    lo + int(np.nanargmax(np.where(finite, seg, np.nan)))}
        keep.extend(sorted(idx))
    keep = np.asarray(keep)
    return np.asarray(x)[keep], yv[keep]


def x_values(history: pd.DataFrame, x_axis: str) -> pd.Series:
    """The x axis: `_step`, `wall time` (seconds since the first row) or any metric."""
    if x_axis == "wall time":
        col = "_timestamp" if "_timestamp" in history else "_runtime"
        return history[col] - history[col].min()
    return history[x_axis]


def series(history: pd.DataFrame, metric: str, x_axis: str = "_step", smoothing: float = 0.0,
           max_points: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of one metric, smoothed, downsampled, NaN rows dropped."""
    if metric not in history:
        return np.array([]), np.array([])
    frame = pd.DataFrame({"x": x_values(history, x_axis), "y": history[metric]}).dropna()
    frame = frame.sort_values("x", kind="stable")
    y = smooth_ema(frame["y"].astype(float), smoothing)
    return downsample_minmax(frame["x"].to_numpy(), y.to_numpy(), max_points)


def metric_stats(histories: dict[str, pd.DataFrame], metric: str) -> pd.DataFrame:
    """min / max / last of one metric per run."""
    rows = []
    for name, h in histories.items():
        s = h[metric].dropna() if metric in h else pd.Series(dtype=float)
        rows.append({"run": name, "min": s.min() if len(s) else None,
                     "max": s.max() if len(s) else None,
                     "last": s.iloc[-1] if len(s) else None, "points": len(s)})
    return pd.DataFrame(rows)


def group_band(histories: list[pd.DataFrame], metric: str, x_axis: str = "_step",
               smoothing: float = 0.0, max_points: int = 2000) -> pd.DataFrame:
    """Mean and min-max band across runs, aligned on x: columns x, mean, min, max, runs.

    With more than `max_points` distinct x values the band is reduced per bucket of x: the
    mean of the means (weighted by how many runs each x has), the min of the mins and the max
    of the maxes, so the envelope a sweep spans survives at any length.
    """
    xs, ys = [], []
    for h in histories:
        if metric in h:
            f = pd.DataFrame({"x": x_values(h, x_axis), "y": h[metric]}).dropna()
            f = f.sort_values("x", kind="stable")
            xs.append(f["x"].to_numpy())
            ys.append(smooth_ema(f["y"].astype(float), smoothing).to_numpy())
    if not xs:
        return pd.DataFrame(columns=["x", "mean", "min", "max", "runs"])
    x, y = np.concatenate(xs), np.concatenate(ys)
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    starts = np.flatnonzero(np.r_[True, x[1:] != x[:-1]])       # one group per distinct x
    count = np.diff(np.r_[starts, len(x)])
    total = np.add.reduceat(y, starts)
    low, high = np.minimum.reduceat(y, starts), np.maximum.reduceat(y, starts)
    ux, runs_at = x[starts], count
    if len(ux) > max_points:                                     # reduce per bucket of x
        edges = np.unique(np.linspace(0, len(ux), max_points + 1).astype(int)[:-1])
        ux, runs_at = ux[edges], np.maximum.reduceat(count, edges)
        total, count = np.add.reduceat(total, edges), np.add.reduceat(count, edges)
        low, high = np.minimum.reduceat(low, edges), np.maximum.reduceat(high, edges)
    return pd.DataFrame({"x": ux, "mean": total / count, "min": low, "max": high,
                         "runs": runs_at})


# -- command line -----------------------------------------------------------------------------

@cli.command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lib.runs")
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("export", help="one row (CSV) or object (JSON) per run under PATH")
    ex.add_argument("path")
    ex.add_argument("--format", choices=["csv", "json"], default="csv")
    ex.add_argument("--out", help="write here instead of standard output")
    args = parser.parse_args(argv)
    infos, problems = load_offline(args.path)
    for p in problems:
        print(f"skipped {p.path}: {p.message}", file=sys.stderr)
    rows = export_rows(infos)
    if args.format == "json":
        text = json.dumps(rows, indent=2, default=str)
    else:
        frame = pd.DataFrame([{k: _cell(v) for k, v in r.items()} for r in rows])
        text = frame.to_csv(index=False)
    if args.out:
        Path(args.out).write_text(text)
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0 if infos or not problems else 1


if __name__ == "__main__":
    raise SystemExit(main())
