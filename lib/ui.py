"""Page plumbing shared by every page (imports Streamlit; `lib` modules never import this).

- `page_setup()`: the router guard. A page opened by URL before `app.py` ran switches
  Streamlit to `app.py`'s `st.navigation` router and reruns.
- `show_error(exc)`: any `LensError` as one message (message and hint), nothing else.
- `reported()`: a context manager that shows the `LensError`s raised inside it.
- `ProgressBar(what)`: a progress bar for `lib.progress.Progress` callbacks.
"""

from __future__ import annotations

import contextlib

import streamlit as st

from lib.errors import LensError
from lib.progress import Progress


def page_setup() -> None:
    """Call first on every page: make sure the app's router is in charge."""
    if "lens_router" not in st.session_state:
        from streamlit.runtime.pages_manager import PagesManager
        PagesManager.uses_pages_directory = False
        st.rerun()


def session_id() -> str:
    """This visitor's Streamlit session id ("" outside a script run)."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx
    ctx = get_script_run_ctx()
    return ctx.session_id if ctx else ""


class ProgressBar:
    """A Streamlit progress bar fed by `lib.progress.Progress` values (the one way pages show
    progress); `clear()` removes it."""

    def __init__(self, what: str):
        self.what = what
        self._bar = st.progress(0.0, text=f"{what}…")

    def __call__(self, p: Progress) -> None:
        self._bar.progress(p.fraction, text=p.text(self.what))

    def clear(self) -> None:
        self._bar.empty()


def untrained_warning(model) -> None:
    """Say so when a model is an untrained test model: its output is never shown as real."""
    if getattr(model, "untrained", False):
        st.warning("Untrained test model: its output is a plumbing check, not a prediction.")


def show_error(exc: LensError) -> None:
    st.error(str(exc))


@contextlib.contextmanager
def reported():
    """Show a `LensError` raised in the block as a message; the page goes on below it."""
    try:
        yield
    except LensError as exc:
        show_error(exc)
