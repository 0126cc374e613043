"""Comparing runs: the run table, filters, config and summary diffs, parameter importance."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lib.core import links, paths
from lib.runs.info import ReadProblem, RunInfo


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts to dotted keys: {"a": {"b": 1}} -> {"a.b": 1}."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and "value" in v and len(v) <= 2 and "desc" in v:
            v = v["value"]  # cloud configs wrap values as {"value": ..., "desc": ...}
        if isinstance(v, dict) and v:
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def summary_keys(infos: list[RunInfo]) -> tuple[list[str], list[str]]:
    """(every summary key, the numeric ones) of the runs, W&B's `_` keys left out; a logged
    media object (a dict with `_type`, e.g. wandb.Image) is one key, not its fields."""
    keys: set[str] = set()
    numeric: set[str] = set()
    for r in infos:
        for k, v in r.summary.items():
            if k.startswith("_"):
                continue
            if isinstance(v, dict) and "_type" not in v:
                for sub, value in flatten(v, f"{k}.").items():
                    keys.add(sub)
                    if isinstance(value, (int, float)) and not isinstance(value, bool):
                        numeric.add(sub)
            else:
                keys.add(k)
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    numeric.add(k)
    return sorted(keys), sorted(numeric)


def cell(v: Any) -> Any:
    return json.dumps(v, sort_keys=True) if isinstance(v, (list, dict)) else v


def runs_table(infos: list[RunInfo], config_keys: Iterable[str] = (),
               summary_keys: Iterable[str] = ()) -> pd.DataFrame:
    """One row per run: name, state, tags, created, runtime, chosen config and summary keys."""
    rows = []
    for r in infos:
        flat = flatten(r.config)
        row = {"name": r.name, "id": r.id, "project": r.project, "state": r.state,
               "tags": ", ".join(r.tags), "created": r.created, "runtime_s": r.runtime,
               "source": r.source}
        row.update({f"config.{k}": cell(flat.get(k)) for k in config_keys})
        summary = r.summary if all(k in r.summary for k in summary_keys) else flatten(r.summary)
        row.update({k: cell(summary.get(k)) for k in summary_keys})
        rows.append(row)
    return pd.DataFrame(rows)


def filter_table(table: pd.DataFrame, text: str = "", sort_by: str | None = None,
                 descending: bool = False, names: Collection[str] | None = None
                 ) -> pd.DataFrame:
    """Rows whose name, tags or state contain `text` (any case) and, given `names` (a brush
    on the parallel coordinates), whose name is among them; sorted by a column."""
    if names is not None:
        table = table[table["name"].isin(names if isinstance(names, (set, frozenset))
                                         else set(names))]
    if text:
        needle = text.lower()
        hay = table["name"].astype(str) + "\n" + table["tags"].astype(str) + "\n" \
            + table["state"].astype(str)
        table = table[hay.str.lower().str.contains(needle, regex=False)]
    if sort_by and sort_by in table:
        table = table.sort_values(sort_by, ascending=not descending, kind="stable",
                                  na_position="last")
    return table


@dataclass
class ParallelAxes:
    """Runs as lines across axes (config keys, then a summary metric), as numbers: a
    categorical axis holds each value's index in `categories[label]`."""

    names: list[str]                               # one per run (line)
    columns: dict[str, np.ndarray]                 # label -> value per run (NaN: missing)
    categories: dict[str, list[str]]               # categorical axes' values, in order
    log: set[str] = field(default_factory=set)     # axes holding log10 of the values

    def brushed(self, brush: dict[str, list[tuple[float, float]]]) -> set[str]:
        """The runs inside every brushed axis (a run inside any of an axis's ranges)."""
        keep = np.ones(len(self.names), dtype=bool)
        for label, ranges in brush.items():
            if label not in self.columns:
                continue
            values = self.columns[label]
            inside = np.zeros(len(values), dtype=bool)
            for low, high in ranges:
                inside |= (values >= min(low, high)) & (values <= max(low, high))
            keep &= inside
        return {n for n, k in zip(self.names, keep) if k}


