"""The process-wide model cache: load once, LRU under a budget, per-model locks."""

import gc
import threading
import time
import weakref

import pytest

from lib.models.cache import ModelCache, model_nbytes


def test_loads_once_under_concurrency():
    cache = ModelCache(budget_bytes=100, sizeof=lambda v: 10)
    calls = []

    def loader():
        calls.append(1)
        time.sleep(0.05)
        return object()

    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.get("m", loader).value))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len({id(r) for r in results}) == 1


def test_least_recently_used_is_released_over_budget():
    cache = ModelCache(budget_bytes=25, sizeof=lambda v: v)
    cache.get("a", lambda: 10)
    cache.get("b", lambda: 10)
    cache.get("a", lambda: 10)          # a is now most recent
    cache.get("c", lambda: 10)          # 30 > 25: b goes
    assert [k for k, _ in cache.summary()] == ["a", "c"]
    assert cache.evictions == ["b"] and cache.used_bytes == 20


def test_shared_state_is_one_object_counted_by_its_pickle(monkeypatch):
    """`cache.shared`: every caller gets the same object (not a copy), built once; it counts
    in the budget by its pickle's size, and goes out like a model when room is needed."""
    import pickle

    import numpy as np

    from lib.models import cache
    monkeypatch.setattr(cache, "MODELS", ModelCache(budget_bytes=3 * 2**20))
    built = []

    def table():
        built.append(1)
        return {"scores": np.zeros(2**17)}          # 1 MiB of float64
    first = cache.shared("report: a", table)
    assert cache.shared("report: a", table) is first and built == [1]
    assert cache.MODELS.used_bytes == len(pickle.dumps(first, protocol=5)) > 2**20
    cache.shared("report: b", table)
    cache.shared("report: c", table)                 # a third MiB and more: a goes
    assert "report: a" in cache.MODELS.evictions and built == [1, 1, 1]


def test_each_model_has_its_own_lock():
    cache = ModelCache(budget_bytes=100, sizeof=lambda v: 1)
    a, b = cache.get("a", object), cache.get("b", object)
    assert a.lock is cache.get("a", object).lock and a.lock is not b.lock


def test_model_nbytes_counts_parameters_and_buffers():
    import torch
    m = torch.nn.BatchNorm1d(4)  # 8 params + 8 running stats (float32) + 1 int64 counter
    assert model_nbytes(m) == (4 + 4 + 4 + 4) * 4 + 8


# -- keeping the garbage collector off long-lived objects ---------------------------------------

class _Cyclic:
    """Garbage only the cyclic collector can free (it refers to itself)."""

    def __init__(self, freed: list):
        self.me = self
        weakref.finalize(self, freed.append, True)


@pytest.fixture
def frozen_gc(monkeypatch):
    """A fresh freeze state; everything unfrozen again afterwards (the test process's own
    collector must not keep a frozen generation)."""
    from lib.models import cache
    monkeypatch.setattr(cache, "_frozen_at", None)
    monkeypatch.setattr(cache, "_frozen_time", 0.0)
    yield cache
    gc.unfreeze()


def test_freezing_keeps_full_collections_off_what_was_alive(frozen_gc):
    before = gc.get_freeze_count()
    assert frozen_gc.freeze_long_lived()
    assert gc.get_freeze_count() > before
    assert not frozen_gc.freeze_long_lived()       # nothing imported or loaded since: no work
    t0 = time.perf_counter()
    gc.collect()                                   # walks only what is new since the freeze
    assert gc.get_count()[2] == 0 and time.perf_counter() - t0 < 1.0


def test_a_session_s_garbage_is_still_collected_after_a_freeze(frozen_gc):
    frozen_gc.freeze_long_lived()
    freed: list = []
    _Cyclic(freed)                                 # a session's state, made after the freeze
    gc.collect()                                   # Streamlit's collection after a script run
    assert freed


def test_state_alive_at_a_freeze_is_collected_at_the_next_one(frozen_gc, monkeypatch):
    freed: list = []
    alive = _Cyclic(freed)                         # a session alive while a model loaded
    frozen_gc.freeze_long_lived()
    del alive                                      # ... that ended since
    gc.collect()
    assert not freed                               # frozen: a plain collection skips it
    monkeypatch.setattr(frozen_gc, "REFREEZE_S", 0.0)
    assert frozen_gc.freeze_long_lived()           # the periodic refreeze collects first
    assert freed


def test_a_model_loaded_or_evicted_triggers_a_freeze_and_evicted_cycles_go(frozen_gc,
                                                                             monkeypatch):
    cache = ModelCache(budget_bytes=15, sizeof=lambda v: 10)
    monkeypatch.setattr(frozen_gc, "MODELS", cache)
    freed: list = []
    frozen_gc.freeze_long_lived()
    cache.get("a", lambda: _Cyclic(freed))
    assert frozen_gc.freeze_long_lived()           # a model loaded: frozen with the rest
    cache.get("b", object)                         # "a" is evicted over budget
    assert freed                                   # its cycle is collected although frozen
    assert frozen_gc.freeze_long_lived()


ALLOCATOR_PROBE = """
import sys, numpy as np, psutil
if sys.argv[1] == "tuned":
    from lib.models import cache
    assert cache.tune_allocator() == {"MALLOC_ARENA_MAX": 2, "MALLOC_MMAP_THRESHOLD_": 1 << 20}
proc = psutil.Process()
big = np.ones(8 << 20, np.uint8); del big        # a freed mapped block raises glibc's threshold
base = proc.memory_info().rss
blocks, pins = [], []
for _ in range(40):
    blocks.append(np.ones(2 << 20, np.uint8))    # 2 MiB buffers, like a session's images
    pins.append(bytearray(64 << 10))             # small long-lived blocks between them
del blocks
print((proc.memory_info().rss - base) >> 20)
"""


def test_a_tuned_allocator_gives_freed_buffers_back():
    """What a closed session held goes back to the system once `tune_allocator` ran (glibc's
    defaults keep freed 2 MiB buffers between live blocks); in a fresh interpreter each."""
    import os
    import subprocess
    import sys

    from lib.models import cache
    from tests.conftest import ROOT
    if cache._glibc() is None:
        pytest.skip("not glibc: the allocator is left as it is")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    kept = {how: int(subprocess.run([sys.executable, "-c", ALLOCATOR_PROBE, how], env=env,
                                    capture_output=True, text=True, check=True,
                                    cwd=ROOT).stdout)
            for how in ("default", "tuned")}
    assert kept["default"] >= 60 and kept["tuned"] <= 8, kept
