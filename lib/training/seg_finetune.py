"""Fine-tune a promptable segmenter on your own masks (any COCO instance-mask dataset):

    python -m lib.train segmenter --coco DIR --annotations FILE --out checkpoints/NAME
        [--val-fraction 0.2 | --val-ids 1 2 3] [--init demo-segmenter] [--train decoder|last]
        [--steps 1500 --batch 8 --lr 3e-4 --zoom 1.5 --seed 0]

The model is the demo EdgeTAM-style segmenter, or SAM 2.1 / EdgeTAM from real weights where
they are here (`--init` names any segmentation model Lens lists, or a transformers folder).
`--train decoder` trains the neck, prompt encoder and mask decoder; `--train last` also the
image encoder's last four blocks.

Each step is a batch of windows around one object each (`mask_data.Sampler`: the window a
zooming segmenter sees, copy-paste, flip, scale and colour jitter), prompted the way SAM is
trained interactively: a jittered box or one positive click, then a correction click sampled
from the error region of the first prediction (a miss: positive; a spill: negative). SAM 2's
losses on both predictions: focal x 20 + dice on the masks, L1 on the predicted IoU.

A kill at any step loses at most `save_every` steps: the state (weights, optimiser, step) is
written atomically beside the output as `.NAME.partial/`, every step draws its samples from
(seed, step) alone, and the same command resumes from it to the same weights. At the end the
model is measured on the held-out images through the page's own code
(`lib.segmentation.photo_quality`), its predicted IoU calibrated on them (isotonic), and the
folder (safetensors, processor, `model.json` with the figures) appears whole, as one rename.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from lib.core import journal
from lib.core.errors import InputError
from lib.core.progress import Callback, Ticker
from lib.media import masks as mask_ops
from lib.models import checkpoints, registry
from lib.training.mask_data import MaskSet, Sampler, open_masks
from lib.training.sam_losses import decoder_loss, loss_size
from lib.training.sam_model import load_models, param_groups, resolve_init
from lib.training.sam_stages import embeddings_from_features


@dataclass
class Recipe:
    steps: int = 1500
    batch: int = 8
    lr: float = 5e-4
    backbone_lr: float = 2e-4
    train: str = "last"              # decoder | last
    zoom: float = 1.5                # the window's side over the object's longer side
    seed: int = 0
    mix: tuple[float, float, float] = (0.6, 0.25, 0.15)
    save_every: int = 50


TRAIN_CHOICES = ("decoder", "last")


#: the windows (times a box's side) tried on the validation images after training; the best
#: for boxes becomes the checkpoint's `prompt_zoom`
ZOOM_CHOICES = (1.2, 1.5)


def log_line(msg: str) -> None:
    """What the training commands log: one line, at once."""
    print(msg, flush=True)


# -- one step --------------------------------------------------------------------------------

def _pixels(windows: np.ndarray, mean, std):
    import torch  # heavy: imported on first use
    x = torch.as_tensor(windows).permute(0, 3, 1, 2).float() / 255.0
    return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


def _first_prompt(rng, mask: np.ndarray) -> list[tuple[float, float, int]]:
    from lib.training.sam_data import sample_prompts
    return sample_prompts(mask, "box" if rng.random() < 0.5 else "click", rng)


def _correction(rng, shown: np.ndarray, truth: np.ndarray, scale: float):
    """A click sampled uniformly from the larger error region of `shown` (SAM's rule)."""
    miss, spill = truth & ~shown, shown & ~truth
    region, label = (miss, 1) if miss.sum() >= spill.sum() else (spill, 0)
    if not region.any():
        region, label = truth, 1
    if not region.any():               # nothing to correct at the loss's resolution
        return (0.0, 0.0, -1)          # SAM's padding: not a point
    ys, xs = np.nonzero(region)
    k = int(rng.integers(len(xs)))
    return (float(xs[k] + 0.5) * scale, float(ys[k] + 0.5) * scale, label)


def _as_inputs(prompts: list[list]):
    import torch  # heavy: imported on first use
    n = max(len(p) for p in prompts)
    pts = [[(x, y) for x, y, _ in p] + [(0.0, 0.0)] * (n - len(p)) for p in prompts]
    labs = [[lab for _, _, lab in p] + [-1] * (n - len(p)) for p in prompts]
    return torch.tensor(pts)[:, None], torch.tensor(labs)[:, None]


def _decode(view, embed, prompts):
    points, labels = _as_inputs(prompts)
    kw = dict(image_embeddings=embed, input_points=points, input_labels=labels)
    return view(multimask_output=True, **kw), view(multimask_output=False, **kw)


def train_step(view, sampler: Sampler, recipe: Recipe, step: int, size: int, mean, std):
    """Loss and best-candidate IoU of one batch; every random draw from (seed, step)."""
    import torch  # heavy: imported on first use
    rng = np.random.default_rng([recipe.seed, step])
    torch.manual_seed(recipe.seed * 1_000_003 + step)
    windows, masks = zip(*(sampler(rng, recipe.zoom) for _ in range(recipe.batch)))
    feats = view.vision_encoder.backbone(_pixels(np.stack(windows), mean, std)).last_hidden_state
    embed = embeddings_from_features(view, feats)
    target = loss_size(torch.as_tensor(np.stack(masks))[:, None].float())
    prompts = [_first_prompt(rng, m) for m in masks]
    multi, single = _decode(view, embed, prompts)
    loss_m, iou, _ = decoder_loss(multi, target, True)
    loss_s, _, _ = decoder_loss(single, target, False)
    # the correction: from the candidate the page would show (highest predicted IoU)
    with torch.no_grad():
        pick = multi.iou_scores.argmax(-1)[:, 0]
        shown = multi.pred_masks[torch.arange(len(pick)), 0, pick]
        shown = torch.nn.functional.interpolate(shown[:, None], size=target.shape[-2:],
                                                mode="bilinear")[:, 0] > 0
    scale = size / target.shape[-1]
    for p, s, t in zip(prompts, shown.numpy(), target[:, 0].numpy() > 0.5):
        p.append(_correction(rng, s, t, scale))
    multi2, single2 = _decode(view, embed, prompts)
    loss_m2, iou2, _ = decoder_loss(multi2, target, True)
    loss_s2, _, _ = decoder_loss(single2, target, False)
    loss = loss_m + 0.5 * loss_s + loss_m2 + 0.5 * loss_s2
    return loss, iou, iou2


def _cosine(step: int, total: int, warmup: int = 50) -> float:
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))


