"""Clean against corrupted detections: kept, moved, lost and gained, and the sweep's counts."""

import numpy as np

from lib.detection import whatif
from lib.detection.detections import Detections


def dets(boxes, classes):
    return Detections(0, boxes, np.linspace(0.9, 0.5, len(boxes)), classes)


def test_kept_moved_lost_and_gained():
    clean = dets([[0, 0, 10, 10], [20, 20, 40, 40], [50, 50, 60, 60], [0, 50, 10, 60]],
                 [1, 1, 2, 3])
    after = dets([[21, 21, 40, 40], [0, 0, 10, 10], [53, 50, 63, 60], [0, 50, 10, 60],
                  [70, 70, 80, 80]], [1, 1, 2, 4, 4])
    change = whatif.compare(clean, after)
    assert sorted(change.pairs) == [(0, 1), (1, 0), (2, 2)]
    assert change.moved == (2,)                    # shifted by 3 of 10 px: IoU 0.54
    assert change.lost == (3,) and change.gained == (3, 4)   # class 3 became class 4
    assert change.counts() == {"kept": 3, "moved": 1, "lost": 1, "gained": 2}


def test_nothing_on_either_side():
    empty = dets(np.zeros((0, 4)), [])
    one = dets([[0, 0, 5, 5]], [1])
    assert whatif.compare(empty, one).gained == (0,)
    assert whatif.compare(one, empty).lost == (0,)


class Fixed:
    """A detector that finds one box, unless the image is darker than the clean one."""
    def predict(self, images, ids, label_map, threshold):
        return [dets([[0, 0, 4, 4]] if np.asarray(im).mean() > 60 else [[9, 9, 12, 12]],
                     [1]) for im in images]


def test_the_sweep_counts_what_each_corruption_keeps():
    image = np.full((40, 40, 3), 120, np.uint8)
    sw = whatif.sweep(Fixed(), image, {}, 0.5, ["contrast", "brightness"], "1,5")
    got = {(n, s): int(sw.kept[r, c]) for r, n in enumerate(sw.names)
           for c, s in enumerate(sw.severities)}
    from lib.media import corruptions
    for (n, s), k in got.items():
        kept = corruptions.corrupt(image, n, s).mean() > 60
        assert k == int(kept) and sw.gained[sw.names.index(n), sw.severities.index(s)] == 1 - kept
    assert sw.clean == 1 and len(sw.frame()) == 4


def test_the_benchmark_s_what_if_is_the_detector_s_own_and_computed_once(monkeypatch):
    """`DetectionBenchmark.whatif` (what the What-if tab draws): the detector's detections on
    the image and on its corrupted copy (the corruption's own pixels), matched by `compare`;
    asked again with the same settings it is not recomputed, with another severity it is."""
    from PIL import Image

    from lib.detection.service import DetectionBenchmark
    from lib.media import corruptions
    from lib.models import cache

    calls, seen = [], []

    class Counting(Fixed):
        labels = {1: "thing"}
        untrained = True

        def predict(self, images, ids, label_map, threshold):
            calls.append(len(images))
            seen.append([np.asarray(im) for im in images])
            return super().predict(images, ids, label_map, threshold)

    monkeypatch.setattr(cache, "load", lambda name, task: type(
        "Handle", (), {"model": Counting(), "untrained": True})())
    image = Image.fromarray(np.full((40, 40, 3), 120, np.uint8))
    bench = DetectionBenchmark()
    first = bench.whatif("fake", image, "sha-what-if", "brightness", 5, 0.5)
    assert np.array_equal(seen[0][1], corruptions.corrupt(np.asarray(image), "brightness", 5))
    clean, after = Fixed().predict(seen[0], [0, 1], {}, 0.5)
    assert first.change == whatif.compare(clean, after) and first.untrained
    assert bench.whatif("fake", image, "sha-what-if", "brightness", 5, 0.5) is first
    bench.whatif("fake", image, "sha-what-if", "brightness", 1, 0.5)
    plain = bench.whatif("fake", image, "sha-what-if", None, 3, 0.5)
    assert calls == [2, 2, 2] and plain.change.counts()["kept"] == 1   # the repeat: none
