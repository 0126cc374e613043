"""An embedding run killed mid-write resumes to the vectors of an uninterrupted run: a real
process embedding 12 demo images with the packaged EfficientNet-Lite0 is SIGKILLed once its
journal names a few images, the journal's last line is torn as a kill inside the write
leaves it, and the same run started again must finish with every image and box."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from lib.demo import synth
from tests.conftest import ROOT

SCRIPT = """
import sys
from pathlib import Path
import numpy as np
from lib.detection import datasets
from lib.detection.explore import embedding_job, embeddings
from lib.models import cache, registry
split = Path(sys.argv[1])
data = datasets.load_coco(split / "annotations.json", split / "images").subset(12, 0)
spec = registry.find("EfficientNet-Lite0 ImageNet (packaged)", "classification")
job = embedding_job.job_for(data, spec.name, lambda: embeddings.embedder_for(
    cache.load(spec, "classification").model, spec.name),
    embedding_job.ground_truth_boxes(data), spec=spec)
job.batch_size = 1
job.start()
job.wait()
assert job.finished, job.error
emb = job.embeddings("object")
np.savez(sys.argv[2], vectors=emb.vectors, ann_ids=emb.ann_ids, image_ids=emb.image_ids)
"""


def _env(cache: Path) -> dict[str, str]:
    return {**os.environ, "LENS_CACHE": str(cache), "PYTHONUNBUFFERED": "1"}


def _run(split: Path, out: Path, cache: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(split), str(out)], cwd=ROOT,
                          env=_env(cache), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]


@pytest.mark.slow
def test_an_embedding_killed_mid_write_resumes_to_the_uninterrupted_vectors(tmp_path):
    split = synth.demo_val(tmp_path / "demo")
    _run(split, tmp_path / "reference.npz", tmp_path / "cache-reference")
    cache = tmp_path / "cache"
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(split), str(tmp_path / "x.npz")],
                            cwd=ROOT, env=_env(cache), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline, journal = time.time() + 300, None
    try:
        while time.time() < deadline and journal is None:
            found = list((cache / "embeddings").glob("*.partial.jsonl"))
            if found and found[0].read_bytes().count(b"\n") >= 3:
                journal = found[0]
            assert proc.poll() is None, "the run ended before it could be killed"
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert journal is not None, "the run wrote no journal in time"
    with journal.open("ab") as fh:
        fh.write(b'{"image_id": 4, "results": [{"row": 0, "cou')       # torn mid-write
    _run(split, tmp_path / "resumed.npz", cache)
    want, got = np.load(tmp_path / "reference.npz"), np.load(tmp_path / "resumed.npz")
    assert got["ann_ids"].tolist() == want["ann_ids"].tolist() and len(got["ann_ids"]) > 0
    assert got["image_ids"].tolist() == want["image_ids"].tolist()
    np.testing.assert_allclose(np.abs((got["vectors"] * want["vectors"]).sum(1)), 1, atol=1e-3)
