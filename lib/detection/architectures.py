"""Detector architectures Lens trains and loads: a torchvision Faster R-CNN on a timm
`features_only` backbone with a small FPN, and a small Conditional DETR (transformers) on the
same backbone. `lib.training` trains them; `lib.detection.detectors` loads their checkpoints."""

from __future__ import annotations

from collections import OrderedDict


def build_fasterrcnn_timm(backbone: str, num_classes: int, fpn_channels: int = 128,
                          min_size: int = 128, max_size: int = 128):
    """torchvision Faster R-CNN on a timm `features_only` backbone with a small FPN.

    `num_classes` excludes the background (torchvision's label 0).
    """

    import timm  # heavy: imported on first use
    import torch  # heavy: imported on first use
    from torchvision.models.detection import FasterRCNN  # heavy: imported on first use
    from torchvision.models.detection.anchor_utils import (
        AnchorGenerator,  # heavy: imported on first use
    )
    from torchvision.models.detection.faster_rcnn import (  # heavy: imported on first use
        FastRCNNPredictor,
        TwoMLPHead,
    )
    from torchvision.ops import (  # heavy: imported on first use
        FeaturePyramidNetwork,
        MultiScaleRoIAlign,
    )
    from torchvision.ops.feature_pyramid_network import (
        LastLevelMaxPool,  # heavy: imported on first use
    )

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
    from transformers import (  # heavy: imported on first use
        ConditionalDetrConfig,
        ConditionalDetrForObjectDetection,
    )
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
    import timm  # heavy: imported on first use
    from timm.layers import freeze_batch_norm_2d  # heavy: imported on first use
    body = timm.create_model(backbone, pretrained=False, features_only=True,
                             out_indices=tuple(out_indices))
    model.model.backbone.model = freeze_batch_norm_2d(body)
    return model


def detr_processor(img_size: int, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)):
    """Resize to a fixed square and normalise (EfficientNet-Lite's mean = std = 0.5)."""
    from transformers import ConditionalDetrImageProcessor  # heavy: imported on first use
    return ConditionalDetrImageProcessor(size={"height": img_size, "width": img_size},
                                         image_mean=list(mean), image_std=list(std), do_pad=False)
