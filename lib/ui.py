"""Page plumbing shared by every page (imports Streamlit; `lib` modules never import this).

- `page_setup()`: the router guard. A page opened by URL before `app.py` ran switches
  Streamlit to `app.py`'s `st.navigation` router and reruns.
- `show_error(exc)`: any `LensError` as one message (message and hint), nothing else.
- `showing_errors()`: a context manager that shows the `LensError`s raised inside it.
- `ProgressBar(what)`: a progress bar for `lib.core.progress.Progress` callbacks.
- `queued(what)`: heavy work through the fair queue, showing the visitor's place in it;
  `busy(what)`: that with a spinner, the hook services take.
- `service(name, make)`: this visitor's service object for a capability.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import threading
import time
import weakref
from pathlib import Path
from typing import TYPE_CHECKING

import streamlit as st

from lib.core import heap
from lib.core.errors import LensError
from lib.core.progress import Progress
from lib.serving import fair_queue, memory

if TYPE_CHECKING:
    from lib.media.images import IntakeImage

# numpy, Pillow, the image intake and the sample generator are imported where they are used:
# every page imports this module before painting anything, and `bench/startup.py` times the
# first paint.


def page_setup() -> None:
    """Call first on every page: make sure the app's router is in charge (and keep the
    garbage collector off long-lived objects: `_settle_memory`)."""
    _settle_memory()
    _start_memory_watch()
    if "lens_router" not in st.session_state:
        from streamlit.runtime.pages_manager import PagesManager  # heavy: imported on first use
        PagesManager.uses_pages_directory = False
        st.rerun()


def _settle_memory() -> None:
    """At the start of each page run (and every few seconds): tell `memory.VISITORS` which
    session runs and which are alive, reap Streamlit's store of the dropped ones and their
    media, and let `memory.release` give their memory back. The first call also tunes the C
    allocator so that what a session held can go back to the system (`heap.tune_allocator`)."""

    from streamlit import config  # heavy: imported on first use
    from streamlit.runtime import Runtime  # heavy: imported on first use

    heap.tune_allocator()
    runtime = Runtime.instance() if Runtime.exists() else None
    ttl = float(config.get_option("server.disconnectedSessionTTL") or 0)
    settled = memory.VISITORS.settle(
        session_id(), lambda s: runtime is None or runtime.is_active_session(s), ttl)
    if settled.dropped and runtime is not None:
        _reap_sessions(runtime)
        # the images and files their pages showed (Streamlit frees them only at the end of
        # someone's next script run)
        runtime.media_file_mgr.remove_orphaned_files()
    memory.release(settled)


def _reap_sessions(runtime, timeout_s: float = 2.0) -> None:
    """Streamlit keeps a dropped session, all its state with it, in its session store until
    the store is next written to (its TTL cache reaps lazily): until the next visitor
    connects. Have the event loop, which owns that store, reap it now. This reaches into
    Streamlit's internals, so where they differ it does nothing."""
    try:
        store = runtime._session_mgr._session_storage._cache
        loop = runtime._get_async_objs().eventloop
    except (AttributeError, RuntimeError):
        return
    done = threading.Event()

    def reap():
        try:
            store.expire()
        finally:
            done.set()
    loop.call_soon_threadsafe(reap)
    done.wait(timeout_s)


_watch: list[threading.Thread] = []
_watch_lock = threading.Lock()


def _start_memory_watch(every_s: float = 2.0) -> None:
    """Also check every few seconds off the script threads, so that the memory of the last
    visitors to leave comes back without waiting for the next visitor. Not under AppTest:
    there the process is the test runner's, and page runs settle it on their own thread."""
    from streamlit import config  # heavy: imported on first use
    if config.get_option("global.appTest"):
        return
    with _watch_lock:
        if _watch:
            return

        def watch():
            while True:
                time.sleep(every_s)
                try:
                    _settle_memory()
                except Exception:  # noqa: BLE001 - a failed check must not stop the watch
                    pass
        _watch.append(threading.Thread(target=watch, name="lens-memory-watch", daemon=True))
        _watch[0].start()


