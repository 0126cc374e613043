"""The options of `python -m lib.train classify|detect`, parsed the same way for the command
line and for the demo pack's fixed recipes."""

from __future__ import annotations

import argparse

from lib.core import command_line
from lib.models import checkpoints


def parser(description: str = "") -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:
    """The parser with the `classify` and `detect` commands, and its subparsers (to add more)."""
    parser, sub = command_line.with_commands("python -m lib.train", description)
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
    c.add_argument("--shuffle-labels", action="store_true",
                   help="train on randomly permuted labels (a model for the data-randomisation "
                        "sanity check of CAMs; early stopping then follows training accuracy)")
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
    return parser, sub


def parse(argv: list[str]) -> argparse.Namespace:
    """`classify ...` or `detect ...` options, with the command line itself kept (`argv`)."""
    args = parser()[0].parse_args(argv)
    args.argv = list(argv)
    return args


def segmenter(sub) -> None:
    """`python -m lib.train segmenter ...` (its options; the defaults are `Recipe`'s)."""
    from lib.training.seg_finetune import TRAIN_CHOICES, Recipe
    r = Recipe()
    c = sub.add_parser("segmenter", help="fine-tune a promptable segmenter (the demo "
                                         "segmenter, SAM 2.1, EdgeTAM) on COCO instance masks")
    c.add_argument("--coco", required=True, help="the folder of the images")
    c.add_argument("--annotations", required=True, help="COCO instances .json with masks")
    c.add_argument("--out", required=True, help="the checkpoint folder to write")
    split = c.add_mutually_exclusive_group()
    split.add_argument("--val-fraction", type=float, default=0.2)
    split.add_argument("--val-ids", type=int, nargs="+")
    c.add_argument("--init", default="demo-segmenter",
                   help="a segmentation model Lens lists, or a transformers folder")
    c.add_argument("--train", default=r.train, choices=TRAIN_CHOICES,
                   help="decoder: neck, prompt encoder, mask decoder; last: also the image "
                        "encoder's last four blocks")
    length = c.add_mutually_exclusive_group()
    length.add_argument("--steps", type=int, default=r.steps)
    length.add_argument("--epochs", type=int,
                        help="instead of --steps: passes over the training objects")
    c.add_argument("--batch", type=int, default=r.batch)
    c.add_argument("--lr", type=float, default=r.lr)
    c.add_argument("--zoom", type=float, default=r.zoom,
                   help="window side over the object's side (the page zooms the same)")
    c.add_argument("--seed", type=int, default=r.seed)
    c.add_argument("--save-every", type=int, default=r.save_every,
                   help="steps between saves of the state a killed run resumes from")
    c.add_argument("--label-set", default="custom")
    c.add_argument("--quiet", action="store_true")
