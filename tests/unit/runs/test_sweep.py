"""What a sweep says: the parameters a metric depends on are recovered and clear the noise
floor; a sweep of noise, or of too few runs, says so."""

import numpy as np
import pytest

from lib import runs
from lib.core.errors import InputError
from lib.runs import sweep as sweeps

TRUE = {"lr", "dropout", "width"}


def synthetic(n, seed, signal=True):
    """val/acc depends on lr, dropout and width (known), not on seed, momentum or warmup."""
    rng = np.random.default_rng(seed)
    infos = []
    for i in range(n):
        c = {"lr": float(10 ** rng.uniform(-4, -1)), "dropout": float(rng.uniform(0, 0.5)),
             "width": int(rng.choice([64, 128, 256, 512])), "seed": int(rng.integers(10**6)),
             "momentum": float(rng.uniform(0.8, 0.99)), "warmup": int(rng.integers(0, 1000))}
        acc = rng.normal(0.5, 0.05)
        if signal:
            acc = 0.9 - 0.08 * (np.log10(c["lr"]) + 2.5) ** 2 - 0.2 * c["dropout"] \
                + 0.03 * np.log2(c["width"] / 64) + rng.normal(0, 0.01)
        infos.append(runs.RunInfo(id=f"r{i}", name=f"run-{i}", project="p", config=c,
                                  summary={"val/acc": float(acc)}))
    return infos


@pytest.mark.slow
def test_the_top_three_are_recovered_at_200_runs():
    seeds = range(20)
    hits = sum(set(runs.parameter_importance(synthetic(200, s), "val/acc")["parameter"][:3])
               == TRUE for s in seeds)
    assert hits >= 19                                   # at least 95% of seeds


@pytest.mark.slow
def test_intervals_separate_signal_from_noise():
    result = sweeps.importance_intervals(synthetic(200, 1), "val/acc", resamples=40)
    assert set(result.findings) == TRUE
    table = result.table.set_index("parameter")
    assert (table["low"] <= table["importance"]).all() and (table["importance"]
                                                            <= table["high"]).all()
    assert result.verdict().startswith("Above the noise floor with 200 runs")


@pytest.mark.slow
def test_a_sweep_of_noise_says_nothing():
    result = sweeps.importance_intervals(synthetic(40, 2, signal=False), "val/acc",
                                         resamples=40)
    assert result.findings == []
    assert "says nothing yet" in result.verdict()


@pytest.mark.parametrize("n,resamples,message", [(8, 20, "too few"), (40, 0, "from 1 to"),
                                                  (40, 10**6, "from 1 to")])
def test_too_few_runs_or_odd_counts(n, resamples, message):
    with pytest.raises(InputError, match=message):
        sweeps.importance_intervals(synthetic(n, 0), "val/acc", resamples=resamples)


def test_a_sweep_where_every_run_has_the_same_config():
    infos = [runs.RunInfo(id=f"r{i}", name=f"r{i}", project="p", config={"lr": 0.1},
                          summary={"val/acc": 0.5 + i / 100}) for i in range(20)]
    with pytest.raises(InputError, match="too few"):
        sweeps.importance_intervals(infos, "val/acc")


@pytest.mark.slow
def test_on_a_sweep_written_by_wandb(tmp_path):
    import wandb
    for info in synthetic(60, 3):
        run = wandb.init(mode="offline", dir=str(tmp_path), project="sweep", name=info.name,
                         config=info.config, settings=wandb.Settings(silent=True,
                                                                     console="off"))
        run.summary["val/acc"] = info.summary["val/acc"]
        run.finish()
    infos, problems = runs.load_offline(tmp_path)
    assert not problems and len(infos) == 60
    result = sweeps.importance_intervals(infos, "val/acc", resamples=30)
    assert "lr" in result.findings and not {"seed", "momentum", "warmup"} & set(result.findings)


def test_trend_finds_the_best_learning_rate_on_a_log_axis():
    t = sweeps.trend(synthetic(200, 4), "val/acc", "lr")
    assert t.log_x and t.r2 > 0.3
    assert abs(np.log10(t.fit_x[np.argmax(t.fit_y)]) + 2.5) < 0.3      # the true optimum 10^-2.5
    assert "lr" in sweeps.numeric_parameters(synthetic(50, 0), "val/acc")
    with pytest.raises(InputError, match="not a numeric parameter"):
        sweeps.trend(synthetic(50, 0), "val/acc", "../../etc")


def interacting(n, seed, joint=True):
    """val/acc = a·b + c (a and b interact) or a + b + c (nothing interacts), plus noise."""
    rng = np.random.default_rng(seed)
    infos = []
    for i in range(n):
        a, b, c = rng.uniform(-1, 1, 3)
        acc = (a * b if joint else a + b) + c + rng.normal(0, 0.02)
        infos.append(runs.RunInfo(id=f"r{i}", name=f"run-{i}", project="p",
                                  config={"a": float(a), "b": float(b), "c": float(c)},
                                  summary={"val/acc": float(acc)}))
    return infos


def test_interactions_find_the_pair_that_acts_together():
    h = sweeps.interactions(interacting(200, 0), "val/acc", top=3).set_index(["first",
                                                                             "second"])["H"]
    pairs = {frozenset(k): v for k, v in h.items()}
    assert pairs[frozenset("ab")] > 0.6
    assert pairs[frozenset("ac")] < 0.25 and pairs[frozenset("bc")] < 0.25


def test_an_additive_metric_has_no_strong_interaction():
    h = sweeps.interactions(interacting(200, 1, joint=False), "val/acc", top=3)
    assert len(h) == 3 and (h["H"] < 0.25).all()


def true_acc(c):
    return 0.9 - 0.08 * (np.log10(c["lr"]) + 2.5) ** 2 - 0.2 * c["dropout"] \
        + 0.03 * np.log2(c["width"] / 64)


@pytest.mark.slow
def test_best_configuration_with_its_interval():
    infos = synthetic(200, 4)
    best = sweeps.best_config(infos, "val/acc", resamples=40)
    top = max(infos, key=lambda r: r.summary["val/acc"])
    assert best.run == top.name and best.observed == top.summary["val/acc"]
    assert best.config.keys() == {"lr", "dropout", "width", "momentum", "warmup"}  # no seed
    assert best.low <= best.expected <= best.high
    assert best.low - 0.01 <= true_acc(top.config) <= best.high + 0.01
    assert best.repeats == 1 and best.runs == 200
    worst = sweeps.best_config(infos, "val/acc", higher=False, resamples=5)
    assert worst.observed == min(r.summary["val/acc"] for r in infos)


def test_best_configuration_of_runs_differing_only_in_seed():
    infos = [runs.RunInfo(id=f"r{i}", name=f"r{i}", project="p", config={"lr": 0.1, "seed": i},
                          summary={"val/acc": 0.5 + i / 100}) for i in range(20)]
    with pytest.raises(InputError, match="only in their seed"):
        sweeps.best_config(infos, "val/acc")
