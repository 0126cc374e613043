"""The tuned allocator gives a closed session's buffers back to the system."""


import pytest

ALLOCATOR_PROBE = """
import sys, numpy as np, psutil
if sys.argv[1] == "tuned":
    from lib.core import heap
    assert heap.tune_allocator() == {"MALLOC_ARENA_MAX": 2, "MALLOC_MMAP_THRESHOLD_": 1 << 20}
proc = psutil.Process()
big = np.ones(8 << 20, np.uint8); del big        # a freed mapped block raises glibc's threshold
base = proc.memory_info().rss
blocks, pins = [], []
for _ in range(40):
    blocks.append(np.ones(2 << 20, np.uint8))    # 2 MiB buffers, like a session's images
    pins.append(bytearray(64 << 10))             # small long-lived blocks between them
del blocks
print((proc.memory_info().rss - base) >> 20)
"""


def test_a_tuned_allocator_gives_freed_buffers_back():
    """What a closed session held goes back to the system once `tune_allocator` ran (glibc's
    defaults keep freed 2 MiB buffers between live blocks); in a fresh interpreter each."""
    import os
    import subprocess
    import sys

    from lib.core import heap
    from tests.conftest import ROOT
    if heap._glibc() is None:
        pytest.skip("not glibc: the allocator is left as it is")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    kept = {how: int(subprocess.run([sys.executable, "-c", ALLOCATOR_PROBE, how], env=env,
                                    capture_output=True, text=True, check=True,
                                    cwd=ROOT).stdout)
            for how in ("default", "tuned")}
    assert kept["default"] >= 60 and kept["tuned"] <= 8, kept
