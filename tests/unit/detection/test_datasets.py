"""COCO datasets and results files: validation, fingerprints, subsets, conversions, label
mapping."""


import numpy as np
import pytest

from lib.detection import datasets, detections
from lib.detection.datasets import DatasetError
from lib.detection.detections import Detections
from lib.detection.metrics import coco
from tests.helpers import write_coco


@pytest.mark.parametrize("content,message", [
    ("not json", "not valid JSON"),
    ('{"foo": 1}', "not a COCO instances file"),
    ('{"images": [], "annotations": [], "categories": [{"id": 1, "name": "a"}]}', "no images"),
    ('{"images": [{"id": 1, "file_name": "a.png"}], "annotations": [{"image_id": 9, '
     '"bbox": [0,0,1,1], "category_id": 1}], "categories": [{"id": 1, "name": "a"}]}',
     "image_id 9 is not an image id"),
    ('{"images": [{"id": 1, "file_name": "a.png"}], "annotations": [{"image_id": 1, '
     '"bbox": [0,0,1,1], "category_id": 7}], "categories": [{"id": 1, "name": "a"}]}',
     "category_id 7 is not a category id"),
    ('{"images": [{"id": 1, "file_name": "gone.png"}], "annotations": [], '
     '"categories": [{"id": 1, "name": "a"}]}', "None of the 1 images"),
])
def test_bad_datasets(tmp_path, content, message):
    (tmp_path / "images").mkdir()
    (tmp_path / "ann.json").write_text(content)
    with pytest.raises(DatasetError, match=message):
        datasets.load_coco(tmp_path / "ann.json", tmp_path / "images")


def test_missing_images_and_images_without_annotations(tmp_path):
    ds = write_coco(tmp_path, [(10, 10, 20, 20, 1)],
                    images=(("a.png", 1, 100, 100), ("b.png", 2, 100, 100)))
    (tmp_path / "images" / "b.png").unlink()
    ds = datasets.load_coco(tmp_path / "ann.json", tmp_path / "images")
    assert ds.missing_images == ["b.png"] and ds.annotations(2) == []
    assert coco.evaluate(ds, {}).stats["AP"] == 0.0


def test_fingerprint_follows_every_image_file(tmp_path):
    """What the models read: each image's size and time, a link leading out counts as
    unreadable, and the value equals the one made from each image's checked path."""
    import hashlib
    import os
    ds = write_coco(tmp_path, [(10, 10, 20, 20, 1)],
                    images=(("a.png", 1, 100, 100), ("b.png", 2, 100, 100)))
    ds = datasets.load_coco(tmp_path / "ann.json", tmp_path / "images")

    def reference(d):       # every image through its contained path, one at a time
        h = hashlib.sha256(f"{d.annotations_path.resolve()}|{d.images_dir.resolve()}".encode())
        for i in d.image_ids:
            try:
                st = d.image_path(i).stat()
                stamp = f"{st.st_size}:{st.st_mtime_ns}"
            except (OSError, DatasetError):
                stamp = "-"
            h.update(f"|{i}:{d.image_info(i)['file_name']}:{stamp}".encode())
        return h.hexdigest()[:16]

    first = ds.fingerprint
    assert first == reference(ds) == ds.fingerprint
    b = tmp_path / "images" / "b.png"
    stat = b.stat()
    os.utime(b, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert ds.fingerprint != first and ds.fingerprint == reference(ds)
    os.utime(b, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert ds.fingerprint == first
    outside = tmp_path / "outside.png"
    b.rename(outside)
    b.symlink_to(outside)     # same bytes, but outside the images folder
    assert ds.fingerprint != first and ds.fingerprint == reference(ds)


@pytest.mark.parametrize("payload,message", [
    ("{", "not valid JSON"),
    ('{"a": 1}', "JSON list"),
    ('[{"image_id": 1, "bbox": [0, 0, 1, 1]}]', "needs integer 'image_id' and 'category_id'"),
    ('[{"image_id": 999, "category_id": 1, "bbox": [0,0,1,1], "score": 1}]', "another dataset"),
    ('[{"image_id": 1, "category_id": 42, "bbox": [0,0,1,1], "score": 1}]', "category ids"),
])
def test_bad_results_files(tmp_path, payload, message):
    ds = write_coco(tmp_path, [(10, 10, 20, 20, 1)])
    with pytest.raises(DatasetError, match=message):
        detections.read_results_json(payload.encode(), ds)
    assert detections.read_results_json(b"[]", ds) == []


def test_subset_is_deterministic(coco):
    a, b = coco.subset(10, seed=3), coco.subset(10, seed=3)
    assert a.image_ids == b.image_ids and len(a.image_ids) == 10
    assert a.image_ids != coco.subset(10, seed=4).image_ids
    assert {x["image_id"] for x in a.data["annotations"]} <= set(a.image_ids)


def test_coco_results_round_trip():
    rows = [{"image_id": 5, "category_id": 3, "bbox": [1.0, 2.0, 10.0, 20.0], "score": 0.5}]
    dets = detections.from_coco_results(rows)
    assert dets[5].xyxy.tolist() == [[1, 2, 11, 22]]
    assert detections.to_coco_results(dets) == rows
    with pytest.raises(ValueError, match="same length"):
        Detections(1, np.zeros((2, 4)), [0.1], [1, 2])


def test_label_mapping_by_name_and_id():
    torchvision_style = {0: "__background__", 1: "person", 3: "car", 12: "N/A", 13: "stop sign"}
    renumbered = {1: "person", 2: "car", 3: "stop_sign"}
    assert detections.map_labels(torchvision_style, renumbered) == {1: 1, 3: 2, 13: 3}
    coco_ids = {1: "person", 3: "car", 13: "stop sign"}
    assert detections.map_labels(torchvision_style, coco_ids, by="id") == {1: 1, 3: 3, 13: 13}


def test_from_torchvision_drops_unmapped_labels():
    import torch
    out = {"boxes": torch.tensor([[0., 0., 5., 5.], [1., 1., 2., 2.]]),
           "scores": torch.tensor([0.9, 0.8]), "labels": torch.tensor([1, 12])}
    det = detections.from_torchvision(7, out, {1: 100})
    assert det.class_ids.tolist() == [100] and det.image_id == 7


@pytest.mark.parametrize("image,message", [
    ({"neg_category_ids": "1,2"}, "must be a list of category ids"),
    ({"neg_category_ids": [1, 99]}, "not in 'categories'"),
    ({"not_exhaustive_category_ids": [{"id": 1}]}, "must be a list of category ids"),
])
def test_lvis_fields_are_checked(image, message):
    data = {"images": [{"id": 1, "file_name": "a.png", **image}],
            "categories": [{"id": 1, "name": "cat", "frequency": "r"}], "annotations": []}
    with pytest.raises(DatasetError, match=message):
        datasets.validate_coco(data, "lvis.json")


def test_extra_fields_become_attributes_and_odd_ones_are_named():
    data = {"images": [{"id": 1, "file_name": "a.png", "weather": "fog", "tags": ["x"],
                        "camera": {"id": "c1", "deep": {"x": 1}}, "lux": float("nan")}],
            "categories": [{"id": 1, "name": "cat"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5],
                             "occluded": True, "note": "x" * 500}]}
    clean, _ = datasets.validate_coco(data, "a.json")
    assert clean["images"][0]["attributes"] == {"weather": "fog", "camera.id": "c1",
                                                 "lux": None}
    assert clean["annotations"][0]["attributes"] == {"occluded": 1, "note": "x" * 100}
    assert clean["skipped_fields"] == {"tags": "holds lists or nested objects"}
