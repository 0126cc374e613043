"""Detectors (torchvision Faster R-CNN, transformers DETR family) and the inference job.

The builders (`build_torchvision`, `build_transformers`, `build_checkpoint`, called through
`lib.models.cache.load`) load real weights or raise `WeightsMissingError` naming the fetch command;
they never fall back to random weights. `InferenceJob` runs a detector over a dataset in a
background thread with progress, cancel and resume; its COCO results JSON is cached on disk
per (model, dataset subset, settings), so reloading never recomputes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from PIL import Image

from lib.detection.architectures import (
    build_conditional_detr,
    build_fasterrcnn_timm,
    detr_processor,
)
from lib.detection.detections import Detections, from_torchvision
from lib.models import checkpoints as ckpts
from lib.models import registry
from lib.models.build import builder
from lib.models.spec import HubModel, Source, Task


@dataclass(kw_only=True)
class Detector(HubModel):
    """A detector: `HubModel`'s fields (its lock is held by every forward pass: an EigenCAM
    hooks the shared model) and its labels. Subclasses say how a batch goes through their
    model (`_outputs`); `kind` names them."""
    kind: ClassVar[str] = ""
    labels: dict[int, str]         # model label index -> name

    def predict(self, images: list[Image.Image], image_ids: list[int], label_map: dict[int, int],
                threshold: float = 0.05) -> list[Detections]:
        """Detections for a batch of RGB images, class ids mapped to dataset categories."""
        import torch  # heavy: imported on first use
        with self.lock, torch.inference_mode():
            outs = self._outputs(images, threshold)
        return [from_torchvision(image_id, out, label_map).above(threshold)
                for image_id, out in zip(image_ids, outs)]

    def _outputs(self, images: list[Image.Image], threshold: float) -> list[dict]:
        """torchvision-style outputs (boxes, labels, scores) of a batch."""
        raise NotImplementedError


@dataclass(kw_only=True)
class TorchvisionDetector(Detector):
    """A torchvision detector (Faster R-CNN): images in, its own outputs back."""
    kind: ClassVar[str] = "torchvision"

    def _outputs(self, images, threshold):
        from torchvision.transforms.functional import to_tensor  # heavy: imported on first use
        return self.model([to_tensor(im).to(self.device) for im in images])


@dataclass(kw_only=True)
class TransformersDetector(Detector):
    """A transformers detector (the DETR family) through its processor."""
    kind: ClassVar[str] = "transformers"

    def _outputs(self, images, threshold):
        inputs = self.processor(images=images, return_tensors="pt").to(self.device)
        raw = self.model(**inputs)
        return self.processor.post_process_object_detection(
            raw, threshold=threshold, target_sizes=[(im.height, im.width) for im in images])


#: a manifest's or a caller's kind -> the detector class that reads that kind of model
DETECTORS = {cls.kind: cls for cls in (TorchvisionDetector, TransformersDetector)}


#: DETR on COCO (transformers; any other transformers detector id can be typed)
DETR_IDS = ["facebook/detr-resnet-50", "facebook/detr-resnet-101"]


#: torchvision's COCO Faster R-CNNs: builder -> weights enum
TORCHVISION_DETECTORS = {
    "fasterrcnn_resnet50_fpn": "FasterRCNN_ResNet50_FPN_Weights.COCO_V1",
    "fasterrcnn_resnet50_fpn_v2": "FasterRCNN_ResNet50_FPN_V2_Weights.COCO_V1",
    "fasterrcnn_mobilenet_v3_large_fpn": "FasterRCNN_MobileNet_V3_Large_FPN_Weights.COCO_V1",
    "fasterrcnn_mobilenet_v3_large_320_fpn":
        "FasterRCNN_MobileNet_V3_Large_320_FPN_Weights.COCO_V1",
}


registry.known(
    *(registry.ModelSpec(name=i, task="detection", source="transformers", arch=i, weights=i,
                         label_set="coco", description="DETR") for i in DETR_IDS),
    *(registry.ModelSpec(name=b, task="detection", source="torchvision", arch=b, weights=w,
                         label_set="coco", description="Faster R-CNN (torchvision)")
      for b, w in TORCHVISION_DETECTORS.items()))


def _torchvision_weights(spec: registry.ModelSpec):
    import torchvision.models.detection as det  # heavy: imported on first use
    cls_name, member = spec.weights.split(".")
    return getattr(getattr(det, cls_name), member)


@builder(Task.DETECTION, Source.TORCHVISION)
def build_torchvision(spec: registry.ModelSpec, device: str) -> Detector:
    """A torchvision detector with its COCO weights, or `WeightsMissingError`."""
    import torchvision.models.detection as det  # heavy: imported on first use
    weights = _torchvision_weights(spec)
    if not registry.availability(spec).ready and not registry.hub_reachable():
        raise registry.weights_missing(spec, "no access to download.pytorch.org")
    try:
        state = weights.get_state_dict(progress=False)
    except Exception as exc:
        raise registry.weights_missing(spec, type(exc).__name__) from exc
    model = getattr(det, spec.arch)(weights=None, weights_backbone=None,
                                    num_classes=len(weights.meta["categories"]))
    model.load_state_dict(state)
    labels = dict(enumerate(weights.meta["categories"]))
    return TorchvisionDetector(name=spec.name, model=model.eval().to(device), labels=labels,
                               device=device)


@builder(Task.DETECTION, Source.TRANSFORMERS)
def build_transformers(spec: registry.ModelSpec, device: str) -> Detector:
    """Any transformers object detector id (DETR, RT-DETR, ...), or `WeightsMissingError`."""
    from transformers import (  # heavy: imported on first use
        AutoImageProcessor,
        AutoModelForObjectDetection,
    )
    offline = not registry.hub_reachable()
    try:
        model = AutoModelForObjectDetection.from_pretrained(spec.arch, local_files_only=offline)
        processor = AutoImageProcessor.from_pretrained(spec.arch, local_files_only=offline)
    except OSError as exc:
        raise registry.weights_missing(spec, "not in the Hugging Face cache") from exc
    except ValueError as exc:   # an id that is not an object detector
        raise registry.ModelCreateError(f"'{spec.name}' is not an object detector "
                                        f"transformers can load.") from exc
    return TransformersDetector(name=spec.name, model=model.eval().to(device),
                    labels={int(k): v for k, v in model.config.id2label.items()},
                    processor=processor, device=device)


def is_faster_rcnn(spec: registry.ModelSpec) -> bool:
    """torchvision's Faster R-CNN, built in or trained by Lens (EigenCAM works on both)."""
    return spec.source == "torchvision" or (
        spec.source == "checkpoint" and (spec.manifest or {}).get("architecture")
        == "fasterrcnn_timm")


