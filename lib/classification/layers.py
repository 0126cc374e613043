"""Where a CAM looks: the target layer of each architecture, the layers a user may pick, and
the reshape of a transformer's tokens (or a Swin's channels-last maps) to NCHW."""

from __future__ import annotations

import math

from lib.core.errors import ExplainError

# -- target layers ----------------------------------------------------------------------------

def _is_channels_last_model(model) -> bool:
    return type(model).__name__.lower().startswith("swin")


def default_target_layer(model) -> str:
    """Last convolutional stage for CNNs; last block's norm for ViT / DeiT / Swin."""
    names = dict(model.named_modules())
    if "conv_head" in names and not isinstance(names["conv_head"], type(None)):
        return "conv_head"
    if "blocks" in names and hasattr(model, "num_prefix_tokens"):  # ViT / DeiT / BEiT ...
        return f"blocks.{len(model.blocks) - 1}.norm1"
    if _is_channels_last_model(model) and "layers" in names:
        last = len(model.layers) - 1
        return f"layers.{last}.blocks.{len(model.layers[last].blocks) - 1}.norm1"
    info = getattr(model, "feature_info", None)
    if info:
        last = info[-1]
        return last["module"] if isinstance(last, dict) else info.module_name()[-1]
    convs = [n for n, m in model.named_modules() if type(m).__name__ == "Conv2d"]
    if not convs:
        raise ExplainError("No convolutional or transformer layer found for a CAM.")
    return convs[-1]


def layer_choices(model) -> list[str]:
    """Layers a user may pick as the CAM target: the default plus stages and blocks."""
    skip = ("Dropout", "Identity", "Linear", "Flatten", "SelectAdaptivePool2d",
            "AdaptiveAvgPool2d", "DropPath")
    out = [default_target_layer(model)]
    for name, module in model.named_modules():
        if not name or name in out or name.count(".") > 2 or type(module).__name__ in skip:
            continue
        if name.split(".")[0] in ("head", "classifier", "fc", "global_pool", "fc_norm",
                                  "pre_logits"):
            continue
        out.append(name)
    return out


def get_layer(model, name: str):
    modules = dict(model.named_modules())
    if name not in modules:
        raise ExplainError(f"The model has no layer named '{name}'.")
    return modules[name]


def reshape_transform(model):
    """Per-architecture reshape of a layer's output to NCHW (a plain function, or None)."""
    prefix = int(getattr(model, "num_prefix_tokens", 0) or 0)
    channels_last = _is_channels_last_model(model)

    def to_nchw(t):
        if t.ndim == 3:  # tokens (B, N, C): drop class/register tokens, fold into a grid
            tokens = t[:, prefix:, :] if t.shape[1] - prefix > 0 else t
            side = int(math.isqrt(tokens.shape[1]))
            if side * side != tokens.shape[1]:
                raise ExplainError(f"Cannot fold {tokens.shape[1]} tokens into a square grid.")
            return tokens.reshape(t.shape[0], side, side, t.shape[2]).permute(0, 3, 1, 2)
        if t.ndim == 4 and channels_last:
            return t.permute(0, 3, 1, 2)
        return t

    needs = prefix > 0 or channels_last or hasattr(model, "blocks") and hasattr(
        model, "num_prefix_tokens")
    return to_nchw if needs else None


def refine_layers(model, layer_name: str) -> list[str]:
    """RefineCAM's layers: the chosen one and the two stages before it."""
    stages = [n for n in layer_choices(model) if n.count(".") == 1 and n != layer_name
              and not n.endswith(".act")]
    return [*stages[-2:], layer_name]
