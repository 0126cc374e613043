"""COCO metrics: Lens's own evaluation (its matching and COCO's accumulate) against
faster-coco-eval array for array and pycocotools number for number, and the analyses of a
small hand-made case."""


import numpy as np
import pytest

from lib.detection import detections, matching
from lib.detection.detections import Detections
from lib.detection.metrics import masks
from lib.detection.metrics.coco import METRIC_KEYS, evaluate
from tests import reference
from tests.helpers import gt_results, lvis_copy, noisy_detections, write_coco


def _agree(dataset, dets):
    """Lens's evaluation of `dets` equals faster-coco-eval's (12 numbers, precision, score and
    recall arrays) and pycocotools' (12 numbers)."""
    ours = evaluate(dataset, dets)
    rows = detections.to_coco_results(dets)
    ref = reference.faster_coco_eval(dataset, rows)
    assert set(ours.stats) == set(ref.stats)
    for k, v in ref.stats.items():
        assert ours.stats[k] == pytest.approx(v, abs=1e-12), k
    for ours_array, ref_array in ((ours.precision, ref.precision), (ours.scores, ref.scores),
                                  (ours.recall, ref.recall)):
        assert ours_array.shape == ref_array.shape
        assert np.abs(ours_array - ref_array).max() <= 1e-12
    if not dataset.federated:
        plain = reference.pycocotools(dataset, rows)
        assert all(ours.stats[k] == pytest.approx(plain[k], abs=1e-12) for k in plain)
    return ours


def test_ground_truth_as_predictions_scores_one(coco):
    stats = evaluate(coco, detections.from_coco_results(gt_results(coco))).stats
    assert stats["AP"] == pytest.approx(1.0) and stats["AP50"] == pytest.approx(1.0)
    assert set(stats) == set(METRIC_KEYS)


@pytest.mark.parametrize("shift,drop", [(0.0, 0.3), (0.1, 0.0), (0.25, 0.1), (0.6, 0.0)])
def test_metrics_equal_faster_coco_eval_and_pycocotools(coco, shift, drop):
    ours = _agree(coco, detections.from_coco_results(gt_results(coco, shift, drop, seed=1)))
    if shift >= 0.1:
        assert ours.stats["AP"] < 1.0


@pytest.mark.parametrize("seed", [0, 1])
def test_every_branch_of_cocos_matching_and_accumulate(coco, seed):
    """Jitter, relabels, duplicates, tied scores, crowd regions, many false positives per
    image (AR1 and AR10 cut them), and one image with 130 detections of one class (COCO keeps
    its top 100)."""
    dets = noisy_detections(coco, seed)
    image = coco.image_ids[0]
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 200, (130, 2))
    crowd = Detections(image, np.c_[xy, xy + rng.uniform(5, 80, (130, 2))],
                       rng.uniform(0, 1, 130), [sorted(coco.categories)[0]] * 130)
    dets[image] = Detections(image, np.r_[dets[image].xyxy, crowd.xyxy],
                             np.r_[dets[image].scores, crowd.scores],
                             np.r_[dets[image].class_ids, crowd.class_ids])
    _agree(coco, dets)


def test_an_lvis_style_dataset_is_evaluated_as_lvis(coco):
    """Frequencies, classes checked absent and classes not labelled exhaustively: APr, APc,
    APf and the 12 numbers are faster-coco-eval's LVIS evaluation."""
    lvis = lvis_copy(coco)
    assert lvis.federated
    ours = _agree(lvis, noisy_detections(coco, seed=3))
    assert {"APr", "APc", "APf"} <= set(ours.stats)


def test_no_detections_score_zero_and_one_image_alone(tmp_path):
    ds = write_coco(tmp_path, [(10, 10, 30, 30, 1), (60, 60, 30, 30, 2)])
    assert set(evaluate(ds, {}).stats.values()) == {0.0}
    _agree(ds, {1: Detections(1, [[10, 10, 40, 40], [61, 61, 90, 92]], [0.9, 0.4], [1, 2])})


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
    perfect = _mask_results(coco)
    checked = detections.check_results(perfect, coco)
    assert checked.all_masks and checked.bad_masks == 0
    assert masks.evaluate_masks(coco, checked.results, "segm")["AP"] == pytest.approx(1.0)
    assert masks.evaluate_masks(coco, checked.results, "boundary")["AP"] == pytest.approx(1.0)
    partial = _mask_results(coco, drop=0.3, seed=2)
    ours = masks.evaluate_masks(coco, partial, "segm")
    ref = reference.pycocotools(coco, partial, "segm")
    assert all(abs(ours[k] - ref[k]) <= 1e-6 for k in METRIC_KEYS)
    assert ours["AR100"] < 0.8


def test_masks_of_the_wrong_size_are_left_out(coco):
    rows = _mask_results(coco)[:3]
    rows[0] = {**rows[0], "segmentation": {"size": [10**6, 10**6], "counts": "abc"}}
    rows[1] = {**rows[1], "segmentation": "not a mask"}
    checked = detections.check_results(rows, coco)
    assert (checked.masks, checked.bad_masks, checked.all_masks) == (1, 2, False)
    with pytest.raises(masks.DatasetError, match="every prediction"):
        masks.evaluate_masks(coco, checked.results, "segm")
