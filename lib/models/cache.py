"""Process-wide memory Lens keeps: models loaded once and shared, under one budget.

Streamlit runs every session as a thread of one process, so a module-level cache is shared
by all of them. The budget (`LENS_MODEL_BUDGET_MB`) counts everything Lens keeps:

- models (`load`): least recently used first out when room is needed;
- other shared state (`shared` to build it once, or `put`): datasets, detection reports,
  SAM2 image embeddings, likewise evictable;
- state owned elsewhere (`track`): decoded video clips and tracking sessions. It is counted
  while alive (a weak reference drops it when its owner lets go) and never evicted here;
  models make room for it.

Every entry has a kind (`MODEL`, or what the state is: "detection report", "image
embedding", "tracking session") and a key within its kind: `summary` and `by_kind` say what
the memory holds without parsing keys.

Something that cannot fit even in an empty cache raises `ModelTooLargeError`, a message
instead of an out-of-memory kill. Each cached model carries a lock; every forward pass on a
shared model runs under it (hooks are per thread otherwise).
"""

from __future__ import annotations

import gc
import pickle
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lib.core import settings
from lib.core.errors import ModelTooLargeError
from lib.core.heap import collect_garbage
from lib.models import registry
from lib.models.spec import Model


def model_nbytes(obj: Any) -> int:
    """Bytes held by the parameters and buffers of a torch module (or of `.model`)."""
    module = getattr(obj, "model", obj)
    total = 0
    for attr in ("parameters", "buffers"):
        fn = getattr(module, attr, None)
        if fn is not None:
            total += sum(t.numel() * t.element_size() for t in fn())
    return total


def tensor_nbytes(obj: Any) -> int:
    """Bytes of a tensor, array, or a (nested) list/tuple/dict of them."""
    if hasattr(obj, "nbytes") and not callable(obj.nbytes):
        return int(obj.nbytes)
    if hasattr(obj, "element_size"):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(tensor_nbytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(tensor_nbytes(v) for v in obj)
    return sum(tensor_nbytes(v) for v in getattr(obj, "__dict__", {}).values()
               if hasattr(v, "nbytes") or hasattr(v, "element_size"))


#: the kind of every loaded model's entry (shared state is named by its callers)
MODEL = "model"


@dataclass
class CacheEntry:
    key: str
    value: Any
    nbytes: int
    lock: threading.RLock = field(default_factory=threading.RLock)
    kind: str = MODEL


@dataclass(frozen=True)
class Held:
    """One thing the process keeps under the budget: its kind, key and size."""

    kind: str
    key: str
    nbytes: int


def _mb(n: float) -> str:
    return f"{n / 2**20:.0f} MB"


class ModelCache:
    """LRU of shared models and state with one byte budget and per-entry locks."""

    def __init__(self, budget_bytes: int | None = None,
                 sizeof: Callable[[Any], int] = model_nbytes):
        self._budget = budget_bytes
        self._sizeof = sizeof
        self._entries: OrderedDict[tuple[str, str], CacheEntry] = OrderedDict()
        self._tracked: dict[int, Held] = {}
        self._guard = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}
        self.evictions: list[str] = []   # keys evicted so far, oldest first
        self.model_changes = 0      # models loaded or evicted so far (`freeze_long_lived`)

    @property
    def budget_bytes(self) -> int:
        return self._budget or settings.get().model_budget_mb * 2**20

    def get(self, key: str, loader: Callable[[], Any],
            sizeof: Callable[[Any], int] | None = None, kind: str = MODEL) -> CacheEntry:
        """Return the cached entry for (`kind`, `key`), loading it once (other callers wait);
        its size by `sizeof`, else the cache's (a model's parameters)."""
        at = (kind, key)
        with self._guard:
            if at in self._entries:
                self._entries.move_to_end(at)
                return self._entries[at]
            load_lock = self._loading.setdefault(at, threading.Lock())
        with load_lock:
            with self._guard:
                if at in self._entries:
                    self._entries.move_to_end(at)
                    return self._entries[at]
            try:
                value = loader()
                entry = self._insert(kind, key, value, (sizeof or self._sizeof)(value))
                self.model_changes += 1
                return entry
            finally:
                with self._guard:
                    self._loading.pop(at, None)

    def put(self, kind: str, key: str, value: Any, nbytes: int) -> CacheEntry:
        """Keep shared state (not a model) under the budget; evictable like a model."""
        return self._insert(kind, key, value, nbytes)

    def peek(self, key: str, kind: str = MODEL) -> Any | None:
        with self._guard:
            entry = self._entries.get((kind, key))
            if entry is None:
                return None
            self._entries.move_to_end((kind, key))
            return entry.value

    def track(self, kind: str, key: str, owner: Any, nbytes: int) -> None:
        """Count `nbytes` held by `owner` (weakly referenced) until it is collected; called
        again for the same owner, its count becomes `nbytes` (state that grows and shrinks,
        like a tracking session). Raises `ModelTooLargeError` when the growth cannot fit."""
        with self._guard:
            known = self._tracked.pop(id(owner), None)
            try:
                self._make_room(nbytes, key)
            except ModelTooLargeError:
                if known is not None:
                    self._tracked[id(owner)] = known
                raise
            self._tracked[id(owner)] = Held(kind, key, nbytes)
        if known is None:
            weakref.finalize(owner, self._untrack, id(owner))

    def make_room(self, key: str, nbytes: int) -> None:
        """Evict until `nbytes` more would fit (before allocating them), or raise."""
        with self._guard:
            self._make_room(nbytes, key)

    def _untrack(self, ident: int) -> None:
        with self._guard:
            self._tracked.pop(ident, None)

    def _insert(self, kind: str, key: str, value: Any, nbytes: int) -> CacheEntry:
        own = value.lock if isinstance(value, Model) else None   # held by its forward passes
        entry = CacheEntry(key=key, value=value, nbytes=nbytes,
                           lock=own if own is not None else threading.RLock(), kind=kind)
        with self._guard:
            self._make_room(nbytes, key)
            self._entries[(kind, key)] = entry
        return entry

    def _make_room(self, incoming: int, key: str) -> None:
        """Evict least recently used entries until `incoming` fits (caller holds the guard)."""
        budget = self.budget_bytes
        pinned = sum(h.nbytes for h in self._tracked.values())
        if incoming + pinned > budget:
            raise ModelTooLargeError(
                f"'{key.split(':', 1)[-1]}' needs {_mb(incoming)}; with {_mb(pinned)} held by "
                f"open videos it does not fit the memory budget of {_mb(budget)}.",
                "Close other videos, pick a smaller model, or raise LENS_MODEL_BUDGET_MB.")
        freed = False
        while self._entries and self._used() + incoming > budget:
            (_, old_key), old = self._entries.popitem(last=False)
            self.evictions.append(old_key)
            del old                  # nothing here may keep it alive through the collection
            freed = True
        if freed:
            gc.unfreeze()            # what was frozen with the evicted entries goes too
            collect_garbage()        # and its memory back to the system
            self.model_changes += 1  # the rest is frozen again on the next page run

    def _used(self) -> int:
        return (sum(e.nbytes for e in self._entries.values())
                + sum(h.nbytes for h in self._tracked.values()))

    def release(self, key: str, kind: str = MODEL) -> None:
        with self._guard:
            self._entries.pop((kind, key), None)

    def clear(self, kind: str | None = None) -> None:
        """Drop every entry (or every entry of one kind)."""
        with self._guard:
            for at in [at for at in self._entries if kind in (None, at[0])]:
                del self._entries[at]

    def keys(self, kind: str = MODEL) -> list[str]:
        """The keys of one kind, least recently used first."""
        with self._guard:
            return [key for k, key in self._entries if k == kind]

    @property
    def used_bytes(self) -> int:
        with self._guard:
            return self._used()

    def summary(self) -> list[Held]:
        """Each entry, least recently used first, then the tracked state."""
        with self._guard:
            return ([Held(e.kind, e.key, e.nbytes) for e in self._entries.values()]
                    + list(self._tracked.values()))

    def by_kind(self) -> dict[str, tuple[int, int]]:
        """kind -> (entries, bytes): models, each kind of shared state, tracked state."""
        out: dict[str, tuple[int, int]] = {}
        for held in self.summary():
            count, total = out.get(held.kind, (0, 0))
            out[held.kind] = (count + 1, total + held.nbytes)
        return out


