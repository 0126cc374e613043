"""Slices: image slices equal faster-coco-eval on those images alone, a field unrelated to
the detector leaves AP where it is, the worst slices are the ones the population was built
to make hard, and odd fields get a reason instead of a slice."""

from pathlib import Path

import numpy as np
import pytest

from lib.core.errors import InputError
from lib.demo import synth
from lib.detection import datasets, detections, slices
from lib.detection.metrics import coco_matching
from tests import reference


def _dataset(data):
    clean, _ = datasets.validate_coco(data, "population.json")
    return datasets.CocoDataset(Path("population.json"), Path("."), clean)


@pytest.fixture(scope="module")
def population():
    data, results = synth.detection_population(800, seed=5)
    rng = np.random.default_rng(1)
    for a in data["annotations"]:
        a["coin"] = bool(rng.random() < 0.5)                      # unrelated to the detector
    for im in data["images"]:
        im["camera"] = {"id": f"cam{rng.integers(3)}"}            # nested: camera.id
        im["serial"] = f"s{im['id']}"                             # 800 distinct values
        im["tags"] = ["x"]                                        # not a scalar
        im["exposure"] = float("nan") if im["id"] % 7 == 0 else float(rng.uniform(0, 1))
    ds = _dataset(data)
    dets = detections.from_coco_results(results)
    return ds, dets, slices.Slicer(ds, dets)


def test_an_image_slice_is_faster_coco_eval_on_its_images(population):
    ds, dets, slicer = population
    cands, _ = slices.candidates(ds, 30, pairs=False)
    fog = next(s for s in cands if s.name == "weather = fog")
    ids = set(slices.images_of(ds, fog))
    data = {**ds.data, "images": [im for im in ds.data["images"] if im["id"] in ids],
            "annotations": [a for a in ds.data["annotations"] if a["image_id"] in ids]}
    alone = datasets.CocoDataset(ds.annotations_path, ds.images_dir, data)
    ref = reference.faster_coco_eval(alone, detections.to_coco_results(
        {i: d for i, d in dets.items() if i in ids})).stats["AP"]
    assert slicer.ap(fog) == pytest.approx(ref, abs=1e-12)


def test_an_unrelated_field_leaves_ap_alone(population):
    ds, _, slicer = population
    cands, _ = slices.candidates(ds, 30, pairs=False)
    whole = slicer.ap(slices.Slice("all", "image", 0))
    for name in ("coin = 0", "coin = 1"):
        s = next(c for c in cands if c.name == name)
        assert slicer.ap(s) == pytest.approx(whole, abs=0.04)
    everything = np.arange(len(ds.data["annotations"]))
    assert slicer.ap(slices.Slice("every object", "annotation", 1, counted=tuple(everything))) \
        == pytest.approx(whole, abs=1e-12)


def test_worst_slices_are_the_hard_ones(population):
    ds, _, slicer = population
    cands, skipped = slices.candidates(ds, 30)
    worst = slices.worst(slicer, cands, top=5, resamples=200)
    names = [w.slice.name for w in worst]
    assert names[0] in ("weather = fog & occluded = 1", "occluded = 1")
    assert all("coin" not in n for n in names)      # pairs no worse than their parts drop
    whole = slicer.ap(slices.Slice("all", "image", 0))
    assert all(w.low <= w.ap <= w.high and w.ap < whole for w in worst)
    assert skipped["serial"].startswith("800 distinct values")
    assert skipped["tags"] == "holds lists or nested objects"
    assert any(c.name.startswith("camera.id = ") for c in cands)
    assert any(c.name.startswith("exposure in [") for c in cands)   # NaN left out, quartiles


def test_area_ranges_and_groups_are_checked(population):
    ds, _, _ = population
    assert slices.parse_areas("0-256, 256-1024")[0][1] == (0.0, 256.0)
    for bad in ("5-1", "a-b", "-3-4", "0-inf"):
        with pytest.raises(InputError):
            slices.parse_areas(bad)
    with pytest.raises(InputError, match="does not have"):
        slices.category_groups(ds, {"mine": [1, 999]})
    assert slices.category_groups(ds, {"round": [1]}) == [("group round", [1])]
    assert slices.parse_groups("round: 1 2; sharp: 3,4") == {"round": [1, 2], "sharp": [3, 4]}
    for bad in ("round:", "round: one two"):
        with pytest.raises(InputError):
            slices.parse_groups(bad)


def test_a_slice_with_no_objects_is_not_a_candidate(population):
    ds, _, _ = population
    cands, _ = slices.candidates(ds, 10**6)
    assert cands == []


def test_many_values_stay_bounded():
    data, results = synth.detection_population(200, seed=2)
    for k, a in enumerate(data["annotations"]):
        a["track"] = f"t{k}"                       # one value per object
        a["deep"] = {"a": {"b": 1}}               # two levels: not read
    ds = _dataset(data)
    cands, skipped = slices.candidates(ds, 5)
    assert "track" in skipped and all("track" not in c.name for c in cands)
    assert coco_matching.coco_matches(ds, detections.from_coco_results(results)).n_images == 200
