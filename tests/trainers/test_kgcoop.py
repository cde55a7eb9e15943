"""KgCoOp: the knowledge-guided loss term by hand and against CLIP's own ``encode_text``; the
release's unused checkpoint keys; one trainer step; base -> new evaluation from a checkpoint."""

from __future__ import annotations

import pytest
import torch
from tiny_clip import tiny_clip
from torch.nn import functional as F
from yacs.config import CfgNode as CN

import clip
from trainers import coop, kgcoop
from trainers.common import class_texts, encode_texts

torch.set_num_threads(1)
CLASSNAMES = ["cat", "big_dog", "tree frog"]


def make_cfg(n_ctx: int = 4, ctx_init: str = "a photo of a") -> CN:
    cfg = CN()
    cfg.TRAINER = CN()
    coop.add_config(cfg)
    kgcoop.add_config(cfg)
    cfg.TRAINER.KGCOOP.N_CTX = n_ctx
    cfg.TRAINER.KGCOOP.CTX_INIT = ctx_init
    return cfg


def test_knowledge_guided_loss_by_hand():
    learned = torch.tensor([[3.0, 4.0], [1.0, 0.0]])
    hand = torch.tensor([[4.0, 3.0], [0.0, 2.0]])
    # cos = (12 + 12) / (5 * 5) = 0.96 and 0 / (1 * 2) = 0 -> 1 - (0.96 + 0) / 2 = 0.52
    torch.testing.assert_close(kgcoop.knowledge_guided_loss(learned, hand), torch.tensor(0.52))
    # identical directions cost nothing, opposite ones cost 2; fp16 inputs are handled in fp32
    torch.testing.assert_close(kgcoop.knowledge_guided_loss(hand, 3 * hand), torch.tensor(0.0))
    torch.testing.assert_close(
        kgcoop.knowledge_guided_loss(-learned.half(), learned.half()), torch.tensor(2.0)
    )


def build_model(clip_model, template: str, n_ctx: int = 4, ctx_init: str = "a photo of a"):
    hand = encode_texts(clip_model, class_texts(template, CLASSNAMES), torch.device("cpu"))
    return kgcoop.CustomCLIP(make_cfg(n_ctx, ctx_init), CLASSNAMES, clip_model, hand)


def test_training_mode_returns_logits_and_the_knowledge_term_of_clip_features():
    torch.manual_seed(0)
    clip_model = tiny_clip()
    model = build_model(clip_model, "a photo of a {}, a type of texture.")
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        model.prompt_learner.train()
        logits, score = model(images)
        model.prompt_learner.eval()
        eval_logits = model(images)

        # the context starts as "a photo of a", so the learned features are CLIP's features of
        # "a photo of a <name>."; the hand-crafted ones are CLIP's features of the template
        learned = F.normalize(
            clip_model.encode_text(
                clip.tokenize(
                    ["a photo of a cat.", "a photo of a big dog.", "a photo of a tree frog."]
                )
            ),
            dim=-1,
        )
        hand = F.normalize(
            clip_model.encode_text(
                clip.tokenize(
                    [
                        "a photo of a cat, a type of texture.",
                        "a photo of a big dog, a type of texture.",
                        "a photo of a tree frog, a type of texture.",
                    ]
                )
            ),
            dim=-1,
        )
        image_features = F.normalize(clip_model.encode_image(images), dim=-1)

    expected_score = 1 - sum((learned[c] * hand[c]).sum() for c in range(3)) / 3
    assert expected_score > 1e-3  # the two prompts differ, so the term is not trivially 0
    torch.testing.assert_close(score, expected_score, rtol=1e-4, atol=1e-5)
    expected_logits = 100.0 * image_features @ learned.t()
    torch.testing.assert_close(logits, expected_logits, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(eval_logits, expected_logits, rtol=1e-4, atol=1e-4)


def test_hand_crafted_features_are_not_in_checkpoints_and_must_match_the_classes():
    clip_model = tiny_clip()
    model = build_model(clip_model, "a photo of a {}.")
    assert set(model.prompt_learner.state_dict()) == {"ctx", "token_prefix", "token_suffix"}
    assert "text_features_hand" not in model.state_dict()
    hand = encode_texts(clip_model, ["a photo of a cat."], torch.device("cpu"))
    with pytest.raises(ValueError, match="1 hand-crafted text features for 3 classes"):
        kgcoop.CustomCLIP(make_cfg(), CLASSNAMES, clip_model, hand)
