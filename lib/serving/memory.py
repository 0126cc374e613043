"""The server's memory between visitors, in one place:

- what the process holds under the budget: models and shared results in `cache.STORE`;
- what a visitor holds: their session state, with their service objects (`ui.service`),
  released when Streamlit drops the session (callbacks through `ui.on_session_end` close what
  lives outside Python: a tracker's decoder, a W&B client);
- when that memory comes back: `VISITORS.settle` notices the sessions that were dropped (on
  every page run and on a watch thread, so the last visitors to leave are not waiting for
  the next one to arrive), and `freeze_long_lived` keeps the garbage collector off what lives
  as long as the process, so each collection walks only what is new.

`lib.ui` asks Streamlit which sessions are alive and reaps its store; the decisions are here.
"""

from __future__ import annotations

import gc
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from lib.core.heap import collect_garbage
from lib.models.cache import STORE

_frozen_at: tuple[int, int] | None = None


_frozen_time = 0.0


_freezing = threading.Lock()


REFREEZE_S = 300.0


def freeze_long_lived(force: bool = False) -> bool:
    """Keep the cyclic garbage collector off what lives as long as the process.

    Streamlit collects every generation after each script run (`runner.postScriptGC`, which
    is what gives a closed session's memory back). With torch, transformers and a few models
    loaded that walks hundreds of thousands of objects, holding the GIL, on every rerun of
    every visitor (most of the server's CPU under `bench/load.py`'s crowd). `gc.freeze()`
    moves everything alive to the permanent generation, so each run's collection walks only
    what is new. Called at the start of every page run (`ui.page_setup`); it works (one full
    collection, freed memory handed back to the system, then freeze) only when modules were
    imported or models loaded or evicted since the last time, when `force`d (a session that
    was alive at the last freeze has ended: its state was frozen with the rest), or every
    `REFREEZE_S` seconds. True if it froze.
    """
    global _frozen_at, _frozen_time
    now = (len(sys.modules), STORE.model_changes)
    due = force or now != _frozen_at or time.monotonic() - _frozen_time > REFREEZE_S
    if not due or not _freezing.acquire(blocking=False):
        return False
    try:
        gc.unfreeze()
        collect_garbage()
        gc.freeze()
        _frozen_at, _frozen_time = now, time.monotonic()
        return True
    finally:
        _freezing.release()


@dataclass(frozen=True)
class Settled:
    """What one look at the sessions found: those dropped since, and whether their state
    needs a forced freeze to be collected (it was alive at the last freeze)."""
    dropped: frozenset[str]
    force: bool


class Visitors:
    """The sessions Lens has seen, and when each stopped being active: one is dropped once it
    has been inactive for longer than Streamlit keeps a disconnected session (`ttl`)."""

    def __init__(self):
        self._seen: dict[str, float] = {}    # session id -> when first seen inactive (0: active)
        self._held: set[str] = set()         # sessions alive at the last freeze
        self._lock = threading.Lock()

    def settle(self, current: str, is_active: Callable[[str], bool], ttl: float,
               now: float | None = None) -> Settled:
        """Note `current` (the session running now, "" off a script run) and find the
        sessions that are gone."""
        now = time.monotonic() if now is None else now
        with self._lock:
            if current:
                self._seen[current] = 0.0
            dropped = set()
            for s, since in list(self._seen.items()):
                if s == current or is_active(s):
                    self._seen[s] = 0.0
                elif not since:
                    self._seen[s] = now
                elif now - since > ttl + 1:
                    dropped.add(s)
            for s in dropped:
                del self._seen[s]
            return Settled(frozenset(dropped), bool(dropped & self._held))

    def frozen(self) -> None:
        """A freeze just ran: the sessions alive now had their state frozen with the rest."""
        with self._lock:
            self._held = set(self._seen)


VISITORS = Visitors()


def release(settled: Settled) -> None:
    """Give back what dropped sessions held: a forced freeze where their state was frozen,
    else a collection of what is not frozen (a freeze that is due anyway does both)."""
    if freeze_long_lived(force=settled.force):
        VISITORS.frozen()
    elif settled.dropped:
        collect_garbage()
