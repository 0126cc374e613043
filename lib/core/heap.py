"""The process's heap: collections that hand freed pages back to the system
(`collect_garbage`, counted in `GC`), and glibc tuned so that a closed session's memory can go
back at all (`tune_allocator`)."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import os
import threading
import time
from dataclasses import dataclass


def collect_garbage() -> None:
    """Collect what is not frozen (cheap once `freeze_long_lived` ran) and hand the freed
    memory back to the system. Counted in `GC`."""
    t0 = time.perf_counter()
    gc.collect()
    _trim_heap()
    with _collections_lock:
        GC.count += 1
        GC.seconds += time.perf_counter() - t0


@dataclass
class GcStats:
    """Lens' own collections so far (`collect_garbage`): how many, and their seconds."""

    count: int = 0
    seconds: float = 0.0


GC = GcStats()              # read by the page-run log (bench/load.py)


_collections_lock = threading.Lock()


def _trim_heap() -> None:
    """Hand the C heap's free pages back to the system (glibc keeps them otherwise, and a
    closed session's memory would stay in the process's RSS)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


@functools.cache
def _glibc():
    """The C library when it is glibc (it has malloc_trim and mallopt), else None."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None
    except OSError:
        return None


M_MMAP_THRESHOLD, M_ARENA_MAX = -3, -8      # glibc's mallopt parameters (malloc.h)


ALLOCATOR = {"MALLOC_ARENA_MAX": (M_ARENA_MAX, 2),
             "MALLOC_MMAP_THRESHOLD_": (M_MMAP_THRESHOLD, 1 << 20)}


@functools.cache
def tune_allocator() -> dict[str, int]:
    """Make the memory a closed session held go back to the system (glibc; once per process).

    By default glibc gives each thread that contends for the heap its own arena (up to 8 per
    core: every session's script thread), and once a large block has been freed it serves
    blocks up to that size (up to 32 MB) from those arenas instead of mapping them. A
    closed session's images and tensors then stay behind as holes between live blocks, which
    `malloc_trim` cannot give back: +19-21% RSS after 16 visitors had left in
    `bench/load.py`. Two arenas, and blocks of 1 MiB or more mapped on their own (unmapped
    when freed): +1%. A value set in the environment (`MALLOC_ARENA_MAX`,
    `MALLOC_MMAP_THRESHOLD_`) is left as it is. Returns what was set.
    """
    libc = _glibc()
    if libc is None:
        return {}
    return {name: value for name, (param, value) in ALLOCATOR.items()
            if name not in os.environ and libc.mallopt(param, value) == 1}
