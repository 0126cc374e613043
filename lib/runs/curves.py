"""Metric curves: picking metrics, smoothing, down-sampling, per-step bands across runs."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable

import numpy as np
import pandas as pd

from lib.runs.compare import flatten
from lib.runs.info import RunInfo


def match_metrics(columns: Iterable[str], patterns: str) -> list[str]:
    """Metrics matching comma-separated glob patterns like `val/*, train/loss`."""
    pats = [p.strip() for p in patterns.split(",") if p.strip()]
    cols = [c for c in columns if not c.startswith("_")]
    return [c for c in cols if any(fnmatch.fnmatchcase(c, p) for p in pats)]


def numeric_metrics(history: pd.DataFrame) -> list[str]:
    return [c for c in history.columns if not c.startswith("_")
            and pd.api.types.is_numeric_dtype(history[c])]


def smooth_ema(values: pd.Series, weight: float) -> pd.Series:
    """W&B's debiased exponential moving average; weight 0 leaves the curve as is."""
    if weight <= 0:
        return values
    return values.ewm(alpha=1 - weight, adjust=True, ignore_na=True).mean()


def downsample_minmax(x: np.ndarray, y: np.ndarray, max_points: int = 2000):
    """Keep extremes: split into buckets and keep each bucket's first, min, max and last point.

    Spikes and dips survive (unlike striding or averaging); output has at most `max_points`.
    """
    n = len(x)
    if n <= max_points:
        return np.asarray(x), np.asarray(y)
    buckets = max(1, max_points // 4)
    edges = np.linspace(0, n, buckets + 1).astype(int)
    keep = []
    yv = np.asarray(y, dtype=float)
    for lo, hi in zip(edges[:-1], edges[1:]):
        if hi <= lo:
            continue
        seg = yv[lo:hi]
        finite = np.isfinite(seg)
        idx = {lo, hi - 1}
        if finite.any():
            idx |= {lo + int(np.nanargmin(np.where(finite, seg, np.nan))),
                    lo + int(np.nanargmax(np.where(finite, seg, np.nan)))}
        keep.extend(sorted(idx))
    keep = np.asarray(keep)
    return np.asarray(x)[keep], yv[keep]


def x_values(history: pd.DataFrame, x_axis: str) -> pd.Series:
    """The x axis: `_step`, `wall time` (seconds since the first row) or any metric."""
    if x_axis == "wall time":
        col = "_timestamp" if "_timestamp" in history else "_runtime"
        return history[col] - history[col].min()
    return history[x_axis]


def series(history: pd.DataFrame, metric: str, x_axis: str = "_step", smoothing: float = 0.0,
           max_points: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of one metric, smoothed, downsampled, NaN rows dropped."""
    if metric not in history:
        return np.array([]), np.array([])
    frame = pd.DataFrame({"x": x_values(history, x_axis), "y": history[metric]}).dropna()
    frame = frame.sort_values("x", kind="stable")
    y = smooth_ema(frame["y"].astype(float), smoothing)
    return downsample_minmax(frame["x"].to_numpy(), y.to_numpy(), max_points)


def metric_stats(histories: dict[str, pd.DataFrame], metric: str) -> pd.DataFrame:
    """min / max / last of one metric per run."""
    rows = []
    for name, h in histories.items():
        s = h[metric].dropna() if metric in h else pd.Series(dtype=float)
        rows.append({"run": name, "min": s.min() if len(s) else None,
                     "max": s.max() if len(s) else None,
                     "last": s.iloc[-1] if len(s) else None, "points": len(s)})
    return pd.DataFrame(rows)


def group_band(histories: list[pd.DataFrame], metric: str, x_axis: str = "_step",
               smoothing: float = 0.0, max_points: int = 2000) -> pd.DataFrame:
    """Mean and min-max band across runs, aligned on x: columns x, mean, min, max, runs.

    With more than `max_points` distinct x values the band is reduced per bucket of x: the
    mean of the means (weighted by how many runs each x has), the min of the mins and the max
    of the maxes, so the envelope a sweep spans survives at any length.
    """
    xs, ys = [], []
    for h in histories:
        if metric in h and (x_axis in h or x_axis == "wall time"):
            x = x_values(h, x_axis).to_numpy(dtype=float, na_value=np.nan)
            y = h[metric].to_numpy(dtype=float, na_value=np.nan)
            keep = ~(np.isnan(x) | np.isnan(y))
            x, y = x[keep], y[keep]
            if len(x) > 1 and (np.diff(x) < 0).any():
                order = np.argsort(x, kind="stable")
                x, y = x[order], y[order]
            xs.append(x)
            ys.append(smooth_ema(pd.Series(y), smoothing).to_numpy() if smoothing > 0 else y)
    if not xs:
        return pd.DataFrame(columns=["x", "mean", "min", "max", "runs"])
    x, y = np.concatenate(xs), np.concatenate(ys)
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    starts = np.flatnonzero(np.r_[True, x[1:] != x[:-1]])       # one group per distinct x
    count = np.diff(np.r_[starts, len(x)])
    total = np.add.reduceat(y, starts)
    low, high = np.minimum.reduceat(y, starts), np.maximum.reduceat(y, starts)
    ux, runs_at = x[starts], count
    if len(ux) > max_points:                                     # reduce per bucket of x
        edges = np.unique(np.linspace(0, len(ux), max_points + 1).astype(int)[:-1])
        ux, runs_at = ux[edges], np.maximum.reduceat(count, edges)
        total, count = np.add.reduceat(total, edges), np.add.reduceat(count, edges)
        low, high = np.minimum.reduceat(low, edges), np.maximum.reduceat(high, edges)
    return pd.DataFrame({"x": ux, "mean": total / count, "min": low, "max": high,
                         "runs": runs_at})


def grouped_bands(infos: list[RunInfo], histories: dict[str, pd.DataFrame], key: str,
                  metric: str, x_axis: str = "_step", smoothing: float = 0.0
                  ) -> list[tuple[str, int, pd.DataFrame]]:
    """Runs grouped by a (dotted) config key: per group its name (`key=value`), how many runs
    it holds, and the band of `metric` across them (`group_band`: mean, min, max per x)."""
    groups: dict[str, list[pd.DataFrame]] = {}
    for info in infos:
        if info.name in histories:
            value = flatten(info.config).get(key, "—")
            groups.setdefault(f"{key}={value}", []).append(histories[info.name])
    return [(name, len(frames), group_band(frames, metric, x_axis, smoothing))
            for name, frames in groups.items()]
