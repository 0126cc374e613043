"""The training loop every trainer shares: seeds, initial weights, AdamW with a cosine
schedule and warm-up, gradient accumulation and clipping, early stopping, W&B logging
(offline unless WANDB_API_KEY is set) and the checkpoint folder it writes."""

from __future__ import annotations

import json
import math
import os
import random
import shlex
import time
from pathlib import Path

import numpy as np

from lib.core.errors import InputError
from lib.core.paths import tidy_wandb_dir
from lib.core.progress import TerminalBar, Ticker
from lib.models import checkpoints, registry


class TrainError(InputError):
    """Bad training input; the message says what to fix."""


def seed_everything(seed: int) -> None:
    import torch  # heavy: imported on first use
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
        import torch  # heavy: imported on first use
        torch.nn.init.normal_(head.weight, std=0.01)  # timm's init is too wide for few classes
        torch.nn.init.zeros_(head.bias)
    if init == "package":
        spec = next((s for s in registry.builtin_specs()
                     if s.source == "package" and s.arch == arch), None)
        if spec is None:
            raise TrainError(f"No packaged weights for '{arch}'; use --init timm or scratch.")
        import timm  # heavy: imported on first use
        full = timm.create_model(arch, pretrained=False, num_classes=1000)
        state = registry.package_state_dict(spec, full)
        own = model.state_dict()
        loaded = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
        model.load_state_dict(loaded, strict=False)
        return f"packaged ImageNet weights ({spec.weights}), classifier re-initialised"
    if init == "timm":
        import timm  # heavy: imported on first use
        pretrained = timm.create_model(arch, pretrained=True)
        own = model.state_dict()
        model.load_state_dict({k: v for k, v in pretrained.state_dict().items()
                               if k in own and own[k].shape == v.shape}, strict=False)
        return f"timm pretrained weights for {arch}"
    raise TrainError(f"Unknown --init '{init}'.")


def _cosine_with_warmup(optimizer, warmup_steps: int, total_steps: int):
    import torch  # heavy: imported on first use

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / max(1, warmup_steps)
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def evaluate(model, tensors, labels, batch_size, device):
    import torch  # heavy: imported on first use
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


def start_run(out: Path, args, config: dict, job_type: str, tags: list[str]):
    """A W&B run inside the checkpoint folder (offline unless WANDB_API_KEY is set)."""
    import wandb  # heavy: imported on first use
    return wandb.init(mode="online" if os.environ.get("WANDB_API_KEY") else "offline",
                      dir=str(out), project="lens-training", name=args.name, config=config,
                      job_type=job_type, tags=tags,
                      settings=wandb.Settings(silent=True, console="off"))


def fit(model, args, n_train: int, batch_loss, validate, run, log, device: str, gen):
    """The training loop both tasks share; returns (best state dict, best epoch).

    `batch_loss(indices)` returns the loss of those training items (it runs under autocast on
    CUDA); `validate()` returns (score to maximise, metrics to log, a text for the log).
    AdamW, cosine schedule with warm-up, gradient accumulation and clipping, early stopping.
    """
    import torch  # heavy: imported on first use

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
            tick = Ticker(len(batches), TerminalBar(f"epoch {epoch + 1}/{args.epochs}",
                                                    quiet=args.quiet))
            for b, s in enumerate(batches):
                tick(b)                                      # batches done so far
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
            tick(len(batches))
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


def save_checkpoint(out: Path, state: dict, classes: list[str], manifest: dict, args) -> dict:
    """fp16 safetensors, labels and the manifest with the command, seed and time."""
    from safetensors.torch import save_file  # heavy: imported on first use
    save_file({k: (v.half() if v.is_floating_point() else v).contiguous()
               for k, v in state.items()}, out / "model.safetensors")
    (out / "labels.txt").write_text("\n".join(classes) + "\n")
    manifest = {**manifest, "num_classes": len(classes), "labels": "labels.txt",
                "weights": "model.safetensors",
                "command": "python -m lib.train " + " ".join(shlex.quote(a) for a in args.argv),
                "seed": args.seed, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    (out / checkpoints.MANIFEST).write_text(json.dumps(manifest, indent=2))
    return manifest


def finish_run(run, out: Path, manifest: dict, summary: dict) -> None:
    (out / checkpoints.MANIFEST).write_text(json.dumps(manifest, indent=2))
    run.summary.update(summary)
    run.finish()
    tidy_wandb_dir(out / "wandb")
