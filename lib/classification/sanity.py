"""Sanity checks for explanations (Adebayo et al., 2018): does a map depend on the model?

- Model-parameter randomisation, cascading: re-initialise the model's layers from the top
  (the classifier) down, one stage at a time, keeping the earlier ones random, and compare each
  method's map with its map on the trained model (Spearman rank correlation, scipy; SSIM,
  scikit-image). A faithful method's map falls apart as the model is destroyed; a method whose
  map stays similar after every layer is random is showing the image, not the model.
- Data randomisation: the same architecture trained on shuffled labels (a checkpoint whose
  manifest says `"shuffled_labels": true`), compared in the same way.

The randomised model is a private copy; the loaded model is never changed.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass, replace

import numpy as np

from lib.classification import cam
from lib.core.progress import Callback, Ticker
from lib.models.registry import LoadedModel

#: A map whose rank correlation with the original stays above this once the whole model is
#: random "barely changes": the check's warning.
STILL_SIMILAR = 0.5
_CONTAINERS = ("blocks", "stages", "layers", "features")


def steps(model) -> list[str]:
    """Module names to randomise, top (classifier) first: the top-level children holding
    parameters, stage containers (blocks, stages, layers...) opened into their stages."""
    out = []
    for name, child in model.named_children():
        if not any(True for _ in child.parameters()):
            continue
        kids = list(child.named_children())
        if name in _CONTAINERS and len(kids) > 1:
            out += [f"{name}.{k}" for k, _ in kids]
        else:
            out.append(name)
    own = [n for n, _ in model.named_parameters(recurse=False)]  # ViT tokens, positions
    return list(reversed(out)) + own


def _randomise(model, name: str, seed: int) -> None:
    """Re-initialise one module (or a top-level parameter) in place, seeded."""
    import torch  # heavy: imported on first use
    gen_seed = seed + sum(map(ord, name))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(gen_seed)
        target = dict(model.named_parameters(recurse=False)).get(name)
        if target is not None:
            with torch.no_grad():
                torch.nn.init.normal_(target, std=0.02)
            return
        module = dict(model.named_modules())[name]
        for m in module.modules():
            if hasattr(m, "reset_parameters") and callable(m.reset_parameters):
                m.reset_parameters()
            elif any(True for _ in m.parameters(recurse=False)):
                with torch.no_grad():
                    for p in m.parameters(recurse=False):
                        torch.nn.init.normal_(p, std=0.02)


def similarity(a: np.ndarray | None, b: np.ndarray | None, size: int = 56) -> tuple[float, float]:
    """(Spearman rank correlation, SSIM) of two maps, compared at size x size; NaN when
    either is missing or constant (a degenerate map has no ranking)."""
    import cv2  # heavy: imported on first use
    from scipy.stats import spearmanr  # heavy: imported on first use
    from skimage.metrics import structural_similarity  # heavy: imported on first use
    if a is None or b is None:
        return np.nan, np.nan
    a = cv2.resize(np.asarray(a, np.float32), (size, size), interpolation=cv2.INTER_AREA)
    b = cv2.resize(np.asarray(b, np.float32), (size, size), interpolation=cv2.INTER_AREA)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return np.nan, np.nan
    rho = float(spearmanr(a.ravel(), b.ravel()).statistic)
    return rho, float(structural_similarity(a, b, data_range=1.0))


@dataclass(frozen=True)
class Step:
    randomised: str                           # the module re-initialised at this step
    maps: dict[str, np.ndarray | None]        # method -> its map with every step so far random
    spearman: dict[str, float]
    ssim: dict[str, float]


@dataclass(frozen=True)
class Cascade:
    methods: tuple[str, ...]
    original: dict[str, np.ndarray | None]
    steps: tuple[Step, ...]

    def still_similar(self) -> list[str]:
        """Methods whose map, after the last step, still correlates above `STILL_SIMILAR`."""
        last = self.steps[-1] if self.steps else None
        return [m for m in self.methods if last and np.isfinite(last.spearman.get(m, np.nan))
                and last.spearman[m] > STILL_SIMILAR]

    def rows(self) -> list[dict]:
        """Long format for a table or a chart: step, layer, method, spearman, ssim."""
        return [{"step": i + 1, "randomised": s.randomised, "method": m,
                 "spearman": s.spearman[m], "ssim": s.ssim[m]}
                for i, s in enumerate(self.steps) for m in self.methods]


def _maps(lm: LoadedModel, tensor, names, target, layer, options, lock) -> dict:
    return {c.method: c.heatmap for c in cam.compute_cams(lm, tensor, names, target, layer,
                                                          options, lock)}


def model_randomisation(lm: LoadedModel, tensor, names: list[str], target_index: int,
                        layer_name: str, options: dict | None = None, seed: int = 0,
                        max_steps: int | None = None, lock: threading.RLock | None = None,
                        progress: Callback | None = None) -> Cascade:
    """The cascading randomisation test on a private copy of the model."""
    cam.check_target(lm, target_index)
    with lock or lm.lock:
        original = _maps(lm, tensor, names, target_index, layer_name, options, lock)
        model = copy.deepcopy(lm.model)
    private = replace(lm, model=model, lock=threading.RLock())
    order = steps(model)[:max_steps] if max_steps else steps(model)
    tick = Ticker(len(order), progress)
    out = []
    for i, name in enumerate(order):
        _randomise(model, name, seed)
        maps = _maps(private, tensor, names, target_index, layer_name, options, None)
        sims = {m: similarity(original[m], maps[m]) for m in names}
        out.append(Step(name, maps, {m: s[0] for m, s in sims.items()},
                        {m: s[1] for m, s in sims.items()}))
        tick(i + 1)
    return Cascade(tuple(names), original, tuple(out))


@dataclass(frozen=True)
class DataRandomisation:
    methods: tuple[str, ...]
    trained: dict[str, np.ndarray | None]
    shuffled: dict[str, np.ndarray | None]
    spearman: dict[str, float]
    ssim: dict[str, float]


def data_randomisation(lm: LoadedModel, shuffled: LoadedModel, tensor, names: list[str],
                       target_index: int, layer_name: str, options: dict | None = None,
                       lock: threading.RLock | None = None,
                       shuffled_lock: threading.RLock | None = None) -> DataRandomisation:
    """Each method's map on the trained model against the shuffled-label twin's."""
    cam.check_target(lm, target_index)
    cam.check_target(shuffled, target_index)
    mine = _maps(lm, tensor, names, target_index, layer_name, options, lock)
    theirs = _maps(shuffled, tensor, names, target_index, layer_name, options, shuffled_lock)
    sims = {m: similarity(mine[m], theirs[m]) for m in names}
    return DataRandomisation(tuple(names), mine, theirs, {m: s[0] for m, s in sims.items()},
                             {m: s[1] for m, s in sims.items()})


def shuffled_twin(spec, specs) -> str | None:
    """The name of a checkpoint trained on shuffled labels with the same architecture and
    classes as `spec`, if the model list has one."""
    for other in specs:
        manifest = other.manifest or {}
        if (manifest.get("shuffled_labels") and other.name != spec.name
                and other.arch == spec.arch and tuple(other.labels) == tuple(spec.labels)):
            return other.name
    return None
