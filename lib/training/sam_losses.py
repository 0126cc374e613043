"""SAM 2's losses: focal x 20 + dice on the masks, L1 on the predicted IoU, the object score."""

from __future__ import annotations


def mask_losses(logits, target):
    """Per-mask focal and dice losses; logits and target ... x H x W (target float)."""
    import torch  # heavy: imported on first use
    import torch.nn.functional as F  # heavy: imported on first use
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    pt = p * target + (1 - p) * (1 - target)
    alpha = 0.25 * target + 0.75 * (1 - target)
    focal = (alpha * ce * (1 - pt) ** 2).flatten(-2).mean(-1)
    inter = (p * target).flatten(-2).sum(-1)
    dice = 1 - (2 * inter + 1) / (p.flatten(-2).sum(-1) + target.flatten(-2).sum(-1) + 1)
    return focal, dice


def true_iou(logits, target):
    pred = logits > 0
    t = target > 0.5
    inter = (pred & t).flatten(-2).sum(-1).float()
    union = (pred | t).flatten(-2).sum(-1).float()
    return inter / union.clamp(min=1)


def decoder_loss(out, target, multimask: bool):
    """SAM 2's loss for one decoder call: focal x 20 + dice on the masks, IoU regression (L1)
    on every candidate, and the object score (object present). Returns (loss, mean IoU of
    the best candidate, share of objects whose top-ranked candidate is the best)."""
    import torch  # heavy: imported on first use
    import torch.nn.functional as F  # heavy: imported on first use
    logits = F.interpolate(out.pred_masks.flatten(0, 1), size=target.shape[-2:],
                           mode="bilinear", align_corners=False)
    logits = logits.view(*out.pred_masks.shape[:3], *target.shape[-2:])
    t = target[:, :, None].expand_as(logits)
    focal, dice = mask_losses(logits, t)
    per_mask = 20 * focal + dice
    best = per_mask.min(-1).values if multimask else per_mask[..., 0]
    iou = true_iou(logits.detach(), t)
    iou_loss = F.l1_loss(out.iou_scores, iou)        # SAM 2's IoU loss (L1)
    obj = out.object_score_logits
    obj_loss = F.binary_cross_entropy_with_logits(obj, torch.ones_like(obj))
    ranked = float((iou.gather(-1, out.iou_scores.argmax(-1, keepdim=True))[..., 0]
                    >= iou.max(-1).values - 1e-6).float().mean())
    return (best.mean() + IOU_WEIGHT * iou_loss + obj_loss,
            float(iou.max(-1).values.mean()), ranked)


IOU_WEIGHT = 1.0


LOSS_SIZE = 128   # masks are compared at half the input side (twice the decoder's output)


def loss_size(target):
    """Ground truth (... x S x S, float) area-averaged to LOSS_SIZE and made binary."""
    import torch.nn.functional as F  # heavy: imported on first use
    shape = target.shape
    small = F.adaptive_avg_pool2d(target.reshape(-1, 1, *shape[-2:]), LOSS_SIZE)
    return (small > 0.5).float().reshape(*shape[:-2], LOSS_SIZE, LOSS_SIZE)
