"""Bundled sample photos (scikit-image ships them, so they work offline)."""

from __future__ import annotations

from PIL import Image

SAMPLES = {"cat (chelsea)": "chelsea", "coffee": "coffee", "astronaut": "astronaut",
           "rocket": "rocket"}


def sample_bytes(name: str) -> bytes:
    """PNG bytes of a sample photo, so samples go through the same intake as uploads."""
    import io

    from skimage import data
    buf = io.BytesIO()
    Image.fromarray(getattr(data, SAMPLES[name])()).save(buf, format="PNG")
    return buf.getvalue()


# -- sample W&B runs --------------------------------------------------------------------------

SAMPLE_SWEEP = [  # (optimizer, learning rate, hidden width)
    ("adam", 0.01, 32), ("adam", 0.001, 32), ("sgd", 0.1, 64), ("sgd", 0.01, 16),
]


def train_sample_run(out_dir, optimizer: str, lr: float, width: int, steps: int = 300,
                     seed: int = 0) -> str:
    """Train a small MLP on a two-spiral problem and log it as an offline W&B run.

    Real training of a real (tiny) model, so the run comparison page has honest curves to
    show on first start. Returns the run id.
    """
    import math

    import torch
    import wandb

    torch.manual_seed(seed)

    def spirals(n: int):
        t = torch.rand(n) * 3 * math.pi
        label = torch.randint(0, 2, (n,))
        sign = 1 - 2 * label.float()
        x = torch.stack([sign * t * torch.cos(t), sign * t * torch.sin(t)], 1) / 10
        return x + 0.05 * torch.randn(n, 2), label

    x_train, y_train = spirals(2000)
    x_val, y_val = spirals(500)
    model = torch.nn.Sequential(torch.nn.Linear(2, width), torch.nn.ReLU(),
                                torch.nn.Linear(width, width), torch.nn.ReLU(),
                                torch.nn.Linear(width, 2))
    opt = (torch.optim.Adam(model.parameters(), lr=lr) if optimizer == "adam"
           else torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9))
    config = {"optimizer": optimizer, "lr": lr, "model": {"hidden": width, "layers": 2},
              "data": {"name": "two-spirals", "train": 2000, "val": 500}, "seed": seed,
              "steps": steps, "batch_size": 128}
    run = wandb.init(mode="offline", dir=str(out_dir), project="lens-samples",
                     name=f"spirals-{optimizer}-lr{lr}-w{width}", config=config,
                     tags=["sample", optimizer], notes="Sample run: tiny MLP on two spirals.",
                     settings=wandb.Settings(silent=True, console="off"))
    best = 0.0
    for step in range(steps):
        idx = torch.randint(0, len(x_train), (128,))
        loss = torch.nn.functional.cross_entropy(model(x_train[idx]), y_train[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        record = {"train/loss": loss.item()}
        if step % 10 == 9 or step == steps - 1:
            with torch.no_grad():
                logits = model(x_val)
                record["val/loss"] = torch.nn.functional.cross_entropy(logits, y_val).item()
                record["val/acc"] = (logits.argmax(1) == y_val).float().mean().item()
            best = max(best, record["val/acc"])
        run.log(record, step=step)
    run.summary["best/val_acc"] = best
    run_id = run.id
    run.finish()
    return run_id


def main(argv=None) -> int:
    """python -m lib.samples runs [OUT]: regenerate the bundled sample runs."""
    import argparse
    import shutil
    from pathlib import Path

    parser = argparse.ArgumentParser(prog="python -m lib.samples")
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("runs", help="train the sample sweep into OUT/wandb (offline)")
    r.add_argument("out", nargs="?", default=str(Path(__file__).resolve().parent.parent
                                                  / "samples" / "runs"))
    args = parser.parse_args(argv)
    out = Path(args.out)
    if (out / "wandb").exists():
        shutil.rmtree(out / "wandb")
    out.mkdir(parents=True, exist_ok=True)
    for optimizer, lr, width in SAMPLE_SWEEP:
        print(train_sample_run(out, optimizer, lr, width))
    from lib.runs import tidy_wandb_dir
    tidy_wandb_dir(out / "wandb")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
