"""Comparing runs: diffs, parameter importance like W&B's, duplicate names."""


import numpy as np
import pytest

from lib import runs


def test_config_diff_flattens_and_hides_equal_keys(project):
    infos = sorted(runs.load_offline(project)[0], key=lambda r: r.name)
    diff = runs.config_diff(infos)
    assert list(diff.index) == ["lr", "model.arch", "model.depth"]
    assert diff.loc["model.arch"].tolist() == ["b0", "b0", "b3"]
    two = runs.config_diff(infos[1:])
    assert list(two.index) == ["model.arch"]
    # all keys: the differing ones first
    assert list(runs.config_diff(infos[1:], all_keys=True).index) == ["model.arch", "lr",
                                                                      "model.depth"]


def sweep(n=60, seed=0):
    """A synthetic sweep: val/acc depends on lr (strongly) and on the optimizer, not on seed."""
    rng = np.random.default_rng(seed)
    infos = []
    for i in range(n):
        lr = float(10 ** rng.uniform(-4, -1))
        opt = ["adam", "sgd", "lion"][i % 3]
        acc = 0.9 - 0.1 * abs(np.log10(lr) + 2.5) + (0.05 if opt == "adam" else 0.0) \
            + rng.normal(0, 0.003)
        config = {"lr": lr, "optimizer": opt, "seed": int(rng.integers(1000)),
                  "augment": bool(i % 2), "batch": 64, "model": {"depth": 3}}
        summary = {"val/acc": acc, "_step": 10} if i % 10 else {"_step": 10}   # some unfinished
        infos.append(runs.RunInfo(id=f"r{i}", name=f"run-{i}", project="p", config=config,
                                  summary=summary))
    return infos


def test_parameter_importance_like_wandb():
    infos = sweep()
    table = runs.parameter_importance(infos, "val/acc")
    params = list(table["parameter"])
    # constant keys (batch, model.depth) left out; categorical one-hot; booleans 0/1
    assert set(params) == {"lr", "seed", "augment", "optimizer=adam", "optimizer=lion",
                           "optimizer=sgd"}
    assert params[0] == "lr" and table["importance"].sum() == pytest.approx(1.0)
    assert table.set_index("parameter").loc["lr", "importance"] > \
        5 * table.set_index("parameter").loc["seed", "importance"]
    assert set(table["runs"]) == {54}                     # runs without val/acc left out
    # correlation: Pearson, against numpy's
    used = [r for r in infos if "val/acc" in r.summary]
    acc = [r.summary["val/acc"] for r in used]
    adam = [1.0 if r.config["optimizer"] == "adam" else 0.0 for r in used]
    expected = np.corrcoef(adam, acc)[0, 1]
    assert table.set_index("parameter").loc["optimizer=adam", "correlation"] == \
        pytest.approx(expected)
    assert expected > 0.3                                 # adam helps: positive
    # nothing to say: too few runs, or a metric no run has
    assert runs.parameter_importance(infos[:2], "val/acc").empty
    assert runs.parameter_importance(infos, "missing").empty


def test_diffs_have_no_run_cap_and_list_differing_keys_first():
    infos = sweep(100)
    config = runs.config_diff(infos, all_keys=True)
    assert config.shape[1] == 100 and config.attrs["differing"] == 4
    assert list(config.index[:4]) == ["augment", "lr", "optimizer", "seed"]
    assert set(config.index[4:]) == {"batch", "model.depth"}
    summary = runs.summary_diff(infos)
    assert summary.shape == (1, 100) and list(summary.index) == ["val/acc"]
    assert summary.loc["val/acc", "run-0"] == "—"          # no value: a dash, not an error


def test_duplicate_names_are_told_apart():
    infos = [runs.RunInfo(id=i, name=n, project="p", path=f"/x/offline-run-{k}/run-{i}.wandb")
             for k, (i, n) in enumerate([("a1", "same"), ("a2", "same"), ("a2", "same"),
                                         ("b", "other")])]
    names = [r.name for r in runs.disambiguate(infos)]
    assert len(set(names)) == 4 and names[3] == "other" and names[0] == "same · a1"
    assert names[1] == "same · a2 · offline-run-1"


def test_parallel_axes_and_a_brush():
    infos = [runs.RunInfo(id=f"r{i}", name=f"r{i}", project="p",
                          config={"lr": 10.0 ** -(i % 5), "opt": ["adam", "sgd"][i % 2],
                                  "width": 32 * (1 + i % 3)},
                          summary={"acc": i / 10}) for i in range(10)]
    axes = runs.parallel_axes(infos, ["lr", "opt", "width"], "acc")
    assert axes.log == {"lr"} and axes.categories == {"opt": ["adam", "sgd"]}
    assert np.allclose(axes.columns["lr"], [-(i % 5) for i in range(10)])
    # lr in [1e-2, 1] (log10 -2..0), sgd only, acc >= 0.3: two ranges on acc
    kept = axes.brushed({"lr": [(-2, 0)], "opt": [(0.5, 1.5)], "acc": [(0.3, 0.35), (0.6, 1)]})
    expected = {r.name for i, r in enumerate(infos) if i % 5 <= 2 and i % 2 == 1
                and (0.3 <= i / 10 <= 0.35 or i / 10 >= 0.6)}
    assert kept == expected == {"r7"}
    table = runs.runs_table(infos, ["lr"], ["acc"])
    assert list(runs.filter_table(table, names=kept)["name"]) == ["r7"]
    assert axes.brushed({"unknown axis": [(0, 1)]}) == set(axes.names)


def test_summary_keys_leave_media_fields_out():
    info = runs.RunInfo(id="a", name="a", project="p", summary={
        "acc": 0.9, "_step": 3, "flag": True, "nested": {"loss": 0.1},
        "pred": {"_type": "image-file", "height": 32, "width": 48, "path": "media/x.png"}})
    assert runs.summary_keys([info]) == (["acc", "flag", "nested.loss", "pred"],
                                         ["acc", "nested.loss"])
