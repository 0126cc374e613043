"""Detection: dataset intake, converters, metric agreement with pycocotools, error buckets,
adapters on tiny models, the inference job, the command line and W&B logging."""

import json
import time

import numpy as np
import pytest
from PIL import Image

from lib import runs
from lib.detection import benchmark, coco_eval, datasets, detectors, matching, tide
from lib.detection import cli as detect
from lib.detection.datasets import DatasetError, Detections
from tests.helpers import gt_results, write_coco

# -- intake -----------------------------------------------------------------------------------

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
    assert coco_eval.evaluate(ds, []).stats["AP"] == 0.0


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
        datasets.read_results_json(payload.encode(), ds)
    assert datasets.read_results_json(b"[]", ds) == []


def test_subset_is_deterministic(coco):
    a, b = coco.subset(10, seed=3), coco.subset(10, seed=3)
    assert a.image_ids == b.image_ids and len(a.image_ids) == 10
    assert a.image_ids != coco.subset(10, seed=4).image_ids
    assert {x["image_id"] for x in a.data["annotations"]} <= set(a.image_ids)


# -- converters and labels --------------------------------------------------------------------

def test_coco_results_round_trip():
    rows = [{"image_id": 5, "category_id": 3, "bbox": [1.0, 2.0, 10.0, 20.0], "score": 0.5}]
    dets = datasets.from_coco_results(rows)
    assert dets[5].xyxy.tolist() == [[1, 2, 11, 22]]
    assert datasets.to_coco_results(dets) == rows
    with pytest.raises(ValueError, match="same length"):
        Detections(1, np.zeros((2, 4)), [0.1], [1, 2])


def test_label_mapping_by_name_and_id():
    torchvision_style = {0: "__background__", 1: "person", 3: "car", 12: "N/A", 13: "stop sign"}
    renumbered = {1: "person", 2: "car", 3: "stop_sign"}
    assert datasets.map_labels(torchvision_style, renumbered) == {1: 1, 3: 2, 13: 3}
    coco_ids = {1: "person", 3: "car", 13: "stop sign"}
    assert datasets.map_labels(torchvision_style, coco_ids, by="id") == {1: 1, 3: 3, 13: 13}


def test_from_torchvision_drops_unmapped_labels():
    import torch
    out = {"boxes": torch.tensor([[0., 0., 5., 5.], [1., 1., 2., 2.]]),
           "scores": torch.tensor([0.9, 0.8]), "labels": torch.tensor([1, 12])}
    det = datasets.from_torchvision(7, out, {1: 100})
    assert det.class_ids.tolist() == [100] and det.image_id == 7


# -- metrics ----------------------------------------------------------------------------------

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
    # a threshold is a filter: above 0.75 only the two highest-scoring detections remain
    m, _ = table.confusion(ds.categories, 0.75)
    assert m.tolist() == [[1, 0, 0], [1, 0, 0], [0, 0, 0]]
    f1 = table.f1_vs_confidence()
    assert f1["precision"].tolist() == pytest.approx([1.0, 0.5, 1 / 3])
    assert f1["recall"].tolist() == pytest.approx([0.5, 0.5, 0.5])


# -- TIDE-style errors ------------------------------------------------------------------------

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
    assert report.delta_ap["class"] > 0 and report.delta_ap["location"] > 0
    assert report.delta_ap["missed"] > 0
    assert all(v >= -1e-9 for v in report.delta_ap.values())
    assert report.images_with("missed") == [1]


def test_background_error_on_top_costs_ap(tmp_path):
    ds = write_coco(tmp_path, [(10, 10, 30, 30, 1)])
    dets = {1: Detections(1, [[60, 60, 90, 90], [10, 10, 40, 40]], [0.9, 0.5], [1, 1])}
    report = tide.analyse(ds, dets)
    assert report.counts["background"] == 1
    assert report.delta_ap["background"] > 0.4 and report.ap50 < 0.6


# -- detectors and the inference job ----------------------------------------------------------

