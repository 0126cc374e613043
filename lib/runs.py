"""W&B runs: local offline run folders and the W&B cloud, read into one `Run` type.

Offline runs are read without syncing, through wandb's own reader of the `.wandb` transaction
log: `wandb leet inspect` (we call the `wandb-core` program it launches, with the same
arguments, to save the Python CLI's start-up per run). `--summary --json` gives a run's
metadata, config and summary; `--json` gives every record, of which we keep the history rows.
A run still being written, or cut off mid-record, is read up to its last whole record (the
reader does that). Parsed runs are cached on disk, keyed by file size and modification time.

    python -m lib.runs export PATH --format csv|json
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import subprocess
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

from lib import cli, settings
from lib.progress import Callback, Ticker

SAMPLE_RUNS = Path(__file__).resolve().parent.parent / "samples" / "runs"


from lib.errors import RunReadError  # noqa: E402  (re-exported)


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


def _core_command(path: Path, summary: bool) -> list[str]:
    try:
        from wandb.util import get_core_path
        core = get_core_path()
        cmd = [core, "leet", "inspect", "--no-observability", "--json"]
        if summary:
            cmd.append("--summary")
        return cmd + ["--run-file", str(path), str(path.parent)]
    except Exception:  # noqa: BLE001 - fall back to the public CLI
        cmd = ["wandb", "leet", "inspect", "--json"] + (["--summary"] if summary else [])
        return cmd + [str(path)]


def leet_inspect(path: Path, summary: bool) -> str:
    """Run `wandb leet inspect --json [--summary]` on a .wandb file; raise on failure."""
    proc = subprocess.run(_core_command(path, summary), capture_output=True, text=True,
                          timeout=600)
    if proc.returncode != 0:
        err = (proc.stderr or proc.stdout).strip().splitlines()
        raise RunReadError(f"{path.parent.name}: not a readable W&B run log "
                           f"({err[-1] if err else 'exit code ' + str(proc.returncode)})")
    return proc.stdout


def _cache_key(path: Path, kind: str) -> Path:
    st = path.stat()
    digest = hashlib.sha256(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()
    return settings.cache_dir("runs") / f"{digest[:32]}.{kind}"


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
    """Metadata, config and summary of one offline run (cached on disk)."""
    cache = _cache_key(path, "info.json")
    if cache.is_file():
        return RunInfo(**json.loads(cache.read_text()))
    out = leet_inspect(path, summary=True)
    try:
        data = json.loads(out)
    except json.JSONDecodeError as exc:
        raise RunReadError(f"{path.parent.name}: the reader printed no JSON") from exc
    info = info_from_summary(data, str(path), source)
    if info.state == "running" and _incomplete(path):
        info.state = "running (incomplete log)"
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(asdict(info), default=str))
    return info


def _incomplete(path: Path) -> bool:
    """True when the log has no exit record (still being written, or cut off)."""
    out = leet_inspect(path, summary=False)
    return '"type":"exit"' not in out


_BLOCK = 32768      # the .wandb log is LevelDB's log format: 32 KiB blocks of chunks
_CHUNK_HEADER = 7   # crc32c (4), length (2), chunk type (1)
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def iter_records(path: Path, stats: dict[str, int] | None = None):
    """Yield each whole record's bytes from a .wandb log; stop at a cut-off record.

    Every chunk's CRC-32 (over its type byte and data, as wandb writes it) is checked, as
    wandb's own reader does: a corrupt chunk drops its record and the rest of its 32 KiB
    block, counted in `stats["corrupt"]`, and reading resumes at the next block.
    """
    import zlib
    stats = stats if stats is not None else {}
    stats.setdefault("corrupt", 0)
    data = path.read_bytes()
    if data[:4] != b":W&B":
        raise RunReadError(f"{path.parent.name}: not a readable W&B run log (bad header)")
    pos, pending = _CHUNK_HEADER, None   # the file header fills the first 7 bytes
    while pos + _CHUNK_HEADER <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < _CHUNK_HEADER:          # block trailer padding
            pos += left
            continue
        length, kind = int.from_bytes(data[pos + 4:pos + 6], "little"), data[pos + 6]
        if kind == 0 and length == 0:     # zero padding up to the block end
            pos += left
            continue
        start, end = pos + _CHUNK_HEADER, pos + _CHUNK_HEADER + length
        if end > len(data):
            return                        # cut off mid-record: the writer is not done
        crc = int.from_bytes(data[pos:pos + 4], "little")
        if (kind not in (_FULL, _FIRST, _MIDDLE, _LAST) or length > left - _CHUNK_HEADER
                or zlib.crc32(data[pos + 6:end]) != crc):
            stats["corrupt"] += 1         # drop the record and the rest of the block
            pending = None
            pos += left
            continue
        chunk, pos = data[start:end], end
        if kind == _FULL:
            yield chunk
        elif kind == _FIRST:
            pending = chunk
        elif pending is not None:
            pending += chunk
            if kind == _LAST:
                yield pending
                pending = None


def _history_rows(path: Path, stats: dict[str, int] | None = None) -> list[dict[str, Any]]:
    """History rows decoded with wandb's own protobuf Record class. Corrupt chunks (CRC) and
    rows whose values are not JSON are dropped and counted in `stats`."""
    stats = stats if stats is not None else {}
    from google.protobuf.message import DecodeError
    from wandb.proto import wandb_internal_pb2 as pb
    parts = []   # each row as JSON text, parsed in one json.loads at the end (much faster)
    record = pb.Record()
    dumps = json.dumps
    for raw in iter_records(path, stats):
        if b"history" not in raw[:64] and b"_step" not in raw:
            continue  # cheap pre-filter; the protobuf check below decides
        try:
            record.ParseFromString(raw)
        except DecodeError:
            stats["corrupt"] = stats.get("corrupt", 0) + 1
            continue
        if record.WhichOneof("record_type") != "history":
            continue
        fields = [f"{dumps(item.key or '/'.join(item.nested_key))}:{item.value_json}"
                  for item in record.history.item]
        if not any(item.key == "_step" for item in record.history.item):
            fields.append(f'"_step":{record.history.step.num}')
        parts.append("{" + ",".join(fields) + "}")
    try:
        return json.loads("[" + ",".join(parts) + "]")
    except (json.JSONDecodeError, RecursionError):   # a bad value: keep the good rows
        rows = []
        for part in parts:
            try:
                rows.append(json.loads(part))
            except (json.JSONDecodeError, RecursionError):
                stats["bad_rows"] = stats.get("bad_rows", 0) + 1
        return rows


def history_via_leet(path: Path) -> pd.DataFrame:
    """History rows as `wandb leet inspect --json` prints them (slow; the reference)."""
    rows = []
    for line in leet_inspect(path, summary=False).splitlines():
        if '"type":"history"' in line:
            rec = json.loads(line)["history"]
            item = dict(rec.get("item") or {})
            item.setdefault("_step", (rec.get("step") or {}).get("num", len(rows)))
            rows.append(item)
    return pd.DataFrame(rows)


def read_history(path: Path) -> pd.DataFrame:
    """Every history row of an offline run, up to its last whole record (cached on disk).

    Decoded directly from the log with wandb's protobuf classes, about 10x faster than
    `wandb leet inspect --json`; a test checks both give the same rows.
    """
    cache = _cache_key(path, "history.parquet")
    if cache.is_file():
        return pd.read_parquet(cache)
    stats: dict[str, int] = {}
    frame = pd.DataFrame(_history_rows(path, stats))
    frame = frame[[c for c in frame.columns if not c.startswith("_wandb")]]
    frame.attrs["dropped"] = stats.get("corrupt", 0) + stats.get("bad_rows", 0)
    cache.parent.mkdir(parents=True, exist_ok=True)
    try:
        frame.to_parquet(cache)
    except (ValueError, TypeError, ImportError):
        pass  # mixed-type columns: keep it in memory only
    return frame


def load_offline(root: str | Path, source: str = "offline",
                 progress: Callback | None = None,
                 workers: int = 8) -> tuple[list[RunInfo], list[ReadProblem]]:
    """All runs under `root`; runs that cannot be read are reported, the others returned."""
    files = find_run_files(root)
    tick = Ticker(len(files), progress)
    infos: list[RunInfo] = []
    problems: list[ReadProblem] = []
    done = 0

    def one(path: Path):
        try:
            return read_run_info(path, source)
        except (RunReadError, OSError, subprocess.TimeoutExpired) as exc:
            return ReadProblem(str(path), str(exc))

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for result in pool.map(one, files):
            (problems if isinstance(result, ReadProblem) else infos).append(result)
            done += 1
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
    if cache.is_file():
        frame = pd.read_parquet(cache)
    else:
        if api is None:
            api = cloud_api(api_key)
        run = _with_backoff(lambda: api.run(info.path))
        frame = (pd.DataFrame(list(run.scan_history())) if full
                 else run.history(samples=samples, pandas=True))
        cache.parent.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(cache)
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


def config_diff(infos: list[RunInfo], all_keys: bool = False) -> pd.DataFrame:
    """Flattened config keys (rows) by run (columns); only differing keys unless `all_keys`."""
    flats = [flatten(r.config) for r in infos]
    keys = sorted(set().union(*flats)) if flats else []
    data = {}
    for key in keys:
        values = [_cell(f.get(key, "—")) for f in flats]
        if all_keys or len({json.dumps(v, default=str) for v in values}) > 1:
            data[key] = values
    frame = pd.DataFrame(data, index=[r.name for r in infos]).T
    frame.index.name = "config key"
    return frame


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
               smoothing: float = 0.0) -> pd.DataFrame:
    """Mean and min-max band across runs, aligned on x: columns x, mean, min, max, runs."""
    parts = []
    for i, h in enumerate(histories):
        if metric in h:
            f = pd.DataFrame({"x": x_values(h, x_axis), "y": h[metric]}).dropna()
            f = f.sort_values("x", kind="stable")
            f["y"] = smooth_ema(f["y"].astype(float), smoothing)
            f["run"] = i
            parts.append(f)
    if not parts:
        return pd.DataFrame(columns=["x", "mean", "min", "max", "runs"])
    g = pd.concat(parts).groupby("x")["y"]
    return pd.DataFrame({"mean": g.mean(), "min": g.min(), "max": g.max(),
                         "runs": g.count()}).reset_index()


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
