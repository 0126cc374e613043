"""The Streamlit internals Lens relies on, checked by name: an upgrade that moves one fails
here, loudly, saying what to re-check, instead of Lens silently doing nothing (the reaping
and the router guard catch AttributeError on purpose). Streamlit is pinned in
requirements.txt to the versions these were checked on."""

import inspect

import pytest
import streamlit as st
from streamlit import config
from streamlit.runtime import Runtime
from streamlit.runtime.app_session import AppSession
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.runtime.pages_manager import PagesManager
from streamlit.runtime.scriptrunner import get_script_run_ctx

# (what Lens uses, where, what breaks without it): every row is a promise to re-check
INTERNALS = [
    (lambda: hasattr(PagesManager, "uses_pages_directory"),
     "PagesManager.uses_pages_directory", "lib/ui.py page_setup: the router guard"),
    (lambda: "suppress_warning" in inspect.signature(get_script_run_ctx).parameters,
     "get_script_run_ctx(suppress_warning=)", "lib/ui.py session_id on the memory watch"),
    (lambda: all(hasattr(Runtime, a) for a in ("is_active_session", "_get_async_objs")),
     "Runtime.is_active_session, Runtime._get_async_objs", "lib/ui.py _settle_memory"),
    (lambda: "_session_mgr" in inspect.getsource(Runtime.__init__),
     "Runtime._session_mgr", "lib/ui.py _reap_sessions"),
    (lambda: hasattr(MediaFileManager, "remove_orphaned_files"),
     "MediaFileManager.remove_orphaned_files", "lib/ui.py: media of dropped sessions"),
    (lambda: all(hasattr(AppSession, a) for a in ("handle_backmsg", "_enqueue_forward_msg")),
     "AppSession.handle_backmsg, _enqueue_forward_msg", "tests/e2e/door.py (load bench)"),
    (lambda: "bind" in inspect.signature(st.tabs).parameters,
     "st.tabs(bind=)", "lib/ui.py tabs: the open tab in the URL"),
    (lambda: "on_click" in inspect.signature(st.download_button).parameters,
     "st.download_button(on_click=)", "lib/ui.py download_button: downloads never rerun"),
]


@pytest.mark.parametrize("check,what,where", INTERNALS, ids=[w for _, w, _ in INTERNALS])
def test_a_streamlit_internal_lens_relies_on_is_there(check, what, where):
    assert check(), (f"Streamlit {st.__version__} no longer has {what}; re-check {where} "
                     "before widening the streamlit pin in requirements.txt.")


@pytest.mark.parametrize("option", ["global.appTest", "runner.postScriptGC",
                                    "server.disconnectedSessionTTL"])
def test_a_streamlit_option_lens_reads_or_sets_exists(option):
    config.get_option(option)      # raises for an option this Streamlit does not have


def test_the_session_store_lens_reaps_is_where_it_was():
    """lib/ui.py _reap_sessions reaches runtime._session_mgr._session_storage._cache.expire():
    the storage class Streamlit uses must still keep a TTL cache there."""
    from streamlit.runtime.memory_session_storage import MemorySessionStorage
    source = inspect.getsource(MemorySessionStorage)
    assert "self._cache" in source and "TTLCache" in source, \
        "MemorySessionStorage no longer keeps a TTLCache in _cache: re-check lib/ui.py"
