"""`streamlit` with its door timed, for load measurements:

    python -m tests.e2e.door LOG run app.py ...

Appends to LOG one JSON line each time a session's rerun request reaches the server and each
time the server hands a finished run to a session's outgoing queue:
`{"session": id, "t": time.time(), "what": "rerun" | "finished"}`. The session id is the one
the browser receives in its first message, so a harness can match the lines to its visitors.
These are the server's own timings: no browser's drawing and no busy harness in between.

Measurement only, never used by the app: it wraps two methods of Streamlit's `AppSession`
(internal API; checked on Streamlit 1.67).
"""

from __future__ import annotations

import json
import sys
import threading
import time


def install(log_path: str) -> None:
    """Wrap `AppSession` so that reruns asked for and runs finished are appended to the log."""
    from streamlit.runtime.app_session import AppSession

    log = open(log_path, "a", buffering=1, encoding="utf-8")   # noqa: SIM115 - the server's life
    lock = threading.Lock()
    handle, enqueue = AppSession.handle_backmsg, AppSession._enqueue_forward_msg

    def note(session, what: str) -> None:
        line = json.dumps({"session": session.id, "t": time.time(), "what": what})
        with lock:
            log.write(line + "\n")

    def handle_backmsg(self, msg):
        if msg.WhichOneof("type") == "rerun_script":
            note(self, "rerun")
        return handle(self, msg)

    def enqueue_forward_msg(self, msg):
        if msg.WhichOneof("type") == "script_finished":
            note(self, "finished")
        return enqueue(self, msg)

    AppSession.handle_backmsg = handle_backmsg
    AppSession._enqueue_forward_msg = enqueue_forward_msg


def read(log_path) -> dict[str, list[tuple[float, str]]]:
    """The log's events per session: [(time.time(), "rerun" | "finished")], in order."""
    from pathlib import Path

    from lib.core import journal
    out: dict[str, list[tuple[float, str]]] = {}
    for event in journal.read(Path(log_path)).records:    # a torn last line is skipped
        out.setdefault(event["session"], []).append((event["t"], event["what"]))
    return out


if __name__ == "__main__":
    install(sys.argv[1])
    from streamlit.web import cli
    sys.argv = ["streamlit", *sys.argv[2:]]
    cli.main()
