"""Fine-tune a timm classifier on class folders (split by folder, or by a group key from
file names so frames of one clip never fall on both sides)."""

from __future__ import annotations

import hashlib
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lib.classification import classify
from lib.media import images
from lib.models import checkpoints, registry
from lib.training import loop
from lib.training.loop import TrainError


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


def train_classifier(args) -> Path:
    """Fine-tune, early-stop on validation accuracy, write the checkpoint folder."""
    import torch  # heavy: imported on first use
    from timm.data import create_transform, resolve_data_config  # heavy: imported on first use


    loop.seed_everything(args.seed)
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
    shuffled = bool(getattr(args, "shuffle_labels", False))
    if shuffled:   # Adebayo et al. 2018: the same images, labels permuted (seeded)
        train_y = np.random.default_rng(args.seed).permutation(train_y).tolist()
        log("labels shuffled: the model learns noise (data-randomisation sanity check)")

    device = args.device or registry.best_device()
    model = classify.create_timm(args.model, len(split.classes), args.img_size)
    init = loop.init_weights(model, args.model, args.init)
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
    run = loop.start_run(out, args, config, "train-classifier", ["train", "classification"])
    gen = torch.Generator().manual_seed(args.seed)

    def batch_loss(idx):
        x = torch.stack([train_tensors[i] for i in idx])
        flip = torch.rand(len(idx), generator=gen) < 0.5
        x[flip] = x[flip].flip(-1)
        y = torch.tensor([train_y[i] for i in idx], device=device)
        return torch.nn.functional.cross_entropy(model(x.to(device)), y, label_smoothing=0.1)

    def validate():
        if shuffled:  # held-out accuracy is chance by design: follow how far noise is fitted
            acc, loss, _ = loop.evaluate(model, train_tensors, train_y, args.batch_size, device)
            return acc, {"train/acc": acc, "train/eval_loss": loss}, \
                f"train acc on shuffled labels {acc:.4f}"
        acc, val_loss, _ = loop.evaluate(model, val_tensors, val_y, args.batch_size, device)
        return acc, {"val/acc": acc, "val/loss": val_loss}, \
            f"val loss {val_loss:.4f}, val acc {acc:.4f}"

    best_state, best_epoch = loop.fit(model, args, len(train_tensors), batch_loss, validate, run,
                                  log, device, gen)
    manifest = loop.save_checkpoint(out, best_state, split.classes, {
        "task": "classification", "architecture": args.model,
        "preprocessing": {**pre.as_timm_config(), "input_size": list(pre.input_size)},
        "label_set": args.label_set, "description": args.description, "init": init,
        "best_epoch": best_epoch, "data": str(args.data),
        **({"shuffled_labels": True} if shuffled else {})}, args)

    # Final metrics, measured by the project's own code on the saved checkpoint.
    lm = registry.build(registry.checkpoint_spec(checkpoints.read_checkpoint(out)), device=device)
    items = [(p, split.classes[y]) for p, y in split.val]
    result = classify.evaluate(lm, items)
    manifest["metrics"] = {"val_accuracy": result.accuracy, "val_images": len(result.items),
                           "skipped_images": skipped_train + skipped_val}
    if shuffled:   # how well the noise was memorised (the sanity check needs it fitted)
        model.load_state_dict(best_state)
        manifest["metrics"]["train_accuracy_on_shuffled_labels"] = loop.evaluate(
            model, train_tensors, train_y, args.batch_size, device)[0]
    import wandb  # heavy: imported on first use
    run.log({"confusion_matrix": wandb.plot.confusion_matrix(
        y_true=[i.true_index for i in result.items], preds=[i.pred_index for i in result.items],
        class_names=split.classes)})
    loop.finish_run(run, out, manifest, {"final/val_accuracy": result.accuracy,
                                     "best_epoch": best_epoch})
    (out / "train.log").write_text("\n".join(log_lines) + "\n")
    log(f"wrote {out} (val accuracy {result.accuracy:.4f})")
    return out
