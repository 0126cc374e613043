"""The Dataset tab's library: neighbours against scikit-learn, the embedding job (resume,
cancel, NaN, caps, models it cannot use), the label-error rule on planted cases and its COCO
export read back by pycocotools, and the selection the service applies to its reports."""

import json

import numpy as np
import pytest
from PIL import Image

from lib.core.errors import LensError, ModelError
from lib.demo import label_noise
from lib.detection import datasets, detections
from lib.detection.explore import embedding_job, embeddings, label_errors, maps, neighbours
from lib.detection.service import DetectionBenchmark
from lib.media.masks import box_iou
from tests import reference
from tests.helpers import gt_results


def _unit(n, d=16, seed=0):
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


# -- neighbours ------------------------------------------------------------------------------
def test_more_like_this_equals_scikit_learn_brute_force():
    from sklearn.neighbors import NearestNeighbors
    x = _unit(500)
    index = neighbours.Index(x)
    ref = NearestNeighbors(n_neighbors=11, metric="cosine", algorithm="brute").fit(x)
    dist, rows = ref.kneighbors(x[7:8])
    found = index.similar(7, 10)
    assert list(found.rows) == [r for r in rows[0] if r != 7][:10]
    np.testing.assert_allclose(found.distances, dist[0][1:], atol=1e-5)


def test_uniqueness_is_fiftyone_s_weighted_three_nearest_over_the_largest():
    from sklearn.neighbors import NearestNeighbors
    x = _unit(300, seed=1)
    dist, _ = NearestNeighbors(n_neighbors=4, metric="cosine").fit(x).kneighbors(x)
    want = (dist[:, 1:] @ [0.6, 0.3, 0.1])
    np.testing.assert_allclose(neighbours.uniqueness(neighbours.Index(x)), want / want.max(),
                               atol=1e-5)
    assert neighbours.uniqueness(neighbours.Index(x[:1])).tolist() == [1.0]   # one image


def test_planted_duplicates_and_leaks_are_found_and_nothing_else():
    x = _unit(400, seed=2)
    noisy = x[[3, 50, 51]] + 0.002 * _unit(3, seed=9)
    data = np.concatenate([x, noisy / np.linalg.norm(noisy, axis=1, keepdims=True)])
    groups = neighbours.duplicate_groups(neighbours.Index(data), 0.01)
    assert sorted(sorted(g.tolist()) for g in groups) == [[3, 400], [50, 401], [51, 402]]
    other = np.concatenate([_unit(50, seed=3), x[[10, 20]]])
    theirs, ours, dist = neighbours.leaks(neighbours.Index(x), other, 0.01)
    assert sorted(zip(theirs.tolist(), ours.tolist())) == [(50, 10), (51, 20)]
    assert (dist <= 1e-5).all()


def test_representativeness_in_range_and_maps_have_two_columns():
    x = _unit(200, seed=4)
    rep, cluster = neighbours.representativeness(x)
    assert rep.min() == pytest.approx(0, abs=1e-6) and rep.max() <= 1 and cluster.max() >= 1
    emb = embeddings.Embeddings("image", "m", x, np.arange(200), -np.ones(200, int),
                                np.zeros((200, 4)), np.zeros(200, int), coords=x[:, :2])
    assert maps.project(emb, "PCA").shape == (200, 2)
    with pytest.raises(LensError, match="Unknown map"):
        maps.project(emb, "tsne")


def test_a_basis_is_scikit_learn_s_pca_and_refuses_another_model_s_vectors():
    from sklearn.decomposition import PCA
    x = np.random.default_rng(5).standard_normal((300, 40)) * 0.8 ** np.arange(40)
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)   # clear axes
    basis = embeddings.Basis.fit(x, dims=8)
    ref = PCA(8, svd_solver="full").fit_transform(x)
    got = basis.project(x)
    for k in range(4):                               # each main axis up to its sign
        assert abs(np.corrcoef(got[:, k], ref[:, k])[0, 1]) > 0.999
    with pytest.raises(ModelError, match="same model"):
        basis.project(_unit(3, d=12))


