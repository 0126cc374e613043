"""Calibration of detection confidence: D-ECE against netcal's own, re-calibration measured on
images it was not fitted on."""

from pathlib import Path

import numpy as np
import pytest

from lib.core.errors import InputError
from lib.demo import synth
from lib.detection import calibration, datasets, detections, matching


@pytest.fixture(scope="module")
def table():
    data, results = synth.detection_population(600, seed=4)
    for r in results:                                     # an over-confident detector
        s = min(max(r["score"], 1e-3), 1 - 1e-3)
        r["score"] = 1 / (1 + ((1 - s) / s) ** 3)         # its logits three times too large
    clean, _ = datasets.validate_coco(data, "population.json")
    ds = datasets.CocoDataset(Path("population.json"), Path("."), clean)
    return matching.match(ds, detections.from_coco_results(results))


def test_d_ece_is_netcals(table):
    from netcal.metrics import ECE
    score = table.det["score"].to_numpy(np.float64)
    hit = (table.det["gt"] >= 0).to_numpy()
    ours = calibration.of_table(table, bins=10)
    assert ours.d_ece == pytest.approx(ECE(bins=10, detection=True).measure(score, hit.astype(int)),
                                       abs=1e-9)
    assert ours.detections == len(score) and ours.bins["detections"].sum() == len(score)


def test_calibrated_scores_score_near_zero():
    rng = np.random.default_rng(0)
    score = rng.uniform(0, 1, 40_000)
    assert calibration.reliability(score, rng.uniform(0, 1, 40_000) < score).d_ece < 0.02
    assert calibration.reliability(score, rng.uniform(0, 1, 40_000) < score ** 3).d_ece > 0.15


@pytest.mark.parametrize("method", calibration.METHODS)
def test_recalibration_helps_on_held_out_images(table, method):
    r = calibration.recalibrate(table, method, threshold=0.5, seed=1)
    # temperature undoes the inflated logits; the others also undo the detector's own shift
    assert r.after.d_ece < r.before.d_ece * (0.75 if method == "temperature" else 0.5)
    assert r.held_out_images == 300 and r.before.detections == r.after.detections
    assert 0 <= r.f1_before <= 1 and 0 <= r.f1_after <= 1
    # a threshold means something else after: except for temperature, which keeps 0.5 at 0.5
    assert (r.f1_after == r.f1_before) == (method == "temperature")


def test_temperature_keeps_the_ranking(table):
    score = table.det["score"].to_numpy(np.float64)
    hit = (table.det["gt"] >= 0).to_numpy()
    mapped = calibration.fit("temperature", score, hit)(score)
    assert (np.diff(mapped[np.argsort(score, kind="stable")]) >= 0).all()   # never reorders


def test_bad_fits_are_refused():
    with pytest.raises(InputError, match="both right and wrong"):
        calibration.fit("isotonic", np.array([0.2, 0.9]), np.array([True, True]))
    with pytest.raises(InputError, match="Unknown calibration method"):
        calibration.fit("<b>platt</b>", np.array([0.2, 0.9]), np.array([True, False]))