@pytest.mark.parametrize("kind", ["torchvision", "transformers"])
def test_tiny_adapters_shapes_and_label_mapping(tmp_path, kind):
    ds = write_coco(tmp_path, [(10, 10, 30, 30, 1)], images=(("a.png", 1, 128, 96),))  # w, h
    noise = np.random.default_rng(0).integers(0, 255, (96, 128, 3), dtype=np.uint8)
    Image.fromarray(noise).save(ds.image_path(1))
    det = detectors.tiny_detector(kind, {1: "cat", 2: "dog"})
    assert det.untrained
    out = det.predict([Image.open(ds.image_path(1)).convert("RGB")], [1],
                      datasets.map_labels(det.labels, ds.categories), threshold=0.0)[0]
    assert out.image_id == 1 and out.xyxy.shape[1] == 4 and len(out) > 0
    assert set(out.class_ids.tolist()) <= {1, 2}
    assert (out.xyxy[:, 2] <= 128 + 1e-3).all() and (out.xyxy[:, 3] <= 96 + 1e-3).all()


class FakeDetector:
    device = "cpu"
    labels = {1: "cat"}

    def __init__(self, delay=0.0, fail_on=None):
        self.delay, self.fail_on, self.calls = delay, fail_on, 0

    def predict(self, images, ids, label_map, threshold):
        self.calls += 1
        time.sleep(self.delay)
        if self.fail_on is not None and self.fail_on in ids:
            raise RuntimeError("boom")
        return [Detections(i, [[1, 1, 5, 5]], [0.9], [1]) for i in ids]


def test_job_progress_cancel_resume_and_cache(tmp_path):
    images = tuple((f"{i}.png", i, 8, 8) for i in range(1, 9))
    ds = write_coco(tmp_path, [(1, 1, 4, 4, 1, i) for i in range(1, 9)], images=images)
    slow = FakeDetector(delay=0.2)
    job = detectors.InferenceJob("k1", ds, lambda: slow, lambda d: {1: 1}, batch_size=2,
                                 cache_dir=tmp_path / "cache")
    job.start()
    while job.done < 2:
        time.sleep(0.05)
    job.cancel()
    job.wait()
    assert not job.finished and 2 <= job.done < 8 and job.partial_path.is_file()
    fast = FakeDetector()
    resumed = detectors.InferenceJob("k1", ds, lambda: fast, lambda d: {1: 1}, batch_size=2,
                                     cache_dir=tmp_path / "cache")
    resumed.start()
    resumed.wait()
    assert resumed.finished and not resumed.partial_path.exists()
    assert fast.calls == (8 - job.done + 1) // 2          # only the remaining images
    assert sorted(r["image_id"] for r in resumed.results()) == list(range(1, 9))
    assert set(resumed.speed()) >= {"latency_median_ms", "latency_p90_ms", "images_per_s",
                                    "peak_memory_mb"}
    again = detectors.InferenceJob("k1", ds, lambda: pytest.fail("recomputed"), lambda d: {},
                                   cache_dir=tmp_path / "cache")
    again.start()
    assert again.finished and len(again.results()) == 8


def test_job_error_keeps_partial_results(tmp_path):
    images = tuple((f"{i}.png", i, 8, 8) for i in range(1, 5))
    ds = write_coco(tmp_path, [], images=images)
    job = detectors.InferenceJob("k2", ds, lambda: FakeDetector(fail_on=3), lambda d: {1: 1},
                                 batch_size=2, cache_dir=tmp_path / "cache")
    job.start()
    job.wait()
    assert job.error == "boom" and job.done == 2
    assert len(job.partial_path.read_text().splitlines()) == 2



def test_a_torn_shard_line_is_redone_and_nothing_is_lost(tmp_path):
    """A shard whose last line was cut by a kill: that image is redone, the next record
    starts on its own line, and the results hold every image."""
    images = tuple((f"{i}.png", i, 8, 8) for i in range(1, 7))
    ds = write_coco(tmp_path, [(1, 1, 4, 4, 1, i) for i in range(1, 7)], images=images)
    job = detectors.InferenceJob("k3", ds, FakeDetector, lambda d: {1: 1}, batch_size=2,
                                 cache_dir=tmp_path / "cache")
    job.partial_path.parent.mkdir(parents=True)
    whole = [json.dumps({"image_id": i, "results": Detections(i, [[1, 1, 5, 5]], [0.9], [1])
                         .to_coco()}) for i in (1, 2, 3)]
    job.partial_path.write_text("\n".join(whole) + "\n" + whole[2][:-9].replace('"image_id": 3',
                                                                              '"image_id": 4'))
    job.start()
    job.wait()
    assert job.error is None and job.finished
    assert sorted(r["image_id"] for r in job.results()) == [1, 2, 3, 4, 5, 6]


