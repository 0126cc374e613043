"""TIDE-style error kinds and the AP they cost."""

import pytest

from lib.detection import tide
from lib.detection.detections import Detections
from tests.helpers import write_coco


def test_one_error_of_each_kind(tmp_path):
    ds = write_coco(tmp_path, [(10, 10, 30, 30, 1),    # A cat: found, and duplicated
                               (60, 60, 30, 30, 2),    # B dog: predicted as cat (class error)
                               (60, 10, 30, 30, 1),    # C cat: badly localised
                               (10, 60, 30, 30, 1)])   # D cat: missed
    dets = {1: Detections(1, [[10, 10, 40, 40], [10, 10, 40, 40], [60, 60, 90, 90],
                              [70, 20, 100, 50], [75, 25, 105, 55], [0, 0, 4, 4]],
                          [0.9, 0.8, 0.7, 0.6, 0.5, 0.4], [1, 1, 1, 1, 2, 1])}
    report = tide.analyse(ds, dets)
    assert [(lab.index, lab.kind) for lab in report.labels] == [
        (0, "TP"), (1, "duplicate"), (2, "class"), (3, "location"), (4, "both"),
        (5, "background")]
    assert report.counts == {"class": 1, "location": 1, "both": 1, "duplicate": 1,
                             "background": 1, "missed": 1}
    # Worked by hand (COCO's 101 recall points; classes cat, dog). As is: cat finds 1 of 3
    # at precision 1 (recall points 0.00-0.33: 34 of 101), dog finds nothing: AP50 = 17/101.
    # class: the dog box becomes a dog TP, dog AP 1 -> (34/101 + 1) / 2, a gain of 1/2.
    # location: C found at precision 2/4 -> cat (34 + 33 / 2) / 101 = 1/2 -> AP50 1/4.
    # missed: D removed, cat finds 1 of 2 (points 0.00-0.50: 51) -> 51/202, a gain of 17/202.
    # duplicate, both, background: dropping them moves no point of the envelope.
    assert report.ap50 == pytest.approx(17 / 101, abs=1e-9)
    assert report.delta_ap == pytest.approx({
        "class": 0.5, "location": 0.25 - 17 / 101, "missed": 17 / 202,
        "duplicate": 0.0, "both": 0.0, "background": 0.0}, abs=1e-9)
    assert report.images_with("missed") == [1]


def test_background_error_on_top_costs_ap(tmp_path):
    ds = write_coco(tmp_path, [(10, 10, 30, 30, 1)])
    dets = {1: Detections(1, [[60, 60, 90, 90], [10, 10, 40, 40]], [0.9, 0.5], [1, 1])}
    report = tide.analyse(ds, dets)
    assert report.counts["background"] == 1
    assert report.delta_ap["background"] > 0.4 and report.ap50 < 0.6
