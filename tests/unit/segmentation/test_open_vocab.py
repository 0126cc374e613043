"""Text grounders (Florence-2, OWLv2, Grounding DINO, SAM 3 through transformers) on tiny
random configurations, as the SAM 2 path is tested: the page's code runs end to end, boxes come back
inside the image labelled with the typed terms, bad text is refused, and text tracking through
a clip takes them. (Their real weights cannot be fetched here; random boxes mean nothing.)"""

import json

import numpy as np
import pytest
import torch

from lib.core.errors import PromptError
from lib.models import registry
from lib.segmentation import classical, grounding, text_track
from lib.segmentation.segment_video import open_clip

IMAGE = np.random.default_rng(0).integers(0, 255, (48, 80, 3), dtype=np.uint8)


def tiny_owlv2(tmp_path):
    from transformers import (
        CLIPTokenizer,
        Owlv2Config,
        Owlv2ForObjectDetection,
        Owlv2ImageProcessor,
        Owlv2Processor,
    )
    vocab = {"!": 0}                  # OWL treats a query whose first id is 0 as padding
    for c in "abcdefghijklmnopqrstuvwxyz":
        vocab[c], vocab[c + "</w>"] = len(vocab), len(vocab) + 1
    vocab["<|startoftext|>"], vocab["<|endoftext|>"] = len(vocab), len(vocab) + 1
    (tmp_path / "vocab.json").write_text(json.dumps(vocab))
    (tmp_path / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(str(tmp_path / "vocab.json"), str(tmp_path / "merges.txt"),
                              pad_token="<|endoftext|>", model_max_length=16)
    torch.manual_seed(0)
    config = Owlv2Config(
        text_config=dict(vocab_size=len(vocab), hidden_size=32, intermediate_size=37,
                         num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=16,
                         bos_token_id=len(vocab) - 2, eos_token_id=len(vocab) - 1,
                         pad_token_id=len(vocab) - 1),
        vision_config=dict(image_size=64, patch_size=16, hidden_size=32, intermediate_size=37,
                           num_hidden_layers=1, num_attention_heads=2), projection_dim=32)
    processor = Owlv2Processor(image_processor=Owlv2ImageProcessor(
        size={"height": 64, "width": 64}), tokenizer=tokenizer)
    return grounding.OpenVocabGrounder("tiny-owlv2", Owlv2ForObjectDetection(config).eval(),
                                       processor, untrained=True, threshold=0.0)


def tiny_grounding_dino(tmp_path):
    from transformers import (
        BertConfig,
        BertTokenizer,
        GroundingDinoConfig,
        GroundingDinoForObjectDetection,
        GroundingDinoImageProcessor,
        GroundingDinoProcessor,
        SwinConfig,
    )
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", "star", "circle", "logo"]
    (tmp_path / "vocab.txt").write_text("\n".join(words) + "\n")
    torch.manual_seed(0)
    config = GroundingDinoConfig(
        backbone_config=SwinConfig(image_size=64, patch_size=4, embed_dim=16, depths=[1, 1],
                                   num_heads=[1, 1], window_size=2,
                                   out_features=["stage1", "stage2"]),
        text_config=BertConfig(vocab_size=len(words), hidden_size=32, num_hidden_layers=1,
                               num_attention_heads=2, intermediate_size=37,
                               max_position_embeddings=64),
        d_model=32, encoder_layers=1, decoder_layers=2, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, num_queries=10,
        num_feature_levels=2, encoder_n_points=2, decoder_n_points=2, max_text_len=32)
    processor = GroundingDinoProcessor(
        image_processor=GroundingDinoImageProcessor(size={"shortest_edge": 64,
                                                          "longest_edge": 96}),
        tokenizer=BertTokenizer(str(tmp_path / "vocab.txt")))
    return grounding.OpenVocabGrounder("tiny-grounding-dino",
                                       GroundingDinoForObjectDetection(config).eval(),
                                       processor, untrained=True, threshold=0.0)


def tiny_sam3(tmp_path):
    from transformers import Sam3Config, Sam3ImageProcessor, Sam3Model, Sam3Processor
    owl = tiny_owlv2(tmp_path)                  # the same tiny CLIP tokenizer
    tokenizer = owl.processor.tokenizer
    tokenizer.model_max_length = 32
    n, h = len(tokenizer.get_vocab()), 32
    torch.manual_seed(0)
    config = Sam3Config(
        vision_config=dict(fpn_hidden_size=h, backbone_feature_sizes=[[16, 16], [8, 8], [4, 4]],
                           backbone_config=dict(
                               model_type="sam3_vit_model", hidden_size=h, intermediate_size=37,
                               num_hidden_layers=2, num_attention_heads=2, image_size=56,
                               patch_size=14, window_size=2, global_attn_indexes=[1],
                               pretrain_image_size=28)),
        text_config=dict(vocab_size=n, hidden_size=h, intermediate_size=37, projection_dim=h,
                         num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=32,
                         bos_token_id=n - 2, eos_token_id=n - 1, pad_token_id=n - 1),
        geometry_encoder_config=dict(hidden_size=h, num_layers=1, num_attention_heads=2,
                                     intermediate_size=37),
        detr_encoder_config=dict(hidden_size=h, num_layers=1, num_attention_heads=2,
                                 intermediate_size=37),
        detr_decoder_config=dict(hidden_size=h, num_layers=1, num_queries=10,
                                 num_attention_heads=2, intermediate_size=37),
        mask_decoder_config=dict(hidden_size=h, num_attention_heads=2))
    processor = Sam3Processor(image_processor=Sam3ImageProcessor(size={"height": 56, "width": 56}),
                              tokenizer=tokenizer)
    return grounding.Sam3Grounder("tiny-sam3", Sam3Model(config).eval(), processor,
                                  untrained=True, threshold=0.0)


def tiny_florence2(tmp_path):
    from transformers import (
        BartTokenizer,
        CLIPImageProcessor,
        Florence2Config,
        Florence2ForConditionalGeneration,
        Florence2Processor,
    )
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "<image>": 4}
    for c in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_<>.:Ġ":
        vocab[c] = len(vocab)
    (tmp_path / "vocab.json").write_text(json.dumps(vocab))
    (tmp_path / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = BartTokenizer(str(tmp_path / "vocab.json"), str(tmp_path / "merges.txt"),
                              extra_special_tokens={"image_token": "<image>"})
    tokenizer.add_tokens([f"<loc_{i}>" for i in range(1000)], special_tokens=True)
    images = CLIPImageProcessor(size={"height": 64, "width": 64}, do_center_crop=False)
    images.image_seq_length = 65               # 8 x 8 patches and one more
    processor = Florence2Processor(image_processor=images, tokenizer=tokenizer,
                                   post_processor_config={"phrase_grounding": {}})
    torch.manual_seed(0)
    config = Florence2Config(
        vision_config=dict(depths=[1, 1], patch_size=[7, 3], patch_stride=[4, 2],
                           patch_padding=[3, 1], patch_prenorm=[False, True], embed_dim=[16, 32],
                           num_heads=[1, 2], num_groups=[1, 2], window_size=2, projection_dim=32),
        text_config=dict(vocab_size=len(tokenizer), d_model=32, encoder_layers=1,
                         decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2,
                         encoder_ffn_dim=37, decoder_ffn_dim=37, max_position_embeddings=512),
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"))
    return grounding.Grounder("tiny-florence-2", Florence2ForConditionalGeneration(config).eval(),
                              processor, untrained=True)


def test_florence2_phrase_grounding_runs_end_to_end(tmp_path):
    """Florence-2's caption-to-phrase grounding: generated, parsed, boxes inside the image
    (random weights: the boxes and their labels mean nothing); bad text refused."""
    florence = tiny_florence2(tmp_path)
    regions = florence.boxes(IMAGE, "star")
    assert regions and all(0 <= r.box[0] <= r.box[2] <= 80 and 0 <= r.box[1] <= r.box[3] <= 48
                           for r in regions)
    with pytest.raises(PromptError, match="at most 10 things"):
        florence.boxes(IMAGE, ", ".join(["logo"] * 11))


@pytest.fixture(params=[tiny_owlv2, tiny_grounding_dino, tiny_sam3],
                ids=["owlv2", "grounding-dino", "sam3"])
def grounder(request, tmp_path):
    return request.param(tmp_path)


def test_boxes_inside_the_image_labelled_with_the_terms(grounder):
    regions = grounder.boxes(IMAGE, "Star, circle")
    assert regions and {r.label for r in regions} <= {"star", "circle"}
    for r in regions:
        x0, y0, x1, y1 = r.box
        assert 0 <= x0 <= x1 <= 80 and 0 <= y0 <= y1 <= 48


@pytest.mark.parametrize("phrase, message", [
    ("  ", "Type what to find"), (", ,", "Type what to find"),
    (", ".join(["logo"] * 11), "at most 10 things"), ("x" * 300, "at most 10 things")])
def test_bad_text_is_refused_before_the_model_runs(grounder, phrase, message):
    with pytest.raises(PromptError, match=message):
        grounder.boxes(IMAGE, phrase)


def test_owlv2_boxes_are_on_the_padded_square(tmp_path, monkeypatch):
    """OWLv2 pads an image to a square before it predicts: its boxes are scaled to that
    square (80 x 80 here), not squashed onto the 80 x 48 image."""
    grounder = tiny_owlv2(tmp_path)
    seen = []
    real = grounder.processor.post_process_grounded_object_detection

    def spy(out, threshold, target_sizes, text_labels):
        seen.append(target_sizes)
        return real(out, threshold=threshold, target_sizes=target_sizes,
                    text_labels=text_labels)
    monkeypatch.setattr(grounder.processor, "post_process_grounded_object_detection", spy)
    grounder.boxes(IMAGE, "logo")
    assert seen == [[(80, 80)]]


def test_text_tracking_through_a_clip_takes_them(grounder, tmp_path):
    from lib.demo import synth
    clips = synth.write_clips(tmp_path / "clips", 1, frames=8, size=64, seed=0)
    tracker = classical.FlowTracker(open_clip(clips / "clip000.mp4"))
    grounder.threshold = 0.5          # a few random boxes, not every query
    done = text_track.ground_through(tracker, grounder, "star", 4)
    assert done.frames == [0, 4]
    assert all(label == "star" for _, _, label in done.started)


@pytest.mark.parametrize("name", ["google/owlv2-base-patch16-ensemble",
                                  "IDEA-Research/grounding-dino-tiny", "facebook/sam3"])
def test_missing_weights_name_the_fetch_command(name, monkeypatch):
    monkeypatch.setattr(registry, "hub_reachable", lambda timeout=2.0: False)
    with pytest.raises(registry.WeightsMissingError, match="lib.weights fetch"):
        grounding.build_grounder(registry.find(name), "cpu")
    assert name in [n for n, _ in grounding.grounder_choices()]
