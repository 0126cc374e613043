"""W&B cloud runs: the API client (one per visitor's key, kept in server memory only),
the run table and histories, with back-off on rate limits."""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from lib.core import journal, paths, settings
from lib.core.errors import CloudError, InputError, LensError
from lib.core.progress import Callback, Ticker
from lib.runs.info import RunInfo


def status_code(exc: BaseException) -> int | None:
    """The HTTP status a failed request carries: requests' `HTTPError`, or wandb's `CommError`
    wrapping one (`exc.exc`), or either as the cause."""
    for err in (exc, getattr(exc, "exc", None), exc.__cause__, exc.__context__):
        code = getattr(getattr(err, "response", None), "status_code", None)
        if isinstance(code, int):
            return code
    return None


def failure_kind(exc: BaseException) -> str:
    """What went wrong, from the client's exception types and status codes: `network`,
    `auth`, `not_found`, `busy` (rate limit, timeout, a 5xx: worth retrying) or `other`."""
    import requests  # heavy: imported on first use
    import wandb.errors  # heavy: imported on first use
    inner = getattr(exc, "exc", None)
    code = status_code(exc)
    errors_seen = [e for e in (exc, inner, exc.__cause__) if e is not None]
    if any(isinstance(e, requests.Timeout) for e in errors_seen) or code in (429, 502, 503,
                                                                                504):
        return "busy"
    if any(isinstance(e, requests.ConnectionError) for e in errors_seen):
        return "network"
    if isinstance(exc, wandb.errors.AuthenticationError) or code in (401, 403):
        return "auth"
    if code == 404 or type(exc).__name__ == "RunNotFoundError" or (
            type(exc) is ValueError and type(exc).__module__ == "builtins"):
        return "not_found"     # wandb's Api raises a plain ValueError for a missing project
    return "other"


def _with_backoff(fn: Callable[[], Any], tries: int = 5, base: float = 1.0,
                  sleep: Callable[[float], None] | None = None):
    """Retry `fn` on rate limits, timeouts and server errors, doubling the wait."""
    sleep = sleep or time.sleep
    for attempt in range(tries):
        try:
            return fn()
        except Exception as exc:
            if failure_kind(exc) != "busy" or attempt == tries - 1:
                raise
            sleep(base * 2 ** attempt)
    raise AssertionError("unreachable")


def cloud_error(exc: Exception, entity: str, project: str) -> CloudError:
    """A failed cloud request as a message a user can act on (never includes the key)."""
    kind = failure_kind(exc)
    if kind == "network":
        return CloudError("Cannot reach the W&B cloud from this machine (no network).",
                          "Local runs still work.")
    if kind == "auth":
        return CloudError("W&B refused the API key (wrong or expired key).",
                          "Check it and try again.")
    if kind == "not_found":
        return CloudError(f"W&B has no project '{entity}/{project}' visible to this key.")
    if kind == "busy":
        return CloudError("W&B is busy or rate-limiting this key.", "Try again in a minute.")
    return CloudError(f"W&B request failed ({type(exc).__name__}).")


@contextlib.contextmanager
def _as_cloud_error(entity: str, project: str):
    """Any failure of the W&B client inside the block becomes a `CloudError`."""
    try:
        yield
    except LensError:
        raise
    except Exception as exc:   # the client raises many types; `failure_kind` sorts them
        raise cloud_error(exc, entity, project) from exc


_CLIENTS: dict[str, Any] = {}     # a visitor's token -> their wandb.Api (it holds the key)


_CLIENTS_LOCK = threading.Lock()


MAX_CLIENTS = 64


def api_key(typed: str = "", secrets: Mapping[str, Any] | None = None) -> str | None:
    """The W&B key for a request: the one typed for it, else `WANDB_API_KEY`, else the app's
    secrets (Streamlit's `st.secrets`). Used for the request and never kept or shown."""
    return (typed or os.environ.get("WANDB_API_KEY")
            or (secrets or {}).get("WANDB_API_KEY") or None)


def parse_filters(text: str) -> dict | None:
    """The run filters a visitor typed (MongoDB-style JSON object), or None when empty."""
    if not text.strip():
        return None
    try:
        value = paths.read_json(text.encode(), "the filters")
    except InputError:
        value = None
    if not isinstance(value, dict):
        raise InputError("Filters must be a JSON object, e.g. {\"state\": \"finished\"}.")
    return value


def cloud_api(api_key: str | None = None) -> Any:
    """A `wandb.Api` for the key given (or the configured one)."""
    import wandb  # heavy: imported on first use
    with _as_cloud_error("", ""):
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
    with _as_cloud_error(entity, project):
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
        with _as_cloud_error(info.entity, info.project):
            run = _with_backoff(lambda: (api or cloud_api(api_key)).run(info.path))
            return (pd.DataFrame(list(run.scan_history())) if full
                    else run.history(samples=samples, pandas=True))
    frame = journal.cached(cache, pd.read_parquet, build, lambda f, path: f.to_parquet(path))
    note = "" if full else f"sampled to {len(frame)} points"
    return frame, note
