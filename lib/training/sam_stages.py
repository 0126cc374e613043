"""The two training stages of the demo segmenter: the image path (neck, prompt encoder, mask
decoder on frozen Lite0 features) and the memory path (clips through the model's own
per-frame step; its recipe is set to 0 steps, see docs/training.md)."""

from __future__ import annotations

import math
import time
import warnings

import numpy as np

from lib.training.sam_data import PROMPT_KINDS, ClipSet, ImageSet, sample_prompts
from lib.training.sam_losses import decoder_loss, loss_size, mask_losses, true_iou
from lib.training.sam_model import MEMORY_PATH, SIZE, image_view


def backbone_features(model, pixels, batch: int = 32) -> list:
    """The frozen backbone's four feature maps for every image (float16, on the CPU)."""
    import torch  # heavy: imported on first use
    out = None
    with torch.inference_mode():
        for s in range(0, len(pixels), batch):
            feats = model.vision_encoder.backbone(pixels[s:s + batch].float()).last_hidden_state
            if out is None:
                out = [torch.empty((len(pixels), *f.shape[1:]), dtype=torch.float16)
                       for f in feats]
            for o, f in zip(out, feats):
                o[s:s + batch] = f.half()
    return out


def embeddings_from_features(model, feats):
    """What `EdgeTamModel.get_image_embeddings` makes from the backbone's feature maps
    (neck, the decoder's high-resolution projections, the no-memory embedding), with
    gradients."""
    ve = model.vision_encoder
    fpn, _ = ve.neck([f.float().permute(0, 2, 3, 1) for f in feats])
    fpn = list(fpn[-ve.num_feature_levels:][::-1])
    fpn[0] = model.mask_decoder.conv_s0(fpn[0])
    fpn[1] = model.mask_decoder.conv_s1(fpn[1])
    fpn[-1] = fpn[-1] + model.no_memory_embedding.view(1, -1, 1, 1)
    return fpn


def image_step(model, data: ImageSet, feats: list, rng, batch: int = 16, objects: int = 2,
               locate: bool = False):
    """One batch of the image stage: loss, mean IoU of the best candidate, how often the
    candidate with the highest predicted IoU is the best one, and the single mask's mean IoU
    (the figure that shows whether the prompt is used: the best of three candidates can
    score well by covering a different shape each).

    `locate` is the warm-up task: one positive click on each of two different shapes of
    images that have several, single-mask output only, so that the only way down is to find
    the clicked shape."""
    import torch  # heavy: imported on first use
    if locate:
        several = np.flatnonzero(np.array([len(m) for m in data.masks]) >= objects)
        idx = several[rng.integers(len(several), size=batch)]
        kind, n_clicks = "click", 1
    else:
        idx = rng.integers(len(data.masks), size=batch)
        kind = PROMPT_KINDS[int(rng.choice(4, p=[0.35, 0.25, 0.2, 0.2]))]
        n_clicks = int(rng.integers(2, 5))
    points, labels, targets = [], [], []
    for i in idx:
        masks = data.masks[i]
        # different objects of one image where it has enough: the prompt must tell them apart
        chosen = (rng.permutation(len(masks))[:objects] if len(masks) >= objects
                  else rng.integers(len(masks), size=objects))
        rows = [sample_prompts(masks[k], kind, rng, n_clicks) for k in chosen]
        points.append([[(x, y) for x, y, _ in r] for r in rows])
        labels.append([[lab for _, _, lab in r] for r in rows])
        targets.append(np.stack([masks[k] for k in chosen]))
    sel = torch.as_tensor(idx)
    embed = embeddings_from_features(model, [f[sel] for f in feats])
    target = loss_size(torch.as_tensor(np.stack(targets)).float())
    kw = dict(image_embeddings=embed, input_points=torch.tensor(points),
              input_labels=torch.tensor(labels))
    loss_single, iou_single, _ = decoder_loss(model(multimask_output=False, **kw), target, False)
    if locate:
        return loss_single, float("nan"), float("nan"), iou_single
    loss, iou, ranked = decoder_loss(model(multimask_output=True, **kw), target, True)
    return loss + 0.5 * loss_single, iou, ranked, iou_single


