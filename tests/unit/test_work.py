"""The fair queue for heavy work: bounded, first come first served, places reported."""

import threading
import time

import pytest

from lib.serving.work import FairQueue


def test_at_most_slots_run_and_waiters_are_served_in_order():
    queue = FairQueue(2)
    running, peak, order = [0], [0], []
    guard = threading.Lock()
    places: dict[int, list[int]] = {}

    def work(i):
        with queue.slot(lambda place, status: places.setdefault(i, []).append(place)):
            with guard:
                running[0] += 1
                peak[0] = max(peak[0], running[0])
                order.append(i)
            time.sleep(0.05)
            with guard:
                running[0] -= 1

    threads = []
    for i in range(8):                      # arrive one after another
        t = threading.Thread(target=work, args=(i,))
        t.start()
        threads.append(t)
        time.sleep(0.005)
    for t in threads:
        t.join()
    assert peak[0] == 2 and order == list(range(8))
    assert places[7][0] == 6 and places[7] == sorted(places[7], reverse=True)  # #6, then up
    assert queue.status.running == 0 and queue.status.waiting == 0


def test_nested_heavy_work_does_not_wait_for_itself():
    queue = FairQueue(1)
    with queue.slot(), queue.slot():                  # would deadlock if it queued again
        assert queue.status.running == 1


def test_a_waiting_visitor_sees_their_place_on_the_page(monkeypatch):
    """While the only worker is busy, the classification page queues its CAM and tells the
    visitor their place; it goes on once the worker is free."""
    import streamlit as st

    from lib.serving import work
    from tests.app.test_pages import run_page
    busy = FairQueue(1)
    monkeypatch.setattr(work, "HEAVY", busy)
    places = []
    real_slot = busy.slot

    def watched_slot(on_wait=None, **kw):
        def told(place, status):
            places.append(place)
            on_wait(place, status)
        return real_slot(told if on_wait else None, **kw)

    monkeypatch.setattr(busy, "slot", watched_slot)
    held, release = threading.Event(), threading.Event()

    def other_visitor():
        with busy.slot():
            held.set()
            release.wait(30)

    holder = threading.Thread(target=other_visitor)
    holder.start()
    held.wait(5)
    def finish_when_someone_waits():            # the other visitor's work then finishes
        deadline = time.time() + 120
        while busy.status.waiting == 0 and time.time() < deadline:
            time.sleep(0.02)
        time.sleep(0.5)
        release.set()

    threading.Thread(target=finish_when_someone_waits).start()
    st.cache_data.clear()
    t0 = time.time()
    at = run_page("classification")
    holder.join()
    assert not at.exception
    assert places and places[0] == 1 and time.time() - t0 >= 0.5
    assert "top-1 **tiger cat**" in "\n".join(m.value for m in at.markdown)


def test_what_a_session_holds_is_released_when_it_ends():
    """The cloud client a visitor's key lives in goes when their session state goes."""
    import gc

    from lib import runs
    from lib.ui import SessionEnd
    runs.remember_client("visitor-1", object())
    state = {"_lens_session_end": SessionEnd()}
    state["_lens_session_end"].callbacks.append(lambda: runs.forget_client("visitor-1"))
    assert runs.client_for("visitor-1") is not None
    del state
    gc.collect()
    assert runs.client_for("visitor-1") is None


def test_a_waiter_that_gives_up_does_not_block_the_line():
    """Streamlit stops a script (the visitor left or reran) by raising inside it, also while
    it waits here: its place must be given up, or everyone behind it waits forever."""
    queue = FairQueue(1)
    release = threading.Event()
    held = threading.Event()

    def holder():
        with queue.slot():
            held.set()
            release.wait(10)

    class VisitorLeft(Exception):
        pass

    def leaver():
        def leave(place, status):
            raise VisitorLeft()
        try:
            with queue.slot(leave):
                pass
        except VisitorLeft:
            pass

    served = []
    threading.Thread(target=holder).start()
    held.wait(5)
    t = threading.Thread(target=leaver)
    t.start()
    t.join(5)
    later = threading.Thread(target=lambda: served.append(_use(queue)))
    later.start()
    release.set()
    later.join(5)
    assert served == [True] and queue.status.waiting == 0


def _use(queue) -> bool:
    with queue.slot():
        return True


def test_one_core_stays_out_of_heavy_work_by_default(monkeypatch):
    from lib.serving import work
    assert work.threads_per_slot(1, cores=2) == 1          # 2 cores: one slot, one thread
    assert work.threads_per_slot(3, cores=16) == 5         # 15 cores over 3 slots
    assert work.threads_per_slot(4, cores=1) == 1
    monkeypatch.setattr(work.os, "cpu_count", lambda: 8)
    monkeypatch.delenv("LENS_HEAVY_SLOTS", raising=False)
    assert work._default_slots() == 7
    monkeypatch.setenv("LENS_HEAVY_SLOTS", "3")
    assert work._default_slots() == 3


