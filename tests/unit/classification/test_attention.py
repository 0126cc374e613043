"""Attention rollout against an independent computation: timm's unfused attention, whose
probabilities are read where the model itself produces them (`attn_drop`'s input)."""

import numpy as np
import pytest
import torch
from pytorch_grad_cam.utils.image import scale_cam_image

from lib.classification import attention, cam
from lib.core.errors import ExplainError
from tests.unit.classification.test_cam import tiny


def reference_rollout(model, x):
    probs = []
    hooks = []
    for block in model.blocks:
        block.attn.fused_attn = False
        hooks.append(block.attn.attn_drop.register_forward_hook(
            lambda _m, inp, _out: probs.append(inp[0].detach())))
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    for block in model.blocks:
        block.attn.fused_attn = True
    n = probs[0].shape[-1]
    joint = np.eye(n)
    for p in probs:
        a = p[0].mean(0).numpy() + np.eye(n)
        joint = (a / a.sum(-1, keepdims=True)) @ joint
    row = joint[0, 1:]
    side = int(np.sqrt(row.size))
    return scale_cam_image(row.reshape(1, side, side).astype(np.float32), x.shape[-2:][::-1])[0]


def test_rollout_equals_the_unfused_attention_reference():
    lm = tiny("test_vit", size=160)
    x = torch.randn(1, 3, 160, 160, generator=torch.Generator().manual_seed(0))
    ours = attention.rollout(lm.model, x)
    assert ours.shape == (160, 160) and 0.95 < ours.max() <= 1.0
    assert np.abs(ours - reference_rollout(lm.model, x)).max() < 1e-3   # float32 vs float64
    assert not any(m._forward_pre_hooks for m in lm.model.modules())
    via_cam = cam.compute_cam(lm, x, "Attention rollout", 3).heatmap
    assert np.array_equal(via_cam, ours)


def test_rollout_refuses_a_cnn():
    lm = tiny("test_efficientnet")
    with pytest.raises(ExplainError, match="needs a ViT"):
        attention.rollout(lm.model, torch.randn(1, 3, 64, 64))
    assert "Attention rollout" not in cam.applicable(lm.model)
