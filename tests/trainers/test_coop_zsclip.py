"""Zero-shot CLIP and CoOp (trainers/zsclip.py, trainers/coop.py) against CLIP's own encoders.

Zero-shot CLIP: logits and accuracy of ``test()`` equal the hand computation from the dataset's
template; the class text features are encoded once per evaluation. CoOp: prompts for the three
class-token positions equal hand-built token sequences, a context initialised from words gives
CLIP's features of the sentence, class-specific contexts, one SGD step against an independent
gradient, text features once per evaluation and once per step, the shape error of a class-specific
checkpoint loaded for another class count.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from image_set import load_images, register_dataset, trainer_cfg
from tiny_clip import tiny_clip
from torch.nn import functional as F
from yacs.config import CfgNode as CN

import clip
from clip.simple_tokenizer import SimpleTokenizer
from trainers import coop
from trainers.templates import COOP_TEMPLATES

torch.set_num_threads(1)
SOS, EOT = 49406, 49407  # CLIP's start and end of text ids
DATA_CLASSES = ["cat", "big_dog", "tree frog", "red fox"]  # "big_dog": CoOp writes "big dog"
PROMPT_NAMES = ["cat", "big dog", "tree frog", "red fox"]


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)


@pytest.fixture(scope="module")
def clip_model():
    """The tiny CLIP, shared by the tests that only read it."""
    return tiny_clip()


def clip_text_features(texts: list[str], model=None) -> torch.Tensor:
    """L2-normalised CLIP ``encode_text`` features of ``texts``: (n, E)."""
    model = tiny_clip() if model is None else model
    with torch.no_grad():
        return F.normalize(model.encode_text(clip.tokenize(texts)), dim=-1)


def clip_image_features(images: torch.Tensor, model=None) -> torch.Tensor:
    """L2-normalised CLIP ``encode_image`` features: (B, E)."""
    model = tiny_clip() if model is None else model
    with torch.no_grad():
        return F.normalize(model.encode_image(images), dim=-1)


def build_trainer(tmp_path: Path, backbone: str, config_file: str, overrides: dict):
    """A trainer on the eight-image dataset (two per class of DATA_CLASSES), fp32 on the CPU."""
    from dassl.engine import build_trainer as dassl_build_trainer

    register_dataset("CoOpTestImages", DATA_CLASSES)
    cfg = trainer_cfg(config_file, "CoOpTestImages", tmp_path, backbone, overrides)
    return dassl_build_trainer(cfg)


# ---------------------------------------------------------------------------------------------
# Zero-shot CLIP
# ---------------------------------------------------------------------------------------------


def test_zeroshot_logits_accuracy_and_one_text_encoding_per_evaluation(
    tmp_path, tiny_clip_path, monkeypatch
):
    # the template is looked up by DATASET.NAME in CoOp's table
    monkeypatch.setitem(COOP_TEMPLATES, "CoOpTestImages", "a photo of a {}, a type of pet.")
    trainer = build_trainer(
        tmp_path,
        tiny_clip_path,
        "configs/trainers/ZeroshotCLIP/vit_b16.yaml",
        {
            "TRAINER.NAME": "ZeroshotCLIP",
            "TRAINER.COOP.PREC": "fp32",
            "DATALOADER.TEST.BATCH_SIZE": 3,  # 8 images -> batches of 3, 3, 2
        },
    )
    assert len(trainer.test_loader) == 3
    model = trainer.model.clip_model
    calls = {"text": 0, "image": 0}
    encode_text, encode_image = model.encode_text, model.encode_image

    def count_text(text):
        calls["text"] += 1
        return encode_text(text)

    def count_image(image):
        calls["image"] += 1
        return encode_image(image)

    model.encode_text, model.encode_image = count_text, count_image
    outputs = []
    inference = trainer.model_inference
    trainer.model_inference = lambda images: outputs.append(inference(images)) or outputs[-1]

    accuracy = trainer.test()
    assert calls == {"text": 1, "image": 3}  # one text encoding for the three batches

    texts = [
        "a photo of a cat, a type of pet.",
        "a photo of a big dog, a type of pet.",
        "a photo of a tree frog, a type of pet.",
        "a photo of a red fox, a type of pet.",
    ]
    images, labels = load_images(tmp_path, len(DATA_CLASSES))
    expected = 100.0 * clip_image_features(images) @ clip_text_features(texts).t()  # (8, 4)
    torch.testing.assert_close(torch.cat(outputs), expected, rtol=1e-4, atol=1e-4)
    expected_accuracy = 100.0 * (expected.argmax(1) == labels).float().mean().item()
    assert accuracy == pytest.approx(expected_accuracy)

    assert trainer.test() == pytest.approx(expected_accuracy)
    assert calls == {"text": 2, "image": 6}  # once per evaluation, not once ever
    with torch.no_grad():
        inference(images[:2])
        inference(images[:2])
    assert calls["text"] == 4  # outside an evaluation nothing is kept


# ---------------------------------------------------------------------------------------------
# CoOp's prompt learner
# ---------------------------------------------------------------------------------------------


def coop_cfg(n_ctx: int = 5, ctx_init: str = "", csc: bool = False, position: str = "end") -> CN:
    cfg = CN()
    cfg.TRAINER = CN()
    coop.add_config(cfg)
    cfg.TRAINER.COOP.N_CTX = n_ctx
    cfg.TRAINER.COOP.CTX_INIT = ctx_init
    cfg.TRAINER.COOP.CSC = csc
    cfg.TRAINER.COOP.CLASS_TOKEN_POSITION = position
    return cfg


def hand_built_prompt(table: torch.Tensor, name: str, ctx: torch.Tensor, position: str):
    """The token embeddings CoOp's prompt of ``name`` must be: (77, D) from CLIP's token table
    (n_vocab, D) and the context ctx (n_ctx, D), with "." after the name-and-context part."""
    tokenizer = SimpleTokenizer()
    name_ids, dot = tokenizer.encode(name), tokenizer.encode(".")
    name_rows, ctx = table[name_ids], ctx.detach()
    half = ctx.shape[0] // 2
    parts = {
        "end": [ctx, name_rows],
        "middle": [ctx[:half], name_rows, ctx[half:]],
        "front": [name_rows, ctx],
    }[position]
    n_pad = 77 - 1 - ctx.shape[0] - len(name_ids) - len(dot) - 1
    tail = table[dot + [EOT] + [0] * n_pad]  # "." [EOT] then padding id 0
    return torch.cat([table[[SOS]], *parts, tail])


@pytest.mark.parametrize("csc", [False, True])
@pytest.mark.parametrize("position", ["end", "middle", "front"])
def test_prompts_are_the_hand_built_token_sequences(clip_model, position, csc):
    cfg = coop_cfg(n_ctx=5, csc=csc, position=position)
    learner = coop.PromptLearner(cfg, DATA_CLASSES, clip_model)
    with torch.no_grad():
        learner.ctx.normal_()  # far from any token row, so a misplaced context shows
    prompts = learner()
    assert prompts.shape == (4, 77, 128)
    table = clip_model.token_embedding.weight.detach()
    for c, name in enumerate(PROMPT_NAMES):
        ctx = learner.ctx[c] if csc else learner.ctx
        expected = hand_built_prompt(table, name, ctx, position)
        torch.testing.assert_close(prompts[c].detach(), expected, rtol=0, atol=0)


def test_class_specific_contexts(clip_model):
    torch.manual_seed(3)
    ctx = coop.PromptLearner(coop_cfg(n_ctx=5, csc=True), DATA_CLASSES, clip_model).ctx
    assert ctx.shape == (4, 5, 128)  # (n_cls, n_ctx, dim)
    assert ctx.std().item() == pytest.approx(0.02, rel=0.1)  # N(0, 0.02^2) initialisation
    for c in range(1, 4):
        assert (ctx[c] - ctx[0]).abs().min() > 0  # an independent draw per class
    shared = coop.PromptLearner(coop_cfg(n_ctx=5), DATA_CLASSES, clip_model).ctx
    assert shared.shape == (5, 128)

    # from words: every class starts from "a photo of a", as separate values
    words = clip_model.token_embedding(clip.tokenize("a photo of a"))[0, 1:5].detach()
    learner = coop.PromptLearner(
        coop_cfg(ctx_init="a photo of a", csc=True), DATA_CLASSES, clip_model
    )
    assert learner.ctx.shape == (4, 4, 128)
    for c in range(4):
        torch.testing.assert_close(learner.ctx[c].detach(), words, rtol=0, atol=0)
    with torch.no_grad():
        learner.ctx[0] += 1.0
    torch.testing.assert_close(learner.ctx[1].detach(), words, rtol=0, atol=0)


def test_ctx_init_words_give_their_token_embeddings(clip_model):
    learner = coop.PromptLearner(
        coop_cfg(n_ctx=16, ctx_init="a_photo_of_a"), DATA_CLASSES, clip_model
    )
    ids = SimpleTokenizer().encode("a photo of a")
    assert learner.n_ctx == 4 and len(ids) == 4
    torch.testing.assert_close(
        learner.ctx.detach(), clip_model.token_embedding.weight[ids].detach(), rtol=0, atol=0
    )


@pytest.mark.parametrize(
    "position, sentence",
    [("end", "a photo of a {}."), ("middle", "a photo {} of a."), ("front", "{} a photo of a.")],
)
def test_logits_from_words_are_clips_features_of_the_sentence(clip_model, position, sentence):
    """Context "a photo of a": the prompt is CLIP's embedding of ``sentence``, so the logits are
    100 * cos(encode_image, encode_text(sentence))."""
    model = coop.CustomCLIP(
        coop_cfg(ctx_init="a photo of a", position=position), DATA_CLASSES, clip_model
    )
    images = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        logits = model(images)
    texts = [sentence.format(name) for name in PROMPT_NAMES]
    expected = (
        100.0 * clip_image_features(images, clip_model) @ clip_text_features(texts, clip_model).t()
    )
    torch.testing.assert_close(logits, expected, rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------------------------------------
# The CoOp trainer
# ---------------------------------------------------------------------------------------------

COOP_CONFIG = "configs/trainers/CoOp/vit_b16_ep50.yaml"


def build_coop(tmp_path: Path, backbone: str, overrides: dict | None = None):
    """CoOp with the release's ep50 recipe, 4 context vectors, batches of 2 (4 train and 4 test
    batches on all classes), fp32."""
    settings = {
        "TRAINER.NAME": "CoOp",
        "TRAINER.COOP.PREC": "fp32",
        "TRAINER.COOP.N_CTX": 4,
        "DATALOADER.TRAIN_X.BATCH_SIZE": 2,
        "DATALOADER.TEST.BATCH_SIZE": 2,
        **(overrides or {}),
    }
    return build_trainer(tmp_path, backbone, COOP_CONFIG, settings)


def test_text_encoder_runs_once_per_evaluation_and_once_per_training_step(tmp_path, tiny_clip_path):
    trainer = build_coop(tmp_path, tiny_clip_path)
    assert len(trainer.test_loader) == 4 and len(trainer.train_loader_x) == 4
    encoder = trainer.model.text_encoder
    calls = []
    forward = encoder.forward
    encoder.forward = lambda *args, **kwargs: calls.append(1) or forward(*args, **kwargs)

    first = trainer.test()
    assert len(calls) == 1  # four test batches, one text encoding
    assert trainer.test() == first
    assert len(calls) == 2
    trainer.run_epoch()
    assert len(calls) == 2 + 4  # every step encodes the changing prompts
    trainer.test()
    assert len(calls) == 7


def clip_text_features_from_embeddings(clip_model, embeddings, tokens) -> torch.Tensor:
    """CLIP's ``encode_text`` written from token embeddings (n, 77, D) instead of ids, over all
    77 positions: the (n, E) projected EOT states (unnormalised)."""
    x = embeddings + clip_model.positional_embedding
    x = clip_model.transformer(x.permute(1, 0, 2)).permute(1, 0, 2)  # (n, 77, D)
    x = clip_model.ln_final(x)
    return x[torch.arange(len(tokens)), tokens.argmax(-1)] @ clip_model.text_projection


def test_one_step_is_sgd_on_ctx_only_with_the_reference_gradient(tmp_path, tiny_clip_path):
    trainer = build_coop(tmp_path, tiny_clip_path, {"TRAINER.COOP.CTX_INIT": "a photo of a"})
    learner = trainer.model.prompt_learner
    assert {id(p) for g in trainer.optim.param_groups for p in g["params"]} == {id(learner.ctx)}
    trainable = [n for n, p in trainer.model.named_parameters() if p.requires_grad]
    assert trainable == ["prompt_learner.ctx"]  # CLIP frozen: no gradients computed for it
    assert trainer.get_current_lr() == pytest.approx(1e-5)  # the constant warm-up epoch
    batch = next(iter(trainer.train_loader_x))
    images, labels = batch["img"], batch["label"]

    # reference: "a photo of a <name>." through CLIP, the context rows as a leaf tensor
    clip_model = tiny_clip()
    texts = [f"a photo of a {name}." for name in PROMPT_NAMES]
    tokens = clip.tokenize(texts)
    with torch.no_grad():
        embedded = clip_model.token_embedding(tokens)  # (4, 77, 128)
    ctx_ref = learner.ctx.detach().clone().requires_grad_(True)
    prompts = torch.cat([embedded[:, :1], ctx_ref.expand(4, -1, -1), embedded[:, 5:]], dim=1)
    text = F.normalize(clip_text_features_from_embeddings(clip_model, prompts, tokens), dim=-1)
    torch.testing.assert_close(text.detach(), clip_text_features(texts, clip_model))
    logits = 100.0 * clip_image_features(images, clip_model) @ text.t()
    ce = sum(logits[b].logsumexp(0) - logits[b, labels[b]] for b in range(2)) / 2
    (grad,) = torch.autograd.grad(ce, ctx_ref)

    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.batch_idx, trainer.num_batches = 0, len(trainer.train_loader_x)
    trainer.set_model_mode("train")
    summary = trainer.forward_backward(batch)
    assert summary["loss"] == pytest.approx(ce.item(), rel=1e-5)
    torch.testing.assert_close(learner.ctx.grad, grad, rtol=1e-3, atol=1e-6)

    after = trainer.model.state_dict()
    assert any(k.startswith("image_encoder.") for k in after)
    assert any(k.startswith("text_encoder.") for k in after)
    for key in before:
        changed = not torch.equal(before[key], after[key])
        assert changed == (key == "prompt_learner.ctx"), f"{key}: changed={changed}"
    # SGD's first step: ctx -= lr * (grad + 5e-4 * ctx); the weight-decay part is ~1e-6 of the
    # gradient here, so this checks the warm-up lr and the gradient
    step = -1e-5 * (grad + 5e-4 * before["prompt_learner.ctx"])
    delta = after["prompt_learner.ctx"] - before["prompt_learner.ctx"]
    torch.testing.assert_close(delta, step, rtol=2e-3, atol=1e-9)


def test_csc_checkpoint_for_another_class_count_raises_the_shape_error(tmp_path, tiny_clip_path):
    for csc in (True, False):
        subsample = {"TRAINER.COOP.CSC": csc, "DATASET.SUBSAMPLE_CLASSES": "base"}
        base = build_coop(tmp_path, tiny_clip_path, subsample)
        assert base.num_classes == 2
        run = tmp_path / f"base_csc_{csc}"
        base.save_model(0, str(run))  # -> prompt_learner/model.pth.tar-1
        full = build_coop(tmp_path, tiny_clip_path, {"TRAINER.COOP.CSC": csc})
        if csc:
            path = run / "prompt_learner" / "model.pth.tar-1"
            message = (
                f"Checkpoint {path}: 'ctx' has shape (2, 4, 128) but the model expects "
                "(4, 4, 128) (a class-specific tensor trained for another class set"
            )
            with pytest.raises(ValueError, match=re.escape(message)):
                full.load_model(str(run), epoch=1)
        else:  # a shared context fits any class set; the class tokens stay the model's own
            learner, trained = full.model.prompt_learner, base.model.prompt_learner.ctx
            assert not torch.equal(learner.ctx, trained)
            suffix = learner.token_suffix.clone()  # (4, 72, 128)
            full.load_model(str(run), epoch=1)
            torch.testing.assert_close(learner.ctx, trained, rtol=0, atol=0)
            torch.testing.assert_close(learner.token_suffix, suffix, rtol=0, atol=0)
