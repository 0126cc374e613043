"""The demo segmenter's training code: prompts as the page makes them, the training path equal
to the inference path, and a few-step run of the whole recipe into a loadable folder."""

import json

import numpy as np
import pytest
import torch

from lib.demo import synth
from lib.models import checkpoints, registry
from lib.segmentation import segment, segment_video
from lib.training import sam_data, sam_losses, sam_model, sam_stages, train_sam


@pytest.fixture(scope="module")
def shape():
    _, objects = synth.make_image(np.random.default_rng(3), 256, 1)
    return objects[0][1]


@pytest.mark.parametrize("kind", sam_data.PROMPT_KINDS)
def test_prompts_are_sampled_from_the_mask(shape, kind):
    rng = np.random.default_rng(0)
    ys, xs = np.nonzero(shape)
    for _ in range(20):
        points = sam_data.sample_prompts(shape, kind, rng)
        for x, y, label in points:
            if label == 1:
                assert shape[int(y), int(x)]                 # positives inside
            elif label == 0:
                assert not shape[int(y), int(x)]             # negatives outside
        corners = [(x, y) for x, y, lab in points if lab in (2, 3)]
        if kind.startswith("box"):
            (x0, y0), (x1, y1) = corners
            w, h = xs.max() - xs.min(), ys.max() - ys.min()
            assert abs(x0 - xs.min()) <= 0.1 * w + 1 and abs(y1 - ys.max() - 1) <= 0.1 * h + 1
        else:
            assert not corners


def test_a_box_as_corner_points_is_the_processors_box():
    """Training encodes a box as two points labelled 2 and 3; the page sends `input_boxes`.
    The prompt encoder must give the same result both ways."""
    model = sam_model.new_image_model().eval()
    with torch.no_grad():
        pts = model.prompt_encoder(torch.tensor([[[[10.0, 20.0], [100.0, 150.0]]]]),
                                   torch.tensor([[[2, 3]]]), None, None)[0]
        box = model.prompt_encoder(None, None, torch.tensor([[[10.0, 20.0, 100.0, 150.0]]]),
                                   None)[0]
    assert torch.allclose(pts, box, atol=1e-6)


def test_training_features_equal_the_models_own_embeddings():
    """Stage 1 trains on cached backbone features; what it feeds the decoder must be what
    `EdgeTamModel.get_image_embeddings` (the page's path) computes."""
    model = sam_model.new_image_model().eval()
    data = sam_data.make_images(3, 0, sam_model.processor(), log=None)
    feats = sam_stages.backbone_features(model, data.pixels)
    with torch.no_grad():
        ref = model.get_image_embeddings(data.pixels.float())
        ours = sam_stages.embeddings_from_features(model, feats)
    for a, b in zip(ref, ours):
        assert a.shape == b.shape and torch.allclose(a, b, atol=2e-2)   # features kept in fp16


def test_prompt_and_image_positions_share_one_encoding():
    """A fresh transformers EdgeTAM draws its prompt and image positional encodings apart;
    trained that way, a click's position means nothing (the model learned to segment the most
    salient shape whatever was clicked). The demo model ties them, as SAM has them."""
    model = sam_model.new_image_model()
    assert torch.equal(model.prompt_encoder.shared_embedding.positional_embedding,
                       model.shared_image_embedding.positional_embedding)


def test_image_content_starts_no_louder_than_the_positional_encoding():
    """The decoder finds a prompted shape by matching positional encodings (norm 8 per
    location) that ride on the image embedding. A default neck on Lite0's features starts at
    about 36 and the decoder never learned to use the prompt; the demo model starts it at the
    encoding's scale."""
    model = sam_model.new_image_model().eval()
    data = sam_data.make_images(8, 0, sam_model.processor(), log=None)
    with torch.no_grad():
        embedding = model.get_image_embeddings(data.pixels.float())[-1]
        pe = model.get_image_wide_positional_embeddings()
    varying = embedding - embedding.mean(dim=(2, 3), keepdim=True)  # what attention can see
    assert varying.norm(dim=1).mean() < 1.5 * pe.norm(dim=1).mean()


