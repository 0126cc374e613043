"""Bootstrap intervals on COCO metrics, against faster-coco-eval itself: the weighted
computation with every weight one is faster-coco-eval's evaluation, and a resample equals
faster-coco-eval run on the resampled images (duplicates renamed)."""

import numpy as np
import pytest

from lib.core.errors import InputError
from lib.demo import synth
from lib.detection import datasets, detections, intervals
from lib.detection.metrics import coco_matching, weighted
from tests import reference
from tests.helpers import lvis_copy, noisy_detections


def _dataset(data) -> datasets.CocoDataset:
    from pathlib import Path
    clean, _ = datasets.validate_coco(data, "population.json")
    return datasets.CocoDataset(Path("population.json"), Path("."), clean)


@pytest.fixture(scope="module")
def population():
    data, results = synth.detection_population(300, seed=3)
    ds = _dataset(data)
    return ds, detections.from_coco_results(results)


def _library(ds, dets) -> reference.Reference:
    return reference.faster_coco_eval(ds, detections.to_coco_results(dets))


def test_all_weights_one_is_faster_coco_eval(coco):
    dets = noisy_detections(coco)
    ref = _library(coco, dets)
    m = coco_matching.coco_matches(coco, dets)
    got = weighted.weighted(m, intervals.point_weights(m.n_images))
    for k, v in got.headline().items():
        assert v[0] == pytest.approx(ref.stats[k], abs=1e-12), k
    per_class = ref.per_class.set_index("category_id")
    for k, cid in enumerate(m.categories):
        expected = per_class.loc[cid, "AP"]
        assert (np.isnan(got.ap[0, k]) and np.isnan(expected)) or \
            got.ap[0, k] == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("name,key", [("small", "APs"), ("medium", "APm"), ("large", "APl")])
def test_area_ranges_are_cocos(coco, name, key):
    dets = noisy_detections(coco, seed=1)
    ref = _library(coco, dets).stats[key]
    m = coco_matching.coco_matches(coco, dets, area=coco_matching.AREAS[name])
    got = weighted.weighted(m, intervals.point_weights(m.n_images)).headline()["AP"][0]
    assert got == pytest.approx(ref if ref >= 0 else np.nan, abs=1e-12, nan_ok=True)


def _resampled(ds, dets, counts):
    """The dataset and detections with image k present counts[k] times under new ids: what a
    bootstrap resample is, for faster-coco-eval (which drops repeated image ids)."""
    images, anns, new_dets = [], [], {}
    by_id = {im["id"]: im for im in ds.data["images"]}
    for k, image_id in enumerate(ds.image_ids):
        for _ in range(int(counts[k])):
            new = len(images) + 1
            images.append({**by_id[image_id], "id": new})
            anns += [{**a, "id": len(anns) + 1 + j, "image_id": new}
                     for j, a in enumerate(ds.annotations(image_id))]
            if image_id in dets:
                d = dets[image_id]
                new_dets[new] = detections.Detections(new, d.xyxy, d.scores, d.class_ids)
    data = {"images": images, "annotations": anns, "categories": ds.data["categories"]}
    return datasets.CocoDataset(ds.annotations_path, ds.images_dir, data), new_dets


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_resample_is_faster_coco_eval_on_the_resampled_images(population, seed):
    ds, dets = population
    m = coco_matching.coco_matches(ds, dets)
    w = intervals.resample_weights(m.n_images, 1, seed)
    got = weighted.weighted(m, w).headline()
    ref = _library(*_resampled(ds, dets, w[0])).stats
    for k in intervals.HEADLINE:
        assert got[k][0] == pytest.approx(ref[k], abs=1e-9), k


@pytest.mark.slow
def test_interval_covers_the_population_ap():
    """Draws of 100 images from a population of 3,000: the 95% interval holds the
    population's AP in close to 95% of draws (93–97% at full size: bench/detect_stats.py)."""
    data, results = synth.detection_population(3000, seed=11)
    ds = _dataset(data)
    m = coco_matching.coco_matches(ds, detections.from_coco_results(results))
    truth = weighted.weighted(m, intervals.point_weights(m.n_images)).headline()["AP"][0]
    rng = np.random.default_rng(0)
    hits = []
    for draw in range(120):
        within = rng.choice(m.n_images, 100, replace=False)
        lo, hi = intervals.bootstrap(m, 300, seed=draw, within=within).intervals["AP"]
        hits.append(lo <= truth <= hi)
    assert 0.87 <= np.mean(hits) <= 0.995