class SessionEnd:
    """Kept in a session's state: when Streamlit drops the session (the visitor left and the
    reconnect window passed), the object is collected and its callbacks release what Lens
    keeps for that visitor outside the session state."""

    def __init__(self):
        self.callbacks: list = []
        weakref.finalize(self, SessionEnd._release, self.callbacks)

    @staticmethod
    def _release(callbacks: list) -> None:
        for fn in callbacks:
            try:
                fn()
            except Exception:  # noqa: BLE001 - a failing release must not stop the others
                pass


def on_session_end(fn) -> None:
    """Run `fn` once this visitor's session is gone."""
    end = st.session_state.get("_lens_session_end")
    if end is None:
        end = st.session_state["_lens_session_end"] = SessionEnd()
    end.callbacks.append(fn)


def session_id() -> str:
    """This visitor's Streamlit session id ("" outside a script run, e.g. on the memory
    watch's thread, where asking must not log Streamlit's "missing ScriptRunContext")."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx  # heavy: imported on first use
    ctx = get_script_run_ctx(suppress_warning=True)
    return ctx.session_id if ctx else ""


class ProgressBar:
    """A Streamlit progress bar fed by `lib.core.progress.Progress` values (the one way pages show
    progress); `clear()` removes it."""

    def __init__(self, what: str):
        self.what = what
        self._bar = st.progress(0.0, text=f"{what}…")

    def __call__(self, p: Progress) -> None:
        self._bar.progress(p.fraction, text=p.text(self.what))

    def clear(self) -> None:
        self._bar.empty()


@contextlib.contextmanager
def queued(what: str):
    """Run heavy work through the process's fair queue (`fair_queue.HEAVY`); while it
    waits, the visitor sees their place in the line instead of a frozen page."""
    note = st.empty()

    def waiting(place: int, status) -> None:
        note.info(f"{what}: {status.running} task(s) running on {status.slots} worker(s); "
                  f"you are #{place} in the queue.")

    with fair_queue.HEAVY.slot(waiting):
        note.empty()
        yield


@contextlib.contextmanager
def spinner(text: str, show: bool = True):
    """`st.spinner` when `show`, else nothing: Streamlit's spinner starts a thread each time,
    which work that returns at once (a model already loaded) does not need."""
    if not show:
        yield
        return
    with st.spinner(text):
        yield


@contextlib.contextmanager
def busy(what: str):
    """Heavy work a service runs on a visitor's behalf: a spinner saying `what`, and the
    fair queue (`queued`). Services take this as their `busy` hook."""
    with spinner(what), queued(what.rstrip("…")):
        yield


def service(name: str, make):
    """This visitor's service object for a capability (`make()` on first use): the page's
    state lives on it and goes with the session."""
    key = f"_lens_service_{name}"
    obj = st.session_state.get(key)
    if obj is None:
        obj = st.session_state[key] = make()
    return obj


def tabs(labels: list[str], keep: tuple[str, ...] = ()) -> list:
    """The page's tabs, of which the page computes and draws only the open one (`tab.open`).

    Switching is a rerun, and the open tab is part of the URL (`tab=<label>`), so a copied
    link reopens it. Hidden tabs otherwise cost the server their figures and images on every
    rerun, and every visitor's browser their drawing. Streamlit forgets the value of a widget
    that a run did not draw: the widgets named in `keep` (inside tabs) keep theirs while
    their tab is closed. An upload cannot be kept that way: a page draws a tab holding an
    uploader whether it is open or not.
    """
    for key in keep:
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]
    return st.tabs(labels, key="tab", bind="query-params")


def clickable_image(image, key: str):
    """An image (an RGB array) a visitor clicks on or drags a box over: the click's or the
    box's coordinates, else None.

    The component is streamlit-image-coordinates' frontend, served from Lens' copy
    (`lib/frontend/image_coordinates`, MIT, 0.4.1), which tells Streamlit it is ready only
    once its document's body exists: the original said so from <head>, and on a busy browser
    Streamlit's answer could come before the image element did, leaving it blank for good.
    The image goes to it as a PNG data URL, encoded once per image and kept in the session
    (the page draws it on every rerun)."""
    global _coordinates
    if _coordinates is None:
        import streamlit.components.v1 as components  # heavy: imported on first use
        _coordinates = components.declare_component(
            "streamlit_image_coordinates",
            path=str(Path(__file__).parent / "frontend" / "image_coordinates"))

    import numpy as np  # heavy: imported on first use (see the imports)
    pixels = np.ascontiguousarray(image)
    digest = (pixels.shape, hashlib.blake2b(pixels.data, digest_size=16).hexdigest())
    shown = st.session_state.setdefault("_lens_clickable", {})   # key -> (digest, data URL)
    if key not in shown or shown[key][0] != digest:
        shown.pop(key, None)
        while len(shown) >= 4:              # the images of the last few widgets only
            shown.pop(next(iter(shown)))
        shown[key] = (digest, _png_data_url(pixels))
    return _coordinates(src=shown[key][1], height=None, width=None, use_column_width=None,
                        key=key, click_and_drag=True, cursor="crosshair")


_coordinates = None      # the declared component, once


def plotly_brush(chart_key: str, version: int, key: str) -> dict:
    """The brushes drawn on the parallel-coordinates chart with Streamlit key `chart_key`:
    {axis label: [(low, high), ...]}, or {} when none (or only ones reported before `version`
    was raised, i.e. since cleared). A JavaScript listener (`lib/frontend/plotly_brush.js`),
    no frame of its own: the chart stays an ordinary `st.plotly_chart`."""
    global _brush
    if _brush is None:
        _brush = st.components.v2.component(
            "lens_plotly_brush", js=(Path(__file__).parent / "frontend" /
                                     "plotly_brush.js").read_text())
    result = _brush(key=key, data={"chart_key": chart_key, "version": version},
                    on_brush_change=lambda: None)
    state = getattr(result, "brush", None) if result is not None else None
    if not isinstance(state, dict) or state.get("version") != version:
        return {}
    axes = state.get("axes")
    out: dict[str, list[tuple[float, float]]] = {}
    for label, ranges in (axes.items() if isinstance(axes, dict) else ()):
        pairs = [(float(r[0]), float(r[1])) for r in ranges if isinstance(r, list)
                 and len(r) == 2 and all(isinstance(v, (int, float)) for v in r)]
        if pairs and isinstance(label, str):
            out[label] = pairs
    return out


_brush = None            # the registered component, once


def _png_data_url(pixels) -> str:

    from PIL import Image  # heavy: imported on first use (see the imports)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def download_button(label: str, data, file_name: str, mime: str, key: str, where=None):
    """The one way pages offer a download. `data` may be a callable, built only when clicked
    (Streamlit's deferred download). A click never reruns the page: with a rerun, the run it
    starts can finish, and drop the callable the browser is asking for as an orphan, before
    Streamlit looks it up, and the file then never arrives (about one click in seven in the
    browser test of a clip's COCO JSON)."""
    return (where or st).download_button(label, data, file_name, mime, key=key,
                                         on_click="ignore")


def untrained_warning(model) -> None:
    """Say so when a model is an untrained test model: its output is never shown as real."""
    if getattr(model, "untrained", False):
        st.warning("Untrained test model: its output is a plumbing check, not a prediction.")


def show_error(exc: LensError) -> None:
    """The one way a page shows an error a user can act on: its message and hint."""
    st.error(str(exc))


@contextlib.contextmanager
def showing_errors():
    """Show a `LensError` raised in the block as a message; the page goes on below it."""
    try:
        yield
    except LensError as exc:
        show_error(exc)


# -- what a visitor gives: links and images ---------------------------------------------------

def write_link(link_type, **fields) -> None:
    """Put `fields` of the page's link (a `lib.core.links.Link` type) into its URL, as that
    type writes them (the same type reads them back)."""
    st.query_params.update(link_type(**fields).query(only=tuple(fields)))


@st.cache_data(max_entries=64, show_spinner=False)
def decoded_image(data: bytes, name: str) -> IntakeImage:
    """An uploaded image through the one intake, once per file content (errors not cached)."""
    from lib.media import images  # imported on first use (see the imports)
    return images.load_image(data, name=name)


@st.cache_data(max_entries=8, show_spinner=False)
def sample_image(name: str) -> IntakeImage:
    """A bundled sample photo (or the synthetic sample) through the same intake."""
    from lib.demo import samples  # imported on first use (see the imports)
    from lib.media import images
    return images.load_image(samples.sample_bytes(name), name=name)


def secrets() -> dict:
    """The app's Streamlit secrets as a plain mapping ({} when there is no secrets file)."""
    try:
        return dict(st.secrets)
    except Exception:  # noqa: BLE001 - no file, or Streamlit's own parse error for a bad one
        return {}
