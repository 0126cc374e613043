"""Attention rollout (Abnar & Zuidema, 2020) for timm ViTs: how much each patch feeds the
class token through every layer's attention, residual connections included.

The attention probabilities are recomputed from each block's own `qkv` projection (timm's
fused attention never materialises them), with the block's query/key norms and scale.
"""

from __future__ import annotations

import math

import numpy as np

from lib.core.errors import ExplainError


def attention_maps(model, tensor) -> list:
    """Each block's attention probabilities (batch, heads, tokens, tokens), in order."""
    import torch  # heavy: imported on first use
    maps: list = []

    def hook(attn, args, kwargs=None):
        x = args[0]
        b, n, _ = x.shape
        qkv = attn.qkv(x).reshape(b, n, 3, attn.num_heads, -1).permute(2, 0, 3, 1, 4)
        q, k = attn.q_norm(qkv[0]), attn.k_norm(qkv[1])
        maps.append(((q * attn.scale) @ k.transpose(-2, -1)).softmax(dim=-1))

    handles = [b.attn.register_forward_pre_hook(hook) for b in model.blocks]
    try:
        with torch.inference_mode():
            model(tensor)
    finally:
        for h in handles:
            h.remove()
    return maps


def rollout(model, tensor, head_fusion: str = "mean") -> np.ndarray:
    """The rollout map of a 1-image batch, HxW float32 in [0, 1] at the input size."""
    import torch  # heavy: imported on first use
    from pytorch_grad_cam.utils.image import scale_cam_image  # heavy: imported on first use
    if not getattr(model, "blocks", None) or not hasattr(model, "num_prefix_tokens"):
        raise ExplainError("Attention rollout needs a ViT (a model with attention blocks).")
    maps = attention_maps(model, tensor)
    n = maps[0].shape[-1]
    result = torch.eye(n)
    for attn in maps:
        fused = attn[0].max(0).values if head_fusion == "max" else attn[0].mean(0)
        fused = fused.float().cpu() + torch.eye(n)            # the residual connection
        result = (fused / fused.sum(-1, keepdim=True)) @ result
    prefix = int(model.num_prefix_tokens)
    # a class token reads the patches; a pooled model averages every patch's row
    row = result[0, prefix:] if prefix else result[:, :].mean(0)
    side = math.isqrt(row.numel())
    if side * side != row.numel():
        raise ExplainError(f"Cannot fold {row.numel()} patch tokens into a square grid.")
    grid = row.reshape(side, side).numpy().astype(np.float32)
    h, w = tensor.shape[-2:]
    return scale_cam_image(grid[None], (w, h))[0].astype(np.float32)
