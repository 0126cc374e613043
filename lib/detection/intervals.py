"""Confidence intervals on COCO metrics: an image-level bootstrap that reweights, never re-matches.

A bootstrap resample draws the images with replacement: a vector of image weights, for which
`metrics.weighted.weighted` recomputes COCO's numbers from the one matching. A resample equals
faster-coco-eval run on the resampled images with duplicates renamed (a test).

Intervals are basic bootstrap intervals (see `interval`) of 1,000 seeded resamples by
default. A paired comparison uses the same resamples for both models, so the interval of a
difference is not the difference of two intervals.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from lib.core.errors import InputError
from lib.detection.metrics.weighted import CocoMatches, weighted

HEADLINE = ["AP", "AP50", "AP75", "AR100"]
MAX_RESAMPLES = 10_000
DEFAULT_RESAMPLES = 1000
LEVEL = 0.95


def check_resamples(n: object) -> int:
    """A bootstrap count a user typed: a whole number from 1 to MAX_RESAMPLES."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= MAX_RESAMPLES:
        raise InputError(f"The number of bootstrap resamples must be a whole number from 1 to "
                         f"{MAX_RESAMPLES:,}; got {n!r}.",
                         "1,000 (the default) gives intervals stable to about ±0.005.")
    return int(n)


CHUNK = 256   # resamples weighed at a time: bounded memory for any count


def weight_chunks(n_images: int, n: int, seed: int = 0, within: np.ndarray | None = None):
    """`n` bootstrap resamples as image weights, in blocks of up to CHUNK rows (rows,
    n_images): how often each image is drawn when as many images as the pool holds are drawn
    with replacement. `within`: the image positions to draw from (a slice); others weigh 0.
    The same (n, seed, within) always gives the same resamples."""
    pool = np.arange(n_images) if within is None else np.asarray(within, np.int64)
    rng = np.random.default_rng(seed)
    for lo in range(0, n, CHUNK):
        rows = min(CHUNK, n - lo)
        if not len(pool):
            yield np.zeros((rows, n_images))
            continue
        draws = pool[rng.integers(0, len(pool), size=(rows, len(pool)))]
        draws += (np.arange(rows) * n_images)[:, None]
        yield np.bincount(draws.ravel(), minlength=rows * n_images).reshape(
            rows, n_images).astype(np.float64)


def resample_weights(n_images: int, n: int, seed: int = 0,
                     within: np.ndarray | None = None) -> np.ndarray:
    """All of `weight_chunks` as one (n, n_images) array."""
    return np.concatenate(list(weight_chunks(n_images, n, seed, within)))


def point_weights(n_images: int, within: np.ndarray | None = None) -> np.ndarray:
    w = np.ones((1, n_images)) if within is None else np.zeros((1, n_images))
    if within is not None:
        w[0, np.asarray(within, np.int64)] = 1.0
    return w


def interval(samples: np.ndarray, point: float, level: float = LEVEL,
             bounds: tuple[float, float] = (0.0, 1.0)) -> tuple[float, float]:
    """The basic (reverse-percentile) bootstrap interval: [2θ − q_high, 2θ − q_low].

    AP is biased upwards on a smaller sample (the precision envelope is a running maximum,
    and noise raises maxima), and a resample is such a sample again: resampled APs sit above
    the estimate by about the estimate's own bias. The plain percentile interval therefore
    sits too high (on bench/detect_stats.py's population it held the true AP in 90% of draws
    for 95% asked); reflecting it about the estimate corrects the shift. NaN samples
    (resamples where the metric is undefined) are left out; the interval is clipped to
    `bounds`."""
    s = np.asarray(samples, np.float64)
    s = s[np.isfinite(s)]
    if not len(s) or not np.isfinite(point):
        return float("nan"), float("nan")
    q_lo, q_hi = np.percentile(s, [50 * (1 - level), 50 * (1 + level)])
    lo, hi = 2 * point - q_hi, 2 * point - q_lo
    return float(np.clip(lo, *bounds)), float(np.clip(hi, *bounds))


@dataclass
class Bootstrap:
    """Headline metrics and per-class AP of one model, each with its bootstrap interval."""

    point: dict[str, float]               # AP, AP50, AP75, AR100
    intervals: dict[str, tuple[float, float]]
    per_class: pd.DataFrame               # category_id, AP, AP low, AP high
    resamples: int
    seed: int
    samples: dict[str, np.ndarray]        # (resamples,) per headline metric

    def row(self, model: str) -> dict:
        """{model, metric, metric low, metric high} for tables and `plots.interval_whiskers`."""
        out: dict = {"model": model}
        for k in HEADLINE:
            out[k] = self.point[k]
            out[f"{k} low"], out[f"{k} high"] = self.intervals[k]
        return out

    def as_json(self) -> dict[str, list[float]]:
        return {f"{k}_ci": [round(lo, 6), round(hi, 6)] for k, (lo, hi) in self.intervals.items()}