def _cosine(step: int, total: int, warmup: int = 100) -> float:
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))


def _trainable(model, frozen_prefixes: tuple[str, ...]):
    params = []
    for name, p in model.named_parameters():
        p.requires_grad = not name.startswith(frozen_prefixes)
        if p.requires_grad:
            params.append(p)
    return params


def train_images(model, data: ImageSet, feats: list, steps: int, lr: float = 1e-3,
                 seed: int = 0, log=print, run=None, locate_steps: int = 0) -> None:
    """Stage 1: neck, prompt encoder and mask decoder on the frozen backbone's features; the
    first `locate_steps` on the warm-up task (`image_step(locate=True)`). Without it the
    decoder settled on segmenting every shape of the image whatever the prompt (single-mask
    IoU flat at 0.37 for 900 steps of the full mix), while the warm-up task alone made it use
    the click within 300 steps."""
    import torch  # heavy: imported on first use
    params = _trainable(model, ("vision_encoder.backbone",))
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
    base = [lr]
    rng = np.random.default_rng(seed)
    model.train()
    t0, recent = time.time(), []
    for step in range(steps):
        for g, b in zip(opt.param_groups, base):
            g["lr"] = b * _cosine(step, steps)
        loss, iou, ranked, single = image_step(model, data, feats, rng,
                                               locate=step < locate_steps)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        recent.append((loss.item(), iou, ranked, single))
        if run is not None:
            row = {"image/loss": loss.item(), "image/train_iou": iou,
                   "image/single_mask_iou": single, "image/top_ranked_is_best": ranked,
                   "image/lr": opt.param_groups[0]["lr"]}
            run.log({k: v for k, v in row.items() if not math.isnan(v)}, step=step)
        if (step + 1) % 100 == 0:
            with warnings.catch_warnings():     # the warm-up has no candidates to rank
                warnings.simplefilter("ignore", RuntimeWarning)
                lo, io, ra, si = np.nanmean(recent, axis=0)
            log(f"image step {step + 1}/{steps}: loss {lo:.3f}, best-candidate IoU {io:.3f}, "
                f"single-mask IoU {si:.3f}, top-ranked is best {ra:.2f}, "
                f"{time.time() - t0:.0f} s")
            recent = []
    model.eval()


def _session(model, feats, pos, frames: list[int]):
    """A transformers inference session over `frames` of a clip, its features precomputed."""
    import torch  # heavy: imported on first use
    from transformers.models.edgetam_video.modeling_edgetam_video import (
        EdgeTamVideoInferenceSession,
    )  # heavy: imported on first use
    session = EdgeTamVideoInferenceSession(video=torch.zeros(len(frames), 3, 1, 1),
                                           video_height=SIZE, video_width=SIZE,
                                           dtype=torch.float32,
                                           max_vision_features_cache_size=len(frames))
    for i, f in enumerate(frames):
        session.cache.cache_vision_features(i, {
            "vision_feats": [lvl[:, f:f + 1].float() for lvl in feats],
            "vision_pos_embeds": pos})
    return session


