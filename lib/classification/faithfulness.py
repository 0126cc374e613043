"""How faithful an explanation map is to the model: five perturbation measures, batched.

For each map the image is perturbed as the measures prescribe and the target class's softmax
probability is read again:

- ROAD (Rong et al., 2022), with pytorch_grad_cam's own perturbations (`RemoveMostRelevantFirst`
  / `RemoveLeastRelevantFirst` with its `NoisyLinearImputer`): the mean probability change when
  the most (MoRF) or least (LeRF) relevant pixels above each percentile are imputed away;
  combined as (LeRF - MoRF) / 2, as the library's `ROADCombined` does.
- Deletion and insertion AUCs (Petsiuk et al., 2018, RISE): the probability as the most
  relevant pixels are removed (replaced by the mean colour, 0 after normalisation) or revealed
  on a blurred copy, in `steps` equal steps; the area under that curve.
- Keep-top change: the probability change when only the top 25% of the map is kept
  (`multiply_tensor_with_cam`, the library's `CamMultImageConfidenceChange`).

Every perturbed image of a map goes through the model in one batch, and the unperturbed,
blurred and all-removed images once for all maps: the same numbers the library's metric
classes give one call at a time, for fewer forward passes. The imputer's noise is seeded, so
scores repeat.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from lib.classification.cam import CamResult, fast_activations, reshape_transform
from lib.classification.classify import to_tensor
from lib.models.registry import LoadedModel

#: measure -> (label, True when higher means more faithful)
MEASURES = {
    "road": ("ROAD (LeRF−MoRF)/2", True),
    "road_morf": ("ROAD MoRF Δp", False),
    "road_lerf": ("ROAD LeRF Δp", True),
    "deletion_auc": ("Deletion AUC", False),
    "insertion_auc": ("Insertion AUC", True),
    "keep_top_change": ("Keep top 25% Δp", True),
}
#: The five independent measures a ranking averages over (combined ROAD is derived from two).
RANKED = ("road_morf", "road_lerf", "deletion_auc", "insertion_auc", "keep_top_change")
_RNG_LOCK = threading.Lock()


@dataclass(frozen=True)
class Scores:
    road_morf: float         # mean probability change, most relevant imputed first (lower better)
    road_lerf: float         # least relevant imputed first (higher better)
    deletion_auc: float      # lower better
    insertion_auc: float     # higher better
    keep_top_change: float   # higher better

    @property
    def road(self) -> float:
        return (self.road_lerf - self.road_morf) / 2

    def value(self, measure: str) -> float:
        return float(getattr(self, measure))


@dataclass(frozen=True)
class Measuring:
    """How the faithfulness measures perturb an image: the percentiles of the map removed or
    kept, the steps of the deletion curve, the share kept, the seed and the batch size."""
    percentiles: tuple[int, ...] = (20, 80)
    steps: int = 10
    keep_top: float = 25.0   # percent of the map kept
    seed: int = 0
    batch: int = 4          # images per forward pass: the fastest per image on CPU here


DEFAULT = Measuring()


def _probs(lm: LoadedModel, batch, target: int, chunk: int) -> np.ndarray:
    import torch  # heavy: imported on first use
    out = []
    with torch.inference_mode():
        for start in range(0, len(batch), chunk):
            logits = lm.model(batch[start:start + chunk].to(lm.device))
            out.append(torch.softmax(logits.float(), dim=-1)[:, target].cpu().numpy())
    return np.concatenate(out)


def _road_images(x, heatmap: np.ndarray, percentiles, seed: int) -> list:
    """MoRF then LeRF images at each percentile, through the library's own perturbations."""
    import torch  # heavy: imported on first use
    from pytorch_grad_cam.metrics.perturbation_confidence import (  # heavy: imported on first use
        RemoveLeastRelevantFirst,
        RemoveMostRelevantFirst,
    )
    from pytorch_grad_cam.metrics.road import NoisyLinearImputer  # heavy: imported on first use
    cam = torch.from_numpy(np.ascontiguousarray(heatmap, dtype=np.float32))
    out = []
    for kind in (RemoveMostRelevantFirst, RemoveLeastRelevantFirst):
        for p in percentiles:
            # the imputer's noise comes from torch's global RNG: seeded per image
            with _RNG_LOCK, torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                out.append(kind(p, NoisyLinearImputer())(x.cpu(), cam))
    return out


def _curve_images(x, blurred, heatmap: np.ndarray, steps: int) -> tuple[list, list]:
    """Deletion and insertion images at fractions 1/steps .. (steps-1)/steps."""
    order = np.argsort(-heatmap.ravel(), kind="stable")
    deletion, insertion = [], []
    flat_x, flat_b = x.reshape(x.shape[0], -1), blurred.reshape(x.shape[0], -1)
    for k in range(1, steps):
        top = order[: round(k / steps * order.size)]
        d = flat_x.clone()
        d[:, top] = 0
        i = flat_b.clone()
        i[:, top] = flat_x[:, top]
        deletion.append(d.reshape_as(x))
        insertion.append(i.reshape_as(x))
    return deletion, insertion


