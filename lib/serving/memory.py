"""The server's memory between visitors: the garbage collector kept off what lives as long
as the process (`freeze_long_lived`), so each collection walks only what is new."""

from __future__ import annotations

import gc
import sys
import threading
import time

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
