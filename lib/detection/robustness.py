"""Detection robustness over a dataset: COCO-C (Michaelis et al., "Benchmarking Robustness in
Object Detection").

Every image is corrupted on the fly with each of the 15 benchmark corruptions at each
severity (`lib.media.corruptions`; never written), the detector runs through the inference
job (`jobs.InferenceJob` with `corruptions`: resumable, on this server or on Ray), and the
AP of each corruption and severity gives **mPC** (their mean) and **rPC** = mPC / clean AP.
Intervals come from the image bootstrap (`intervals`): one resample of the images weighs
every corruption's matching and the clean one alike, so the interval of rPC is the
interval of a ratio measured on the same images. AP is COCO's, from the one matching
(`metrics.coco_matching`, `metrics.weighted`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from lib.core.errors import InputError
from lib.detection import jobs
from lib.detection.datasets import CocoDataset
from lib.detection.detections import Detections, from_coco_results, map_labels
from lib.detection.intervals import check_resamples, interval, point_weights, weight_chunks
from lib.detection.metrics.coco_matching import coco_matches
from lib.detection.metrics.weighted import weighted
from lib.media import corruptions
from lib.models import cache, registry

#: the benchmark's 15 corruptions (the 4 held-out ones are for validation, as in the paper)
BENCHMARK = corruptions.PROTOCOL[:15]
RESAMPLES = 200          # for mPC / rPC: 75 matchings weighed per resample

Condition = tuple[str, int]


def conditions(names: list[str] | tuple[str, ...] | None = None,
               severities: str | list[int] | tuple[int, ...] | None = None
               ) -> tuple[Condition, ...]:
    """The (corruption, severity) pairs to run (`corruptions.conditions`), by default the
    benchmark's 15 corruptions at severities 1-5."""
    return corruptions.conditions(names, severities, default=BENCHMARK)


def job_for(spec: registry.ModelSpec, dataset: CocoDataset, chosen: tuple[Condition, ...],
            map_by: str = "name", threshold: float = 0.05, batch_size: int = 2,
            fingerprint: str | None = None) -> jobs.InferenceJob:
    """The one robustness job (and cache entry) for a registry detector on a dataset subset
    under `chosen` corruptions: the page, the command line and the benchmark share it."""
    key = jobs.cache_key(spec.name, dataset, {"threshold": threshold, "map_by": map_by,
                                              "corruptions": [list(c) for c in chosen]},
                         fingerprint)
    return jobs.get_job(key, lambda: jobs.InferenceJob(
        key, dataset, lambda: cache.load(spec, "detection").model,
        lambda det: map_labels(det.labels, dataset.categories, by=map_by), threshold,
        batch_size, spec=spec, map_by=map_by, corruptions=chosen))


def by_condition(rows: list[dict], chosen: tuple[Condition, ...]
                 ) -> dict[Condition, dict[int, Detections]]:
    """A robustness job's result rows split per (corruption, severity): every chosen pair,
    one under which the detector found nothing included (its AP is 0, and it counts)."""
    split: dict[Condition, list[dict]] = {c: [] for c in chosen}
    for row in rows:
        split.setdefault((row["corruption"], int(row["severity"])), []).append(row)
    return {c: from_coco_results(r) for c, r in split.items()}


@dataclass
class Robustness:
    """One detector's COCO-C numbers on one dataset."""

    model: str
    clean_ap: float
    grid: pd.DataFrame                 # corruption, severity, AP
    mpc: float
    rpc: float
    mpc_interval: tuple[float, float]
    rpc_interval: tuple[float, float]
    resamples: int

    @property
    def worst(self) -> str:
        """The corruption with the lowest AP over its severities."""
        return str(self.grid.groupby("corruption")["AP"].mean().idxmin())

    def table(self) -> pd.DataFrame:
        """AP as corruption × severity (rows in the benchmark's order)."""
        order = [c for c in corruptions.NAMES if c in set(self.grid["corruption"])]
        return self.grid.pivot(index="corruption", columns="severity", values="AP").loc[order]

    def row(self) -> dict:
        """The leaderboard's columns: mPC and rPC with their intervals, the worst corruption."""
        return {"model": self.model, "mPC": self.mpc, "mPC low": self.mpc_interval[0],
                "mPC high": self.mpc_interval[1], "rPC": self.rpc,
                "rPC low": self.rpc_interval[0], "rPC high": self.rpc_interval[1],
                "worst corruption": self.worst}

    def as_json(self) -> dict:
        return {"model": self.model, "clean_AP": self.clean_ap, "mPC": self.mpc,
                "mPC_ci": list(self.mpc_interval), "rPC": self.rpc,
                "rPC_ci": list(self.rpc_interval), "resamples": self.resamples,
                "worst": self.worst, "AP": [
                    {"corruption": r.corruption, "severity": int(r.severity), "AP": r.AP}
                    for r in self.grid.itertuples()]}


def evaluate(model: str, dataset: CocoDataset, clean: dict[int, Detections],
             corrupted: dict[Condition, dict[int, Detections]],
             resamples: int = RESAMPLES, seed: int = 0) -> Robustness:
    """COCO AP per corruption and severity, mPC and rPC with bootstrap intervals."""
    if not corrupted:
        raise InputError("No corrupted results to evaluate.",
                         "Run at least one corruption and severity.")
    resamples = check_resamples(resamples)
    chosen = sorted(corrupted, key=lambda c: (corruptions.NAMES.index(c[0]), c[1]))
    base = coco_matches(dataset, clean)
    matches = [coco_matches(dataset, corrupted[c]) for c in chosen]
    n = base.n_images
    ones = point_weights(n)
    clean_ap = float(weighted(base, ones).headline()["AP"][0])
    aps = np.array([weighted(m, ones).headline()["AP"][0] for m in matches])
    mpc = float(np.nanmean(aps))
    rpc = mpc / clean_ap if clean_ap > 0 else float("nan")
    mpc_s, rpc_s = [], []
    for w in weight_chunks(n, resamples, seed):
        clean_w = weighted(base, w).headline()["AP"]
        per = np.nanmean([weighted(m, w).headline()["AP"] for m in matches], axis=0)
        mpc_s.append(per)
        with np.errstate(divide="ignore", invalid="ignore"):
            rpc_s.append(np.where(clean_w > 0, per / clean_w, np.nan))
    grid = pd.DataFrame({"corruption": [c for c, _ in chosen],
                         "severity": [s for _, s in chosen], "AP": aps})
    return Robustness(model, clean_ap, grid, mpc, rpc,
                      interval(np.concatenate(mpc_s), mpc),
                      interval(np.concatenate(rpc_s), rpc, bounds=(0.0, np.inf)), resamples)
