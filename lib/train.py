"""Training command: fine-tune a classifier or a detector into a `checkpoints/<name>/` folder.

    python -m lib.train classify --data FOLDER --model tf_efficientnet_lite0 --name my-model
        [--epochs 10 --batch-size 32 --lr 1e-3 --accum 1 --clip 1.0 --warmup 1 --patience 3
         --img-size 128 --seed 0 --init package|timm|scratch --group-regex REGEX]
    python -m lib.train detect --data COCO_DIR --model fasterrcnn_timm|conditional_detr --name N
    python -m lib.train demo-classifier | demo-detector fasterrcnn|conditional-detr
    python -m lib.train demo-segmenter        (EdgeTAM-style segmenter + tracker; lib.train_sam)

Detection: COCO_DIR holds train/ and val/ (annotations.json + images/, as `lib.synth` writes).

FOLDER holds class subfolders, or `train/` and `val/` folders of class subfolders (split by
folder). Otherwise the split is by group key: `--group-regex` takes the group from each file
name (first capture group), so near-duplicate frames of one clip never fall on both sides.
Logs to W&B (offline unless WANDB_API_KEY is set) inside the checkpoint folder. The folder
(safetensors, model.json, labels, the command, seed, time, final metrics) loads on the
classification page with no change.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import re
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lib import checkpoints, cli, images
from lib.errors import InputError
from lib.synth import DEMO as DEMO_SYNTH  # the demo pack's data recipe


class TrainError(InputError):
    """Bad training input; the message says what to fix."""


@dataclass
class Split:
    classes: list[str]
    train: list[tuple[Path, int]]
    val: list[tuple[Path, int]]


def _class_items(folder: Path) -> dict[str, list[Path]]:
    out = {}
    for c in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        out[c.name] = sorted(p for p in c.rglob("*") if p.is_file()
                             and p.suffix.lower().lstrip(".") in images.ACCEPTED_EXTENSIONS)
    return out


def split_dataset(folder: str | Path, val_fraction: float = 0.2, seed: int = 0,
                  group_regex: str | None = None) -> Split:
    """Train/val split by folder (train/ and val/) or by group key."""
    folder = Path(folder)
    if not folder.is_dir():
        raise TrainError(f"Dataset folder '{folder}' does not exist.")
    if (folder / "train").is_dir() and (folder / "val").is_dir():
        train, val = _class_items(folder / "train"), _class_items(folder / "val")
        classes = sorted(set(train) | set(val))
        if not classes:
            raise TrainError(f"'{folder}/train' has no class subfolders.")
        idx = {c: i for i, c in enumerate(classes)}
        return Split(classes, [(p, idx[c]) for c in train for p in train[c]],
                     [(p, idx[c]) for c in val for p in val[c]])
    items = _class_items(folder)
    if not items:
        raise TrainError(f"'{folder}' has no class subfolders (or train/ and val/ folders).")
    for c, paths in items.items():
        if len(paths) < 2:
            raise TrainError(f"Class '{c}' has {len(paths)} image(s); each class needs at least "
                             "2 (one for training, one for validation).")
    classes = sorted(items)
    pattern = re.compile(group_regex) if group_regex else None
    train, val = [], []
    for i, c in enumerate(classes):
        groups: dict[str, list[Path]] = {}
        for p in items[c]:
            m = pattern.search(p.name) if pattern else None
            groups.setdefault(m.group(1) if m and m.groups() else p.stem, []).append(p)
        keys = sorted(groups, key=lambda g: hashlib.sha256(f"{seed}:{g}".encode()).hexdigest())
        n_val = max(1, round(len(keys) * val_fraction)) if len(keys) > 1 else 0
        if n_val == 0:
            raise TrainError(f"Class '{c}' has a single group; the split needs at least two.")
        val += [(p, i) for g in keys[:n_val] for p in groups[g]]
        train += [(p, i) for g in keys[n_val:] for p in groups[g]]
    return Split(classes, train, val)


def load_images(items: list[tuple[Path, int]], log=print) -> tuple[list, list[int], int]:
    """Decode through the one intake; unreadable files are skipped and counted."""
    good, labels, skipped = [], [], 0
    for path, label in items:
        try:
            good.append(images.load_image(path).image)
            labels.append(label)
        except images.ImageError as exc:
            skipped += 1
            log(f"skipped: {exc}")
    return good, labels, skipped


def seed_everything(seed: int) -> None:
    import torch
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(False)


def init_weights(model, arch: str, init: str) -> str:
    """Load backbone weights and start the new head small; returns what the manifest records."""
    if init == "scratch":
        return "random initialisation (trained from scratch)"
    head = model.get_classifier() if hasattr(model, "get_classifier") else None
    if hasattr(head, "weight"):
        import torch
        torch.nn.init.normal_(head.weight, std=0.01)  # timm's init is too wide for few classes
        torch.nn.init.zeros_(head.bias)
    if init == "package":
        from lib import registry
        spec = next((s for s in registry.builtin_specs()
                     if s.source == "package" and s.arch == arch), None)
        if spec is None:
            raise TrainError(f"No packaged weights for '{arch}'; use --init timm or scratch.")
        import timm
        full = timm.create_model(arch, pretrained=False, num_classes=1000)
        state = registry._package_state_dict(spec, full)
        own = model.state_dict()
        loaded = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
        model.load_state_dict(loaded, strict=False)
        return f"packaged ImageNet weights ({spec.weights}), classifier re-initialised"
    if init == "timm":
        import timm
        pretrained = timm.create_model(arch, pretrained=True)
        own = model.state_dict()
        model.load_state_dict({k: v for k, v in pretrained.state_dict().items()
                               if k in own and own[k].shape == v.shape}, strict=False)
        return f"timm pretrained weights for {arch}"
    raise TrainError(f"Unknown --init '{init}'.")


def _cosine_with_warmup(optimizer, warmup_steps: int, total_steps: int):
    import torch

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / max(1, warmup_steps)
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _evaluate(model, tensors, labels, batch_size, device):
    import torch
    model.eval()
    preds, losses = [], []
    with torch.inference_mode():
        for s in range(0, len(tensors), batch_size):
            x = torch.stack(tensors[s:s + batch_size]).to(device)
            y = torch.tensor(labels[s:s + batch_size], device=device)
            logits = model(x)
            losses.append(torch.nn.functional.cross_entropy(logits, y, reduction="sum").item())
            preds += logits.argmax(1).tolist()
    acc = float(np.mean(np.asarray(preds) == np.asarray(labels))) if labels else 0.0
    return acc, sum(losses) / max(1, len(labels)), preds


def _start_run(out: Path, args, config: dict, job_type: str, tags: list[str]):
    """A W&B run inside the checkpoint folder (offline unless WANDB_API_KEY is set)."""
    import wandb
    return wandb.init(mode="online" if os.environ.get("WANDB_API_KEY") else "offline",
                      dir=str(out), project="lens-training", name=args.name, config=config,
                      job_type=job_type, tags=tags,
                      settings=wandb.Settings(silent=True, console="off"))


def _fit(model, args, n_train: int, batch_loss, validate, run, log, device: str, gen):
    """The training loop both tasks share; returns (best state dict, best epoch).

    `batch_loss(indices)` returns the loss of those training items (it runs under autocast on
    CUDA); `validate()` returns (score to maximise, metrics to log, a text for the log).
    AdamW, cosine schedule with warm-up, gradient accumulation and clipping, early stopping.
    """
    import torch
    from tqdm import tqdm

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=args.weight_decay)
    steps_per_epoch = math.ceil(n_train / (args.batch_size * args.accum))
    scheduler = _cosine_with_warmup(optimizer, steps_per_epoch * args.warmup,
                                    steps_per_epoch * args.epochs)
    use_amp = device == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    best, best_state, bad, step, best_epoch = -1.0, None, 0, 0, 0
    try:
        for epoch in range(args.epochs):
            model.train()
            order = torch.randperm(n_train, generator=gen).tolist()
            batches = list(range(0, n_train, args.batch_size))
            losses = []
            optimizer.zero_grad()
            for b, s in enumerate(tqdm(batches, desc=f"epoch {epoch + 1}/{args.epochs}",
                                       file=sys.stderr, disable=args.quiet)):
                with torch.autocast(device_type="cuda", enabled=use_amp):
                    loss = batch_loss(order[s:s + args.batch_size])
                scaler.scale(loss / args.accum).backward()
                losses.append(loss.item())
                if (b + 1) % args.accum == 0 or b == len(batches) - 1:
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(params, args.clip)
                    scaler.step(optimizer)
                    scaler.update()
                    optimizer.zero_grad()
                    scheduler.step()
                    step += 1
                    run.log({"train/loss": float(np.mean(losses[-args.accum:])),
                             "train/lr": scheduler.get_last_lr()[0], "epoch": epoch}, step=step)
            score, metrics, text = validate()
            run.log({**metrics, "train/epoch_loss": float(np.mean(losses)), "epoch": epoch + 1},
                    step=step)
            log(f"epoch {epoch + 1}: train loss {np.mean(losses):.4f}, {text}")
            if score > best:
                best, bad, best_epoch = score, 0, epoch + 1
                best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            else:
                bad += 1
                if bad >= args.patience:
                    log(f"early stop: no improvement for {args.patience} epochs")
                    break
    except (torch.cuda.OutOfMemoryError, RuntimeError) as exc:
        if "out of memory" in str(exc).lower():
            run.finish(exit_code=1)
            raise TrainError(f"Out of memory at batch size {args.batch_size}: try "
                             f"--batch-size {max(1, args.batch_size // 2)} --accum "
                             f"{args.accum * 2} (same effective batch).") from exc
        raise
    return best_state, best_epoch


def _save_checkpoint(out: Path, state: dict, classes: list[str], manifest: dict, args) -> dict:
    """fp16 safetensors, labels and the manifest with the command, seed and time."""
    from safetensors.torch import save_file
    save_file({k: (v.half() if v.is_floating_point() else v).contiguous()
               for k, v in state.items()}, out / "model.safetensors")
    (out / "labels.txt").write_text("\n".join(classes) + "\n")
    manifest = {**manifest, "num_classes": len(classes), "labels": "labels.txt",
                "weights": "model.safetensors",
                "command": "python -m lib.train " + " ".join(shlex.quote(a) for a in args.argv),
                "seed": args.seed, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    (out / checkpoints.MANIFEST).write_text(json.dumps(manifest, indent=2))
    return manifest


def _finish_run(run, out: Path, manifest: dict, summary: dict) -> None:
    (out / checkpoints.MANIFEST).write_text(json.dumps(manifest, indent=2))
    run.summary.update(summary)
    run.finish()
    from lib.runs import tidy_wandb_dir
    tidy_wandb_dir(out / "wandb")


def train_classifier(args) -> Path:
    """Fine-tune, early-stop on validation accuracy, write the checkpoint folder."""
    import timm
    import torch
    from timm.data import create_transform, resolve_data_config

    from lib import registry

    seed_everything(args.seed)
    split = split_dataset(args.data, args.val_fraction, args.seed, args.group_regex)
    out = Path(args.out) / args.name
    out.mkdir(parents=True, exist_ok=True)
    log_lines: list[str] = []

    def log(msg: str) -> None:
        log_lines.append(msg)
        print(msg, file=sys.stderr)

    train_imgs, train_y, skipped_train = load_images(split.train, log)
    val_imgs, val_y, skipped_val = load_images(split.val, log)
    if not train_imgs or not val_imgs:
        raise TrainError("No readable images left for training or validation.")
    log(f"{len(train_imgs)} train / {len(val_imgs)} val images, {len(split.classes)} classes; "
        f"skipped {skipped_train + skipped_val} unreadable")

    device = args.device or registry.best_device()
    model = timm.create_model(args.model, pretrained=False, num_classes=len(split.classes))
    init = init_weights(model, args.model, args.init)
    cfg = resolve_data_config({}, model=model)
    cfg.update(input_size=(3, args.img_size, args.img_size), crop_pct=1.0)
    pre = registry.Preprocess.from_config(cfg)
    eval_tf = create_transform(**pre.as_timm_config(), is_training=False)
    train_tensors = [eval_tf(im) for im in train_imgs]
    val_tensors = [eval_tf(im) for im in val_imgs]
    model.to(device)

    config = {k: v for k, v in vars(args).items() if k not in ("func", "argv")}
    config.update(init=init, classes=split.classes, train_images=len(train_imgs),
                  val_images=len(val_imgs), preprocessing=pre.as_timm_config())
    run = _start_run(out, args, config, "train-classifier", ["train", "classification"])
    gen = torch.Generator().manual_seed(args.seed)

    def batch_loss(idx):
        x = torch.stack([train_tensors[i] for i in idx])
        flip = torch.rand(len(idx), generator=gen) < 0.5
        x[flip] = x[flip].flip(-1)
        y = torch.tensor([train_y[i] for i in idx], device=device)
        return torch.nn.functional.cross_entropy(model(x.to(device)), y, label_smoothing=0.1)

    def validate():
        acc, val_loss, _ = _evaluate(model, val_tensors, val_y, args.batch_size, device)
        return acc, {"val/acc": acc, "val/loss": val_loss}, \
            f"val loss {val_loss:.4f}, val acc {acc:.4f}"

    best_state, best_epoch = _fit(model, args, len(train_tensors), batch_loss, validate, run,
                                  log, device, gen)
    manifest = _save_checkpoint(out, best_state, split.classes, {
        "task": "classification", "architecture": args.model,
        "preprocessing": {**pre.as_timm_config(), "input_size": list(pre.input_size)},
        "label_set": args.label_set, "description": args.description, "init": init,
        "best_epoch": best_epoch, "data": str(args.data)}, args)

    # Final metrics, measured by the project's own code on the saved checkpoint.
    from lib import classify
    lm = registry.build(registry.checkpoint_spec(checkpoints.read_checkpoint(out)), device=device)
    items = [(p, split.classes[y]) for p, y in split.val]
    result = classify.evaluate(lm, items)
    manifest["metrics"] = {"val_accuracy": result.accuracy, "val_images": len(result.items),
                           "skipped_images": skipped_train + skipped_val}
    import wandb
    run.log({"confusion_matrix": wandb.plot.confusion_matrix(
        y_true=[i.true_index for i in result.items], preds=[i.pred_index for i in result.items],
        class_names=split.classes)})
    _finish_run(run, out, manifest, {"final/val_accuracy": result.accuracy,
                                     "best_epoch": best_epoch})
    (out / "train.log").write_text("\n".join(log_lines) + "\n")
    log(f"wrote {out} (val accuracy {result.accuracy:.4f})")
    return out


def _coco_split(root: Path, split: str):
    from lib import datasets
    folder = root / split
    ann = folder / "annotations.json"
    if not ann.is_file():
        raise TrainError(f"'{folder}' has no annotations.json (expected {split}/annotations.json "
                         f"and {split}/images/, as `python -m lib.synth` writes).")
    try:
        ds = datasets.load_coco(ann, folder / "images")
    except datasets.DatasetError as exc:
        raise TrainError(str(exc)) from exc
    if not ds.data["annotations"]:
        raise TrainError(f"'{ann}' has no annotations: nothing to learn from.")
    return ds


# -- detector architectures Lens trains (their checkpoints load through lib.detectors) ------

def build_fasterrcnn_timm(backbone: str, num_classes: int, fpn_channels: int = 128,
                          min_size: int = 128, max_size: int = 128):
    """torchvision Faster R-CNN on a timm `features_only` backbone with a small FPN.

    `num_classes` excludes the background (torchvision's label 0).
    """
    from collections import OrderedDict

    import timm
    import torch
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
    from torchvision.ops import FeaturePyramidNetwork, MultiScaleRoIAlign
    from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

    class TimmFPN(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.body = timm.create_model(backbone, pretrained=False, features_only=True,
                                          out_indices=(2, 3, 4))
            self.fpn = FeaturePyramidNetwork(self.body.feature_info.channels(), fpn_channels,
                                             extra_blocks=LastLevelMaxPool())
            self.out_channels = fpn_channels

        def forward(self, x):
            return self.fpn(OrderedDict((str(i), f) for i, f in enumerate(self.body(x))))

    anchors = AnchorGenerator(sizes=((16,), (32,), (64,), (128,)),
                              aspect_ratios=((0.5, 1.0, 2.0),) * 4)
    return FasterRCNN(TimmFPN(), num_classes=None, min_size=min_size, max_size=max_size,
                      rpn_anchor_generator=anchors,
                      box_roi_pool=MultiScaleRoIAlign(["0", "1", "2"], 7, 2),
                      box_head=TwoMLPHead(fpn_channels * 49, 256),
                      box_predictor=FastRCNNPredictor(256, num_classes + 1))


def build_conditional_detr(backbone: str, labels: list[str], d_model: int = 128,
                           layers: int = 2, num_queries: int = 20, out_indices=(1, 2, 3)):
    """A small Conditional DETR (transformers) on a timm backbone; stride 16 by default, so
    128 px images give an 8 x 8 token grid. Labels are contiguous from 0 (no background)."""
    from transformers import ConditionalDetrConfig, ConditionalDetrForObjectDetection
    config = ConditionalDetrConfig(
        backbone_config={"model_type": "timm_backbone", "backbone": backbone, "num_channels": 3,
                         "out_indices": list(out_indices), "use_pretrained_backbone": False},
        d_model=d_model, encoder_layers=layers, decoder_layers=layers,
        encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=2 * d_model,
        decoder_ffn_dim=2 * d_model, num_queries=num_queries,
        id2label=dict(enumerate(labels)), label2id={n: i for i, n in enumerate(labels)})
    model = ConditionalDetrForObjectDetection(config)
    # transformers freezes the backbone's BatchNorm with its own layer, which drops the
    # activation that timm's BatchNormAct2d carries (EfficientNet's ReLU6): features explode.
    # timm's own freezing keeps it; the state-dict keys are the same.
    import timm
    from timm.layers import freeze_batch_norm_2d
    body = timm.create_model(backbone, pretrained=False, features_only=True,
                             out_indices=tuple(out_indices))
    model.model.backbone.model = freeze_batch_norm_2d(body)
    return model


def detr_processor(img_size: int, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)):
    """Resize to a fixed square and normalise (EfficientNet-Lite's mean = std = 0.5)."""
    from transformers import ConditionalDetrImageProcessor
    return ConditionalDetrImageProcessor(size={"height": img_size, "width": img_size},
                                         image_mean=list(mean), image_std=list(std), do_pad=False)


def train_detector(args) -> Path:
    """Fine-tune a detector on a COCO dataset: a Faster R-CNN (timm backbone + FPN) or a small
    Conditional DETR (transformers, same timm backbone). Early-stops on mAP@0.5 measured by the
    detection page's own prediction and evaluation code; writes the checkpoint folder."""
    import torch
    from torchvision.transforms.functional import to_tensor

    from lib import coco_eval, detectors, registry

    seed_everything(args.seed)
    root = Path(args.data)
    if not root.is_dir():
        raise TrainError(f"Dataset folder '{root}' does not exist.")
    train_ds, val_ds = _coco_split(root, "train"), _coco_split(root, "val")
    cat_ids = sorted(train_ds.categories)
    classes = [train_ds.categories[c] for c in cat_ids]
    device = args.device or registry.best_device()
    detr = args.model == "conditional_detr"
    if detr:
        model = build_conditional_detr(args.backbone, classes, args.d_model,
                                                 args.layers, args.num_queries)
        processor = detr_processor(args.img_size)
        body, label_of = model.model.backbone.model, {c: i for i, c in enumerate(cat_ids)}
        names = dict(enumerate(classes))
        arch = {"architecture": "conditional_detr", "img_size": args.img_size,
                "detr": {"d_model": args.d_model, "layers": args.layers,
                         "num_queries": args.num_queries, "out_indices": [1, 2, 3]}}
        heads = "transformer and detection heads"
    else:
        model = build_fasterrcnn_timm(args.backbone, len(classes), args.fpn_channels,
                                                args.img_size, args.img_size)
        processor, body = None, model.backbone.body
        label_of = {c: i + 1 for i, c in enumerate(cat_ids)}
        names = {0: "__background__", **{i + 1: n for i, n in enumerate(classes)}}
        arch = {"architecture": "fasterrcnn_timm", "fpn_channels": args.fpn_channels,
                "min_size": args.img_size, "max_size": args.img_size}
        heads = "FPN and detection heads"
    init = init_weights(body, args.backbone, args.init)
    if args.init != "scratch":
        init = (init.replace(", classifier re-initialised", " for the backbone")
                + f"; {heads} trained from scratch")
    model.to(device)

    def load(ds):
        """(image id, PIL image, training input) per readable image; corrupt ones are skipped."""
        out = []
        for image_id in ds.image_ids:
            try:
                image = images.load_image(ds.image_path(image_id)).image
            except images.ImageError as exc:
                print(f"skipped: {exc}", file=sys.stderr)
                continue
            boxes, cls = ds.gt_boxes(image_id)
            keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
            boxes, labels = boxes[keep], [label_of[int(c)] for c in cls[keep]]
            if detr:
                anns = [{"bbox": [x0, y0, x1 - x0, y1 - y0], "category_id": lab,
                         "area": (x1 - x0) * (y1 - y0), "iscrowd": 0}
                        for (x0, y0, x1, y1), lab in zip(boxes.tolist(), labels)]
                enc = processor(images=image, annotations={"image_id": image_id,
                                                           "annotations": anns},
                                return_tensors="pt")
                item = (enc["pixel_values"][0], enc["labels"][0])
            else:
                item = (to_tensor(image), {"boxes": torch.as_tensor(boxes),
                                           "labels": torch.as_tensor(labels, dtype=torch.int64)})
            out.append((image_id, image, item))
        return out

    train_items, val_items = load(train_ds), load(val_ds)
    config = {k: v for k, v in vars(args).items() if k not in ("func", "argv")}
    config.update(init=init, classes=classes, train_images=len(train_items),
                  val_images=len(val_items))
    out = Path(args.out) / args.name
    out.mkdir(parents=True, exist_ok=True)
    run = _start_run(out, args, config, "train-detector", ["train", "detection", args.model])
    label_map = {lab: c for c, lab in label_of.items()}   # model label -> dataset category

    def batch_loss(idx):
        chunk = [train_items[i][2] for i in idx]
        if detr:
            return model(pixel_values=torch.stack([x for x, _ in chunk]).to(device),
                         labels=[{k: v.to(device) for k, v in g.items()} for _, g in chunk]).loss
        return sum(model([x.to(device) for x, _ in chunk],
                         [{k: v.to(device) for k, v in g.items()} for _, g in chunk]).values())

    def predict_val(det, batch_size=args.batch_size):
        results = []
        for s in range(0, len(val_items), batch_size):
            chunk = val_items[s:s + batch_size]
            for d in det.predict([im for _, im, _ in chunk], [i for i, _, _ in chunk],
                                 label_map, 0.05):
                results += d.to_coco()
        return coco_eval.evaluate(val_ds, results).stats

    def validate():
        model.eval()
        stats = predict_val(detectors.Detector(args.name, "transformers" if detr else
                                               "torchvision", model, names, processor, device))
        return stats["AP50"], {"val/mAP50": stats["AP50"], "val/mAP": stats["AP"]}, \
            f"val mAP@0.5 {stats['AP50']:.4f}"

    gen = torch.Generator().manual_seed(args.seed)
    best_state, best_epoch = _fit(model, args, len(train_items), batch_loss, validate, run,
                                  lambda msg: print(msg, file=sys.stderr), device, gen)
    manifest = _save_checkpoint(out, best_state, classes, {
        "task": "detection", **arch, "backbone": args.backbone, "init": init,
        "label_set": args.label_set, "best_epoch": best_epoch, "data": str(root)}, args)
    # Final mAP, measured as the detection page does (one image at a time) on the saved
    # (fp16) checkpoint.
    spec = registry.checkpoint_spec(checkpoints.read_checkpoint(out))
    stats = predict_val(registry.build(spec, "detection", device), batch_size=1)
    manifest["metrics"] = {"val_map50": stats["AP50"], "val_map": stats["AP"],
                           "val_images": len(val_items)}
    _finish_run(run, out, manifest, {"final/val_map50": stats["AP50"],
                                     "final/val_map": stats["AP"]})
    print(f"wrote {out} (val mAP@0.5 {stats['AP50']:.4f})", file=sys.stderr)
    return out


DEMO_CLASSIFIER_ARGS = ["--model", "tf_efficientnet_lite0", "--init", "package", "--epochs", "12",
                        "--patience", "4", "--lr", "1e-3", "--batch-size", "32",
                        "--img-size", "224", "--label-set", "synthetic shapes", "--quiet"]


def cam_in_box_rate(folder: Path, val_dir: Path) -> float:
    """Share of val images whose Grad-CAM peak (for the true class) lies in the object's box."""
    from lib import cam, registry
    lm = registry.build(registry.checkpoint_spec(checkpoints.read_checkpoint(folder)), device="cpu")
    boxes = json.loads((val_dir / "boxes.json").read_text())
    hits = 0
    for rel, (x, y, w, h) in boxes.items():
        image = images.load_image(val_dir / rel).image
        ex = cam.explain(lm, image, "GradCAM", lm.labels.index(rel.split("/")[0]))
        row, col = np.unravel_index(np.argmax(ex.cam.heatmap), ex.cam.heatmap.shape)
        scale = image.width / ex.cam.heatmap.shape[1]
        hits += (x <= (col + 0.5) * scale <= x + w) and (y <= (row + 0.5) * scale <= y + h)
    return hits / len(boxes)


def _record_demo_recipe(folder: Path, **extra) -> dict:
    """Write the demo data recipe (and `extra` keys) into a demo checkpoint's manifest."""
    manifest = json.loads((folder / checkpoints.MANIFEST).read_text())
    manifest.update(synth=dict(DEMO_SYNTH), data="python -m lib.synth " + " ".join(
        f"--{k} {v}" for k, v in DEMO_SYNTH.items()), **extra)
    (folder / checkpoints.MANIFEST).write_text(json.dumps(manifest, indent=2))
    return manifest


def finish_demo(folder: Path, data_root: Path) -> dict:
    """Record the data recipe and the CAM check in a demo checkpoint's manifest."""
    metrics = json.loads((folder / checkpoints.MANIFEST).read_text())["metrics"]
    metrics["cam_peak_in_box"] = cam_in_box_rate(folder, data_root / "classification" / "val")
    return _record_demo_recipe(folder, metrics=metrics)


def demo_classifier(out_root: Path) -> Path:
    """The demo pack's classifier, from its fixed recipe (retrain only when it changes)."""
    import tempfile

    from lib import synth
    with tempfile.TemporaryDirectory() as tmp:
        data = synth.generate(Path(tmp) / "synth", **DEMO_SYNTH)
        code = main(["classify", "--data", str(data / "classification"), "--name",
                     "demo-classifier", "--out", str(out_root), *DEMO_CLASSIFIER_ARGS,
                     "--description", "Demo pack: EfficientNet-Lite0 (packaged ImageNet "
                     "weights) fine-tuned on Lens' synthetic shapes."])
        if code:
            raise TrainError("demo classifier training failed")
        finish_demo(out_root / "demo-classifier", data)
    return out_root / "demo-classifier"


DEMO_DETECTORS = {
    "fasterrcnn": (["--model", "fasterrcnn_timm", "--epochs", "2"],
                   "Faster R-CNN (EfficientNet-Lite0 backbone from the packaged ImageNet "
                   "weights, FPN 128) trained 2 epochs"),
    "conditional-detr": (["--model", "conditional_detr", "--epochs", "120", "--patience", "120",
                          "--lr", "2e-4", "--warmup", "2", "--clip", "0.1"],
                         "Conditional DETR (transformers; EfficientNet-Lite0 backbone from the "
                         "packaged ImageNet weights, 2+2 layers of width 128, 20 queries)"),
}


def demo_detector(out_root: Path, which: str) -> Path:
    """One of the demo pack's detectors, from its fixed recipe (retrain only when it changes)."""
    import tempfile

    from lib import synth
    args, what = DEMO_DETECTORS[which]
    name = f"demo-{which}"
    with tempfile.TemporaryDirectory() as tmp:
        data = synth.generate(Path(tmp) / "synth", **DEMO_SYNTH)
        code = main(["detect", "--data", str(data / "detection"), "--name", name, "--out",
                     str(out_root), *args, "--label-set", "synthetic shapes", "--quiet"])
        if code:
            raise TrainError(f"{name} training failed")
    folder = out_root / name
    _record_demo_recipe(folder, description=f"Demo pack: {what} on Lens' synthetic shapes.")
    return folder


@cli.command
def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m lib.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    def common(cmd, epochs, batch, lr, wd, clip, patience):
        """Options both trainers take (defaults per task)."""
        cmd.add_argument("--name", required=True)
        cmd.add_argument("--out", default=str(checkpoints.checkpoints_dir()))
        cmd.add_argument("--init", default="package", choices=["package", "timm", "scratch"])
        cmd.add_argument("--epochs", type=int, default=epochs)
        cmd.add_argument("--batch-size", type=int, default=batch)
        cmd.add_argument("--lr", type=float, default=lr)
        cmd.add_argument("--weight-decay", type=float, default=wd)
        cmd.add_argument("--accum", type=int, default=1, help="gradient accumulation steps")
        cmd.add_argument("--clip", type=float, default=clip, help="gradient norm clipping")
        cmd.add_argument("--warmup", type=int, default=1, help="warm-up epochs")
        cmd.add_argument("--patience", type=int, default=patience,
                         help="early stopping patience (epochs)")
        cmd.add_argument("--img-size", type=int, default=128)
        cmd.add_argument("--seed", type=int, default=0)
        cmd.add_argument("--device")
        cmd.add_argument("--label-set", default="custom")
        cmd.add_argument("--quiet", action="store_true")

    c = sub.add_parser("classify", help="fine-tune a timm classifier")
    c.add_argument("--data", required=True)
    c.add_argument("--model", default="tf_efficientnet_lite0")
    c.add_argument("--val-fraction", type=float, default=0.2)
    c.add_argument("--group-regex", help="group key from file names, e.g. '^(.*)_frame'")
    c.add_argument("--description", default="")
    common(c, epochs=10, batch=32, lr=1e-3, wd=0.01, clip=1.0, patience=3)
    t = sub.add_parser("detect", help="fine-tune a Faster R-CNN or a Conditional DETR "
                                      "(timm backbone)")
    t.add_argument("--data", required=True, help="folder with train/ and val/ COCO splits")
    t.add_argument("--model", default="fasterrcnn_timm",
                   choices=["fasterrcnn_timm", "conditional_detr"])
    t.add_argument("--backbone", default="tf_efficientnet_lite0")
    t.add_argument("--fpn-channels", type=int, default=128, help="Faster R-CNN: FPN width")
    t.add_argument("--d-model", type=int, default=128, help="DETR: transformer width")
    t.add_argument("--layers", type=int, default=2, help="DETR: encoder and decoder layers")
    t.add_argument("--num-queries", type=int, default=20, help="DETR: object queries")
    common(t, epochs=12, batch=8, lr=5e-4, wd=1e-4, clip=5.0, patience=4)
    d = sub.add_parser("demo-classifier", help="retrain the demo pack's classifier")
    d.add_argument("--out", default=str(checkpoints.checkpoints_dir()))
    dd = sub.add_parser("demo-detector", help="retrain one of the demo pack's detectors")
    dd.add_argument("which", choices=sorted(DEMO_DETECTORS))
    dd.add_argument("--out", default=str(checkpoints.checkpoints_dir()))
    sg = sub.add_parser("demo-segmenter", help="retrain the demo pack's promptable segmenter "
                                               "and tracker (about an hour on 2 CPU cores)")
    sg.add_argument("--out", default=str(checkpoints.checkpoints_dir()))
    sg.add_argument("--save-stage1", help="also keep the image model after stage 1 here")
    sg.add_argument("--stage1", help="start from a saved stage 1 instead of training it")
    args = parser.parse_args(argv)
    args.argv = argv
    try:
        if args.command == "demo-classifier":
            demo_classifier(Path(args.out))
        elif args.command == "demo-segmenter":
            from lib import train_sam
            train_sam.demo_segmenter(Path(args.out),
                                     stage1=Path(args.stage1) if args.stage1 else None,
                                     save_stage1=args.save_stage1)
        elif args.command == "demo-detector":
            demo_detector(Path(args.out), args.which)
        elif args.command == "detect":
            train_detector(args)
        else:
            train_classifier(args)
        return 0
    except OSError as exc:
        raise TrainError(f"{exc.strerror}: {exc.filename}") from None


if __name__ == "__main__":
    raise SystemExit(main())