# -- state that survives a kill --------------------------------------------------------------

def _save_state(path: Path, step: int, video, opt, recipe: Recipe, history: list) -> None:
    import torch  # heavy: imported on first use
    tmp = path.with_suffix(".tmp")
    torch.save({"step": step, "model": video.state_dict(), "optimizer": opt.state_dict(),
                "recipe": json.dumps(asdict(recipe)), "history": json.dumps(history)}, tmp)
    os.replace(tmp, path)


def _load_state(path: Path, video, opt, recipe: Recipe) -> tuple[int, list]:
    import torch  # heavy: imported on first use
    if not path.is_file():
        return 0, []
    state = torch.load(path, map_location="cpu", weights_only=True)
    saved = json.loads(state["recipe"])
    if saved != json.loads(json.dumps(asdict(recipe))):
        raise InputError(f"{path.parent.name} holds a run with another recipe "
                         f"({saved}).", f"Resume with the same options, or delete "
                         f"{path.parent.name} to start over.")
    video.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    return int(state["step"]), json.loads(state["history"])


# -- the command -----------------------------------------------------------------------------

def split_ids(masks: MaskSet, val_ids: list[int] | None, val_fraction: float,
              seed: int) -> tuple[set[int], set[int]]:
    """(training image ids, validation image ids): the given ids, or a seeded fraction."""
    ids = masks.image_ids
    if val_ids:
        val = set(val_ids) & set(ids)
        if not val:
            raise InputError("None of --val-ids is an image with usable masks.",
                             "Name image ids from the annotations file.")
    else:
        if not 0 < val_fraction < 1:
            raise InputError(f"--val-fraction {val_fraction} must be between 0 and 1.")
        order = np.random.default_rng(seed).permutation(ids)
        val = {int(i) for i in order[:max(1, round(len(ids) * val_fraction))]}
    train = set(ids) - val
    if not train:
        raise InputError("No image is left to train on after the validation split.",
                         "Lower --val-fraction or name fewer --val-ids.")
    return train, val


