"""W&B cloud runs: the API client (one per visitor's key, kept in server memory only),
the run table and histories, with back-off on rate limits."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from typing import Any

import pandas as pd

from lib.core import journal, settings
from lib.core.progress import Callback, Ticker
from lib.runs.info import RunInfo


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
    frame = journal.cached(cache, pd.read_parquet, build, lambda f, path: f.to_parquet(path))
    note = "" if full else f"sampled to {len(frame)} points"
    return frame, note