#: Everything Lens keeps in this process under one budget: models, and the shared state
#: counted with them (embeddings, clips, datasets, reports).
STORE = ModelCache()


@dataclass(frozen=True)
class ModelHandle:
    """A loaded model as every caller gets it: the model (a `registry.Model`: `LoadedModel`,
    `Detector`, `Segmenter`, `Grounder` or `VideoModel`), the lock its forward passes hold,
    and whether it is an untrained test model (never shown as real output)."""

    spec: Any
    model: Any
    lock: threading.RLock
    untrained: bool


def load(name: Any, task: str, device: str | None = None) -> ModelHandle:
    """The one way to get a model: by registry name (or a `ModelSpec`) for a task, loaded
    once per process under the memory budget. The only cache-key format is here."""
    given = name if isinstance(name, registry.ModelSpec) else None
    key = _key(name, task, device)

    def build():   # the registry is looked up (checkpoints scanned) only on a miss
        spec = given or registry.find(name, task)
        _SPECS[key] = spec
        return registry.build(spec, task, device)

    entry = STORE.get(key, build)
    model: registry.Model = entry.value
    return ModelHandle(_SPECS.get(key, given), model, model.lock, model.untrained)


def shared(kind: str, key: str, build: Callable[[], Any]) -> Any:
    """Read-only state every session may share (a dataset, a detection report: its `kind`),
    built once per process per `key` (callers asking meanwhile wait for it) and kept under
    the memory budget with the models, least recently used out first. Its size is that of
    its pickle. Unlike `st.cache_data`, a hit is the object itself, not a copy unpickled on
    every rerun: callers must not change it."""
    return STORE.get(key, build, sizeof=pickled_nbytes, kind=kind).value


def pickled_nbytes(value: Any) -> int:
    """The size of `value`'s pickle: about the memory its arrays and tables hold."""
    return len(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))


def loaded(name: Any, task: str, device: str | None = None) -> bool:
    """Whether `load` would return at once: the model is in the cache already."""
    return STORE.peek(_key(name, task, device)) is not None


def _key(name: Any, task: str, device: str | None) -> str:
    name = name.name if isinstance(name, registry.ModelSpec) else name
    return f"{registry.Task(task)}:{name}@{device or 'auto'}"


def model_label(key: str) -> str:
    """A model entry's key as a person reads it: "name (task)", the device when one was
    asked for (the inverse of the one key format, `_key`)."""
    task, _, rest = key.partition(":")
    name, _, device = rest.rpartition("@")
    return f"{name} ({task}{'' if device == 'auto' else ', ' + device})"


_SPECS: dict[str, Any] = {}   # cache key -> the spec its model was built from
