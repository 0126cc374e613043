"""The page-run log: with `LENS_RUN_LOG` set, one JSON line per page run (page, end time,
seconds, CPU, whether it did heavy work, the memory the model cache counted, Lens' garbage
collections). `bench/load.py` reads it to tell the server's share of a visitor's wait from
the browser's."""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Iterator

from lib.core import heap, settings
from lib.models.cache import STORE
from lib.serving.fair_queue import HEAVY


@contextlib.contextmanager
def timed_run(page: str) -> Iterator[None]:
    """Time a page run (the whole script, also when a rerun or stop ends it) into the file
    `LENS_RUN_LOG` names, when it is set: one JSON line with the page, when it ended
    (`time.time()`), the seconds, the script thread's CPU seconds, whether the run waited
    for or did heavy work, the memory the model cache counted (MB), and Lens' garbage
    collections so far (`heap.GC`: how many, seconds). `bench/load.py` reads it
    to tell the server's share of a visitor's wait from the browser's. Each line is one
    append to a file opened once: the log must not
    slow the runs it measures."""
    path = settings.get().run_log
    if not path:
        yield
        return
    HEAVY.begin_run()
    t0, cpu0 = time.perf_counter(), time.thread_time()
    try:
        yield
    finally:
        line = json.dumps({"page": page, "end": round(time.time(), 3),
                           "seconds": round(time.perf_counter() - t0, 4),
                           "cpu": round(time.thread_time() - cpu0, 4),
                           "heavy": HEAVY.did_heavy_work,
                           "cached_mb": round(STORE.used_bytes / 2**20, 1),
                           "collections": heap.GC.count,
                           "collection_s": round(heap.GC.seconds, 3)})
        try:
            os.write(_log_fd(path), (line + "\n").encode())
        except OSError:      # a diagnostic: a path it cannot write never takes a page down
            pass


def _log_fd(path: str) -> int:
    with _log_lock:
        if path not in _log_fds:
            _log_fds[path] = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        return _log_fds[path]


_log_lock = threading.Lock()


_log_fds: dict[str, int] = {}     # run log path -> its file, open for appending
