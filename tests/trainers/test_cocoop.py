"""CoCoOp: the meta-net bias, per-image prompts and logits against hand computations and CLIP's own
``encode_text``; the training loss; one trainer step; base -> new evaluation from a checkpoint."""

from __future__ import annotations

import copy

import pytest
import torch
from tiny_clip import tiny_clip
from torch.nn import functional as F
from yacs.config import CfgNode as CN

import clip
from trainers import cocoop, coop

torch.set_num_threads(1)
CLASSNAMES = ["cat", "big_dog", "tree frog"]


def make_cfg(n_ctx: int = 4, ctx_init: str = "") -> CN:
    cfg = CN()
    cfg.TRAINER = CN()
    coop.add_config(cfg)
    cocoop.add_config(cfg)
    cfg.TRAINER.COCOOP.N_CTX = n_ctx
    cfg.TRAINER.COCOOP.CTX_INIT = ctx_init
    return cfg


def set_meta_net_by_hand(meta_net: torch.nn.Module) -> None:
    """linear1: h0 = x0, h1 = -x1 + 0.5; linear2: every output dim = h0 + 2 h1 + 0.25."""
    with torch.no_grad():
        meta_net.linear1.weight.zero_()
        meta_net.linear1.weight[0, 0] = 1.0
        meta_net.linear1.weight[1, 1] = -1.0
        meta_net.linear1.bias.copy_(torch.tensor([0.0, 0.5]))
        meta_net.linear2.weight.zero_()
        meta_net.linear2.weight[:, 0] = 1.0
        meta_net.linear2.weight[:, 1] = 2.0
        meta_net.linear2.bias.fill_(0.25)


def test_meta_net_layout_matches_the_official_checkpoints():
    learner = cocoop.PromptLearner(make_cfg(), CLASSNAMES, tiny_clip())
    shapes = {k: tuple(v.shape) for k, v in learner.state_dict().items()}
    # tiny CLIP: vis_dim (embed dim) 32 -> 32 // 16 = 2 hidden units -> ctx_dim (text width) 128
    assert shapes == {
        "ctx": (4, 128),
        "meta_net.linear1.weight": (2, 32),
        "meta_net.linear1.bias": (2,),
        "meta_net.linear2.weight": (128, 2),
        "meta_net.linear2.bias": (128,),
        "token_prefix": (3, 1, 128),
        "token_suffix": (3, 77 - 1 - 4, 128),
    }
    assert isinstance(learner.meta_net.relu, torch.nn.ReLU)


def test_meta_net_bias_and_per_image_prompts_by_hand():
    clip_model = tiny_clip()
    learner = cocoop.PromptLearner(make_cfg(n_ctx=4), CLASSNAMES, clip_model)
    set_meta_net_by_hand(learner.meta_net)
    im_features = torch.zeros(3, 32)
    im_features[0, :2] = torch.tensor([2.0, 1.0])  # h = relu(2, -0.5) = (2, 0)   -> bias 2.25
    im_features[1, :2] = torch.tensor([-1.0, -3.0])  # h = relu(-1, 3.5) = (0, 3.5) -> bias 7.25
    im_features[2, :2] = torch.tensor([-1.0, 1.0])  # h = relu(-1, -0.5) = (0, 0) -> bias 0.25
    expected_bias = torch.tensor([2.25, 7.25, 0.25])

    contexts = learner(im_features)
    assert contexts.shape == (3, 4, 128)
    for b in range(3):
        torch.testing.assert_close(contexts[b], learner.ctx + expected_bias[b], rtol=0, atol=1e-6)

    # prompts of image b: CLIP's token embeddings of "X X X X <name>." with the X rows replaced by
    # that image's context
    tokens = clip.tokenize(["X X X X cat.", "X X X X big dog.", "X X X X tree frog."])
    with torch.no_grad():
        embedded = clip_model.token_embedding(tokens)  # (3, 77, 128)
    for b in range(3):
        prompts = learner.class_prompts(contexts[b])  # (n_cls, 77, 128)
        expected = embedded.clone()
        expected[:, 1:5] = contexts[b].detach()
        torch.testing.assert_close(prompts.detach(), expected, rtol=0, atol=0)


def test_ctx_init_words_give_their_token_embeddings():
    clip_model = tiny_clip()
    learner = cocoop.PromptLearner(
        make_cfg(n_ctx=16, ctx_init="a photo of a"), CLASSNAMES, clip_model
    )
    with torch.no_grad():
        words = clip_model.token_embedding(clip.tokenize("a photo of a"))[0, 1:5]
    assert learner.n_ctx == 4
    torch.testing.assert_close(learner.ctx.detach(), words, rtol=0, atol=0)


def shifted_clip(clip_model, bias: torch.Tensor):
    """A copy of ``clip_model`` whose token rows for "a", "photo", "of" are shifted by ``bias``:
    its ``encode_text("a photo of a <name>.")`` is CoCoOp's text feature for an image whose
    meta-net output is ``bias`` (context initialised from "a photo of a")."""
    shifted = copy.deepcopy(clip_model)
    rows = clip.tokenize("a photo of")[0, 1:4]
    with torch.no_grad():
        shifted.token_embedding.weight[rows] += bias
    return shifted


def test_logits_use_each_images_own_prompts():
    torch.manual_seed(0)
    clip_model = tiny_clip()
    model = cocoop.CustomCLIP(make_cfg(ctx_init="a photo of a"), CLASSNAMES, clip_model).eval()
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        logits = model(images)
        image_features = F.normalize(clip_model.encode_image(images), dim=-1)  # (2, 32)
        biases = model.prompt_learner.meta_net(image_features)  # (2, 128)
    assert (biases[0] - biases[1]).abs().max() > 1e-3  # the two images get different prompts

    texts = clip.tokenize(["a photo of a cat.", "a photo of a big dog.", "a photo of a tree frog."])
    for b in range(2):
        with torch.no_grad():
            text_features = F.normalize(
                shifted_clip(clip_model, biases[b]).encode_text(texts), dim=-1
            )
        expected = 100.0 * image_features[b] @ text_features.t()  # logit scale exp(ln 100)
        torch.testing.assert_close(logits[b], expected, rtol=1e-4, atol=1e-4)


def test_training_mode_returns_the_cross_entropy():
    torch.manual_seed(1)
    model = cocoop.CustomCLIP(make_cfg(n_ctx=2), CLASSNAMES, tiny_clip())
    images, labels = torch.randn(3, 3, 32, 32), torch.tensor([2, 0, 1])
    model.eval()
    with torch.no_grad():
        logits = model(images)
    expected = sum(logits[b].logsumexp(0) - logits[b, labels[b]] for b in range(3)) / 3
    model.prompt_learner.train()
    with torch.no_grad():
        loss = model(images, labels)
    assert loss.dim() == 0
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="needs `label`"):
        model(images)
