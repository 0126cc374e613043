"""Which explanation to believe: every method ranked by faithfulness on one image, and the
same ranking aggregated over a labelled folder with bootstrap intervals.

A method's rank on an image is its mean rank over the five measures of `faithfulness.RANKED`
(1 = most faithful), the random-map baseline ranked among them: a method that does not beat
random on most measures says little about this model.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from lib.classification import cam, faithfulness
from lib.classification.classify import match_classes, to_tensor
from lib.classification.faithfulness import DEFAULT, MEASURES, RANKED, Measuring, Scores
from lib.core.errors import ExplainError
from lib.core.progress import Callback, Ticker
from lib.media.images import ImageError, load_image
from lib.models.registry import LoadedModel

BASELINE = "Random map (baseline)"


@dataclass(frozen=True)
class Row:
    method: str
    heatmap: np.ndarray | None
    seconds: float            # the map's time alone (its faithfulness measures not included)
    scores: Scores | None
    error: str = ""


@dataclass(frozen=True)
class Ranking:
    """Every method's map and scores on one image for one class."""

    rows: tuple[Row, ...]
    target_index: int
    target_label: str
    layer: str
    seconds: float            # the whole ranking, measures included

    def table(self) -> pd.DataFrame:
        """One row per method: overall rank, each measure, its time; failures last."""
        return rank_table([(r.method, r.scores, r.seconds, r.error) for r in self.rows])


def rank_table(entries: list[tuple[str, Scores | None, float, str]]) -> pd.DataFrame:
    """(method, scores, seconds, error) -> a table sorted by mean rank over the measures."""
    rows = [{"method": m, **{k: (s.value(k) if s else np.nan) for k in MEASURES},
             "seconds": t, "error": e} for m, s, t, e in entries]
    df = pd.DataFrame(rows)
    ranks = pd.DataFrame({k: df[k].rank(ascending=not MEASURES[k][1], method="average")
                          for k in RANKED})
    df.insert(1, "mean rank", ranks.mean(axis=1))
    base = df.loc[df["method"] == BASELINE]
    if len(base):
        b = base.iloc[0]
        df.insert(2, "beats random", [
            int(sum((r[k] > b[k]) if MEASURES[k][1] else (r[k] < b[k]) for k in RANKED))
            if r["method"] != BASELINE else np.nan
            for _, r in df.iterrows()])
    df = df.sort_values(["mean rank", "method"], na_position="last", kind="stable")
    df.insert(0, "rank", range(1, len(df) + 1))
    df.loc[df["mean rank"].isna(), "rank"] = np.nan
    return df.reset_index(drop=True)


def rank_methods(lm: LoadedModel, tensor, names: list[str], target_index: int,
                 layer_name: str, options: dict | None = None,
                 settings: Measuring = DEFAULT, lock: threading.RLock | None = None,
                 progress: Callback | None = None) -> Ranking:
    """Compute each named method's map and score it, with the random baseline as a row.
    `progress` counts maps made and maps scored (2 per method, plus the baseline's)."""
    start = time.perf_counter()
    cam.check_target(lm, target_index)
    tick = Ticker(2 * len(names) + 1, progress)
    count = iter(range(1, tick.total + 1))
    with lock or lm.lock:
        done = cam.compute_cams(lm, tensor, names, target_index, layer_name, options, lock,
                                on_done=lambda _c: tick(next(count)))
        rand = faithfulness.random_cam(lm, tensor, layer_name, settings.seed)
        maps = [c for c in done if c.heatmap is not None]
        scored = faithfulness.score_maps(lm, tensor, [c.heatmap for c in maps] + [rand],
                                         target_index, settings, lock,
                                         on_done=lambda _i: tick(next(count)))
    by_name = {c.method: s for c, s in zip(maps, scored)}
    rows = [Row(c.method, c.heatmap, c.seconds, by_name.get(c.method), c.error) for c in done]
    rows.append(Row(BASELINE, rand, 0.0, scored[-1]))
    tick(tick.total)
    return Ranking(tuple(rows), target_index, lm.labels[target_index], layer_name,
                   time.perf_counter() - start)


# -- across a labelled folder -----------------------------------------------------------------

@dataclass(frozen=True)
class FolderRanking:
    """Per method: each measure's mean over the images with a 95% bootstrap interval."""

    table: pd.DataFrame            # method, images, mean rank [lo, hi], each measure [lo, hi]
    images: int
    skipped: tuple[str, ...] = field(default=())


def _interval(values: np.ndarray, seed: int) -> tuple[float, float, float]:
    """(mean, low, high): the percentile bootstrap's 95% interval of the mean (scipy)."""
    from scipy.stats import bootstrap  # heavy: imported on first use
    values = values[np.isfinite(values)]
    if values.size == 0:
        return np.nan, np.nan, np.nan
    mean = float(values.mean())
    if values.size < 2 or np.ptp(values) == 0:
        return mean, mean, mean
    res = bootstrap((values,), np.mean, n_resamples=1000, confidence_level=0.95,
                    method="percentile", random_state=seed)
    return mean, float(res.confidence_interval.low), float(res.confidence_interval.high)


def sample_items(items: list[tuple[Path, str]], n: int) -> list[tuple[Path, str]]:
    """Up to n items spread evenly over the (sorted) list: every class gets its share."""
    if n <= 0:
        raise ExplainError("Rank on at least one image.")
    if len(items) <= n:
        return list(items)
    picks = np.linspace(0, len(items) - 1, n).round().astype(int)
    return [items[i] for i in picks]


def rank_folder(lm: LoadedModel, items: list[tuple[Path, str]], names: list[str],
                layer_name: str, n_images: int = 16, options: dict | None = None,
                settings: Measuring = DEFAULT, lock: threading.RLock | None = None,
                progress: Callback | None = None) -> FolderRanking:
    """Rank the methods on up to `n_images` images of a labelled folder (each explained for
    its true class) and aggregate: mean rank and each measure with 95% intervals."""
    picked = sample_items(items, n_images)
    mapping = match_classes(sorted({c for _, c in picked}), lm.labels)
    tick = Ticker(len(picked), progress)
    per: dict[str, list[dict]] = {}
    skipped = []
    for i, (path, cls) in enumerate(picked):
        try:
            image = load_image(path).image
        except ImageError as exc:
            skipped.append(f"{Path(path).name}: {exc}")
            continue
        ranking = rank_methods(lm, to_tensor(lm, image), names, mapping[cls], layer_name,
                               options, settings, lock)
        table = ranking.table()
        for _, r in table.iterrows():
            if pd.notna(r["mean rank"]):
                per.setdefault(r["method"], []).append(r.to_dict())
        tick(i + 1)
    rows = []
    for name, records in per.items():
        frame = pd.DataFrame(records)
        row = {"method": name, "images": len(frame)}
        for col in ["mean rank", *MEASURES]:
            mean, lo, hi = _interval(frame[col].to_numpy(float), settings.seed)
            row[col], row[f"{col} low"], row[f"{col} high"] = mean, lo, hi
        rows.append(row)
    table = pd.DataFrame(rows)
    if len(table):
        table = table.sort_values(["mean rank", "method"], kind="stable").reset_index(drop=True)
    return FolderRanking(table, len(picked) - len(skipped), tuple(skipped))
