"""Process-wide model cache: each model loaded once, shared by all sessions, under a budget.

Streamlit runs every session as a thread of one process, so a module-level cache is shared
by all of them. When loading a model would exceed the memory budget, the least recently used
models are released first. Each cached model carries a lock: code that mutates a model (CAM
hooks, for instance) holds it, so concurrent sessions never see each other's hooks.
"""

from __future__ import annotations

import gc
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

DEFAULT_BUDGET_MB = int(os.environ.get("LENS_MODEL_BUDGET_MB", 6144))


def model_nbytes(obj: Any) -> int:
    """Bytes held by the parameters and buffers of a torch module (or of `.model`)."""
    module = getattr(obj, "model", obj)
    total = 0
    for attr in ("parameters", "buffers"):
        fn = getattr(module, attr, None)
        if fn is not None:
            total += sum(t.numel() * t.element_size() for t in fn())
    return total


@dataclass
class CacheEntry:
    key: str
    value: Any
    nbytes: int
    lock: threading.RLock = field(default_factory=threading.RLock)


class ModelCache:
    """Least-recently-used cache of loaded models with a byte budget and per-model locks."""

    def __init__(self, budget_bytes: int, sizeof: Callable[[Any], int] = model_nbytes):
        self.budget_bytes = budget_bytes
        self._sizeof = sizeof
        self._entries: OrderedDict[str, CacheEntry] = OrderedDict()
        self._guard = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}
        self.evictions: list[str] = []

    def get(self, key: str, loader: Callable[[], Any]) -> CacheEntry:
        """Return the cached entry for `key`, loading it once (other callers wait)."""
        with self._guard:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
            load_lock = self._loading.setdefault(key, threading.Lock())
        with load_lock:
            with self._guard:
                if key in self._entries:
                    self._entries.move_to_end(key)
                    return self._entries[key]
            value = loader()
            entry = CacheEntry(key=key, value=value, nbytes=self._sizeof(value))
            with self._guard:
                self._make_room(entry.nbytes)
                self._entries[key] = entry
                self._loading.pop(key, None)
            return entry

    def _make_room(self, incoming: int) -> None:
        while self._entries and self.used_bytes + incoming > self.budget_bytes:
            old_key, _ = self._entries.popitem(last=False)
            self.evictions.append(old_key)
        gc.collect()

    def release(self, key: str) -> None:
        with self._guard:
            self._entries.pop(key, None)

    def clear(self) -> None:
        with self._guard:
            self._entries.clear()

    @property
    def used_bytes(self) -> int:
        return sum(e.nbytes for e in self._entries.values())

    def summary(self) -> list[tuple[str, int]]:
        """(key, bytes) of each cached model, least recently used first."""
        with self._guard:
            return [(e.key, e.nbytes) for e in self._entries.values()]


MODELS = ModelCache(DEFAULT_BUDGET_MB * 1024 * 1024)


def get_model(name: str, device: str | None = None):
    """The loaded model for a registry name, from the process-wide cache: (LoadedModel, lock)."""
    from lib import registry
    entry = MODELS.get(f"{name}@{device or 'auto'}",
                       lambda: registry.create(registry.find(name), device))
    return entry.value, entry.lock
