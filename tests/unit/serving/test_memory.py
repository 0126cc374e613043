"""Freezing what lives as long as the process, and collecting what visitors leave behind."""

import gc
import weakref

import pytest

from lib.models.cache import ModelCache


@pytest.fixture
def frozen_gc(monkeypatch):
    """A fresh freeze state; everything unfrozen again afterwards (the test process's own
    collector must not keep a frozen generation)."""
    from lib.serving import memory
    monkeypatch.setattr(memory, "_frozen_at", None)
    monkeypatch.setattr(memory, "_frozen_time", 0.0)
    yield memory
    gc.unfreeze()


def test_freezing_keeps_full_collections_off_what_was_alive(frozen_gc):
    before = gc.get_freeze_count()
    assert frozen_gc.freeze_long_lived()
    assert gc.get_freeze_count() > before
    assert not frozen_gc.freeze_long_lived()       # nothing imported or loaded since: no work
    frozen = gc.get_freeze_count()
    gc.collect()                                   # walks only what is new since the freeze
    assert gc.get_count()[2] == 0 and gc.get_freeze_count() == frozen
    assert len(gc.get_objects(generation=2)) < frozen / 10   # the rest is out of its walk


def test_a_session_s_garbage_is_still_collected_after_a_freeze(frozen_gc):
    frozen_gc.freeze_long_lived()
    freed: list = []
    _Cyclic(freed)                                 # a session's state, made after the freeze
    gc.collect()                                   # Streamlit's collection after a script run
    assert freed


@pytest.mark.slow
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


@pytest.mark.slow
def test_a_model_loaded_or_evicted_triggers_a_freeze_and_evicted_cycles_go(frozen_gc,
                                                                             monkeypatch):
    cache = ModelCache(budget_bytes=15, sizeof=lambda v: 10)
    monkeypatch.setattr(frozen_gc, "STORE", cache)
    freed: list = []
    frozen_gc.freeze_long_lived()
    cache.get("a", lambda: _Cyclic(freed))
    assert frozen_gc.freeze_long_lived()           # a model loaded: frozen with the rest
    cache.get("b", object)                         # "a" is evicted over budget
    assert freed                                   # its cycle is collected although frozen
    assert frozen_gc.freeze_long_lived()


class _Cyclic:
    """Garbage only the cyclic collector can free (it refers to itself)."""

    def __init__(self, freed: list):
        self.me = self
        weakref.finalize(self, freed.append, True)


def test_a_visitor_is_dropped_once_inactive_past_the_ttl_without_streamlit():
    from lib.serving.memory import Visitors
    v, alive = Visitors(), {"a", "b"}
    assert not v.settle("a", alive.__contains__, ttl=5, now=0).dropped
    v.frozen()                                    # "a" was alive at this freeze
    alive.discard("a")
    assert not v.settle("b", alive.__contains__, ttl=5, now=1).dropped   # within the TTL
    settled = v.settle("b", alive.__contains__, ttl=5, now=8)
    assert settled.dropped == {"a"} and settled.force          # frozen with the rest: force
    alive.discard("b")
    v.settle("", alive.__contains__, ttl=5, now=9)
    late = v.settle("", alive.__contains__, ttl=5, now=20)
    assert late.dropped == {"b"} and not late.force   # "b" came after it: a collection will do