def finetune(images_dir: Path, annotations: Path, out: Path, init: str = "demo-segmenter",
             recipe: Recipe | None = None, val_ids: list[int] | None = None,
             val_fraction: float = 0.2, exclude=None, extra_manifest: dict | None = None,
             log=log_line, progress: Callback | None = None,
             min_val_area: float = 1024, epochs: int | None = None) -> Path:
    """Fine-tune `init` on the dataset into the checkpoint folder `out` (resuming a killed
    run of the same recipe); returns `out`. `exclude(image_id)` drops images from both splits
    (the demo recipe's held-out rule); `epochs` sets the steps to that many passes over the
    training objects."""
    import torch  # heavy: imported on first use
    recipe = recipe or Recipe()
    if recipe.train not in TRAIN_CHOICES:
        raise InputError(f"--train {recipe.train}: choose one of {', '.join(TRAIN_CHOICES)}.")
    if recipe.steps < 1 or recipe.batch < 1 or recipe.save_every < 1 or (
            epochs is not None and epochs < 1):
        raise InputError("--steps, --epochs, --batch and --save-every must be at least 1.")
    if not 1 <= recipe.zoom <= 8:
        raise InputError(f"--zoom {recipe.zoom} must be between 1 and 8.")
    out = Path(out).resolve()
    everything = open_masks(annotations, images_dir)
    usable = {i for i in everything.image_ids if exclude is None or not exclude(i)}
    if not usable:
        raise InputError("Every image with masks is excluded.")
    pool = MaskSet(everything.dataset, [o for o in everything.objects if o[0] in usable],
                   everything.skipped)
    train_ids, val = split_ids(pool, val_ids, val_fraction, recipe.seed)
    train = MaskSet(pool.dataset, [o for o in pool.objects if o[0] in train_ids], pool.skipped)
    if epochs is not None:
        recipe = replace(recipe, steps=epochs * math.ceil(len(train.objects) / recipe.batch))
    log(f"{len(train.objects)} objects in {len(train_ids)} training images, validation "
        f"{len(val)} images" + (f"; left out: {train.skipped}" if train.skipped else ""))

    folder = resolve_init(init)
    video, view = load_models(folder)
    from transformers import Sam2Processor  # heavy: imported on first use
    proc = Sam2Processor.from_pretrained(folder, local_files_only=True)
    ip = proc.image_processor
    size = int(ip.size["height"])
    mean, std = list(ip.image_mean), list(ip.image_std)

    partial = out.with_name(f".{out.name}.partial")
    partial.mkdir(parents=True, exist_ok=True)
    state_path = partial / "state.pt"
    opt = torch.optim.AdamW(param_groups(view, recipe.train, recipe.lr, recipe.backbone_lr),
                            weight_decay=1e-4)
    base = [g["lr"] for g in opt.param_groups]
    start, history = _load_state(state_path, video, opt, recipe)
    if start:
        log(f"resuming at step {start} of {recipe.steps} from {partial.name}")
    sampler = Sampler(train, size=size, mix=recipe.mix)
    tick = Ticker(recipe.steps, progress)
    t0 = time.time()
    for step in range(start, recipe.steps):
        view.train()
        view.vision_encoder.backbone.eval()      # BatchNorm statistics stay ImageNet's
        for g, b in zip(opt.param_groups, base):
            g["lr"] = b * _cosine(step, recipe.steps)
        loss, iou, iou2 = train_step(view, sampler, recipe, step, size, mean, std)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], 1.0)
        opt.step()
        history.append([round(loss.item(), 5), round(iou, 4), round(iou2, 4)])
        if (step + 1) % recipe.save_every == 0 or step + 1 == recipe.steps:
            _save_state(state_path, step + 1, video, opt, recipe, history)
        if (step + 1) % 50 == 0:
            lo, a, b = np.mean(history[-50:], axis=0)
            log(f"step {step + 1}/{recipe.steps}: loss {lo:.3f}, IoU first prompt {a:.3f}, "
                f"after the correction {b:.3f}, {time.time() - t0:.0f} s")
        tick(step + 1)
    view.eval()
    return _write_folder(out, partial, video, proc, recipe, init, pool, val, history,
                         extra_manifest or {}, min_val_area, log)


