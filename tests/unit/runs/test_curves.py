"""Metric curves: patterns, W&B's smoothing, down-sampling, bands across runs."""


import numpy as np
import pandas as pd
import pytest

from lib import runs


def test_metric_patterns():
    cols = ["train/loss", "val/acc", "val/loss", "lr_now", "_step"]
    assert runs.match_metrics(cols, "val/*") == ["val/acc", "val/loss"]
    assert runs.match_metrics(cols, "val/acc, train/*") == ["train/loss", "val/acc"]
    assert runs.match_metrics(cols, "nothing*") == []


def test_ema_matches_debiased_wandb_formula():
    values = pd.Series([1.0, 3.0, 2.0, 5.0])
    w = 0.6
    expected, acc, norm = [], 0.0, 0.0
    for v in values:
        acc = acc * w + (1 - w) * v
        norm = norm * w + (1 - w)
        expected.append(acc / norm)
    assert runs.smooth_ema(values, w).tolist() == pytest.approx(expected)
    assert runs.smooth_ema(values, 0).tolist() == values.tolist()


def test_downsampling_keeps_extremes():
    x = np.arange(100_000)
    y = np.sin(x / 1000.0)
    y[31_337] = 50.0   # a spike
    y[77_777] = -50.0  # a dip
    xs, ys = runs.downsample_minmax(x, y, max_points=1000)
    assert len(xs) <= 1000 and xs[0] == 0 and xs[-1] == 99_999
    assert 31_337 in xs and 77_777 in xs and ys.max() == 50.0 and ys.min() == -50.0
    assert np.all(np.diff(xs) > 0)


def test_group_band_and_stats():
    h1 = pd.DataFrame({"_step": [0, 1, 2], "m": [1.0, 2.0, 3.0]})
    h2 = pd.DataFrame({"_step": [0, 1, 2], "m": [3.0, 4.0, 5.0]})
    band = runs.group_band([h1, h2], "m")
    assert band["mean"].tolist() == [2.0, 3.0, 4.0] and band["max"].tolist() == [3.0, 4.0, 5.0]
    stats = runs.metric_stats({"a": h1, "b": h2}, "m")
    assert stats[["min", "max", "last"]].values.tolist() == [[1, 3, 3], [3, 5, 5]]


def test_group_band_keeps_mean_and_envelope_at_sweep_scale():
    rng = np.random.default_rng(0)
    steps = np.arange(100_000)
    hs = [pd.DataFrame({"_step": steps, "m": rng.normal(i, 1, len(steps))}) for i in range(20)]
    hs[3].loc[77_777, "m"] = 1e6                              # one spike in one run
    band = runs.group_band(hs, "m", max_points=2000)
    assert len(band) <= 2000 and (band["runs"] == 20).all()
    everything = np.concatenate([h["m"].to_numpy() for h in hs])
    assert band["max"].max() == 1e6 and band["min"].min() == everything.min()
    assert np.average(band["mean"], weights=np.full(len(band), 1)) == \
        pytest.approx(everything.mean(), rel=1e-3)
    assert (band["min"] <= band["mean"]).all() and (band["mean"] <= band["max"]).all()
    # small: exact, per step (pandas' groupby as the reference)
    small = runs.group_band([h.iloc[:50] for h in hs], "m")
    ref = pd.concat([h.iloc[:50] for h in hs]).groupby("_step")["m"]
    assert np.allclose(small["mean"], ref.mean()) and np.allclose(small["min"], ref.min())


def test_runs_grouped_by_a_config_key_get_one_band_each():
    import pandas as pd

    from lib.runs import RunInfo
    infos = [RunInfo(id=str(i), name=f"r{i}", project="p", config={"opt": {"name": n}})
             for i, n in enumerate(["adam", "adam", "sgd"])] + [
        RunInfo(id="x", name="no-history", project="p", config={"opt": {"name": "sgd"}})]
    histories = {f"r{i}": pd.DataFrame({"_step": [0, 1], "loss": [i, i + 2.0]})
                 for i in range(3)}
    groups = runs.grouped_bands(infos, histories, "opt.name", "loss")
    assert [(name, count) for name, count, _ in groups] == [("opt.name=adam", 2),
                                                            ("opt.name=sgd", 1)]
    adam = groups[0][2]
    assert adam["mean"].tolist() == [0.5, 2.5] and adam["min"].tolist() == [0.0, 2.0]
    assert adam["max"].tolist() == [1.0, 3.0]