def score_maps(lm: LoadedModel, tensor, heatmaps: list[np.ndarray], target: int,
               settings: Measuring = DEFAULT, lock: threading.RLock | None = None,
               on_done=None) -> list[Scores]:
    """The five measures for each HxW map (at the input size) of one image and class.
    `on_done(i)` after map i."""
    import torch  # heavy: imported on first use
    from pytorch_grad_cam.metrics.cam_mult_image import (  # heavy: imported on first use
        multiply_tensor_with_cam,
    )
    from torchvision.transforms.functional import gaussian_blur  # heavy: imported on first use
    x = tensor[0].detach().float().cpu()
    blurred = gaussian_blur(x[None], kernel_size=[11, 11], sigma=[5.0, 5.0])[0]
    steps, pct = max(2, int(settings.steps)), tuple(settings.percentiles)

    def perturbed(heat: np.ndarray):
        """Every perturbed image of one map, in one batch (the imputation is the costly part:
        it runs on a worker thread while the model scores the previous map)."""
        heat = np.nan_to_num(np.asarray(heat, dtype=np.float32))
        road = _road_images(x, heat, pct, settings.seed)
        deletion, insertion = _curve_images(x, blurred, heat, steps)
        keep = (heat >= np.percentile(heat, 100 - settings.keep_top)).astype(np.float32)
        return torch.stack([*road, *deletion, *insertion,
                            multiply_tensor_with_cam(x, torch.from_numpy(keep))])

    out = []
    with lock or lm.lock, ThreadPoolExecutor(1, thread_name_prefix="lens-impute") as pool:
        pending = pool.submit(perturbed, heatmaps[0]) if heatmaps else None
        p0, p_removed, p_blur = _probs(lm, torch.stack([x, torch.zeros_like(x), blurred]),
                                       target, settings.batch)
        for i in range(len(heatmaps)):
            batch = pending.result()
            pending = pool.submit(perturbed, heatmaps[i + 1]) if i + 1 < len(heatmaps) else None
            p = _probs(lm, batch, target, settings.batch)
            n = len(pct)
            morf, lerf = p[:n] - p0, p[n:2 * n] - p0
            dele = np.r_[p0, p[2 * n:2 * n + steps - 1], p_removed]
            ins = np.r_[p_blur, p[2 * n + steps - 1:2 * n + 2 * (steps - 1)], p0]
            out.append(Scores(road_morf=float(morf.mean()), road_lerf=float(lerf.mean()),
                              deletion_auc=float(np.trapezoid(dele, dx=1 / steps)),
                              insertion_auc=float(np.trapezoid(ins, dx=1 / steps)),
                              keep_top_change=float(p[-1] - p0)))
            if on_done:
                on_done(i)
    return out


def random_cam(lm: LoadedModel, tensor, layer_name: str, seed: int = 0) -> np.ndarray:
    """RandomCAM's baseline (uniform random channel weights on the layer's activations),
    deterministic by seed: the row every method must beat."""
    from pytorch_grad_cam.utils.image import scale_cam_image  # heavy: imported on first use
    with lm.lock:
        _, act, _ = fast_activations(lm, tensor, layer_name, None, need_grads=False)
    reshape = reshape_transform(lm.model)
    act = (reshape(act) if reshape else act).cpu().numpy()
    weights = np.random.default_rng(seed).uniform(-1, 1, size=(act.shape[0], act.shape[1]))
    cam = np.maximum((weights[:, :, None, None] * act).sum(axis=1), 0)
    h, w = tensor.shape[-2:]
    return scale_cam_image(scale_cam_image(cam, (w, h)))[0].astype(np.float32)


@dataclass(frozen=True)
class Faithfulness:
    """One map's scores beside those of the random baseline."""

    scores: Scores
    random: Scores


def faithfulness(lm: LoadedModel, tensor, heatmap: np.ndarray, target_index: int,
                 layer_name: str, lock: threading.RLock | None = None,
                 settings: Measuring = DEFAULT) -> Faithfulness:
    """A map's five measures and the random baseline's, for the single-method view."""
    with lock or lm.lock:
        rand = random_cam(lm, tensor, layer_name, seed=settings.seed)
        mine, base = score_maps(lm, tensor, [heatmap, rand], target_index, settings, lock)
    return Faithfulness(mine, base)


def explain_faithfulness(lm: LoadedModel, image, explanation: CamResult,
                         lock: threading.RLock | None = None) -> Faithfulness:
    """`faithfulness` of a CAM (`cam.explain`) of a PIL image."""
    return faithfulness(lm, to_tensor(lm, image), explanation.heatmap,
                        explanation.target_index, explanation.layer, lock)
