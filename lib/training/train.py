"""Training command: fine-tune a classifier or a detector into a `checkpoints/<name>/` folder.

    python -m lib.train classify --data FOLDER --model tf_efficientnet_lite0 --name my-model
        [--epochs 10 --batch-size 32 --lr 1e-3 --accum 1 --clip 1.0 --warmup 1 --patience 3
         --img-size 128 --seed 0 --init package|timm|scratch --group-regex REGEX]
    python -m lib.train detect --data COCO_DIR --model fasterrcnn_timm|conditional_detr --name N
    python -m lib.train demo-classifier [demo-classifier-shuffled]
    python -m lib.train demo-detector fasterrcnn|conditional-detr
    python -m lib.train demo-segmenter        (EdgeTAM-style segmenter + tracker;
                                               lib.training.train_sam)
    python -m lib.train demo-segmenter --measure   (its figures again, nothing trained)
    python -m lib.train demo-segmenter --coco ../shared/assets/data/coco_val2017_tiny
        [--from FOLDER]   (demo-segmenter-photos: it fine-tuned on real photos)
    python -m lib.train segmenter --coco DIR --annotations FILE --out checkpoints/NAME
        [--val-fraction 0.2 | --val-ids ID ...] [--init demo-segmenter] [--train decoder|last]
        (fine-tune a promptable segmenter on your own masks; lib.training.seg_finetune)

Detection: COCO_DIR holds train/ and val/ (annotations.json + images/, as `lib.synth` writes).

FOLDER holds class subfolders, or `train/` and `val/` folders of class subfolders (split by
folder). Otherwise the split is by group key: `--group-regex` takes the group from each file
name (first capture group), so near-duplicate frames of one clip never fall on both sides.
Logs to W&B (offline unless WANDB_API_KEY is set) inside the checkpoint folder. The folder
(safetensors, model.json, labels, the command, seed, time, final metrics) loads on the
classification page with no change.
"""

from __future__ import annotations

import sys
from pathlib import Path

from lib.core import command_line
from lib.models import checkpoints
from lib.training import options, sam_measure, seg_finetune, seg_real, train_sam
from lib.training.classifier import train_classifier
from lib.training.demo_pack import (
    DEMO_DETECTORS,
    SANITY_CLASSIFIERS,
    demo_classifier,
    demo_detector,
    sanity_classifier,
)
from lib.training.detector import train_detector
from lib.training.loop import TrainError


@command_line.command
def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser, sub = options.parser(__doc__)
    d = sub.add_parser("demo-classifier", help="retrain the demo pack's classifier (or one of "
                                               "its explanation-check classifiers)")
    d.add_argument("which", nargs="?", choices=sorted(SANITY_CLASSIFIERS))
    d.add_argument("--out", default=str(checkpoints.checkpoints_dir()))
    dd = sub.add_parser("demo-detector", help="retrain one of the demo pack's detectors")
    dd.add_argument("which", choices=sorted(DEMO_DETECTORS))
    dd.add_argument("--out", default=str(checkpoints.checkpoints_dir()))
    sg = sub.add_parser("demo-segmenter", help="retrain the demo pack's promptable segmenter "
                                               "and tracker (about an hour on 2 CPU cores)")
    sg.add_argument("--out", default=str(checkpoints.checkpoints_dir()))
    sg.add_argument("--save-stage1", help="also keep the image model after stage 1 here")
    sg.add_argument("--stage1", help="start from a saved stage 1 instead of training it")
    sg.add_argument("--coco", help="the real COCO sample (../shared/assets/data/"
                                   "coco_val2017_tiny): fine-tune OUT/demo-segmenter on its "
                                   "training images (id %% 3 != 0) into "
                                   "OUT/demo-segmenter-photos")
    sg.add_argument("--from", dest="start", help="with --coco: start from this synthetic "
                                                 "demo segmenter folder instead")
    sg.add_argument("--measure", action="store_true",
                    help="train nothing: measure OUT/demo-segmenter again through the page's "
                         "current code (after a change to tracking) and record its figures")
    options.segmenter(sub)
    args = parser.parse_args(argv)
    args.argv = argv
    try:
        if args.command == "demo-classifier" and args.which:
            sanity_classifier(Path(args.out), args.which)
        elif args.command == "demo-classifier":
            demo_classifier(Path(args.out))
        elif args.command == "demo-segmenter" and args.measure and args.coco:
            seg_real.remeasure(Path(args.out) / seg_real.NAME, Path(args.coco))
        elif args.command == "demo-segmenter" and args.measure:
            sam_measure.record(Path(args.out) / train_sam.NAME)
        elif args.command == "demo-segmenter" and args.coco:
            seg_real.demo_segmenter(Path(args.coco), Path(args.out),
                                    Path(args.start) if args.start else None)
        elif args.command == "demo-segmenter":
            train_sam.demo_segmenter(Path(args.out),
                                     stage1=Path(args.stage1) if args.stage1 else None,
                                     save_stage1=args.save_stage1)
        elif args.command == "segmenter":
            seg_finetune.run_command(args)
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