def _write_folder(out: Path, partial: Path, video, proc, recipe: Recipe, init: str,
                  pool: MaskSet, val: set[int], history: list, extra: dict,
                  min_val_area: float, log) -> Path:
    """Save, measure (`measure_folder`) and move the whole folder into place."""
    tmp = partial / "model"
    shutil.rmtree(tmp, ignore_errors=True)
    video.half().save_pretrained(tmp)
    cfg = json.loads((tmp / "config.json").read_text())
    cfg["dtype"] = "float32"          # stored in half precision, computed in full
    (tmp / "config.json").write_text(json.dumps(cfg, indent=2))
    proc.save_pretrained(tmp)
    try:
        start = json.loads((Path(resolve_init(init)) / checkpoints.MANIFEST).read_text())
    except (OSError, ValueError, InputError):
        start = {}
    untrained = start.get("memory_path") == "untrained" or "not trained" in str(
        start.get("init", ""))
    manifest = {"task": "segmentation", "architecture": cfg.get("model_type", "edgetam"),
                "memory_path": "untrained" if untrained else f"as in {init} (not fine-tuned)",
                "weights": "model.safetensors", "img_size": int(proc.image_processor.size[
                    "height"]), "prompt_zoom": recipe.zoom, "label_set": "custom",
                "init": f"fine-tuned from {init}", "recipe": asdict(recipe),
                "train_images": len(pool.image_ids) - len(val), "val_image_ids": sorted(val),
                "train_objects": sum(1 for i, _ in pool.objects if i not in val),
                "skipped": pool.skipped,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **extra}
    manifest["train_loss_last_50"] = float(np.mean([h[0] for h in history[-50:]]))
    (tmp / checkpoints.MANIFEST).write_text(json.dumps(manifest, indent=2))
    measure_folder(tmp, pool, val, min_val_area, log)
    if out.exists():
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, out)
    shutil.rmtree(partial, ignore_errors=True)
    return out