@pytest.mark.slow
def test_warm_up_batches_click_different_shapes_of_one_image():
    data = sam_data.make_images(12, 0, sam_model.processor(), log=None)
    model = sam_model.new_image_model().eval()
    feats = sam_stages.backbone_features(model, data.pixels)
    seen = []
    real = sam_losses.decoder_loss

    def spy(out, target, multimask):
        seen.append((target.shape, multimask))
        targets.append(target)
        return real(out, target, multimask)
    targets = []
    sam_stages.decoder_loss = spy            # the stage calls the loss by this name
    try:
        loss, _, _, single = sam_stages.image_step(model, data, feats, np.random.default_rng(0),
                                                   batch=4, locate=True)
    finally:
        sam_stages.decoder_loss = real
    size = sam_losses.LOSS_SIZE
    assert seen == [((4, 2, size, size), False)]   # single mask only
    for pair in targets[0]:                                        # two different shapes
        assert pair[0].sum() > 0 and pair[1].sum() > 0 and not torch.equal(pair[0], pair[1])
    assert loss.requires_grad and 0 <= single <= 1


def test_the_backbone_starts_from_the_packaged_imagenet_weights():
    import timm
    spec = next(s for s in registry.builtin_specs()
                if s.source == "package" and s.arch == sam_model.BACKBONE)
    state = registry.package_state_dict(
        spec, timm.create_model(sam_model.BACKBONE, num_classes=1000))
    body = sam_model.new_image_model().vision_encoder.backbone.timm_model.state_dict()
    assert torch.equal(body["conv_stem.weight"], state["conv_stem.weight"])
    video = sam_model.video_model_from(sam_model.new_image_model())
    assert torch.isfinite(video.spatial_perceiver.latents_2d).all()   # initialised, not empty


@pytest.mark.slow
def test_few_step_recipe_writes_a_folder_both_models_load(tmp_path):
    """The whole recipe at toy size: a transformers folder with its processor, a manifest the
    registry reads as a segmentation checkpoint, measured figures and an offline W&B run."""
    recipe = {"images": 12, "image_steps": 2, "locate_steps": 1, "clips": 2, "clip_frames": 8,
              "video_steps": 2}
    folder = train_sam.demo_segmenter(tmp_path, recipe, log=lambda s: None,
                              measure_on={"images": 2, "clips": 1},
                              save_stage1=tmp_path / "stage1")
    ckpt = checkpoints.read_checkpoint(folder)
    assert ckpt.ok and ckpt.task == "segmentation"
    manifest = json.loads((folder / "model.json").read_text())
    assert manifest["recipe"]["image_steps"] == 2 and manifest["command"].endswith(
        "demo-segmenter")
    assert set(manifest["metrics"]) >= {"click_iou", "box_iou", "video_J", "point_J"}
    assert manifest["check"] == {"images": 2, "clips": 1, **manifest["metrics"]}
    assert list((folder / "wandb").glob("offline-run-*/run-*.wandb"))
    spec = registry.checkpoint_spec(ckpt)
    seg = segment.build_segmenter(spec, device="cpu")
    video = segment_video.build_video_model(spec, device="cpu")
    assert type(seg.model).__name__ == "EdgeTamModel"
    assert type(video.model).__name__ == "EdgeTamVideoModel"
    assert next(seg.model.parameters()).dtype == torch.float32   # stored in half, run in full
    assert torch.equal(seg.model.mask_decoder.iou_prediction_head.proj_out.weight,
                       video.model.mask_decoder.iou_prediction_head.proj_out.weight)
    for model in (seg.model, video.model):
        assert torch.equal(model.prompt_encoder.shared_embedding.positional_embedding,
                           model.shared_image_embedding.positional_embedding)
    # the kept stage 1 is the image model the video stage started from
    from transformers import EdgeTamModel
    stage1 = EdgeTamModel.from_pretrained(tmp_path / "stage1")
    assert torch.equal(stage1.prompt_encoder.point_embed.weight.half().float(),
                       seg.model.prompt_encoder.point_embed.weight)   # not trained in stage 2


def test_measure_flag_measures_the_folder_and_trains_nothing(tmp_path, monkeypatch):
    """`lib.train demo-segmenter --measure` records the figures of OUT/demo-segmenter again
    (after a change to tracking) and starts no training."""
    from lib.training import sam_measure, train
    calls = []
    monkeypatch.setattr(sam_measure, "record", lambda folder, *a, **k: calls.append(folder))
    monkeypatch.setattr(train_sam, "demo_segmenter", lambda *a, **k: calls.append("trained"))
    assert train.main(["demo-segmenter", "--out", str(tmp_path), "--measure"]) == 0
    assert calls == [tmp_path / train_sam.NAME]
