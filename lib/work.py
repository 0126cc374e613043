"""Heavy work shares the machine fairly: one bounded, first-come-first-served queue per process.

Streamlit runs every visitor's session as a thread of one process. Without a queue, ten
visitors asking for a CAM at once run ten CAMs at once and every page freezes. `HEAVY` lets
at most `LENS_HEAVY_SLOTS` pieces of heavy work (CAMs and faithfulness, evaluations, SAM2
embeddings, tracking and renders, detector batches, COCO reports) run at a time, in the order
asked; a waiting caller is told its place (`on_wait`) and can show it. Light work (cached
results, plots, widgets) never queues. Nested heavy work in the same thread does not queue
again.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class QueueStatus:
    running: int
    waiting: int
    slots: int


class FairQueue:
    """At most `slots` holders at a time; waiters served strictly in arrival order."""

    def __init__(self, slots: int):
        self.slots = max(1, int(slots))
        self._cond = threading.Condition()
        self._waiting: deque[object] = deque()
        self._running = 0
        self._held = threading.local()

    @contextlib.contextmanager
    def slot(self, on_wait: Callable[[int, QueueStatus], None] | None = None,
             poll_s: float = 0.25) -> Iterator[None]:
        """Hold a slot for the block. While waiting, `on_wait(place, status)` is called with
        this caller's place in the line (1 = next) whenever it changes."""
        if getattr(self._held, "depth", 0):          # already inside heavy work
            self._held.depth += 1
            try:
                yield
            finally:
                self._held.depth -= 1
            return
        ticket = object()
        told = None
        with self._cond:
            self._waiting.append(ticket)
            try:
                while not (self._waiting[0] is ticket and self._running < self.slots):
                    place = self._waiting.index(ticket) + 1
                    if on_wait and place != told:
                        told = place
                        status = QueueStatus(self._running, len(self._waiting), self.slots)
                        self._cond.release()         # never call out holding the lock
                        try:
                            on_wait(place, status)
                        finally:
                            self._cond.acquire()
                        continue
                    self._cond.wait(poll_s)
            except BaseException:
                # the waiter gave up (a visitor left, Streamlit stopped the script): its
                # ticket must not block the line
                self._waiting.remove(ticket)
                self._cond.notify_all()
                raise
            self._waiting.popleft()
            self._running += 1
            self._cond.notify_all()
        self._held.depth = 1
        try:
            yield
        finally:
            self._held.depth = 0
            with self._cond:
                self._running -= 1
                self._cond.notify_all()

    @property
    def status(self) -> QueueStatus:
        with self._cond:
            return QueueStatus(self._running, len(self._waiting), self.slots)


def _default_slots() -> int:
    from lib import settings
    return settings.get().heavy_slots or max(1, os.cpu_count() or 1)


HEAVY = FairQueue(_default_slots())
