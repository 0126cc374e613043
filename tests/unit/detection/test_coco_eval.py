"""COCO metrics against pycocotools, and the analyses of a small hand-made case."""


import numpy as np
import pytest

from lib.detection import coco_eval, matching
from lib.detection.detections import Detections
from tests.helpers import gt_results, write_coco


def test_ground_truth_as_predictions_scores_one(coco):
    stats = coco_eval.evaluate(coco, gt_results(coco)).stats
    assert stats["AP"] == pytest.approx(1.0) and stats["AP50"] == pytest.approx(1.0)
    assert set(stats) == set(coco_eval.METRIC_KEYS)


@pytest.mark.parametrize("shift,drop", [(0.0, 0.3), (0.1, 0.0), (0.25, 0.1), (0.6, 0.0)])
def test_metrics_equal_pycocotools(coco, shift, drop):
    results = gt_results(coco, shift, drop, seed=1)
    ours = coco_eval.evaluate(coco, results).stats
    ref = coco_eval.evaluate_pycocotools(coco, results)
    assert all(abs(ours[k] - ref[k]) <= 1e-6 for k in coco_eval.METRIC_KEYS)
    if shift >= 0.1:
        assert ours["AP"] < 1.0


def test_analyses_on_a_small_case(tmp_path):
    ds = write_coco(tmp_path, [(10, 10, 30, 30, 1), (60, 60, 30, 30, 2)])
    dets = {1: Detections(1, [[10, 10, 40, 40], [60, 60, 90, 90], [0, 70, 20, 90]],
                          [0.9, 0.8, 0.7], [1, 1, 2])}
    table = matching.match(ds, dets)
    m, names = table.confusion(ds.categories)
    assert names == ["cat", "dog", "background"]
    # cat found; dog predicted as cat; one detection on background; nothing missed
    assert m.tolist() == [[1, 0, 0], [1, 0, 0], [0, 1, 0]]
    counts = table.per_image_counts().iloc[0]
    assert (counts.TP, counts.FP, counts.FN) == (1, 2, 1)
    assert table.matched_ious().tolist() == [1.0]
    # each cell opens its images: dog predicted as cat, background predicted as dog
    assert table.cell_images(ds.categories, 0.5, 1, 0) == [1]
    assert table.cell_images(ds.categories, 0.5, 2, 1) == [1]
    assert table.cell_images(ds.categories, 0.5, 0, 2) == []
    # a threshold is a filter: above 0.75 only the two highest-scoring detections remain
    m, _ = table.confusion(ds.categories, 0.75)
    assert m.tolist() == [[1, 0, 0], [1, 0, 0], [0, 0, 0]]
    assert table.cell_images(ds.categories, 0.75, 2, 1) == []
    f1 = table.f1_vs_confidence()
    assert f1["precision"].tolist() == pytest.approx([1.0, 0.5, 1 / 3])
    assert f1["recall"].tolist() == pytest.approx([0.5, 0.5, 0.5])


def _mask_results(coco, drop=0.0, seed=0):
    rng = np.random.default_rng(seed)
    return [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"],
             "segmentation": a["segmentation"], "score": float(rng.uniform(0.1, 1))}
            for a in coco.data["annotations"]
            if not a.get("iscrowd") and "segmentation" in a and rng.random() >= drop]


@pytest.mark.slow
def test_mask_metrics_are_faster_coco_evals_and_agree_with_pycocotools(coco):
    from lib.detection import detections
    perfect = _mask_results(coco)
    checked = detections.check_results(perfect, coco)
    assert checked.all_masks and checked.bad_masks == 0
    assert coco_eval.evaluate_masks(coco, checked.results, "segm")["AP"] == pytest.approx(1.0)
    assert coco_eval.evaluate_masks(coco, checked.results, "boundary")["AP"] == pytest.approx(1.0)
    partial = _mask_results(coco, drop=0.3, seed=2)
    ours = coco_eval.evaluate_masks(coco, partial, "segm")
    ref = coco_eval.evaluate_pycocotools(coco, partial, "segm")
    assert all(abs(ours[k] - ref[k]) <= 1e-6 for k in coco_eval.METRIC_KEYS)
    assert ours["AR100"] < 0.8


def test_masks_of_the_wrong_size_are_left_out(coco):
    from lib.detection import detections
    rows = _mask_results(coco)[:3]
    rows[0] = {**rows[0], "segmentation": {"size": [10**6, 10**6], "counts": "abc"}}
    rows[1] = {**rows[1], "segmentation": "not a mask"}
    checked = detections.check_results(rows, coco)
    assert (checked.masks, checked.bad_masks, checked.all_masks) == (1, 2, False)
    with pytest.raises(coco_eval.DatasetError, match="every prediction"):
        coco_eval.evaluate_masks(coco, checked.results, "segm")