def test_non_finite_and_zero_vectors_are_dropped():
    x = _unit(5)
    x[1, 3], x[2] = np.nan, 0
    unit, keep = embeddings.normalised(x)
    assert keep.tolist() == [True, False, False, True, True] and len(unit) == 3


# -- the embedding job ------------------------------------------------------------------------
class _Tiny(embeddings.Embedder):
    """A stand-in model: mean colour of the image and of each box (NaN for image 2)."""

    def __init__(self):
        import threading
        super().__init__(type("H", (), {"lock": threading.RLock(), "device": "cpu"})(), "tiny")

    def embed(self, image, boxes):
        arr = np.asarray(image, np.float32)
        whole = np.concatenate([arr.mean((0, 1)), [1.0]])
        per = [np.concatenate([arr[int(b[1]):int(b[3]) + 1, int(b[0]):int(b[2]) + 1].mean(
            (0, 1)), [1.0]]) for b in boxes]
        if arr[0, 0, 0] == 2:
            whole = whole * np.nan
        return whole, np.asarray(per, np.float32).reshape(-1, 4)


@pytest.fixture
def little(tmp_path, monkeypatch):
    monkeypatch.setenv("LENS_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "images"
    folder.mkdir()
    imgs, anns = [], []
    for i in range(1, 7):
        arr = np.full((40, 40, 3), i * 30, np.uint8)
        arr[0, 0, 0] = i
        Image.fromarray(arr).save(folder / f"{i}.png")
        imgs.append({"id": i, "file_name": f"{i}.png", "width": 40, "height": 40})
        anns.append({"id": 10 + i, "image_id": i, "category_id": 1, "bbox": [5, 5, 20, 20]})
    data = {"images": imgs, "annotations": anns, "categories": [{"id": 1, "name": "thing"}]}
    (tmp_path / "ann.json").write_text(json.dumps(data))
    return datasets.load_coco(tmp_path / "ann.json", folder)


def test_a_cancelled_embedding_resumes_to_the_uninterrupted_result(little, tmp_path):
    boxes = embedding_job.ground_truth_boxes(little)
    whole = embedding_job.EmbeddingJob("a", little, _Tiny, boxes, "tiny", batch_size=1,
                                       cache_dir=tmp_path / "a")
    whole.start()
    whole.wait()
    cut = embedding_job.EmbeddingJob("b", little, _Tiny, boxes, "tiny", batch_size=1,
                                     cache_dir=tmp_path / "b")
    original = cut._local_batches

    def stop_after_two(todo):
        for k, batch in enumerate(original(todo)):
            yield batch
            if k == 1:
                cut.cancel()
    cut._local_batches = stop_after_two
    cut.start()
    cut.wait()
    assert not cut.finished and cut.done == 2
    cut._local_batches = original
    cut.start()
    cut.wait()
    assert cut.finished
    for level in ("image", "object"):
        a, b = whole.embeddings(level), cut.embeddings(level)
        np.testing.assert_allclose(np.abs(a.vectors), np.abs(b.vectors), atol=1e-4)
        assert a.image_ids.tolist() == b.image_ids.tolist()
    images = whole.embeddings("image")
    assert images.dropped == 1 and 2 not in images.image_ids        # NaN image left out
    objects = whole.embeddings("object")
    assert objects.ann_ids.tolist() == [11, 12, 13, 14, 15, 16] and objects.dropped == 0


def test_too_many_objects_are_refused_before_any_work(little):
    boxes = {1: (np.arange(11), np.zeros((11, 4), np.float32), np.ones(11, int))}
    with pytest.raises(LensError, match="LENS_EMBED_MAX_OBJECTS"):
        embedding_job.job_for(little, "tiny", _Tiny, boxes, cap=10)


def test_models_without_a_usable_layer_are_refused_with_what_to_pick():
    detr = type("D", (), {"kind": "transformers"})()
    with pytest.raises(ModelError, match="EfficientNet-Lite"):
        embeddings.embedder_for(detr, "facebook/detr-resnet-50")
    import timm

    from lib.models.spec import LoadedModel, Preprocess
    vit = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=3).eval()
    lm = LoadedModel(None, vit, Preprocess(), ["a", "b", "c"], "cpu")
    with pytest.raises(ModelError, match="pick a CNN"):
        embeddings.embedder_for(lm, "vit").embed(Image.new("RGB", (64, 48)),
                                                 np.array([[0, 0, 10, 10]], np.float32))


