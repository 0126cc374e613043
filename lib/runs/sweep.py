"""What a sweep says, with its uncertainty: parameter importance with bootstrap intervals and a
noise floor, so a ranking of four runs is not read as a finding.

The forest of `compare.parameter_importance` (W&B's panel) is refitted on runs drawn with
replacement; each parameter's importance gets the 2.5–97.5% range of those refits. A column of
random numbers goes into every fit as a probe: a parameter whose interval does not clear the
probe's is indistinguishable from noise at this number of runs, and the page says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from lib.core.errors import InputError
from lib.core.progress import Callback, Ticker
from lib.runs.compare import flatten, importance_features
from lib.runs.info import RunInfo

NOISE = "(random noise)"
MIN_RUNS = 10            # below this, no ranking is attempted
MAX_RESAMPLES = 1000


def _order(info: RunInfo) -> tuple[str, str, str]:
    return info.name, info.id, info.path


@dataclass
class SweepImportance:
    table: pd.DataFrame      # parameter, importance, low, high, correlation, above noise
    noise_high: float        # the probe's upper bound: the floor a finding must clear
    runs: int
    resamples: int

    @property
    def findings(self) -> list[str]:
        return self.table.loc[self.table["above noise"], "parameter"].tolist()

    def verdict(self) -> str:
        if not self.findings:
            return (f"With {self.runs} runs no parameter's importance clears a column of random "
                    "numbers: the ranking says nothing yet. More runs would tell.")
        names = ", ".join(self.findings[:5])
        return (f"Above the noise floor with {self.runs} runs: {names}. The other parameters' "
                "importances are within what a column of random numbers gets.")


def importance_intervals(infos: list[RunInfo], metric: str, resamples: int = 100,
                         seed: int = 0, trees: int = 100,
                         progress: Callback | None = None) -> SweepImportance:
    """Importance of each config key for `metric` with 95% bootstrap intervals, against a
    random probe refitted alongside."""
    from sklearn.ensemble import RandomForestRegressor  # heavy: imported on first use

    if isinstance(resamples, bool) or not isinstance(resamples, int) or \
            not 1 <= resamples <= MAX_RESAMPLES:
        raise InputError(f"Resamples must be a whole number from 1 to {MAX_RESAMPLES}.")
    infos = sorted(infos, key=_order)       # results independent of the folder's order
    x, y = importance_features(infos, metric)
    if x.empty or len(y) < MIN_RUNS:
        raise InputError(f"{len(y)} runs have {metric} and a config key that varies: too few "
                         f"to rank parameters (at least {MIN_RUNS}).",
                         "Select more runs, or a metric more runs logged.")
    rng = np.random.default_rng(seed)
    x = x.assign(**{NOISE: rng.normal(size=len(x))})
    values = np.nan_to_num(x.to_numpy(), nan=-1e9)      # a missing key: its own branch

    def fit(rows: np.ndarray, k: int) -> np.ndarray:
        forest = RandomForestRegressor(n_estimators=trees, random_state=seed + k,
                                       max_features=1.0)
        forest.fit(values[rows], y[rows])
        return forest.feature_importances_

    point = fit(np.arange(len(y)), 0)
    tick = Ticker(resamples, progress)
    draws = np.empty((resamples, x.shape[1]))
    for k in range(resamples):
        draws[k] = fit(rng.integers(0, len(y), len(y)), k + 1)
        tick(k + 1)
    low, high = np.percentile(draws, [2.5, 97.5], axis=0)
    correlation = [x[c].corr(pd.Series(y, index=x.index)) for c in x.columns]
    table = pd.DataFrame({"parameter": x.columns, "importance": point, "low": low, "high": high,
                          "correlation": correlation})
    noise_high = float(table.loc[table["parameter"] == NOISE, "high"].iloc[0])
    table["above noise"] = (table["low"] > noise_high) & (table["parameter"] != NOISE)
    table = table.sort_values("importance", ascending=False, kind="stable")
    return SweepImportance(table.reset_index(drop=True), noise_high, len(y), resamples)


@dataclass
class Trend:
    parameter: str
    x: np.ndarray               # the parameter per run
    y: np.ndarray               # the metric per run
    fit_x: np.ndarray           # the fitted curve
    fit_y: np.ndarray
    log_x: bool                 # fitted (and drawn) on a log axis
    r2: float                   # share of the metric's variance the curve explains


def numeric_parameters(infos: list[RunInfo], metric: str) -> list[str]:
    """Config keys with numbers (not booleans) that vary across the runs with `metric`."""
    x, _ = importance_features(infos, metric)
    return [c for c in x.columns if "=" not in c and x[c].nunique() > 2]


def trend(infos: list[RunInfo], metric: str, parameter: str) -> Trend:
    """The metric against one numeric parameter with a quadratic fitted by least squares (on
    log10 of the parameter when it is positive and spans more than two decades, as learning
    rates do)."""
    x_all, y_all = importance_features(infos, metric)
    if parameter not in x_all.columns:
        raise InputError(f"'{parameter[:60]}' is not a numeric parameter of these runs.")
    x = x_all[parameter].to_numpy(float)
    keep = np.isfinite(x)
    x, y = x[keep], y_all[keep]
    if len(x) < 4:
        raise InputError(f"Only {len(x)} runs have both {parameter} and {metric}: too few for "
                         "a trend.")
    log_x = bool((x > 0).all() and x.max() / x.min() > 100)
    u = np.log10(x) if log_x else x
    coef = np.polyfit(u, y, 2)
    grid = np.linspace(u.min(), u.max(), 100)
    residual = y - np.polyval(coef, u)
    total = float(((y - y.mean()) ** 2).sum())
    r2 = 1 - float((residual ** 2).sum()) / total if total > 0 else 0.0
    return Trend(parameter, x, y, 10 ** grid if log_x else grid, np.polyval(coef, grid),
                 log_x, r2)


def _parameter_columns(columns: list[str]) -> dict[str, list[int]]:
    """Feature columns by the parameter they encode (a one-hot `key=value` to its key)."""
    groups: dict[str, list[int]] = {}
    for i, c in enumerate(columns):
        groups.setdefault(c.split("=", 1)[0] if "=" in c else c, []).append(i)
    return groups


def _partial_dependence(model, values: np.ndarray, cols: list[int]) -> np.ndarray:
    """Friedman's partial dependence of the model on `cols` at each row's own values, centred:
    the model averaged over all rows with those columns set to the row's values."""
    n = len(values)
    grid = np.repeat(values[None, :, :], n, axis=0)          # (row whose values, every row)
    grid[:, :, cols] = values[:, None, cols]
    pd_ = model.predict(grid.reshape(n * n, -1)).reshape(n, n).mean(axis=1)
    return pd_ - pd_.mean()


