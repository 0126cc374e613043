"""lib.ui's server chores: what a session holds is released with it, memory settles, dropped
sessions are reaped, the memory watch stays quiet."""

import threading


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


def test_a_freeze_is_forced_once_a_session_alive_at_the_last_one_is_dropped(monkeypatch):
    """State of a session that was alive at a freeze is frozen with the rest; the next page
    run after Streamlit drops that session (inactive past the TTL) collects it."""
    from streamlit import config
    from streamlit.runtime import Runtime

    from lib import ui
    from lib.serving import memory
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
    monkeypatch.setattr(memory, "freeze_long_lived", freeze)
    monkeypatch.setattr(memory, "VISITORS", memory.Visitors())
    monkeypatch.setattr("time.monotonic", lambda: clock[0])
    get_option = config.get_option
    monkeypatch.setattr(config, "get_option", lambda key: 5 if key ==
                        "server.disconnectedSessionTTL" else get_option(key))
    me = ["a"]
    monkeypatch.setattr(ui, "session_id", lambda: me[0])

    ui._settle_memory()                    # "a" runs a page: the first freeze holds "a"
    me[0] = "b"
    ui._settle_memory()                    # "b" was not alive at that freeze
    assert forced == [False, False] and memory.VISITORS._held == {"a"}
    active.discard("a")                    # "a" closes its tab
    ui._settle_memory()                    # seen inactive: Streamlit keeps it for the TTL
    clock[0] += 3
    ui._settle_memory()
    assert forced[-1] is False
    clock[0] += 4                          # past the TTL: dropped, so collect it
    ui._settle_memory()
    assert forced[-1] is True and memory.VISITORS._held == {"b"} and media_swept == [True]
    collected = []
    monkeypatch.setattr(memory, "collect_garbage", lambda: collected.append(True))
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


def test_a_page_s_link_is_read_from_and_written_to_its_url():
    """Through Streamlit's own query parameters: a link is visitor input (text capped,
    numbers clamped, junk gives the default), and what a page writes reads back."""
    from streamlit.testing.v1 import AppTest
    at = AppTest.from_string("""
import streamlit as st
from lib import ui
from lib.core.links import RunsLink
link = RunsLink.parse(st.query_params)
st.write(repr([len(link.path), link.smooth, link.source, link.runs]))
ui.write_link(RunsLink, metrics="train/*", runs=("a", "b c"), source="local")
""")
    for key, value in {"path": "x" * 5000, "smooth": "1e9", "source": "<b>",
                       "runs": "r1,,r2"}.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception
    assert at.markdown[0].value == repr([2000, 0.99, "local", ("r1", "r2")])
    written = {k: at.query_params[k] for k in ("metrics", "runs", "source")}
    assert written == {"metrics": ["train/*"], "runs": ["a,b c"], "source": ["local"]} or \
        written == {"metrics": "train/*", "runs": "a,b c", "source": "local"}
