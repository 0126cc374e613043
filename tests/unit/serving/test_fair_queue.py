"""The fair queue for heavy work: slots, order, places shown, waiters that give up, one core kept
for light work."""

import threading
import time

import pytest

from lib.serving import fair_queue
from lib.serving.fair_queue import FairQueue


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


@pytest.mark.slow
def test_a_waiting_visitor_sees_their_place_on_the_page(monkeypatch):
    """While the only worker is busy, the classification page queues its CAM and tells the
    visitor their place; it goes on once the worker is free."""
    import streamlit as st

    from tests.app.test_pages import run_page
    busy = FairQueue(1)
    monkeypatch.setattr(fair_queue, "HEAVY", busy)
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
    from lib.models import cache
    for shared in ("prediction", "cam", "faithfulness"):         # computed by earlier tests
        cache.STORE.clear(shared)
    at = run_page("classification")
    holder.join()
    assert not at.exception
    assert places and places[0] == 1 and release.is_set()     # it waited for the worker
    assert "top-1 **tiger cat**" in "\n".join(m.value for m in at.markdown)


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
    assert fair_queue.threads_per_slot(1, cores=2) == 1          # 2 cores: one slot, one thread
    assert fair_queue.threads_per_slot(3, cores=16) == 5         # 15 cores over 3 slots
    assert fair_queue.threads_per_slot(4, cores=1) == 1
    monkeypatch.setattr(fair_queue.os, "cpu_count", lambda: 8)
    monkeypatch.delenv("LENS_HEAVY_SLOTS", raising=False)
    assert fair_queue._default_slots() == 7
    monkeypatch.setenv("LENS_HEAVY_SLOTS", "3")
    assert fair_queue._default_slots() == 3