def interactions(infos: list[RunInfo], metric: str, top: int = 4, seed: int = 0,
                 max_runs: int = 150) -> pd.DataFrame:
    """Pairwise interaction strength of the `top` most important parameters: Friedman and
    Popescu's H statistic of a random forest fitted to the runs (0: the pair's effects add
    up; 1: the pair's effect is all interaction), on at most `max_runs` runs drawn with a
    seed. Columns: first, second, H."""
    from sklearn.ensemble import RandomForestRegressor  # heavy: imported on first use

    infos = sorted(infos, key=_order)       # results independent of the folder's order
    x, y = importance_features(infos, metric)
    if x.empty or len(y) < MIN_RUNS:
        raise InputError(f"{len(y)} runs have {metric} and a config key that varies: too few "
                         f"for interactions (at least {MIN_RUNS}).")
    values = np.nan_to_num(x.to_numpy(), nan=-1e9)
    forest = RandomForestRegressor(n_estimators=100, random_state=seed, max_features=1.0,
                                   min_samples_leaf=2).fit(values, y)
    groups = _parameter_columns(list(x.columns))
    weight = {p: forest.feature_importances_[cols].sum() for p, cols in groups.items()}
    ranked = sorted(groups, key=lambda p: -weight[p])[:top]
    rows = np.random.default_rng(seed).permutation(len(y))[:max_runs]
    sample = values[rows]
    single = {p: _partial_dependence(forest, sample, groups[p]) for p in ranked}
    out = []
    for i, a in enumerate(ranked):
        for b in ranked[i + 1:]:
            joint = _partial_dependence(forest, sample, groups[a] + groups[b])
            total = float((joint ** 2).sum())
            h2 = float(((joint - single[a] - single[b]) ** 2).sum()) / total if total else 0.0
            out.append({"first": a, "second": b, "H": float(np.sqrt(min(h2, 1.0)))})
    return pd.DataFrame(out, columns=["first", "second", "H"]).sort_values(
        "H", ascending=False, kind="stable").reset_index(drop=True)