def measure_folder(folder: Path, pool: MaskSet, val: set[int], min_val_area: float = 1024,
                   log=log_line) -> dict:
    """Measure a saved checkpoint on its validation images through the page's code,
    calibrate its predicted IoU there (isotonic), record what its training images look like
    to it, and write all of it into its manifest; returns the manifest."""
    from lib.segmentation import confidence, photo_quality, segment
    manifest = json.loads((folder / checkpoints.MANIFEST).read_text())
    manifest.pop("iou_calibration", None)
    manifest.pop("familiar", None)
    (folder / checkpoints.MANIFEST).write_text(json.dumps(manifest, indent=2))
    seg = segment.build_segmenter(registry.checkpoint_spec(checkpoints.read_checkpoint(folder)),
                                  device="cpu")
    objs = [(i, a) for i, a in pool.objects if i in val and a["area"] >= min_val_area] or \
        [(i, a) for i, a in pool.objects if i in val]
    if seg.zoom:                 # the window that serves a box best, on the validation images
        by_zoom = {}
        for zoom in sorted({seg.zoom, *ZOOM_CHOICES}):
            seg.zoom = zoom
            by_zoom[zoom] = float(np.mean([photo_quality.iou(r.masks[r.best], m) for i, a in objs
                                           for m in [pool.mask(i, a)]
                                           for r in [seg.predict(pool.image(i),
                                                                 box=mask_ops.bbox(m))]]))
        seg.zoom = manifest["prompt_zoom"] = max(by_zoom, key=by_zoom.get)
        manifest["val_box_miou_by_zoom"] = by_zoom
        log(f"window per box on the validation images: {by_zoom}")
    log(f"measuring on {len(objs)} validation objects…")
    figs = photo_quality.measure(seg, ((pool.image(i), pool.mask(i, a)) for i, a in objs),
                                 len(objs))
    manifest["val"] = figs.as_dict()
    manifest["iou_calibration"] = calibration(figs.predicted, figs.measured)
    cal = confidence.IouCalibration.from_manifest(manifest["iou_calibration"])
    if cal is not None:
        manifest["val"]["iou_ece_calibrated"] = photo_quality.expected_calibration_error(
            cal(np.array(figs.predicted)), figs.measured)
    stats = familiarity(seg, [pool.image(i) for i in pool.image_ids if i not in val])
    manifest["familiar"] = stats.as_manifest()
    manifest["val"]["unfamiliar_share"] = float(np.mean([
        stats.distance(seg.pooled(pool.image(i))) > stats.limit for i in sorted(val)]))
    journal.write_atomic(folder / checkpoints.MANIFEST, json.dumps(manifest, indent=2) + "\n")
    log(json.dumps(manifest["val"]))
    return manifest


def familiarity(seg, images: list[np.ndarray]):
    """What the training images look like to the trained model (`confidence.FeatureStats`): an
    image farther than the farthest of them is called unlike its training data."""
    from lib.segmentation import confidence
    pooled = np.stack([seg.pooled(im) for im in images])
    mean, std = pooled.mean(0), pooled.std(0) + 1e-6
    stats = confidence.FeatureStats(mean, std, 1.0)
    return confidence.FeatureStats(mean, std, max(stats.distance(p) for p in pooled))


def calibration(predicted: list[float], measured: list[float], points: int = 21) -> dict:
    """An isotonic fit of measured IoU on predicted IoU, as increasing points (what
    `confidence.IouCalibration` reads)."""
    from sklearn.isotonic import IsotonicRegression  # heavy: imported on first use
    p = np.clip(np.asarray(predicted, float), 0, 1)
    fit = IsotonicRegression(y_min=0, y_max=1, increasing=True, out_of_bounds="clip")
    fit.fit(p, np.asarray(measured, float))
    xs = np.linspace(0, 1, points)
    return {"predicted": [round(float(x), 4) for x in xs],
            "measured": [round(float(y), 4) for y in np.maximum.accumulate(fit.predict(xs))]}


def run_command(args) -> Path:
    from lib.core.progress import TerminalBar
    coco, ann = Path(args.coco), Path(args.annotations)
    if not coco.is_dir():
        raise InputError(f"--coco {args.coco} is not a folder.",
                         "Point --coco at the folder that holds the images.")
    recipe = Recipe(steps=args.steps, batch=args.batch, lr=args.lr, train=args.train,
                    zoom=args.zoom, seed=args.seed, save_every=args.save_every)
    return finetune(coco, ann, Path(args.out), init=args.init, recipe=recipe, epochs=args.epochs,
                    val_ids=args.val_ids, val_fraction=args.val_fraction,
                    extra_manifest={"label_set": args.label_set,
                                    "command": "python -m lib.train " + " ".join(args.argv)},
                    log=(lambda m: None) if args.quiet else log_line,
                    progress=TerminalBar("steps", quiet=args.quiet))