def parallel_axes(infos: list[RunInfo], config_keys: Iterable[str], metric: str | None
                  ) -> ParallelAxes:
    """The parallel-coordinates axes of `infos`: each config key (numbers as they are, as
    log10 when positive and spanning more than two decades; other values as categories in
    sorted order), then `metric` from the summaries."""
    flats = [flatten(r.config) for r in infos]
    columns: dict[str, np.ndarray] = {}
    categories: dict[str, list[str]] = {}
    log: set[str] = set()
    for key in config_keys:
        raw = [f.get(key) for f in flats]
        if all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))
               for v in raw):
            values = np.array([np.nan if v is None else v for v in raw], dtype=float)
            known = values[np.isfinite(values)]
            if len(known) and known.min() > 0 and known.max() / known.min() > 100:
                values, _ = np.log10(values), log.add(key)    # learning rates and the like
            columns[key] = values
        else:
            text = [str(cell(v)) if v is not None else "—" for v in raw]
            categories[key] = sorted(set(text))
            where = {c: i for i, c in enumerate(categories[key])}
            columns[key] = np.array([where[t] for t in text], dtype=float)
    if metric:
        values = [flatten(r.summary).get(metric) for r in infos]
        columns[metric] = np.array([v if isinstance(v, (int, float)) and not isinstance(v, bool)
                                    else np.nan for v in values], dtype=float)
    return ParallelAxes([r.name for r in infos], columns, categories, log)


def export_rows(infos: list[RunInfo]) -> list[dict[str, Any]]:
    """One flat dict per run: id, name, project, state, tags, created, runtime, config, summary."""
    out = []
    for r in infos:
        row = {"id": r.id, "name": r.name, "project": r.project, "state": r.state,
               "tags": list(r.tags), "created": r.created, "runtime": r.runtime}
        row.update({f"config.{k}": v for k, v in flatten(r.config).items()})
        row.update({f"summary.{k}": v for k, v in flatten(r.summary).items()})
        out.append(row)
    return out


def _diff(flats: list[dict[str, Any]], names: list[str], all_keys: bool,
          label: str) -> pd.DataFrame:
    """Keys (rows) by run (columns): keys whose values differ first, then (with `all_keys`)
    the equal ones; alphabetical within each group. Any number of runs."""
    keys = sorted(set().union(*flats)) if flats else []
    differing, equal = {}, {}
    for key in keys:
        values = [cell(f.get(key, "—")) for f in flats]
        distinct = len({json.dumps(v, default=str) for v in values}) > 1
        (differing if distinct else equal)[key] = values
    data = {**differing, **(equal if all_keys else {})}
    frame = pd.DataFrame(data, index=pd.Index(names)).T if data else \
        pd.DataFrame(columns=names)
    frame.index.name = label
    frame.attrs["differing"] = len(differing)
    return frame


def config_diff(infos: list[RunInfo], all_keys: bool = False) -> pd.DataFrame:
    """Flattened config keys (rows) by run (columns): differing keys first; equal keys only
    with `all_keys`."""
    return _diff([flatten(r.config) for r in infos], [r.name for r in infos], all_keys,
                 "config key")


def summary_diff(infos: list[RunInfo], all_keys: bool = False) -> pd.DataFrame:
    """Summary metrics (rows) by run (columns), as `config_diff`; W&B's internal `_` keys
    left out."""
    flats = [{k: v for k, v in flatten(r.summary).items() if not k.startswith("_")}
             for r in infos]
    return _diff(flats, [r.name for r in infos], all_keys, "summary key")


