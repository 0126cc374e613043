"""The one match table: pycocotools' own matches and AP50; a threshold is a filter."""


import numpy as np
import pytest

from lib.detection import datasets, detections, matching
from lib.detection.detections import Detections


def _noisy(dataset, seed=0, extra=3):
    """Ground truth jittered, dropped and relabelled, plus random false positives."""
    rng = np.random.default_rng(seed)
    cats = sorted(dataset.categories)
    dets = {}
    for image_id in dataset.image_ids:
        boxes, cls = dataset.gt_boxes(image_id)
        keep = rng.random(len(boxes)) > 0.2
        b = boxes[keep] + rng.normal(0, 4, (keep.sum(), 4)).astype(np.float32)
        c = np.where(rng.random(keep.sum()) < 0.1, rng.choice(cats, keep.sum()), cls[keep])
        fp = rng.uniform(0, 100, (extra, 2)).astype(np.float32)
        fp = np.concatenate([fp, fp + rng.uniform(5, 60, (extra, 2))], 1)
        xyxy = np.concatenate([b, b[: len(b) // 2] + 2, fp])
        classes = np.concatenate([c, c[: len(b) // 2], rng.choice(cats, extra)])
        xyxy[:, 2:] = np.maximum(xyxy[:, 2:], xyxy[:, :2] + 1)
        dets[image_id] = Detections(image_id, xyxy, rng.uniform(0.05, 1, len(xyxy)), classes)
    return dets


def _without_crowd(dataset):
    data = {**dataset.data, "annotations": [a for a in dataset.data["annotations"]
                                            if not a["iscrowd"]]}
    return datasets.CocoDataset(dataset.annotations_path, dataset.images_dir, data)


def test_table_matches_are_pycocotools_matches_and_ap50(coco):
    """Per-image true positives and AP50 from the table equal pycocotools' own matching
    (IoU 0.5, all areas) where there are no crowd regions."""
    import contextlib
    import copy
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    ds = _without_crowd(coco)
    dets = _noisy(ds)
    table = matching.match(ds, dets)
    results = detections.to_coco_results(dets)
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = copy.deepcopy(ds.data)
        gt.createIndex()
        ev = COCOeval(gt, gt.loadRes(copy.deepcopy(results)), "bbox")
        ev.params.imgIds = ds.image_ids
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    ref_tp = {}
    for e in ev.evalImgs:
        if e is not None and e["aRng"] == [0, 1e10]:
            ref_tp[e["image_id"]] = ref_tp.get(e["image_id"], 0) + int((e["dtMatches"][0] > 0)
                                                                      .sum())
    ours = table.per_image_counts(0.0).set_index("image_id")["TP"]
    assert {i: int(ours[i]) for i in ds.image_ids} == {i: ref_tp.get(i, 0) for i in ds.image_ids}
    gt_cat = table.gt["category_id"].to_numpy()
    ap = matching.ap50(*(table.det[c].to_numpy() for c in ("image_id", "category_id", "score")),
                       (table.det["gt"] >= 0).to_numpy(),
                       {c: int((gt_cat == c).sum()) for c in ds.categories})
    assert ap == pytest.approx(ev.stats[1], abs=1e-6)


@pytest.mark.parametrize("thr", [0.3, 0.6, 0.9])
def test_a_threshold_is_a_filter_of_the_table(coco, thr):
    """Views at a threshold equal matching only the detections above it from scratch."""
    dets = _noisy(coco, seed=3)
    table = matching.match(coco, dets)
    again = matching.match(coco, {i: d.above(thr) for i, d in dets.items()})
    assert table.per_image_counts(thr).equals(again.per_image_counts(0.0))
    assert np.array_equal(table.confusion(coco.categories, thr)[0],
                          again.confusion(coco.categories, 0.0)[0])
    assert np.array_equal(np.sort(table.matched_ious(thr)), np.sort(again.matched_ious(0.0)))