def test_a_job_with_images_missing_is_never_finished(tmp_path, monkeypatch):
    """An engine that returns fewer images than asked: the job says how many are missing,
    keeps its shard, and a second run completes it."""
    from lib.detection import ray_inference
    from lib.models import registry
    images = tuple((f"{i}.png", i, 8, 8) for i in range(1, 7))
    ds = write_coco(tmp_path, [(1, 1, 4, 4, 1, i) for i in range(1, 7)], images=images)

    def lossy(options, spec, dataset, image_ids, *args):
        yield [{"image_id": i, "results": [], "failed": "", "seconds": 0.0}
               for i in image_ids[:-2]]
    monkeypatch.setattr(ray_inference, "run", lossy)
    spec = registry.find("demo-fasterrcnn")
    job = detectors.InferenceJob("k4", ds, FakeDetector, lambda d: {1: 1}, spec=spec,
                                 cache_dir=tmp_path / "cache")
    job.start(ray=ray_inference.RayOptions(workers=1))
    job.wait()
    assert not job.finished and job.error.startswith("2 of 6 images have no results yet")
    assert job.done == 4 and job.partial_path.is_file()
    job.start()                                   # this server's engine: the last two
    job.wait()
    assert job.finished and job.error is None and job.done == 6
    assert sorted(r["image_id"] for r in job.results()) == [5, 6]   # the lossy engine found none


# -- command line and W&B ---------------------------------------------------------------------

def test_cli_evaluate_prints_json_metrics(coco, tmp_path, capsys):
    preds = tmp_path / "results.json"
    preds.write_text(json.dumps(gt_results(coco, 0.1, 0.2)))
    assert detect.main(["evaluate", "--images", str(coco.images_dir), "--annotations",
                        str(coco.annotations_path), "--predictions", str(preds), "--json"]) == 0
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert list(last) == ["AP", "AP50", "AP75", "APs", "APm", "APl",
                          "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"]
    ref = coco_eval.evaluate_pycocotools(coco, gt_results(coco, 0.1, 0.2))
    assert all(abs(last[k] - ref[k]) <= 1e-6 for k in last)


def test_cli_run_without_weights_says_how_to_fetch(coco, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code = detect.main(["run", "--model", "fasterrcnn_resnet50_fpn", "--images",
                        str(coco.images_dir), "--annotations", str(coco.annotations_path),
                        "--out", str(tmp_path / "out.json"), "--subset", "2"])
    assert code == 2
    assert "python -m lib.weights fetch 'fasterrcnn_resnet50_fpn'" in capsys.readouterr().err


def test_benchmark_logged_to_wandb_is_readable_by_runs_page(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("LENS_CACHE", str(tmp_path / "cache"))
    ds = write_coco(tmp_path / "data", [(10, 10, 30, 30, 1)])
    stats = coco_eval.evaluate(ds, [{"image_id": 1, "category_id": 1, "bbox": [10, 10, 30, 30],
                                     "score": 0.9}]).stats
    benchmark.log_benchmark("my-yolo", ds, 5, 3, 0.5, stats, {"images_per_s": 12.5},
                            out_dir=tmp_path / "wb", models=["demo-fasterrcnn", "my-yolo"])
    infos, problems = runs.load_offline(tmp_path / "wb")
    assert not problems and len(infos) == 1
    info = infos[0]
    assert info.config["model"] == "my-yolo" and info.config["score_threshold"] == 0.5
    assert info.summary["AP50"] == pytest.approx(1.0) and info.summary["images_per_s"] == 12.5
    # its row links back to the Detection page on the same data and models
    from urllib.parse import parse_qs, urlsplit
    link = urlsplit(runs.detection_link(info))
    query = {k: v[0] for k, v in parse_qs(link.query).items()}
    assert link.path == "detection" and query == {
        "data": "path", "ann": str(ds.annotations_path), "img": str(ds.images_dir),
        "models": "my-yolo,demo-fasterrcnn", "subset": "5", "seed": "3", "map_by": "name"}


# -- one match table ------------------------------------------------------------------------

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
    results = datasets.to_coco_results(dets)
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
