"""The Detection page's service without Streamlit: a visitor's benchmark on the COCO sample
(or the demo split), its numbers against pycocotools, its reports shared between visitors,
its leaderboard and its link."""

import pytest

from lib.detection import detections, slices
from lib.detection.service import DetectionBenchmark
from tests import reference
from tests.helpers import gt_results


@pytest.fixture
def bench(coco):
    b = DetectionBenchmark()
    b.open(coco.annotations_path, coco.images_dir)
    return b


def test_a_report_equals_pycocotools_and_is_shared_between_visitors(bench, coco):
    results = gt_results(coco, 0.1, 0.2, seed=3)
    dets = detections.from_coco_results(results)
    report = bench.report(dets)
    assert report.metrics.stats["AP"] == pytest.approx(
        reference.pycocotools(coco, results)["AP"], abs=1e-6)
    other = DetectionBenchmark()                  # another visitor, the same data and model
    other.open(coco.annotations_path, coco.images_dir)
    assert other.report(detections.from_coco_results(results)) is report
    boot = bench.bootstrap(report, 200, 1)
    low, high = boot.intervals["AP"]
    assert low <= report.metrics.stats["AP"] + 0.05 and low < high


def test_imported_results_stay_on_this_visitor_s_board_only(bench, coco):
    dets = detections.from_coco_results(gt_results(coco, 0.3, 0.3, seed=4))
    bench.remember_import("mine", dets)
    assert list(bench.board({}, [], "name")) == ["mine"]
    other = DetectionBenchmark()
    other.open(coco.annotations_path, coco.images_dir)
    assert other.board({}, [], "name") == {}


def test_paired_comparison_and_slices_through_the_service(bench, coco):
    good = bench.report(detections.from_coco_results(gt_results(coco, 0.02, 0.0, seed=5)))
    bad = bench.report(detections.from_coco_results(gt_results(coco, 0.4, 0.4, seed=6)))
    pair = bench.paired(("bad", bad), ("good", good), 200, 0)
    assert pair.verdict().startswith("good is better")
    found = bench.slices(good, 1, slices.parse_areas("0-1e10"), {}, 100, 0)
    assert len(found.table) > 0


def test_a_typed_path_outside_the_roots_is_refused(tmp_path):
    from lib.core.errors import PathNotAllowedError
    with pytest.raises(PathNotAllowedError):
        DetectionBenchmark().open_typed("/etc/passwd", "/etc")


def test_the_page_link_is_read_field_by_field():
    link = DetectionBenchmark.read_link({"data": "path", "ann": "<shared>/a.json",
                                         "models": "demo-fasterrcnn,x", "subset": "-3"})
    assert (link.data, link.models, link.subset) == ("path", ("demo-fasterrcnn", "x"), 0)
