"""The one place for temporary files: named by content, capped, least recently used first."""

import os
import time

import pytest

from lib.core import scratch


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LENS_CACHE", str(tmp_path / "cache"))


def test_the_same_bytes_are_one_file_reused():
    a = scratch.store_bytes(b"clip", ".MP4")
    b = scratch.store_bytes(b"clip", ".mp4")
    assert a == b and a.read_bytes() == b"clip" and a.suffix == ".mp4"
    assert scratch.store_bytes(b"other") != a
    assert a.parent == scratch.root() and scratch.new_file(".png").parent == scratch.root()


def test_prune_removes_the_least_recently_used_down_to_the_cap():
    old, mid, new = (scratch.store_bytes(bytes([i]) * 1000) for i in range(3))
    now = time.time()
    for path, age in ((old, 300), (mid, 200), (new, 100)):
        os.utime(path, (now - age, now - age))
    freed = scratch.prune(cap_bytes=1500)
    assert freed == 2000 and [p.exists() for p in (old, mid, new)] == [False, False, True]


def test_files_in_use_and_fresh_partials_stay():
    busy = scratch.store_bytes(b"x" * 1000)                     # just used
    partial = scratch.new_dir("zip-partial-")
    (partial / "f").write_bytes(b"y" * 1000)
    assert scratch.prune(cap_bytes=0) == 0 and busy.exists() and partial.exists()
    stale = time.time() - 7200
    os.utime(partial, (stale, stale))
    scratch.prune(cap_bytes=10**9)                             # under the cap: only stale partials
    assert not partial.exists() and busy.exists()