def video_step(model, proc, clips: ClipSet, pos, rng, length: int = 8):
    """One clip of the video stage through the model's own per-frame step: prompt one object
    (a box or a click) on the first frame, track it through `length` frames with memory, and
    score every later frame (mask where the object is visible, object score everywhere).
    Returns (loss, mean IoU on visible frames)."""
    import torch  # heavy: imported on first use
    import torch.nn.functional as F  # heavy: imported on first use
    c = int(rng.integers(len(clips.masks)))
    masks, n = clips.masks[c], len(clips.masks[c])
    stride = int(rng.integers(1, 4))
    k = int(rng.integers(3))
    starts = [f for f in range(clips.first[c][k], n - stride * (length - 1))
              if k in masks[f] and masks[f][k].sum() > 40]
    if not starts:
        return None, float("nan")
    f0 = int(rng.choice(starts))
    frames = [f0 + i * stride for i in range(length)]
    session = _session(model, clips.feats[c], pos, frames)
    truth0 = masks[f0][k]
    kind = "box" if rng.random() < 0.6 else "click"
    prompt = sample_prompts(truth0, kind, rng)
    if kind == "box":
        kw = {"input_boxes": [[[prompt[0][0], prompt[0][1], prompt[1][0], prompt[1][1]]]]}
    else:
        kw = {"input_points": [[[[prompt[0][0], prompt[0][1]]]]], "input_labels": [[[1]]]}
    proc.add_inputs_to_inference_session(inference_session=session, frame_idx=0, obj_ids=1,
                                         original_size=(SIZE, SIZE), **kw)
    losses, ious = [], []
    for i, f in enumerate(frames):
        cond = i == 0
        out = model._run_single_frame_inference(
            inference_session=session, frame_idx=i, obj_idx=0, batch_size=1,
            is_init_cond_frame=cond,
            point_inputs=session.point_inputs_per_obj[0].get(0) if cond else None,
            mask_inputs=None, reverse=False, run_mem_encoder=True)
        session.store_output(0, i, output_value=out, is_conditioning_frame=cond)
        if not cond:
            session.frames_tracked_per_obj[0][i] = {"reverse": False}
        truth = masks[f].get(k)
        visible = truth is not None and truth.sum() > 0
        score = out["object_score_logits"].reshape(-1)[:1]
        losses.append(F.binary_cross_entropy_with_logits(
            score, torch.full_like(score, float(visible))))
        if visible:
            target = loss_size(torch.as_tensor(truth, dtype=torch.float32)[None])
            logits = F.interpolate(out["pred_masks"].reshape(1, 1, *out["pred_masks"].shape[-2:]),
                                   size=target.shape[-2:], mode="bilinear", align_corners=False)[0]
            focal, dice = mask_losses(logits, target)
            losses.append(20 * focal.mean() + dice.mean())
            if not cond:
                ious.append(float(true_iou(logits.detach(), target).mean()))
    session.obj_with_new_inputs.clear()
    return torch.stack([loss.reshape(()) for loss in losses]).sum() / length, \
        float(np.mean(ious)) if ious else float("nan")


def train_video(model, proc, clips: ClipSet, images: ImageSet, image_feats: list, steps: int,
                lr: float = 5e-4, seed: int = 0, log=print, run=None, step0: int = 0,
                decoder_lr_scale: float = 0.1) -> None:
    """Stage 2: the memory path (and, at a tenth of the rate, the mask decoder) on clips, an
    image batch every other step so the prompt path keeps its quality."""
    import torch  # heavy: imported on first use
    memory, decoder = [], []
    for name, p in model.named_parameters():
        is_decoder = name.startswith("mask_decoder") and not name.startswith("mask_decoder.conv_s")
        p.requires_grad = name.startswith(MEMORY_PATH) or is_decoder
        if p.requires_grad:
            (decoder if is_decoder else memory).append(p)
    image_model = image_view(model)
    base = [lr, lr * decoder_lr_scale]
    opt = torch.optim.AdamW([{"params": memory, "lr": base[0]},
                             {"params": decoder, "lr": base[1]}], weight_decay=1e-4)
    pos = None
    rng = np.random.default_rng(seed)
    model.eval()   # dropout off, the model's inference branches; gradients still flow
    t0, recent = time.time(), []
    for step in range(steps):
        for g, b in zip(opt.param_groups, base):
            g["lr"] = b * _cosine(step, steps)
        if pos is None:
            with torch.no_grad():
                dummy = torch.zeros(1, 3, SIZE, SIZE)
                pos = [p.float() for p in model.get_image_features(
                    dummy, return_dict=True).fpn_position_encoding]
        loss, iou = video_step(model, proc, clips, pos, rng)
        if loss is None:
            continue
        if step % 2 == 0:
            img_loss, *_ = image_step(image_model, images, image_feats, rng, batch=8,
                                        objects=1)
            loss = loss + 0.5 * img_loss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(memory + decoder, 1.0)
        opt.step()
        recent.append((loss.item(), iou))
        if run is not None:
            run.log({"video/loss": loss.item(), "video/train_iou": iou}, step=step0 + step)
        if (step + 1) % 50 == 0:
            lo, io = np.nanmean(recent, axis=0)
            log(f"video step {step + 1}/{steps}: loss {lo:.3f}, tracked IoU {io:.3f}, "
                f"{time.time() - t0:.0f} s")
            recent = []
