"""Compiled kernels: the one place Lens reaches numba. Its on-disk cache of compiled code is
kept with Lens' other caches (`settings.cache_dir("numba")`: the source folder may be
read-only), set before numba is first imported.

    from lib.core.compiled import njit

    @njit(cache=True, nogil=True)
    def kernel(...): ...
"""

from __future__ import annotations

import os

from lib.core import settings


def njit(*args, **kwargs):
    """`numba.njit`, with the cache folder set first (numba imported on first use)."""
    os.environ.setdefault("NUMBA_CACHE_DIR", str(settings.cache_dir("numba")))
    import numba  # heavy: imported on first use
    return numba.njit(*args, **kwargs)