def test_paired_same_model_is_no_difference(population):
    ds, dets = population
    m = coco_matching.coco_matches(ds, dets)
    p = intervals.paired(m, m, "A", "A again", 200)
    assert p.delta["AP"] == 0 and p.intervals["AP"] == (0.0, 0.0)
    assert p.verdict().startswith("No distinguishable difference")


def test_paired_sees_a_real_gap(population):
    ds, dets = population
    worse = {i: detections.Detections(i, d.xyxy + 3.0, d.scores, d.class_ids)
             for i, d in dets.items()}                                # every box 3 px off
    a, b = coco_matching.coco_matches(ds, worse), coco_matching.coco_matches(ds, dets)
    p = intervals.paired(a, b, "shifted", "original", 300)
    assert p.delta["AP"] > 0 and p.intervals["AP"][0] > 0
    assert p.b_better["AP"] > 0.97
    assert p.verdict().startswith("original is better")
    # each model's own interval is wider than the paired one: pairing removes image noise
    lo, hi = intervals.bootstrap(b, 300).intervals["AP"]
    assert hi - lo > p.intervals["AP"][1] - p.intervals["AP"][0]


def test_paired_refuses_other_datasets(population, coco):
    ds, dets = population
    with pytest.raises(InputError, match="different datasets"):
        intervals.paired(coco_matching.coco_matches(ds, dets),
                         coco_matching.coco_matches(coco, noisy_detections(coco)))


@pytest.mark.parametrize("n", [0, -1, 10**9, 2.5, "1000", True])
def test_resample_counts_are_checked(n):
    with pytest.raises(InputError, match="from 1 to"):
        intervals.check_resamples(n)


def test_the_same_seed_gives_the_same_interval(population):
    ds, dets = population
    m = coco_matching.coco_matches(ds, dets)
    assert intervals.bootstrap(m, 300, seed=4).intervals == \
        intervals.bootstrap(m, 300, seed=4).intervals
    assert intervals.bootstrap(m, 300, seed=4).intervals != \
        intervals.bootstrap(m, 300, seed=5).intervals


def test_no_detections(population):
    ds, _ = population
    m = coco_matching.coco_matches(ds, {})
    b = intervals.bootstrap(m, 50)
    assert b.point["AP"] == 0 and b.intervals["AP"] == (0.0, 0.0)


def test_federated_datasets_are_evaluated_as_lvis(coco):
    """An LVIS-style copy of the data (frequencies, classes checked absent, classes not
    labelled exhaustively): faster-coco-eval's LVIS evaluation, and the weighted one equal."""
    ds = lvis_copy(coco)
    assert ds.federated and not coco.federated
    dets = noisy_detections(coco, seed=3)     # many false positives in unjudged classes
    ref = _library(ds, dets).stats
    assert {"APr", "APc", "APf"} <= set(ref) and ref["AP"] != _library(coco, dets).stats["AP"]
    m = coco_matching.coco_matches(ds, dets)
    got = weighted.weighted(m, intervals.point_weights(m.n_images)).headline()
    for k in intervals.HEADLINE:
        assert got[k][0] == pytest.approx(ref[k], abs=1e-12), k


def test_a_slice_bootstrap_weighs_only_its_images(population):
    ds, dets = population
    m = coco_matching.coco_matches(ds, dets)
    within = np.arange(0, m.n_images, 3)
    w = intervals.resample_weights(m.n_images, 40, 1, within)
    full, part = weighted.weighted(m, w), weighted.weighted(m.restricted(within), w)
    for a, b in ((full.ap, part.ap), (full.recall, part.recall)):
        assert np.array_equal(a, b, equal_nan=True)
    assert len(m.restricted(within).tp) < len(m.tp)
