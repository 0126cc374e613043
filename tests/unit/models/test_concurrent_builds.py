"""Two models built at once in a fresh process (two visitors, or a page run and the one it
replaced): both load. transformers' first imports from two threads at once used to fail."""

import subprocess
import sys

import pytest

from tests.conftest import ROOT

SCRIPT = """
import threading
from lib.segmentation import segment, segment_video
from lib.training.train_sam import NAME
errors = []
def run(load):
    try:
        load(NAME)
    except Exception as exc:
        errors.append(repr(exc))
threads = [threading.Thread(target=run, args=(f,))
           for f in (segment_video.load_video_model, segment.load_segmenter)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("ERRORS", errors)
"""


@pytest.mark.slow
def test_two_models_built_at_once_in_a_fresh_process():
    out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "ERRORS []" in out.stdout, out.stdout[-2000:]
