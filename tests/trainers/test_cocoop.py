"""CoCoOp: the meta-net bias, per-image prompts and logits against hand computations and CLIP's own
``encode_text``; the training loss; one trainer step; base -> new evaluation from a checkpoint."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from image_set import load_images, register_dataset, trainer_cfg
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


def clip_with_context(clip_model, ctx: torch.Tensor):
    """A copy of ``clip_model`` whose token rows of "a", "photo", "of" are ``ctx[0:3]`` (ctx (4, D)
    is a context initialised from "a photo of a", moved the same way on its two "a" rows): its
    ``encode_text("a photo of a <name>.")`` is the text feature of the prompt with context
    ``ctx``."""
    torch.testing.assert_close(ctx[3], ctx[0], rtol=0, atol=0)
    shifted = copy.deepcopy(clip_model)
    rows = clip.tokenize("a photo of")[0, 1:4]
    with torch.no_grad():
        shifted.token_embedding.weight[rows] = ctx[:3]
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
    ctx = model.prompt_learner.ctx.detach()  # the token embeddings of "a photo of a"
    for b in range(2):
        with torch.no_grad():
            prompted = clip_with_context(clip_model, ctx + biases[b])
            text_features = F.normalize(prompted.encode_text(texts), dim=-1)
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


# ---------------------------------------------------------------------------------------------
# The trainer on an eight-image dataset (base: cat, big dog; new: tree frog, red fox)
# ---------------------------------------------------------------------------------------------

DATA_CLASSES = ["cat", "big dog", "tree frog", "red fox"]


def build_trainer(tmp_path: Path, backbone: str, subsample: str, seed: int = 0, prec: str = "fp32"):
    """The CoCoOp trainer with the release's base-to-new config, on the tiny CLIP (fp32, CPU)."""
    from dassl.engine import build_trainer as dassl_build_trainer

    register_dataset("CoCoOpTestImages", DATA_CLASSES)
    cfg = trainer_cfg(
        "configs/trainers/CoCoOp/vit_b16_c4_ep10_batch1_ctxv1.yaml",
        "CoCoOpTestImages",
        tmp_path,
        backbone,
        {
            "TRAINER.NAME": "CoCoOp",
            "TRAINER.COCOOP.PREC": prec,
            "DATASET.SUBSAMPLE_CLASSES": subsample,
            "DATALOADER.TRAIN_X.BATCH_SIZE": 2,
        },
    )
    torch.manual_seed(seed)
    return dassl_build_trainer(cfg)


def test_one_step_changes_exactly_the_prompt_learner(tmp_path, tiny_clip_path):
    trainer = build_trainer(tmp_path, tiny_clip_path, "base")
    learner = trainer.model.prompt_learner
    optimized = {id(p) for group in trainer.optim.param_groups for p in group["params"]}
    assert optimized == {id(p) for p in learner.parameters()}
    assert trainer.get_current_lr() == pytest.approx(1e-5)  # the constant warm-up epoch

    batch = next(iter(trainer.train_loader_x))
    trainer.set_model_mode("eval")
    with torch.no_grad():
        logits = trainer.model(batch["img"])
    y = batch["label"]
    expected_loss = sum(logits[b].logsumexp(0) - logits[b, y[b]] for b in range(len(y))) / len(y)

    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.batch_idx, trainer.num_batches = 0, len(trainer.train_loader_x)
    trainer.set_model_mode("train")
    summary = trainer.forward_backward(batch)
    assert summary["loss"] == pytest.approx(expected_loss.item(), rel=1e-5)

    after = trainer.model.state_dict()
    learned = {f"prompt_learner.{n}" for n, _ in learner.named_parameters()}
    assert learned == {
        "prompt_learner.ctx",
        "prompt_learner.meta_net.linear1.weight",
        "prompt_learner.meta_net.linear1.bias",
        "prompt_learner.meta_net.linear2.weight",
        "prompt_learner.meta_net.linear2.bias",
    }
    for key in before:
        changed = not torch.equal(before[key], after[key])
        assert changed == (key in learned), f"{key}: changed={changed}"


def test_new_classes_evaluate_from_a_release_style_base_checkpoint(tmp_path, tiny_clip_path):
    base = build_trainer(tmp_path, tiny_clip_path, "base", seed=1)
    learner = base.model.prompt_learner
    shift = 0.05 * torch.randn(128)  # one shift for every row: the two "a" rows stay equal
    with torch.no_grad():
        learner.ctx += shift
        for p in learner.meta_net.parameters():
            p.copy_(torch.randn_like(p) * 0.3)
    # the official code's checkpoint: fp16 tensors, no val_result
    state = {k: v.half().float() for k, v in learner.state_dict().items()}
    (tmp_path / "base/prompt_learner").mkdir(parents=True)
    torch.save(
        {"state_dict": {k: v.half() for k, v in state.items()}, "epoch": 10},
        tmp_path / "base/prompt_learner/model.pth.tar-10",
    )

    new = build_trainer(tmp_path, tiny_clip_path, "new", seed=2)
    new.load_model(str(tmp_path / "base"), epoch=10)
    loaded = new.model.prompt_learner.state_dict()
    for key in ("ctx", "meta_net.linear1.weight", "meta_net.linear2.bias"):
        torch.testing.assert_close(loaded[key], state[key], rtol=0, atol=0)
    with torch.no_grad():  # class tokens rebuilt for the new names
        words = clip.tokenize(["a photo of a tree frog.", "a photo of a red fox."])
        embedded = tiny_clip().token_embedding(words)
    torch.testing.assert_close(loaded["token_suffix"], embedded[:, 5:], rtol=0, atol=0)

    # reference: CLIP's encode_text with the rows of "a photo of" set to the loaded context plus
    # each image's meta-net bias
    images, _ = load_images(tmp_path, len(DATA_CLASSES), labels=[2, 3])
    clip_model = tiny_clip()
    texts = clip.tokenize(["a photo of a tree frog.", "a photo of a red fox."])
    meta_net = new.model.prompt_learner.meta_net
    with torch.no_grad():
        image_features = F.normalize(clip_model.encode_image(images), dim=-1)  # (4, 32)
        expected = []
        for feature in image_features:
            shifted = clip_with_context(clip_model, state["ctx"] + meta_net(feature))
            text_features = F.normalize(shifted.encode_text(texts), dim=-1)  # (2, 32)
            expected.append(100.0 * feature @ text_features.t())
        expected = torch.stack(expected)  # (4, 2)
        new.set_model_mode("eval")
        logits = new.model_inference(images)
    torch.testing.assert_close(logits, expected, rtol=1e-4, atol=1e-4)

    labels = torch.tensor([0, 0, 1, 1])
    expected_accuracy = 100.0 * (expected.argmax(1) == labels).float().mean().item()
    assert new.test() == pytest.approx(expected_accuracy)


def test_amp_gives_the_fp32_loss_in_bf16_on_the_cpu(tmp_path, tiny_clip_path):
    from trainers.common import autocast

    trainer = build_trainer(tmp_path, tiny_clip_path, "base", prec="amp")
    assert trainer.prec == "amp" and trainer.scaler is None  # bf16 on the CPU needs no scaler
    batch = next(iter(trainer.train_loader_x))
    trainer.set_model_mode("train")
    with torch.no_grad():
        fp32 = trainer.model(batch["img"], batch["label"])
        with autocast("amp", torch.device("cpu")):
            amp = trainer.model(batch["img"], batch["label"])
    assert amp.dtype == torch.float32
    assert amp.item() == pytest.approx(fp32.item(), rel=0.02)
