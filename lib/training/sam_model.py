"""The demo segmenter's model: transformers' EdgeTAM on the packaged EfficientNet-Lite0
(through timm, `features_only`), width 128, 256 px input, initialised as a fresh EdgeTAM
needs before its decoder learns to use a prompt (one positional encoding for prompts and
image, PyTorch's default initialisation, a quiet neck)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from lib.core.errors import InputError
from lib.models import registry

SIZE = 256               # model input side


HIDDEN = 128             # transformer width


BACKBONE = "tf_efficientnet_lite0"


MEAN = STD = (0.5, 0.5, 0.5)   # EfficientNet-Lite's normalisation


def config():
    """The demo segmenter's `EdgeTamVideoConfig` (its image part is an `EdgeTamConfig`)."""
    from transformers import EdgeTamVideoConfig  # heavy: imported on first use
    s, h = SIZE, HIDDEN
    vision = dict(model_type="edgetam_vision_model",
                  backbone_config={"model_type": "timm_wrapper", "architecture": BACKBONE,
                                   "num_classes": 0,
                                   "model_args": {"in_chans": 3, "features_only": True,
                                                  "out_indices": [1, 2, 3, 4]}},
                  backbone_channel_list=[320, 112, 40, 24],
                  backbone_feature_sizes=[[s // 4] * 2, [s // 8] * 2, [s // 16] * 2],
                  fpn_hidden_size=h)
    return EdgeTamVideoConfig(
        vision_config=vision,
        prompt_encoder_config=dict(hidden_size=h, image_size=s, patch_size=16),
        mask_decoder_config=dict(hidden_size=h, mlp_dim=512, num_attention_heads=4,
                                 iou_head_hidden_dim=128),
        image_size=s, memory_attention_hidden_size=h, memory_attention_mlp_hidden_size=512,
        memory_attention_rope_feat_sizes=[s // 16, s // 16], memory_encoder_hidden_size=h,
        mask_downsampler_embed_dim=h, memory_fuser_embed_dim=h,
        memory_fuser_intermediate_dim=512)


def processor():
    """The processor saved with the model: inputs resized to `SIZE`, Lite's normalisation."""
    from transformers import (
        Sam2ImageProcessor,
        Sam2VideoProcessor,
        Sam2VideoVideoProcessor,
    )  # heavy: imported on first use
    size = {"height": SIZE, "width": SIZE}
    return Sam2VideoProcessor(
        image_processor=Sam2ImageProcessor(size=size, image_mean=list(MEAN),
                                           image_std=list(STD)),
        video_processor=Sam2VideoVideoProcessor(size=size, image_mean=list(MEAN),
                                                image_std=list(STD)))


def image_config():
    """The image part of `config()`, as `EdgeTamModel` takes it."""
    from transformers import EdgeTamConfig  # heavy: imported on first use
    c = config()
    return EdgeTamConfig(vision_config=c.vision_config.to_dict(),
                         prompt_encoder_config=c.prompt_encoder_config.to_dict(),
                         mask_decoder_config=c.mask_decoder_config.to_dict())


NECK_INIT_SCALE = 0.2


def _default_init(*modules) -> None:
    """PyTorch's default initialisation (as SAM 2 trains from) for the new parts: with
    transformers' normal(0, 0.02) for every layer the decoder did not learn at all here (IoU
    0.0 after 150 steps overfitting 4 images from boxes; 0.82 with this)."""
    import torch  # heavy: imported on first use
    for root in modules:
        for mod in root.modules():
            if hasattr(mod, "reset_parameters") and not isinstance(mod, torch.nn.LayerNorm):
                mod.reset_parameters()


def new_image_model():
    """`EdgeTamModel` with the packaged ImageNet weights in its backbone (stage 1)."""
    import timm  # heavy: imported on first use
    import torch  # heavy: imported on first use
    from transformers import EdgeTamModel  # heavy: imported on first use

    model = EdgeTamModel(image_config())
    _default_init(model.vision_encoder.neck, model.prompt_encoder, model.mask_decoder)
    # The decoder finds the prompted object by matching the prompt's positional encoding
    # (norm 8) against the image's, which is added to the image embedding. Lite0's features
    # through a default-initialised neck come out at a per-location norm of about 36, which
    # drowns the positional term: the decoder then never learned to use the prompt (click IoU
    # = box IoU = the "every shape" level, 0.44). Starting the neck 5x smaller (norm about 7)
    # it learns within 300 steps.
    with torch.no_grad():
        for conv in model.vision_encoder.neck.modules():
            if isinstance(conv, torch.nn.Conv2d):
                conv.weight.mul_(NECK_INIT_SCALE)
                conv.bias.mul_(NECK_INIT_SCALE)
    # SAM's prompt and image positional encodings are one random Fourier basis (one module in
    # the original); transformers keeps two buffers, which a fresh model fills differently,
    # and then a prompt's position means nothing to the decoder.
    with torch.no_grad():
        model.prompt_encoder.shared_embedding.positional_embedding.copy_(
            model.shared_image_embedding.positional_embedding)
    spec = next(s for s in registry.builtin_specs()
                if s.source == "package" and s.arch == BACKBONE)
    full = timm.create_model(BACKBONE, pretrained=False, num_classes=1000)
    state = registry.package_state_dict(spec, full)
    body = model.vision_encoder.backbone.timm_model
    own = body.state_dict()
    missing = [k for k in own if not k.endswith("num_batches_tracked")
               and (k not in state or state[k].shape != own[k].shape)]
    if missing:
        raise RuntimeError(f"packaged weights do not fit the backbone: {missing[:3]}")
    body.load_state_dict({k: state[k] for k in own if k in state}, strict=False)
    return model


def image_view(video_model):
    """An `EdgeTamModel` sharing the video model's image encoder, prompt encoder and mask
    decoder (the same tensors), for the image losses of stage 2."""
    from transformers import EdgeTamModel  # heavy: imported on first use
    view = EdgeTamModel(image_config())
    for name in ("shared_image_embedding", "vision_encoder", "prompt_encoder", "mask_decoder"):
        setattr(view, name, getattr(video_model, name))
    view.no_memory_embedding = video_model.no_memory_embedding
    return view.eval()


MEMORY_MODULES = ("memory_attention", "memory_encoder", "spatial_perceiver",
                  "object_pointer_proj", "temporal_positional_encoding_projection_layer",
                  "mask_downsample")


MEMORY_PATH = ("memory_attention", "memory_encoder", "spatial_perceiver", "object_pointer_proj",
               "temporal_positional_encoding_projection_layer", "mask_downsample",
               "occlusion_spatial_embedding_parameter", "no_object_pointer",
               "no_memory_positional_encoding", "memory_temporal_positional_encoding")


def video_model_from(image_model):
    """`EdgeTamVideoModel` holding the image model's weights; only the memory path is new."""
    from transformers import EdgeTamVideoModel  # heavy: imported on first use
    video = EdgeTamVideoModel(config())
    _default_init(*(getattr(video, name) for name in MEMORY_MODULES))
    missing, unexpected = video.load_state_dict(image_model.state_dict(), strict=False)
    stray = [k for k in missing if not k.startswith(MEMORY_PATH)]
    if stray or unexpected:
        raise RuntimeError(f"image weights do not fit the video model: {(stray + unexpected)[:3]}")
    return video.eval()


# -- any SAM 2 / EdgeTAM folder, for fine-tuning (lib.training.seg_finetune) ------------------

def _video_classes(folder: Path):
    """(video model class, image model class) for a transformers SAM 2 / EdgeTAM folder."""
    import transformers  # heavy: imported on first use
    try:
        kind = json.loads((folder / "config.json").read_text()).get("model_type", "")
    except (OSError, ValueError, AttributeError):
        kind = ""
    if kind.startswith("edgetam"):
        return transformers.EdgeTamVideoModel, transformers.EdgeTamModel
    if kind.startswith("sam2"):
        return transformers.Sam2VideoModel, transformers.Sam2Model
    raise InputError(f"--init {folder.name} is not a SAM 2 or EdgeTAM model folder "
                     "(config.json of model_type sam2 / edgetam).",
                     "Name a segmentation model Lens lists, or a transformers folder.")


def resolve_init(init: str) -> Path:
    """The folder of the model to start from: a segmentation model Lens lists (a checkpoint
    folder, or a hub id present in the Hugging Face cache), or a folder path."""
    path = Path(init)
    if path.is_dir():
        return path.resolve()
    for spec in registry.all_specs("segmentation"):
        if spec.name != init:
            continue
        if spec.source == "checkpoint" and spec.folder is not None:
            return Path(spec.folder)
        from huggingface_hub import snapshot_download  # heavy: imported on first use
        try:
            return Path(snapshot_download(spec.arch, local_files_only=True))
        except Exception as exc:
            raise registry.weights_missing(spec, "not in the Hugging Face cache") from exc
    raise InputError(f"--init {init}: no segmentation model or folder of that name.",
                     "python -m lib.weights list shows the segmentation models.")


def load_models(folder: Path):
    """(video model, image view sharing its image encoder, prompt encoder and decoder)."""
    video_cls, image_cls = _video_classes(folder)
    video = video_cls.from_pretrained(folder, local_files_only=True, dtype="float32")
    view = image_cls.__new__(image_cls)
    image_cfg = image_cls.config_class(
        vision_config=video.config.vision_config.to_dict(),
        prompt_encoder_config=video.config.prompt_encoder_config.to_dict(),
        mask_decoder_config=video.config.mask_decoder_config.to_dict())
    image_cls.__init__(view, image_cfg)
    for name in ("shared_image_embedding", "vision_encoder", "prompt_encoder", "mask_decoder"):
        setattr(view, name, getattr(video, name))
    view.no_memory_embedding = video.no_memory_embedding
    return video.float(), view.float()


def _last_stages(names: list[str], stages: int = 4) -> set[str]:
    """The image encoder's parameters in its last `stages` numbered blocks."""
    idx = {}
    for n in names:
        m = re.search(r"\.blocks\.(\d+)\.", n)
        if m:
            idx[n] = int(m.group(1))
    top = sorted(set(idx.values()))[-stages:]
    return {n for n, i in idx.items() if i in top}


def param_groups(view, train: str, lr: float, backbone_lr: float) -> list[dict]:
    """Parameter groups: the neck, prompt encoder and decoder at `lr`; with `train` "last",
    the image encoder's last four numbered blocks at `backbone_lr`; the rest frozen."""
    head, body = [], []
    backbone = [n for n, _ in view.named_parameters() if n.startswith("vision_encoder.backbone")]
    last = _last_stages(backbone) if train == "last" else set()
    for name, p in view.named_parameters():
        if name.startswith("vision_encoder.backbone"):
            p.requires_grad = name in last
            if p.requires_grad:
                body.append(p)
        else:
            p.requires_grad = True
            head.append(p)
    groups = [{"params": head, "lr": lr}]
    if body:
        groups.append({"params": body, "lr": backbone_lr})
    return groups