def test_a_cnn_gives_close_vectors_to_the_same_object_in_two_places():
    import timm

    from lib.models.spec import LoadedModel, Preprocess
    cnn = timm.create_model("resnet18", pretrained=False, num_classes=3).eval()
    lm = LoadedModel(None, cnn, Preprocess(), ["a", "b", "c"], "cpu")
    arr = np.zeros((384, 768, 3), np.uint8)
    patch = np.random.default_rng(0).integers(0, 255, (128, 128, 3), np.uint8)
    arr[64:192, 64:192] = arr[64:192, 448:576] = patch
    whole, per = embeddings.embedder_for(lm, "r18").embed(
        Image.fromarray(arr), np.array([[64, 64, 192, 192], [448, 64, 576, 192],
                                        [640, 256, 760, 380]], np.float32))
    unit, _ = embeddings.normalised(per.astype(np.float32))
    assert whole.shape == (512,) and per.shape == (3, 512)
    assert unit[0] @ unit[1] > unit[0] @ unit[2]


# -- label errors -----------------------------------------------------------------------------
def _planted(tmp_path):
    imgs = [{"id": 1, "file_name": "1.png", "width": 200, "height": 200}]
    anns = [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 40, 40]},   # right
            {"id": 2, "image_id": 1, "category_id": 2, "bbox": [100, 10, 40, 40]},  # swapped
            {"id": 3, "image_id": 1, "category_id": 1, "bbox": [10, 128, 40, 40]},  # shifted
            {"id": 4, "image_id": 1, "category_id": 1, "bbox": [150, 150, 30, 30]}]  # spurious
    data = {"images": imgs, "annotations": anns,
            "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]}
    (tmp_path / "p.json").write_text(json.dumps(data))
    (tmp_path / "img").mkdir(exist_ok=True)
    Image.new("RGB", (200, 200)).save(tmp_path / "img" / "1.png")
    dets = {1: detections.Detections(1, [[10, 10, 50, 50], [100, 10, 140, 50],
                                         [10, 100, 50, 140], [60, 60, 90, 90]],
                                     [0.95, 0.9, 0.9, 0.85], [1, 1, 1, 2])}
    return datasets.load_coco(tmp_path / "p.json", tmp_path / "img"), dets


def test_each_planted_error_is_flagged_as_its_kind(tmp_path):
    dataset, dets = _planted(tmp_path)
    found = label_errors.find(dataset, {"m": dets})
    by_ann = found.boxes.set_index("ann_id")
    assert by_ann.loc[1, "score"] < 0.1                               # a right box
    assert by_ann.loc[2, "kind"] == "swapped" and by_ann.loc[2, "score"] > 0.8
    assert by_ann.loc[3, "kind"] == "mislocated" and by_ann.loc[3, "score"] > 0.8
    assert by_ann.loc[4, "kind"] == "spurious" and by_ann.loc[4, "score"] == pytest.approx(1)
    (missing,) = found.boxes[found.boxes["ann_id"] == -1].itertuples()
    assert missing.kind == "missing" and missing.category_id == 2 and missing.score > 0.8
    assert found.images["score"].iloc[0] > 0.99 and found.images["flags"].iloc[0] == 5
    assert list(found.boxes["score"]) == sorted(found.boxes["score"], reverse=True)
    two = label_errors.find(dataset, {"m": dets, "blind": {}})       # a model seeing nothing
    assert two.boxes.set_index("ann_id").loc[2, "swapped"] == pytest.approx(
        by_ann.loc[2, "swapped"] / 2)


def test_the_export_is_a_coco_file_pycocotools_reads(tmp_path):
    from pycocotools.coco import COCO
    dataset, dets = _planted(tmp_path)
    flagged = label_errors.find(dataset, {"m": dets}).top(4)
    path = tmp_path / "flagged.json"
    path.write_text(label_errors.export(dataset, flagged))
    coco = COCO(str(path))
    assert len(coco.getAnnIds()) == 4 and coco.getImgIds() == [1]
    kinds = {a["lens_kind"] for a in coco.loadAnns(coco.getAnnIds())}
    assert kinds <= set(label_errors.KINDS) and "lens_score" in coco.loadAnns(1)[0]
    datasets.validate_coco(json.loads(path.read_text()), "flagged")


def test_injected_errors_are_scored_by_what_was_injected():
    data = {"images": [{"id": i, "file_name": f"{i}.png", "width": 100, "height": 100}
                       for i in range(1, 21)],
            "annotations": [{"id": i, "image_id": i, "category_id": 1 + i % 2,
                             "bbox": [10, 10, 30, 30]} for i in range(1, 21)],
            "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]}
    noisy, injected = label_noise.inject(data, 0.2, seed=3)
    assert {e.kind for e in injected} == set(label_noise.KINDS)
    perfect = [{"image_id": e.image_id, "ann_id": -1 if e.kind == "missing" else e.ann_id,
                "x0": e.box[0], "y0": e.box[1], "x1": e.box[2], "y1": e.box[3]}
               for e in injected]
    assert label_noise.recall(perfect, injected)[:2] == (1.0, 1.0)
    assert label_noise.recall([], injected)[0] == 0.0
    moved = {a["id"]: a for a in noisy["annotations"]}
    for e in injected:
        if e.kind == "mislocated":
            old = next(a for a in data["annotations"] if a["id"] == e.ann_id)["bbox"]
            new = moved[e.ann_id]["bbox"]
            assert box_iou((old[0], old[1], old[0] + old[2], old[1] + old[3]),
                                    (new[0], new[1], new[0] + new[2], new[1] + new[3])) == \
                pytest.approx(0.3, abs=1e-6)


# -- the selection ----------------------------------------------------------------------------
def test_a_selection_restricts_reports_to_its_images_as_pycocotools_does(coco):
    bench = DetectionBenchmark()
    bench.open(coco.annotations_path, coco.images_dir)
    results = gt_results(coco, 0.1, 0.2, seed=3)
    dets = detections.from_coco_results(results)
    everything = bench.report(dets)
    ids = coco.image_ids[: len(coco.image_ids) // 2]
    assert bench.select(ids + [10**9]) == [10**9]
    part = bench.report(dets, "m")
    assert bench.detections_of["m"] is dets          # the Dataset tab embeds every image's
    want = reference.pycocotools(coco.only(ids),
                                          [r for r in results if r["image_id"] in set(ids)])
    assert part.metrics.stats["AP"] == pytest.approx(want["AP"], abs=1e-6)
    assert part is not everything
    bench.select(coco.image_ids)                     # every image: no selection
    assert bench.selection == () and bench.report(dets) is everything
    bench.select([])
    assert bench.selection == ()


def test_a_link_s_selection_names_what_the_dataset_lacks(coco):
    from lib.core import links
    bench = DetectionBenchmark()
    bench.open(coco.annotations_path, coco.images_dir)
    first = str(coco.image_ids[0])
    link = links.DetectionLink.parse({"selected": f"{first},424242,<b>x</b>"})
    assert links.DetectionLink.parse(
        {k: v for k, v in [kv.split("=") for kv in link.url().split("?")[1].split("&")]}
    ) is not None
    assert sorted(bench.follow_link(link)) == sorted(["<b>x</b>", "424242"])
    assert bench.selection == (int(first),)
    assert bench.follow_link(link) == []             # the same link: the map's choice stays


def test_a_dataset_of_one_image_maps_searches_and_scores(little, tmp_path):
    from lib.detection.explore import exploration
    one = little.only([1])
    job = embedding_job.EmbeddingJob("one", one, _Tiny, embedding_job.ground_truth_boxes(one),
                                     "tiny", cache_dir=tmp_path / "one")
    job.start()
    job.wait()
    for level in ("image", "object"):
        ex = exploration.explore(job.embeddings(level))
        assert len(ex.emb) == 1 and ex.uniqueness.tolist() == [1.0]
        assert ex.map("UMAP").shape == (1, 2)                # too few points: PCA's
        assert ex.similar(0).empty and ex.duplicates(0.5).empty
        table = exploration.points(ex, ex.map("PCA"), one)
        assert table["class"].tolist() == (["image"] if level == "image" else ["thing"])


def test_a_million_objects_are_taken_show_progress_and_cancel(little, tmp_path, monkeypatch):
    """10^6 boxes (the default cap) over six images: accepted, progress counted in images,
    cancelled after the first batch with nothing called finished; one more box is refused."""
    class Fast(_Tiny):
        def embed(self, image, boxes):
            return np.ones(4, np.float32), np.asarray(boxes, np.float32)[:, :4] + 1

    monkeypatch.setenv("LENS_CACHE", str(tmp_path / "million"))
    n = 1_000_000 // 6
    boxes = {i: (np.arange(n + (i == 1) * (1_000_000 - 6 * n)),
                 np.tile(np.float32([1, 1, 9, 9]), (n + (i == 1) * (1_000_000 - 6 * n), 1)),
                 np.ones(n + (i == 1) * (1_000_000 - 6 * n), int)) for i in little.image_ids}
    job = embedding_job.job_for(little, "fast", Fast, boxes)
    original = job._local_batches

    def one_then_cancel(todo):
        for batch in original(todo):
            yield batch
            job.cancel()
    job._local_batches = one_then_cancel
    job.start()
    job.wait(120)
    assert not job.finished and 0 < job.progress.done < job.progress.total == 6
    boxes[1] = tuple(np.concatenate([a, a[:1]]) for a in boxes[1])
    with pytest.raises(LensError, match="1000001 objects"):
        embedding_job.job_for(little, "fast", Fast, boxes)


def test_a_torchvision_detector_embeds_with_its_own_fpn():
    """The demo Faster R-CNN's backbone: one vector per image and per box, the same object
    drawn twice nearer to itself than to an empty corner; a DETR is refused."""
    from lib.models import cache, registry
    handle = cache.load(registry.find("demo-fasterrcnn", "detection"), "detection").model
    embedder = embeddings.embedder_for(handle, "demo-fasterrcnn")
    assert isinstance(embedder, embeddings.TorchvisionDetectorEmbedder)
    arr = np.full((256, 256, 3), 40, np.uint8)
    arr[40:90, 40:90] = arr[40:90, 160:210] = (230, 60, 60)
    whole, per = embedder.embed(Image.fromarray(arr), np.array(
        [[40, 40, 90, 90], [160, 40, 210, 90], [150, 180, 200, 230]], np.float32))
    unit, keep = embeddings.normalised(per.astype(np.float32))
    assert keep.all() and whole.ndim == 1 and per.shape == (3, whole.shape[0])
    assert unit[0] @ unit[1] > unit[0] @ unit[2]


@pytest.mark.parametrize("annotations, images, said", [
    ("/etc/passwd", "/etc", "not inside the folders Lens may read"),
    ("../../../../etc/passwd", ".", "Give the path without '..'"),
    ("<b>x</b>.json", "", "does not exist")])
def test_another_split_outside_the_data_folders_is_refused_by_name(coco, annotations, images,
                                                                   said):
    """The leak check's second split is typed: resolved and contained like every path."""
    from lib.core.errors import PathNotAllowedError
    bench = DetectionBenchmark()
    bench.open(coco.annotations_path, coco.images_dir)
    with pytest.raises(PathNotAllowedError, match=said):
        bench.open_split(annotations, images)
