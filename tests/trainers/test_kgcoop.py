"""KgCoOp: the knowledge-guided loss term by hand and against CLIP's own ``encode_text``; the
release's unused checkpoint keys; one trainer step; base -> new evaluation from a checkpoint."""

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


# ---------------------------------------------------------------------------------------------
# The trainer on an eight-image dataset (base: cat, big dog; new: tree frog, red fox)
# ---------------------------------------------------------------------------------------------

DATA_CLASSES = ["cat", "big dog", "tree frog", "red fox"]


def build_trainer(tmp_path: Path, backbone: str, subsample: str, seed: int = 0, prec: str = "fp32"):
    """The KgCoOp trainer with the release's base-to-new config, on the tiny CLIP (fp32, CPU)."""
    from dassl.engine import build_trainer as dassl_build_trainer

    register_dataset("KgCoOpTestImages", DATA_CLASSES)
    cfg = trainer_cfg(
        "configs/trainers/KgCoOp/vit_b16_ep100_ctxv1.yaml",
        "KgCoOpTestImages",
        tmp_path,
        backbone,
        {
            "TRAINER.NAME": "KgCoOp",
            "TRAINER.KGCOOP.PREC": prec,
            "DATASET.SUBSAMPLE_CLASSES": subsample,
            "DATALOADER.TRAIN_X.BATCH_SIZE": 2,
        },
    )
    torch.manual_seed(seed)
    return dassl_build_trainer(cfg)


def clip_features(clip_model, texts: list[str]) -> torch.Tensor:
    with torch.no_grad():
        return F.normalize(clip_model.encode_text(clip.tokenize(texts)), dim=-1)


def test_one_step_loss_is_ce_plus_8_kg_and_changes_only_ctx(tmp_path, tiny_clip_path):
    trainer = build_trainer(tmp_path, tiny_clip_path, "base")
    assert trainer.w == 8.0
    model, learner = trainer.model, trainer.model.prompt_learner
    clip_model = tiny_clip()
    names = ["a photo of a cat.", "a photo of a big dog."]  # the demo-less default template
    torch.testing.assert_close(model.text_features_hand, clip_features(clip_model, names))
    assert {id(p) for g in trainer.optim.param_groups for p in g["params"]} == {id(learner.ctx)}

    shift = 0.05 * torch.randn(128)
    with torch.no_grad():
        learner.ctx += shift  # now the learned prompt differs from the hand-crafted one
    batch = next(iter(trainer.train_loader_x))
    y = batch["label"]
    with torch.no_grad():
        learned = clip_features(clip_with_context(clip_model, learner.ctx), names)  # (2, 32)
        hand = clip_features(clip_model, names)
        logits = 100.0 * F.normalize(clip_model.encode_image(batch["img"]), dim=-1) @ learned.t()
    ce = sum(logits[b].logsumexp(0) - logits[b, y[b]] for b in range(len(y))) / len(y)
    kg = 1 - ((learned * hand).sum(1)).mean()
    assert kg > 1e-4

    before = {k: v.clone() for k, v in model.state_dict().items()}
    hand_before = model.text_features_hand.clone()
    trainer.batch_idx, trainer.num_batches = 0, len(trainer.train_loader_x)
    trainer.set_model_mode("train")
    summary = trainer.forward_backward(batch)
    assert summary["loss_kg"] == pytest.approx(kg.item(), rel=1e-3)
    assert summary["loss"] == pytest.approx((ce + 8.0 * kg).item(), rel=1e-4)

    after = model.state_dict()
    for key in before:
        changed = not torch.equal(before[key], after[key])
        assert changed == (key == "prompt_learner.ctx"), f"{key}: changed={changed}"
    torch.testing.assert_close(model.text_features_hand, hand_before, rtol=0, atol=0)


def test_new_classes_evaluate_from_a_release_checkpoint(tmp_path, tiny_clip_path):
    base = build_trainer(tmp_path, tiny_clip_path, "base", seed=1)
    shift = 0.05 * torch.randn(128)
    with torch.no_grad():
        base.model.prompt_learner.ctx += shift
    # the release's checkpoint: fp16, with its unused leftover meta-net and bias vectors
    state = {k: v.half() for k, v in base.model.prompt_learner.state_dict().items()}
    state["bias_vectors"] = torch.zeros(1, 512, dtype=torch.half)
    state["meta_net.linear1.weight"] = torch.zeros(128, 512, dtype=torch.half)
    state["meta_net.linear1.bias"] = torch.zeros(128, dtype=torch.half)
    state["meta_net.linear2.weight"] = torch.zeros(512, 128, dtype=torch.half)
    state["meta_net.linear2.bias"] = torch.zeros(512, dtype=torch.half)
    (tmp_path / "base/prompt_learner").mkdir(parents=True)
    torch.save(
        {"state_dict": state, "epoch": 100}, tmp_path / "base/prompt_learner/model.pth.tar-100"
    )

    new = build_trainer(tmp_path, tiny_clip_path, "new", seed=2)
    new.load_model(str(tmp_path / "base"), epoch=100)
    loaded_ctx = new.model.prompt_learner.ctx.detach()
    torch.testing.assert_close(loaded_ctx, state["ctx"].float(), rtol=0, atol=0)

    clip_model = tiny_clip()
    names = ["a photo of a tree frog.", "a photo of a red fox."]
    torch.testing.assert_close(new.model.text_features_hand, clip_features(clip_model, names))
    images, _ = load_images(tmp_path, len(DATA_CLASSES), labels=[2, 3])
    with torch.no_grad():
        learned = clip_features(clip_with_context(clip_model, loaded_ctx), names)
        expected = 100.0 * F.normalize(clip_model.encode_image(images), dim=-1) @ learned.t()
        new.set_model_mode("eval")
        logits = new.model_inference(images)
    torch.testing.assert_close(logits, expected, rtol=1e-4, atol=1e-4)

    labels = torch.tensor([0, 0, 1, 1])
    expected_accuracy = 100.0 * (expected.argmax(1) == labels).float().mean().item()
    assert new.test() == pytest.approx(expected_accuracy)


def test_amp_gives_the_fp32_loss_terms_in_bf16_on_the_cpu(tmp_path, tiny_clip_path):
    from trainers.common import autocast

    trainer = build_trainer(tmp_path, tiny_clip_path, "base", prec="amp")
    assert trainer.prec == "amp" and trainer.scaler is None  # bf16 on the CPU needs no scaler
    with torch.no_grad():
        trainer.model.prompt_learner.ctx += 0.05 * torch.randn(128)
    images = next(iter(trainer.train_loader_x))["img"]
    trainer.set_model_mode("train")
    with torch.no_grad():
        logits_fp32, kg_fp32 = trainer.model(images)
        with autocast("amp", torch.device("cpu")):
            logits_amp, kg_amp = trainer.model(images)
    assert kg_amp.dtype == torch.float32 and kg_fp32.item() > 1e-4
    assert kg_amp.item() == pytest.approx(kg_fp32.item(), rel=0.05, abs=1e-3)
    labels = logits_fp32.argmin(1)  # the least likely classes: a CE far from 0
    ce_amp, ce_fp32 = (
        F.cross_entropy(logits_amp.float(), labels),
        F.cross_entropy(logits_fp32, labels),
    )
    assert ce_amp.item() == pytest.approx(ce_fp32.item(), rel=0.05)  # bf16 logits at scale 100