@dataclass
class Best:
    """The best run found, and what its configuration is expected to give."""

    run: str
    config: dict                  # the run's values of the parameters that vary
    observed: float               # the metric the run logged
    expected: float               # the forest's estimate at this configuration
    low: float                    # 95% interval of the estimate (forests refitted on
    high: float                   #   resampled runs)
    repeats: int                  # runs with this same configuration (seeds aside)
    runs: int


def best_config(infos: list[RunInfo], metric: str, higher: bool = True, resamples: int = 100,
                seed: int = 0, progress: Callback | None = None) -> Best:
    """The run with the best `metric` and an interval for its configuration: the best of many
    noisy runs is optimistic (the winner's curse), so its configuration's expected metric is
    estimated by a forest fitted on all runs and refitted on runs drawn with replacement.
    Runs whose config differs only in keys named like `seed` count as repeats of it."""
    from sklearn.ensemble import RandomForestRegressor  # heavy: imported on first use

    infos = sorted(infos, key=_order)       # results independent of the folder's order
    x, y = importance_features(infos, metric)
    if x.empty or len(y) < MIN_RUNS:
        raise InputError(f"{len(y)} runs have {metric} and a config key that varies: too few "
                         f"to estimate the best configuration (at least {MIN_RUNS}).")
    x = x.loc[:, [c for c in x.columns if "seed" not in c.split("=", 1)[0].lower()]]
    if x.empty:
        raise InputError("The runs differ only in their seed: there is no configuration to "
                         "choose.")
    values = np.nan_to_num(x.to_numpy(), nan=-1e9)
    best = int(np.argmax(y) if higher else np.argmin(y))
    same = int((values == values[best]).all(axis=1).sum())
    rng = np.random.default_rng(seed)
    tick = Ticker(resamples + 1, progress)

    def estimate(rows: np.ndarray, k: int) -> float:
        forest = RandomForestRegressor(n_estimators=50, random_state=seed + k,
                                       min_samples_leaf=2).fit(values[rows], y[rows])
        tick(k + 1)
        return float(forest.predict(values[best:best + 1])[0])

    point = estimate(np.arange(len(y)), 0)
    draws = [estimate(rng.integers(0, len(y), len(y)), k + 1) for k in range(resamples)]
    low, high = np.percentile(draws, [2.5, 97.5])
    named = [r for r in infos if isinstance(flatten(r.summary).get(metric), (int, float))
             and not isinstance(flatten(r.summary).get(metric), bool)
             and flatten(r.summary).get(metric) == flatten(r.summary).get(metric)]
    run = named[best]
    config = {k: v for k, v in flatten(run.config).items()
              if any(c == k or c.startswith(f"{k}=") for c in x.columns)}
    return Best(run.name, config, float(y[best]), point, float(low), float(high), same, len(y))
