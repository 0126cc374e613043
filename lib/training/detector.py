"""Train a detector (Faster R-CNN or Conditional DETR on a timm backbone) on a COCO folder
with train/ and val/ splits; early-stops on mAP@0.5 measured by the detection page's code."""

from __future__ import annotations

import sys
from pathlib import Path

from lib.detection import datasets, detectors
from lib.detection.architectures import (
    build_conditional_detr,
    build_fasterrcnn_timm,
    detr_processor,
)
from lib.detection.metrics import coco
from lib.media import images
from lib.models import checkpoints, registry
from lib.training import loop
from lib.training.loop import TrainError


def _coco_split(root: Path, split: str):
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


def train_detector(args) -> Path:
    """Fine-tune a detector on a COCO dataset: a Faster R-CNN (timm backbone + FPN) or a small
    Conditional DETR (transformers, same timm backbone). Early-stops on mAP@0.5 measured by the
    detection page's own prediction and evaluation code; writes the checkpoint folder."""
    import torch  # heavy: imported on first use
    from torchvision.transforms.functional import to_tensor  # heavy: imported on first use


    loop.seed_everything(args.seed)
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
    init = loop.init_weights(body, args.backbone, args.init)
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
    run = loop.start_run(out, args, config, "train-detector", ["train", "detection", args.model])
    label_map = {lab: c for c, lab in label_of.items()}   # model label -> dataset category

    def batch_loss(idx):
        chunk = [train_items[i][2] for i in idx]
        if detr:
            return model(pixel_values=torch.stack([x for x, _ in chunk]).to(device),
                         labels=[{k: v.to(device) for k, v in g.items()} for _, g in chunk]).loss
        return sum(model([x.to(device) for x, _ in chunk],
                         [{k: v.to(device) for k, v in g.items()} for _, g in chunk]).values())

    def predict_val(det, batch_size=args.batch_size):
        dets = {}
        for s in range(0, len(val_items), batch_size):
            chunk = val_items[s:s + batch_size]
            for d in det.predict([im for _, im, _ in chunk], [i for i, _, _ in chunk],
                                 label_map, 0.05):
                dets[d.image_id] = d
        return coco.evaluate(val_ds, dets).stats

    def validate():
        model.eval()
        make = detectors.TransformersDetector if detr else detectors.TorchvisionDetector
        stats = predict_val(make(name=args.name, model=model, labels=names,
                                 processor=processor, device=device))
        return stats["AP50"], {"val/mAP50": stats["AP50"], "val/mAP": stats["AP"]}, \
            f"val mAP@0.5 {stats['AP50']:.4f}"

    gen = torch.Generator().manual_seed(args.seed)
    best_state, best_epoch = loop.fit(model, args, len(train_items), batch_loss, validate, run,
                                  lambda msg: print(msg, file=sys.stderr), device, gen)
    manifest = loop.save_checkpoint(out, best_state, classes, {
        "task": "detection", **arch, "backbone": args.backbone, "init": init,
        "label_set": args.label_set, "best_epoch": best_epoch, "data": str(root)}, args)
    # Final mAP, measured as the detection page does (one image at a time) on the saved
    # (fp16) checkpoint.
    spec = registry.checkpoint_spec(checkpoints.read_checkpoint(out))
    stats = predict_val(registry.build(spec, "detection", device), batch_size=1)
    manifest["metrics"] = {"val_map50": stats["AP50"], "val_map": stats["AP"],
                           "val_images": len(val_items)}
    loop.finish_run(run, out, manifest, {"final/val_map50": stats["AP50"],
                                     "final/val_map": stats["AP"]})
    print(f"wrote {out} (val mAP@0.5 {stats['AP50']:.4f})", file=sys.stderr)
    return out
