"""Heavy work shares the machine fairly: one bounded, first-come-first-served queue per process.

Streamlit runs every visitor's session as a thread of one process. Without a queue, ten
visitors asking for a CAM at once run ten CAMs at once and every page freezes. `HEAVY` lets
at most `LENS_HEAVY_SLOTS` pieces of heavy work (CAMs and faithfulness, evaluations, SAM2
embeddings, tracking and renders, detector batches, COCO reports) run at a time, in the order
asked; a waiting caller is told its place (`on_wait`) and can show it. Light work (cached
results, plots, widgets) never queues. Nested heavy work in the same thread does not queue
again.

By default one core stays out of heavy work: `HEAVY` has (cores - 1) slots, and torch's ops
inside them run on (cores - 1) / slots threads, so the server's event loop and every
visitor's light interactions (opening a page, switching tabs) keep a core. On 2 cores that
is one slot on one thread (`bench/load.py` measures what that gives visitors; its latest
figures are in docs/benchmarks.md).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from lib.core import settings


@dataclass(frozen=True)
class QueueStatus:
    running: int
    waiting: int
    slots: int


class FairQueue:
    """At most `slots` holders at a time; waiters served strictly in arrival order."""

    def __init__(self, slots: int, torch_threads: int | None = None):
        self.slots = max(1, int(slots))
        self.torch_threads = torch_threads   # set torch's thread count on first use, if given
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
        self._held.used = True   # this thread waits for or does heavy work
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
        if self.torch_threads:
            _limit_torch_threads(self.torch_threads)
        self._held.depth = 1
        try:
            yield
        finally:
            self._held.depth = 0
            with self._cond:
                self._running -= 1
                self._cond.notify_all()

    def begin_run(self) -> None:
        """Start a page run on this thread: `did_heavy_work` is False until it uses a slot."""
        self._held.used = False

    @property
    def did_heavy_work(self) -> bool:
        """Whether this thread waited for or did heavy work since `begin_run`."""
        return bool(getattr(self._held, "used", False))

    @property
    def status(self) -> QueueStatus:
        with self._cond:
            return QueueStatus(self._running, len(self._waiting), self.slots)


_TORCH_LIMITED = False


def _limit_torch_threads(threads: int) -> None:
    """Once torch is in use, cap its intra-op threads (process-wide, once)."""
    global _TORCH_LIMITED
    torch = sys.modules.get("torch")
    if _TORCH_LIMITED or torch is None:
        return
    _TORCH_LIMITED = True
    torch.set_num_threads(threads)


def _default_slots() -> int:
    """`LENS_HEAVY_SLOTS`, or auto: the cores minus one (one core stays for light work)."""
    return settings.get().heavy_slots or max(1, (os.cpu_count() or 1) - 1)


def threads_per_slot(slots: int, cores: int | None = None) -> int:
    """Torch threads for each heavy slot: the cores left after the one kept for light work."""
    cores = cores or os.cpu_count() or 1
    return max(1, (cores - 1) // max(1, slots))


HEAVY = FairQueue(_default_slots(), torch_threads=threads_per_slot(_default_slots()))