def tiny_detector(kind: str, labels: dict[int, str]) -> Detector:
    """A randomly initialised small detector for plumbing tests; marked untrained."""
    import torch  # heavy: imported on first use
    torch.manual_seed(0)
    if kind == "torchvision":
        from torchvision.models.detection import (
            fasterrcnn_mobilenet_v3_large_320_fpn,  # heavy: imported on first use
        )
        model = fasterrcnn_mobilenet_v3_large_320_fpn(weights=None, weights_backbone=None,
                                                      num_classes=max(labels) + 1,
                                                      box_score_thresh=0.0)
        return TorchvisionDetector(name="tiny-fasterrcnn", model=model.eval(), labels=labels,
                                   untrained=True)
    from transformers import (  # heavy: imported on first use
        DetrConfig,
        DetrForObjectDetection,
        DetrImageProcessor,
    )
    labels = {i: labels.get(i, "N/A") for i in range(max(labels) + 1)}  # DETR: contiguous ids
    config = DetrConfig(use_timm_backbone=True, backbone="resnet18", use_pretrained_backbone=False,
                        d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
                        num_queries=10, id2label=labels, label2id={v: k for k, v in labels.items()})
    processor = DetrImageProcessor(size={"shortest_edge": 128, "longest_edge": 160})
    return TransformersDetector(name="tiny-detr", model=DetrForObjectDetection(config).eval(),
                                labels=labels, processor=processor, untrained=True)


@builder(Task.DETECTION, Source.CHECKPOINT)
def build_checkpoint(spec: registry.ModelSpec, device: str | None = None) -> Detector:
    """A detector from a `checkpoints/<name>/` folder written by `lib.train detect`."""
    m = spec.manifest or {}
    folder = spec.folder
    labels = list(spec.labels)
    arch = m.get("architecture")
    if arch == "fasterrcnn_timm":
        model = build_fasterrcnn_timm(m["backbone"], len(labels), m.get("fpn_channels", 128),
                                      m.get("min_size", 128), m.get("max_size", 128))
        names = {0: "__background__", **{i + 1: n for i, n in enumerate(labels)}}
        kind, processor = "torchvision", None
    elif arch == "conditional_detr":
        d = m.get("detr", {})
        model = build_conditional_detr(m["backbone"], labels, d.get("d_model", 128),
                                       d.get("layers", 2), d.get("num_queries", 20),
                                       tuple(d.get("out_indices", (1, 2, 3))))
        names = dict(enumerate(labels))
        kind, processor = "transformers", detr_processor(m.get("img_size", 128))
    else:
        raise registry.ModelCreateError(f"Checkpoint '{spec.name}': unknown detection "
                                        f"architecture '{arch}'.")
    state = ckpts.load_state_dict(spec.weights, root=folder.parent)
    try:
        model.load_state_dict(state)  # fp16 on disk; copied into fp32 parameters
    except RuntimeError as exc:
        raise registry.ModelCreateError(f"Checkpoint '{spec.name}' does not fit its manifest: "
                                        f"{str(exc).splitlines()[0]}") from exc
    device = device or registry.best_device()
    return DETECTORS[kind](name=spec.name, model=model.eval().to(device), labels=names,
                           processor=processor, device=device)
