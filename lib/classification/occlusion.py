"""Occlusion sensitivity (Zeiler & Fergus 2014): a patch of the dataset's mean colour slid over
the image as the model sees it; each pixel's value is the mean drop of the class's
probability over the patches that covered it. Negative drops (the patch helped) count as
zero, and the map is scaled to 0-1 like a CAM, so it is ranked with the CAMs by the same
faithfulness measures (`ranking`)."""

from __future__ import annotations

import numpy as np

PATCH = 1 / 7          # the patch's side, as a share of the shorter side
BATCH = 32


def positions(size: int, patch: int, stride: int) -> list[int]:
    """Patch starts along one side, the last one flush with the edge."""
    starts = list(range(0, max(1, size - patch + 1), stride))
    if starts[-1] != max(0, size - patch):
        starts.append(max(0, size - patch))
    return starts


def sensitivity(model, tensor, target_index: int, patch: int | None = None,
                stride: int | None = None) -> np.ndarray:
    """The occlusion map (H, W) of a 1-image batch for one class; the caller holds the
    model's lock."""
    import torch  # heavy: imported on first use
    h, w = tensor.shape[-2:]
    patch = patch or max(1, round(min(h, w) * PATCH))
    stride = stride or max(1, patch // 2)
    spots = [(y, x) for y in positions(h, patch, stride) for x in positions(w, patch, stride)]
    with torch.inference_mode():
        base = torch.softmax(model(tensor).float(), -1)[0, target_index].item()
        drops = []
        for lo in range(0, len(spots), BATCH):
            batch = tensor.repeat(len(spots[lo:lo + BATCH]), 1, 1, 1)
            for k, (y, x) in enumerate(spots[lo:lo + BATCH]):
                batch[k, :, y:y + patch, x:x + patch] = 0      # the mean, once normalised
            probs = torch.softmax(model(batch).float(), -1)[:, target_index]
            drops += (base - probs).cpu().tolist()
    total, count = np.zeros((h, w)), np.zeros((h, w))
    for (y, x), d in zip(spots, drops):
        total[y:y + patch, x:x + patch] += d
        count[y:y + patch, x:x + patch] += 1
    heat = np.clip(total / np.maximum(count, 1), 0, None)
    return (heat / heat.max() if heat.max() > 0 else heat).astype(np.float32)