def bootstrap(m: CocoMatches, resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
              within: np.ndarray | None = None, threads: int | None = None) -> Bootstrap:
    """Intervals on the headline metrics and per-class AP (`within`: a slice's images)."""
    resamples = check_resamples(resamples)
    if within is not None:
        m = m.restricted(within)
    point = weighted(m, point_weights(m.n_images, within))
    heads, class_ap = [], []          # per chunk: what is kept (not all four per-class arrays)
    for w in weight_chunks(m.n_images, resamples, seed, within):
        part = weighted(m, w, threads)
        heads.append(part.headline())
        class_ap.append(part.ap.astype(np.float32))
    samples = {k: np.concatenate([h[k] for h in heads]) for k in HEADLINE}
    ap = np.concatenate(class_ap)
    head = {k: float(v[0]) for k, v in point.headline().items()}
    per_class = pd.DataFrame({"category_id": m.categories, "AP": point.ap[0]})
    bounds = [interval(ap[:, k], point.ap[0, k]) for k in range(len(m.categories))]
    per_class["AP low"] = [b[0] for b in bounds]
    per_class["AP high"] = [b[1] for b in bounds]
    return Bootstrap(head, {k: interval(v, head[k]) for k, v in samples.items()}, per_class,
                     resamples, seed, samples)


@dataclass
class Paired:
    """Model B against model A on the same resampled images."""

    name_a: str
    name_b: str
    delta: dict[str, float]                   # B − A per headline metric
    intervals: dict[str, tuple[float, float]]
    b_better: dict[str, float]                # share of resamples where B > A
    per_class: pd.DataFrame                   # category_id, ΔAP, low, high (sorted by ΔAP)
    resamples: int
    images: int

    def table(self) -> pd.DataFrame:
        """Per headline metric: B − A, its interval, the share of resamples B wins."""
        return pd.DataFrame([{"metric": k, "B − A": self.delta[k], "low": self.intervals[k][0],
                              "high": self.intervals[k][1], "B ahead in": self.b_better[k]}
                             for k in HEADLINE])

    def verdict(self, metric: str = "AP") -> str:
        """The comparison in words: is the difference distinguishable from noise here?"""
        lo, hi = self.intervals[metric]
        d, share = self.delta[metric], self.b_better[metric]
        span = (f"{metric} {self.name_b} − {self.name_a} = {d:+.3f} "
                f"(95% interval {lo:+.3f} to {hi:+.3f}; {self.name_b} ahead in "
                f"{share:.0%} of {self.resamples:,} resamples of the {self.images:,} images)")
        if lo > 0:
            return f"{self.name_b} is better: {span}. The difference is larger than the noise."
        if hi < 0:
            return f"{self.name_a} is better: {span}. The difference is larger than the noise."
        return (f"No distinguishable difference: {span}. The interval contains 0, so at this "
                f"dataset size the gap may be noise; more images would narrow it.")


def paired(a: CocoMatches, b: CocoMatches, name_a: str = "A", name_b: str = "B",
           resamples: int = 1000, seed: int = 0) -> Paired:
    """ΔAP (and the other headline metrics, and per class) of B over A, with paired-bootstrap
    intervals and the share of resamples in which B beats A."""
    if a.dataset_key != b.dataset_key or a.categories != b.categories:
        raise InputError("The two results are for different datasets (other images or ground "
                         "truth), so they cannot be compared pairwise.",
                         "Evaluate both models on the same dataset and subset.")
    resamples = check_resamples(resamples)
    ones = point_weights(a.n_images)
    pa, pb = weighted(a, ones), weighted(b, ones)
    heads, class_diff = [], []       # per chunk: what is kept (not all per-class arrays)
    for w in weight_chunks(a.n_images, resamples, seed):
        wa, wb = weighted(a, w), weighted(b, w)
        ha, hb = wa.headline(), wb.headline()
        heads.append({k: hb[k] - ha[k] for k in HEADLINE})
        class_diff.append((wb.ap - wa.ap).astype(np.float32))
    delta = {k: float(pb.headline()[k][0] - pa.headline()[k][0]) for k in HEADLINE}
    diffs = {k: np.concatenate([h[k] for h in heads]) for k in HEADLINE}
    with np.errstate(invalid="ignore"):
        better = {k: float(np.mean(d[np.isfinite(d)] > 0)) if np.isfinite(d).any()
                  else float("nan") for k, d in diffs.items()}
    dk = np.concatenate(class_diff)
    bounds = [interval(dk[:, k], pb.ap[0, k] - pa.ap[0, k], bounds=(-1.0, 1.0))
              for k in range(len(a.categories))]
    per_class = pd.DataFrame({"category_id": a.categories, "ΔAP": pb.ap[0] - pa.ap[0],
                              "low": [x[0] for x in bounds], "high": [x[1] for x in bounds]})
    per_class = per_class.dropna(subset=["ΔAP"]).sort_values("ΔAP", kind="stable")
    return Paired(name_a, name_b, delta,
                  {k: interval(d, delta[k], bounds=(-1.0, 1.0)) for k, d in diffs.items()}, better,
                  per_class.reset_index(drop=True), resamples, a.n_images)
