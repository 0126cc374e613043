"""Faithfulness measures against pytorch_grad_cam's own metric classes (ROAD, keep-top) and
a plain pixel-by-pixel reference (deletion and insertion AUCs); ranking and its intervals."""

import numpy as np
import pytest
import torch
from pytorch_grad_cam.metrics.cam_mult_image import CamMultImageConfidenceChange
from pytorch_grad_cam.metrics.road import ROADLeastRelevantFirst, ROADMostRelevantFirst
from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget
from torchvision.transforms.functional import gaussian_blur

from lib.classification import cam, faithfulness, ranking
from lib.classification.faithfulness import MEASURES, RANKED, Measuring, Scores
from lib.core.errors import ExplainError
from tests.unit.classification.test_cam import tiny


@pytest.fixture(scope="module")
def case():
    lm = tiny("test_efficientnet", size=48)
    x = torch.randn(1, 3, 48, 48, generator=torch.Generator().manual_seed(7))
    heat = cam.compute_cam(lm, x, "GradCAM", 3).heatmap
    return lm, x, heat


def prob(model, x, target):
    with torch.no_grad():
        return float(torch.softmax(model(x), -1)[0, target])


def reference_curves(model, x, heat, target, steps):
    """Deletion and insertion AUCs, written out plainly: one image per step, pixel by pixel."""
    order = sorted(range(heat.size), key=lambda i: (-heat.ravel()[i], i))
    blurred = gaussian_blur(x, kernel_size=[11, 11], sigma=[5.0, 5.0])
    w = heat.shape[1]
    dele, ins = [], []
    for k in range(steps + 1):
        d, b = x.clone(), blurred.clone()
        for i in order[: round(k / steps * heat.size)]:
            d[0, :, i // w, i % w] = 0
            b[0, :, i // w, i % w] = x[0, :, i // w, i % w]
        dele.append(prob(model, d, target))
        ins.append(prob(model, b, target))

    def auc(ys):
        return sum((ys[i] + ys[i + 1]) / 2 / steps for i in range(steps))

    return auc(dele), auc(ins)


def test_measures_equal_the_library_and_a_plain_reference(case):
    lm, x, heat = case
    (scores,) = faithfulness.score_maps(lm, x, [heat], 3, Measuring(steps=8))
    targets = [ClassifierOutputSoftmaxTarget(3)]
    for metric, mine in ((ROADMostRelevantFirst, scores.road_morf),
                         (ROADLeastRelevantFirst, scores.road_lerf)):
        ref = []
        for p in (20, 80):
            torch.manual_seed(0)   # the imputer's noise, as Lens seeds it
            ref.append(metric(p)(x, heat[None], targets, lm.model)[0])
        assert mine == pytest.approx(float(np.mean(ref)), abs=1e-6)
    keep = (heat >= np.percentile(heat, 75)).astype(np.float32)[None]
    assert scores.keep_top_change == pytest.approx(
        float(CamMultImageConfidenceChange()(x, keep, targets, lm.model)[0]), abs=1e-6)
    dele, ins = reference_curves(lm.model, x, heat, 3, 8)
    assert scores.deletion_auc == pytest.approx(dele, abs=1e-5)
    assert scores.insertion_auc == pytest.approx(ins, abs=1e-5)
    assert scores.road == pytest.approx((scores.road_lerf - scores.road_morf) / 2)


def test_scores_repeat_and_degenerate_maps_do_not_crash(case):
    lm, x, heat = case
    flat = np.zeros_like(heat)
    a = faithfulness.score_maps(lm, x, [heat, flat, np.full_like(heat, np.nan)], 3)
    b = faithfulness.score_maps(lm, x, [heat, flat, np.full_like(heat, np.nan)], 3)
    assert a == b
    assert all(np.isfinite(s.value(k)) for s in a for k in MEASURES)


def test_rank_table_orders_by_mean_rank_with_the_baseline_as_a_row():
    good = Scores(road_morf=-0.5, road_lerf=0.2, deletion_auc=0.1, insertion_auc=0.9,
                  keep_top_change=0.1)
    bad = Scores(road_morf=0.1, road_lerf=-0.3, deletion_auc=0.8, insertion_auc=0.2,
                 keep_top_change=-0.4)
    mid = Scores(road_morf=0.0, road_lerf=0.0, deletion_auc=0.5, insertion_auc=0.5,
                 keep_top_change=0.0)
    table = ranking.rank_table([("bad", bad, 1.0, ""), (ranking.BASELINE, mid, 0.0, ""),
                                ("good", good, 0.5, ""), ("broken", None, 0.1, "boom")])
    assert list(table["method"]) == ["good", ranking.BASELINE, "bad", "broken"]
    assert list(table["beats random"][:1]) == [len(RANKED)]
    assert table.loc[table["method"] == "bad", "beats random"].item() == 0
    assert np.isnan(table.loc[table["method"] == "broken", "rank"].item())


def test_rank_methods_scores_every_method_and_counts_progress(case):
    lm, x, _ = case
    seen = []
    names = ["GradCAM", "EigenCAM", "HiResCAM"]
    result = ranking.rank_methods(lm, x, names, 3, cam.default_target_layer(lm.model),
                                  progress=seen.append)
    assert [r.method for r in result.rows] == [*names, ranking.BASELINE]
    assert all(r.scores is not None and r.heatmap.shape == (48, 48) for r in result.rows)
    assert seen[-1].done == seen[-1].total == 2 * len(names) + 1
    # the same map scored alone gives the same numbers as inside the ranking
    alone = faithfulness.score_maps(lm, x, [result.rows[0].heatmap], 3)[0]
    assert alone == result.rows[0].scores
    with pytest.raises(ExplainError, match="out of range"):
        ranking.rank_methods(lm, x, names, 99, "conv_head")


@pytest.mark.slow
def test_folder_ranking_intervals(tmp_path):
    from PIL import Image
    lm = tiny("test_efficientnet", classes=2, size=32)
    rng = np.random.default_rng(0)
    items = []
    for cls in ("c0", "c1"):
        (tmp_path / cls).mkdir()
        for i in range(3):
            p = tmp_path / cls / f"{i}.png"
            Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(p)
            items.append((p, cls))
    (tmp_path / "c0" / "bad.png").write_bytes(b"not an image")
    items.append((tmp_path / "c0" / "bad.png", "c0"))
    result = ranking.rank_folder(lm, items, ["GradCAM", "EigenCAM"], "conv_head", n_images=7)
    assert result.images == 6 and len(result.skipped) == 1
    table = result.table
    assert set(table["method"]) == {"GradCAM", "EigenCAM", ranking.BASELINE}
    for col in ["mean rank", *MEASURES]:
        assert (table[f"{col} low"] <= table[col] + 1e-12).all()
        assert (table[col] <= table[f"{col} high"] + 1e-12).all()
    with pytest.raises(ExplainError, match="at least one image"):
        ranking.sample_items(items, 0)


def test_a_cancelled_ranking_frees_the_model_and_the_queue(case):
    """Streamlit cancels a run by raising inside it (at the progress bar's next update): the
    model's lock and the heavy-work slot must come free, with no worker left behind."""
    import threading

    from lib.serving import fair_queue
    lm, x, _ = case

    class Stop(Exception):
        pass

    def progress(p):
        if p.done >= 3:       # cancelled while the maps are being scored
            raise Stop

    with pytest.raises(Stop), fair_queue.HEAVY.slot():
        ranking.rank_methods(lm, x, ["GradCAM", "EigenCAM"], 3, "conv_head", progress=progress)
    assert fair_queue.HEAVY.status.running == 0
    free = []

    def other_visitor():
        free.append(lm.lock.acquire(timeout=1))
        lm.lock.release()

    t = threading.Thread(target=other_visitor)
    t.start()
    t.join()
    assert free == [True]
    assert not [th for th in threading.enumerate() if th.name.startswith("lens-impute")]