def test_a_freeze_is_forced_once_a_session_alive_at_the_last_one_is_dropped(monkeypatch):
    """State of a session that was alive at a freeze is frozen with the rest; the next page
    run after Streamlit drops that session (inactive past the TTL) collects it."""
    from streamlit import config
    from streamlit.runtime import Runtime

    from lib import ui
    from lib.models import cache
    active = {"a", "b"}
    clock = [100.0]

    media_swept = []

    class FakeRuntime:
        class media_file_mgr:
            @staticmethod
            def remove_orphaned_files():
                media_swept.append(True)

        def is_active_session(self, sid):
            return sid in active

    forced = []

    def freeze(force=False):
        forced.append(force)
        return len(forced) == 1 or force          # the first run freezes (modules loaded)
    monkeypatch.setattr(Runtime, "exists", staticmethod(lambda: True))
    monkeypatch.setattr(Runtime, "instance", staticmethod(FakeRuntime))
    monkeypatch.setattr(cache, "freeze_long_lived", freeze)
    monkeypatch.setattr(ui, "_seen", {})
    monkeypatch.setattr(ui, "_held", set())
    monkeypatch.setattr("time.monotonic", lambda: clock[0])
    get_option = config.get_option
    monkeypatch.setattr(config, "get_option", lambda key: 5 if key ==
                        "server.disconnectedSessionTTL" else get_option(key))
    me = ["a"]
    monkeypatch.setattr(ui, "session_id", lambda: me[0])

    ui._settle_memory()                    # "a" runs a page: the first freeze holds "a"
    me[0] = "b"
    ui._settle_memory()                    # "b" was not alive at that freeze
    assert forced == [False, False] and ui._held == {"a"}
    active.discard("a")                    # "a" closes its tab
    ui._settle_memory()                    # seen inactive: Streamlit keeps it for the TTL
    clock[0] += 3
    ui._settle_memory()
    assert forced[-1] is False
    clock[0] += 4                          # past the TTL: dropped, so collect it
    ui._settle_memory()
    assert forced[-1] is True and ui._held == {"b"} and media_swept == [True]
    collected = []
    monkeypatch.setattr(cache, "collect_garbage", lambda: collected.append(True))
    active.add("c")
    me[0] = "c"
    ui._settle_memory()                    # "c" came after the freeze: never frozen
    active.discard("c")
    me[0] = "b"
    ui._settle_memory()
    clock[0] += 7
    ui._settle_memory()                    # dropped: a plain collection frees its state
    assert forced[-1] is False and collected == [True]
    clock[0] += 60
    ui._settle_memory()                    # nothing else ended: no more forced freezes
    assert forced[-1] is False


def test_page_runs_are_timed_into_the_run_log_only_when_asked(monkeypatch, tmp_path):
    import json

    from lib.serving import work
    log = tmp_path / "runs.jsonl"
    monkeypatch.delenv("LENS_RUN_LOG", raising=False)
    with work.timed_run("Home"):
        pass
    assert not log.exists()
    monkeypatch.setenv("LENS_RUN_LOG", str(log))
    with work.timed_run("Classification"), work.HEAVY.slot():
        time.sleep(0.05)
    with work.timed_run("Detection"):          # light: cached results only
        pass
    with pytest.raises(KeyboardInterrupt), work.timed_run("Runs"):
        raise KeyboardInterrupt                # Streamlit ends a run by raising in it
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert [(x["page"], x["heavy"]) for x in lines] == [
        ("Classification", True), ("Detection", False), ("Runs", False)]
    assert lines[0]["seconds"] >= 0.05
    monkeypatch.setenv("LENS_RUN_LOG", str(tmp_path))          # a folder: cannot be appended to
    with work.timed_run("Home"):
        ran = True
    assert ran


def test_a_dropped_session_is_reaped_from_streamlit_s_store_on_its_event_loop():
    """Streamlit's session store (a TTL cache) keeps an expired session, state and all,
    until it is next written to; Lens has the event loop that owns it reap it."""
    import asyncio
    import types
    import weakref

    from streamlit.runtime.caching.ttl_cache import TTLCache

    from lib import ui
    clock = [0.0]
    store = TTLCache(maxsize=128, ttl=5, timer=lambda: clock[0])

    class State:                                   # a session's state
        pass
    state = State()
    gone = weakref.ref(state)
    store["s1"] = state
    del state
    loop = asyncio.new_event_loop()
    owner = threading.Thread(target=loop.run_forever, daemon=True)
    owner.start()
    runtime = types.SimpleNamespace(
        _session_mgr=types.SimpleNamespace(_session_storage=types.SimpleNamespace(_cache=store)),
        _get_async_objs=lambda: types.SimpleNamespace(eventloop=loop))
    try:
        ui._reap_sessions(runtime)
        assert gone() is not None                  # not expired yet: kept
        clock[0] = 6.0                             # past the TTL: Streamlit dropped it
        assert "s1" not in store and gone() is not None   # ... but it is still held
        ui._reap_sessions(runtime)
        assert gone() is None
    finally:
        loop.call_soon_threadsafe(loop.stop)
        owner.join(5)


def test_no_memory_watch_thread_under_apptest():
    """AppTest runs pages in the test runner's process: no background freezes there."""
    from streamlit.testing.v1 import AppTest
    at = AppTest.from_string("""
from lib import ui
ui._start_memory_watch()
""").run()
    assert not at.exception
    assert not [t for t in threading.enumerate() if t.name == "lens-memory-watch"]


def test_the_memory_watch_thread_logs_nothing(monkeypatch):
    """Settling memory off the script threads (the watch, every 2 s) must not make Streamlit
    log "missing ScriptRunContext": it buried real warnings in the server's log."""
    import logging

    from streamlit import config

    from lib import ui
    monkeypatch.setattr(config, "get_option",
                        lambda name: False if name == "global.appTest" else 0)
    seen: list[str] = []

    class Catch(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())
    logger = logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context")
    handler = Catch(level=logging.WARNING)
    logger.addHandler(handler)
    try:
        watch = threading.Thread(target=ui._settle_memory, name="lens-memory-watch")
        watch.start()
        watch.join(30)
    finally:
        logger.removeHandler(handler)
    assert not [m for m in seen if "ScriptRunContext" in m], seen
