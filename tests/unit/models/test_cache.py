"""The model cache: loaded once under concurrency, least recently used out first, shared state
counted, one lock per model."""

import threading
import time

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
    assert [h.key for h in cache.summary()] == ["a", "c"]
    assert cache.evictions == ["b"] and cache.used_bytes == 20


def test_shared_state_is_one_object_counted_by_its_pickle(monkeypatch):
    """`cache.shared`: every caller gets the same object (not a copy), built once; it counts
    in the budget by its pickle's size, and goes out like a model when room is needed."""
    import pickle

    import numpy as np

    from lib.models import cache
    monkeypatch.setattr(cache, "STORE", ModelCache(budget_bytes=3 * 2**20))
    built = []

    def table():
        built.append(1)
        return {"scores": np.zeros(2**17)}          # 1 MiB of float64
    first = cache.shared("report", "a", table)
    assert cache.shared("report", "a", table) is first and built == [1]
    assert cache.STORE.used_bytes == len(pickle.dumps(first, protocol=5)) > 2**20
    cache.shared("report", "b", table)
    cache.shared("report", "c", table)               # a third MiB and more: a goes
    assert "a" in cache.STORE.evictions and built == [1, 1, 1]
    assert cache.STORE.by_kind() == {"report": (2, cache.STORE.used_bytes)}


def test_kinds_keep_their_keys_apart_and_say_what_memory_holds():
    """A key means one thing within its kind: a report and a model of the same key are two
    entries; `by_kind` counts each kind, tracked state included."""
    cache = ModelCache(budget_bytes=100, sizeof=lambda v: v)
    cache.get("x", lambda: 10)
    cache.get("x", lambda: 20, kind="report")
    cache.put("embedding", "x", object(), 5)

    class Owner:
        pass
    owner = Owner()
    cache.track("session", "x", owner, 7)
    assert cache.get("x", lambda: 99).value == 10
    assert cache.by_kind() == {"model": (1, 10), "report": (1, 20), "embedding": (1, 5),
                               "session": (1, 7)}
    cache.clear("report")
    assert cache.keys("report") == [] and cache.keys() == ["x"] and cache.used_bytes == 22


def test_each_model_has_its_own_lock():
    cache = ModelCache(budget_bytes=100, sizeof=lambda v: 1)
    a, b = cache.get("a", object), cache.get("b", object)
    assert a.lock is cache.get("a", object).lock and a.lock is not b.lock


def test_model_nbytes_counts_parameters_and_buffers():
    import torch
    m = torch.nn.BatchNorm1d(4)  # 8 params + 8 running stats (float32) + 1 int64 counter
    assert model_nbytes(m) == (4 + 4 + 4 + 4) * 4 + 8


def test_a_model_entry_reads_as_its_name_and_task():
    from lib.models.cache import _key, model_label
    assert model_label(_key("facebook/detr-resnet-50", "detection", None)) == \
        "facebook/detr-resnet-50 (detection)"
    assert model_label(_key("a@b:c", "classification", "cuda")) == "a@b:c (classification, cuda)"