def importance_features(infos: list[RunInfo], metric: str) -> tuple[pd.DataFrame, np.ndarray]:
    """The config of every run with a numeric `metric` as model features, and the metric.

    Numeric keys are used as is (missing values are left to the forest), booleans as 0/1,
    categorical keys one-hot (one column per value, `key=value`). Keys that never vary, and
    runs without a numeric value of the metric, are left out."""
    rows, target = [], []
    for r in infos:
        value = flatten(r.summary).get(metric)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
            continue
        rows.append({k: v for k, v in flatten(r.config).items() if not k.startswith("_")})
        target.append(float(value))
    if len(rows) < 3:
        return pd.DataFrame(), np.asarray(target)
    config = pd.DataFrame(rows)
    features: dict[str, pd.Series] = {}
    for key in config.columns:
        col = config[key]
        present = col.dropna()
        if present.map(lambda v: isinstance(v, bool)).all() and len(present):
            features[key] = col.map({True: 1.0, False: 0.0})
        elif present.map(lambda v: isinstance(v, (int, float))
                         and not isinstance(v, bool)).all() and len(present):
            features[key] = col.astype(float)
        else:                                     # categorical (or mixed): one-hot
            text = col.map(lambda v: cell(v) if v is not None and v == v else None)
            for value in sorted(text.dropna().unique(), key=str):
                features[f"{key}={value}"] = (text == value).astype(float)
    x = pd.DataFrame(features)
    x = x.loc[:, [c for c in x.columns if x[c].nunique(dropna=False) > 1]]   # keys that vary
    return x, np.asarray(target)


def parameter_importance(infos: list[RunInfo], metric: str, seed: int = 0) -> pd.DataFrame:
    """How each config key relates to a summary metric, as W&B's parameter importance panel
    computes it: the Pearson correlation of the key with the metric, and the importance of
    the key in a random forest (scikit-learn) that predicts the metric from all keys
    (features: `importance_features`). Columns: parameter, importance, correlation, runs;
    sorted by importance.
    """
    from sklearn.ensemble import RandomForestRegressor  # heavy: imported on first use

    empty = pd.DataFrame(columns=["parameter", "importance", "correlation", "runs"])
    x, y = importance_features(infos, metric)
    if x.empty:
        return empty
    forest = RandomForestRegressor(n_estimators=200, random_state=seed)
    forest.fit(x.to_numpy(), y)
    correlation = [x[c].corr(pd.Series(y, index=x.index)) for c in x.columns]
    out = pd.DataFrame({"parameter": x.columns, "importance": forest.feature_importances_,
                        "correlation": correlation, "runs": x.notna().sum().to_numpy()})
    return out.sort_values("importance", ascending=False, kind="stable").reset_index(drop=True)


def disambiguate(infos: list[RunInfo]) -> list[RunInfo]:
    """Runs with the same name get their id added (and their folder, for copies of one log),
    so a name picks one run on the page and in shared links. Changes the names in place."""
    counts = Counter(r.name for r in infos)
    for r in infos:
        if counts[r.name] > 1:
            r.name = f"{r.name} · {r.id}"
    counts = Counter(r.name for r in infos)
    for r in infos:
        if counts[r.name] > 1:
            r.name = f"{r.name} · {Path(r.path).parent.name if r.path else r.key}"
    return infos


def detection_link(info: RunInfo) -> str | None:
    """The Detection page URL that reopens a benchmark logged from it (same data, subset,
    seed and models), or None for other runs and for uploaded data (not kept). Paths are
    written as the visitor sees them (`paths.shown`)."""
    c = info.config
    if "benchmark" not in info.tags or c.get("data") not in ("demo", "path"):
        return None
    if c["data"] == "path" and (not c.get("dataset") or not c.get("images_dir")):
        return None
    files = ({"ann": paths.shown(c["dataset"]), "img": paths.shown(c["images_dir"])}
             if c["data"] == "path" else {})
    models = c.get("models") or [c.get("model")]
    return links.DetectionLink.parse({
        "data": c["data"], **files, "models": ",".join(str(m) for m in models if m),
        "subset": c.get("subset") or 0, "seed": c.get("seed") or 0,
        "map_by": c.get("map_by") or "name"}).url()


def problem_reasons(problems: list[ReadProblem]) -> list[tuple[str, int]]:
    """Why runs were skipped: (reason, how many), most common first."""
    counts = Counter(p.message.split(": ", 1)[-1] for p in problems)
    return counts.most_common()
