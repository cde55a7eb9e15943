"""SEP (trainers/sep.py) against hand-written reference computations.

Layout: the pure tensor steps (TFM, selections, fusion, loss, prototypes) on tiny hand-made
tensors; the prompted encoders against an independent re-implementation of CLIP + SEP; then the
trainer (one optimizer step, checkpoints in our and the release's layout, precision, configs) on a
six-image dataset and the tiny CLIP of tests/tiny_clip.py.
"""

from __future__ import annotations

import functools
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from image_set import load_images, register_dataset, trainer_cfg
from tiny_clip import tiny_clip
from torch.nn import functional as F

from clip.simple_tokenizer import SimpleTokenizer
from trainers import sep
from trainers.sep import (
    CustomCLIP,
    TokenFusionModule,
    class_mean_prototypes,
    fuse_features,
    map_release_state_dict,
    select_text_tokens,
    select_visual_tokens,
    sep_loss,
)

REPO = Path(__file__).resolve().parents[2]
SEP_CONFIGS = REPO / "configs" / "trainers" / "SEP"
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)  # every test sees the same random tensors


def fp16(value: float) -> float:
    """``value`` rounded to IEEE half precision (numpy, independent of torch)."""
    return float(np.float16(value))


# ---------------------------------------------------------------------------------------------
# Independent reference implementation (plain tensor algebra, loops over attention problems)
# ---------------------------------------------------------------------------------------------


def ref_layer_norm(x, weight, bias, eps=1e-5):
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * weight + bias


def ref_attention(query, keys, attn, mask=None):
    """One attention problem: query (m, d) attends to keys/values (k, d) through ``attn``'s
    weights (an nn.MultiheadAttention), head by head."""
    d, heads = query.shape[1], attn.num_heads
    w, b = attn.in_proj_weight.float(), attn.in_proj_bias.float()
    q = query @ w[:d].T + b[:d]
    k = keys @ w[d : 2 * d].T + b[d : 2 * d]
    v = keys @ w[2 * d :].T + b[2 * d :]
    hd = d // heads
    outs = []
    for h in range(heads):
        part = slice(h * hd, (h + 1) * hd)
        scores = q[:, part] @ k[:, part].T / math.sqrt(hd)
        if mask is not None:
            scores = scores + mask
        outs.append(torch.softmax(scores, dim=-1) @ v[:, part])
    return torch.cat(outs, dim=-1) @ attn.out_proj.weight.float().T + attn.out_proj.bias.float()


def ref_tfm(tfm, selected, prompts, axis, round_scales=True):
    """TFM(S, P) of SEP_METHOD.md, written out; selected/prompts (B, n, d)."""
    ln1 = lambda x: ref_layer_norm(x, tfm.ln_1.weight, tfm.ln_1.bias)  # noqa: E731
    q, kv = ln1(prompts), ln1(selected)
    attended = torch.empty_like(prompts)
    if axis == "batch":  # slot j of every sample attends to slot j of every sample
        for j in range(prompts.shape[1]):
            attended[:, j] = ref_attention(q[:, j], kv[:, j], tfm.attn)
    else:  # within each sample, over its n tokens
        for b in range(prompts.shape[0]):
            attended[b] = ref_attention(q[b], kv[b], tfm.attn)
    s1, s2 = tfm.scale_attn.item(), tfm.scale_mlp.item()
    if round_scales:  # the release: half-precision scalars, 1 - s computed in half precision
        s1, om1 = fp16(s1), float(np.float16(1) - np.float16(s1))
        s2, om2 = fp16(s2), float(np.float16(1) - np.float16(s2))
    else:
        om1, om2 = 1 - s1, 1 - s2
    hidden = s1 * selected + om1 * attended
    h = ref_layer_norm(hidden, tfm.ln_2.weight, tfm.ln_2.bias) @ tfm.mlp.c_fc.weight.T
    h = h * torch.sigmoid(1.702 * h)
    return s2 * hidden + om2 * (h @ tfm.mlp.c_proj.weight.T)


def ref_residual_block(block, x, mask=None):
    """CLIP's residual block on x (L, N, d), written out sample by sample."""
    out = torch.empty_like(x)
    for n in range(x.shape[1]):
        h = x[:, n]
        a = ref_layer_norm(h, block.ln_1.weight, block.ln_1.bias)
        h = h + ref_attention(a, a, block.attn, mask)
        m = ref_layer_norm(h, block.ln_2.weight, block.ln_2.bias)
        m = m @ block.mlp.c_fc.weight.T + block.mlp.c_fc.bias
        m = m * torch.sigmoid(1.702 * m)
        out[:, n] = h + m @ block.mlp.c_proj.weight.T + block.mlp.c_proj.bias
    return out


def ref_topk_batch(x_tokens, k):
    """Indices of the k tokens of largest batch-mean of mean-over-channels x^2, descending."""
    score = [float((x_tokens[j] ** 2).mean()) for j in range(x_tokens.shape[0])]
    return sorted(range(len(score)), key=lambda j: -score[j])[:k]


def ref_image_features(model: CustomCLIP, images):
    """Prompted image features of SEP (SELECT batch), from CLIP's weights."""
    visual, learner = model.image_encoder, model.prompt_learner
    B = images.shape[0]
    x = F.conv2d(images, visual.conv1.weight, stride=visual.conv1.stride)  # (B, d, g, g)
    x = x.flatten(2).transpose(1, 2)  # (B, N, d)
    cls = visual.class_embedding.expand(B, 1, -1)
    x = torch.cat([cls, x], dim=1) + visual.positional_embedding  # (B, 1 + N, d)
    x = torch.cat([x, learner.ctx_visual.expand(B, -1, -1)], dim=1)  # prompts at the end, no pos
    x = ref_layer_norm(x, visual.ln_pre.weight, visual.ln_pre.bias).transpose(0, 1)  # (L, B, d)
    n_v = learner.n_ctx_v
    for i, block in enumerate(visual.transformer.resblocks):
        if i in learner.visual_fusion_layers:
            tfm = learner.visual_fusion[learner.visual_fusion_layers.index(i)]
            index = ref_topk_batch(x[:-n_v], n_v)
            selected = x[index].transpose(0, 1)  # (B, n_v, d)
            fused = ref_tfm(tfm, selected, x[-n_v:].transpose(0, 1), tfm.attn_axis)
            x = torch.cat([x[:-n_v], fused.transpose(0, 1)])
        x = ref_residual_block(block, x)
    x = ref_layer_norm(x[0], visual.ln_post.weight, visual.ln_post.bias)  # CLS (B, d)
    return x @ visual.proj


def ref_text_features(model: CustomCLIP):
    """Prompted text features of SEP, from CLIP's weights and the class token ids."""
    learner, enc = model.prompt_learner, model.text_encoder
    tokens = learner.tokenized_prompts  # (n_cls, L) ids of "X X .. X <name>."
    n = learner.n_ctx
    x = token_table()[tokens]  # (n_cls, L, d)
    x = torch.cat([x[:, :1], learner.ctx.expand(x.shape[0], -1, -1), x[:, 1 + n :]], dim=1)
    x = (x + enc.positional_embedding).transpose(0, 1)  # (L, n_cls, d)
    L = x.shape[0]
    mask = torch.full((L, L), float("-inf")).triu(1)  # causal
    for i, block in enumerate(enc.transformer.resblocks):
        if i in learner.text_fusion_layers:
            tfm = learner.text_fusion[learner.text_fusion_layers.index(i)]
            selected, prompts = x[1 + n : 1 + 2 * n].transpose(0, 1), x[1 : 1 + n].transpose(0, 1)
            fused = ref_tfm(tfm, selected, prompts, tfm.attn_axis)
            x = torch.cat([x[:1], fused.transpose(0, 1), x[1 + n :]])
        x = ref_residual_block(block, x, mask)
    x = ref_layer_norm(x, enc.ln_final.weight, enc.ln_final.bias).transpose(0, 1)  # (n_cls, L, d)
    eot = [int(row.tolist().index(49407)) for row in tokens]
    return torch.stack([x[c, e] for c, e in enumerate(eot)]) @ enc.text_projection


@functools.cache
def token_table() -> torch.Tensor:
    """The tiny CLIP's token embedding table (n_vocab, d); tiny_clip() is deterministic."""
    return tiny_clip().token_embedding.weight.detach()


# ---------------------------------------------------------------------------------------------
# Small builders
# ---------------------------------------------------------------------------------------------


def sep_cfg(**sep_options):
    """A config with the TRAINER.SEP node (defaults, then ``sep_options``)."""
    from dassl.config import get_cfg_default

    cfg = get_cfg_default()
    sep.add_config(cfg)
    for key, value in sep_options.items():
        setattr(cfg.TRAINER.SEP, key, value)
    return cfg


def build_custom_clip(classnames, seed=0, **sep_options):
    """CustomCLIP on the tiny CLIP (fp32) with hand features from the SEP template."""
    from trainers.common import encode_texts

    torch.manual_seed(seed)
    clip_model = tiny_clip()
    hand = encode_texts(clip_model, [f"a photo of a {c}." for c in classnames], "cpu")
    return CustomCLIP(sep_cfg(**sep_options), classnames, clip_model, hand).eval()


def random_tfm(width=128, seed=0, axis="batch", scale=(0.75, 0.75), round_scales=True):
    torch.manual_seed(seed)
    tfm = TokenFusionModule(width, 16, axis, round_scales_fp16=round_scales)
    with torch.no_grad():
        for p in tfm.parameters():
            p.copy_(torch.randn_like(p) * 0.3)
        tfm.ln_1.weight.add_(1)
        tfm.ln_2.weight.add_(1)
        tfm.scale_attn.fill_(scale[0])
        tfm.scale_mlp.fill_(scale[1])
    return tfm


# ---------------------------------------------------------------------------------------------
# Token Fusion Module
# ---------------------------------------------------------------------------------------------


def test_tfm_by_hand_residual_is_on_selected_tokens():
    """Zero attention output weights (A = out_proj.bias = c) and a zero MLP: with s1 = s2 = 0.75,
    O = 0.75 * (0.75 * S + 0.25 * c) = 0.5625 S + 0.1875 c, whatever P is."""
    tfm = TokenFusionModule(64, 8)
    c = torch.linspace(-1, 1, 64)
    with torch.no_grad():
        tfm.attn.out_proj.weight.zero_()
        tfm.attn.out_proj.bias.copy_(c)
        tfm.mlp.c_proj.weight.zero_()
    S = torch.arange(2 * 3 * 64, dtype=torch.float32).reshape(2, 3, 64) / 100
    for P in (torch.zeros(2, 3, 64), torch.randn(2, 3, 64)):
        torch.testing.assert_close(tfm(S, P), 0.5625 * S + 0.1875 * c)


@pytest.mark.parametrize("round_scales", [True, False])
def test_tfm_scales_are_rounded_to_fp16_like_the_release(round_scales):
    """s1 = 0.1, s2 = 1: O = s1 * S + (1 - s1) * c. In fp16, s1 = 0.0999755859375 and
    1 - s1 = 0.89990234375 (0.9000244... rounded to the fp16 grid of spacing 2^-11)."""
    tfm = TokenFusionModule(64, 8, round_scales_fp16=round_scales)
    c = torch.full((64,), 2.0)
    with torch.no_grad():
        tfm.attn.out_proj.weight.zero_()
        tfm.attn.out_proj.bias.copy_(c)
        tfm.mlp.c_proj.weight.zero_()
        tfm.scale_attn.fill_(0.1)
        tfm.scale_mlp.fill_(1.0)
    S = torch.ones(1, 2, 64)
    expected = 0.0999755859375 + 0.89990234375 * 2 if round_scales else 0.1 + 0.9 * 2
    torch.testing.assert_close(tfm(S, torch.zeros(1, 2, 64)), torch.full((1, 2, 64), expected))
    assert tfm.scale_attn.dtype == torch.float32  # stored in fp32, rounded only when mixing


@pytest.mark.parametrize("axis", ["batch", "tokens"])
def test_tfm_matches_written_out_reference(axis):
    tfm = random_tfm(width=128, axis=axis, scale=(0.3, 0.6))  # 2 heads
    assert tfm.attn.num_heads == 2
    S, P = torch.randn(3, 4, 128), torch.randn(3, 4, 128)
    torch.testing.assert_close(tfm(S, P), ref_tfm(tfm, S, P, axis), atol=2e-5, rtol=1e-4)


def test_tfm_batch_axis_mixes_samples_and_tokens_axis_does_not():
    S, P = torch.randn(3, 4, 128), torch.randn(3, 4, 128)
    S2 = S.clone()
    S2[1:] = torch.randn(2, 4, 128)  # change the other samples only
    for axis, same in (("batch", False), ("tokens", True)):
        tfm = random_tfm(axis=axis)
        assert torch.allclose(tfm(S, P)[0], tfm(S2, P)[0], atol=1e-6) is same, axis


# ---------------------------------------------------------------------------------------------
# Selection, fusion, loss, prototypes (hand-made numbers)
# ---------------------------------------------------------------------------------------------


def _visual_tokens():
    """x (L = 1 + 4 + 2, B = 2, d = 2): tokens 0..4 pre-trained with mean squares
    image 0: [1, 9, 4, 0, 0.25], image 1: [4, 0, 1, 16, 0.25]; two prompts of mean square 100."""
    a = torch.tensor([[1.0, 3.0, 2.0, 0.0, 0.5, 10.0, 10.0], [2.0, 0.0, 1.0, 4.0, 0.5, 10.0, 10.0]])
    x = torch.stack([a.T, -a.T], dim=-1)  # (7, 2, 2): token j of image b = [a, -a]
    return x


def test_visual_topk_batch_one_index_set_for_all_images():
    x = _visual_tokens()
    # batch means [2.5, 4.5, 2.5, 8, 0.25] -> tokens 3, 1 (descending); prompts excluded
    S = select_visual_tokens(x, 2, "batch")
    torch.testing.assert_close(S, torch.stack([x[[3, 1], 0], x[[3, 1], 1]]))
    assert S[0, 0].tolist() == [0.0, -0.0] and S[1, 0].tolist() == [4.0, -4.0]


def test_visual_topk_per_sample():
    x = _visual_tokens()
    S = select_visual_tokens(x, 2, "sample")
    # image 0: tokens 1 (9), 2 (4); image 1: tokens 3 (16), 0 (4)
    assert S[0].tolist() == [[3.0, -3.0], [2.0, -2.0]]
    assert S[1].tolist() == [[4.0, -4.0], [2.0, -2.0]]


def test_text_selection_is_positional():
    x = torch.arange(10.0).reshape(10, 1, 1).expand(10, 2, 3)  # position p holds value p
    prompts, selected = select_text_tokens(x, 3)
    assert prompts[:, :, 0].tolist() == [[1, 2, 3], [1, 2, 3]]
    assert selected[:, :, 0].tolist() == [[4, 5, 6], [4, 5, 6]]


def test_text_hook_selects_class_name_pieces_short_and_long_names():
    """With block 0 fused, the hook sees token embeddings + positional embedding: S must be the
    embeddings of the first N_CTX pieces of "<name>. [EOT] [pad]..." and P the context."""
    names = ["cat", "a b c d e f g"]  # 1 piece (shorter than N_CTX 4), 7 pieces (longer)
    model = build_custom_clip(names, N_CTX=4, FUSION_LAYERS=[0])
    learner = model.prompt_learner
    seen = {}

    class Recorder(torch.nn.Module):
        def forward(self, selected, prompts):
            seen["S"], seen["P"] = selected, prompts
            return torch.zeros_like(prompts)

    learner.text_fusion[0] = Recorder()
    tok = SimpleTokenizer()
    dot, eot = tok.encode(".")[0], 49407
    expected_ids = [
        (tok.encode("cat") + [dot, eot, 0, 0, 0])[:4],
        tok.encode("a b c d e f g")[:4],
    ]
    assert expected_ids[0][1:3] == [dot, eot] and len(tok.encode("a b c d e f g")) == 7
    table, pos = token_table(), model.text_encoder.positional_embedding
    x = (learner() + pos).permute(1, 0, 2)  # (L, n_cls, d) the input of block 0
    out = learner.text_block_hook(0, x)
    for c, ids in enumerate(expected_ids):
        torch.testing.assert_close(seen["S"][c], table[ids] + pos[5:9])
        torch.testing.assert_close(seen["P"][c], learner.ctx + pos[1:5])
    assert out[1:5].abs().max() == 0  # positions 1..N_CTX replaced by the TFM output
    torch.testing.assert_close(out[0], x[0])
    torch.testing.assert_close(out[5:], x[5:])
    assert learner.text_block_hook(1, x) is x  # block 1 is not fused here


def test_feature_fusion_by_hand():
    prompted = torch.tensor([[3.0, 4.0]])  # normalised: [0.6, 0.8]
    frozen = torch.tensor([[1.0, 0.0]])
    # [1.6, 0.8] / sqrt(3.2)
    expected = torch.tensor([[1.6, 0.8]]) / math.sqrt(3.2)
    torch.testing.assert_close(fuse_features(prompted, frozen), expected)


def _unit(deg):
    return [math.cos(math.radians(deg)), math.sin(math.radians(deg))]


def test_loss_terms_by_hand():
    """Two classes in 2-D; every term computed from the angles."""
    logits = torch.tensor([[2.0, 0.0], [1.0, 3.0]])
    labels = torch.tensor([0, 0])
    f_txt = torch.tensor([_unit(0), _unit(90)])
    f_txt_hand = torch.tensor([_unit(60), _unit(90)])  # cos 0.5 and 1 -> mean 0.75
    f_img = torch.tensor([_unit(0), _unit(90)])
    f_img_frozen = torch.tensor([_unit(0), _unit(180)])  # cos 1 and 0 -> mean 0.5
    prototypes = torch.tensor([[2.0, 0.0], [0.0, 0.5]])  # normalised: e1, e2
    terms = sep_loss(logits, labels, f_txt, f_txt_hand, f_img, f_img_frozen, prototypes, 8.0, 6.0)

    def ce(row, y):
        return math.log(sum(math.exp(v) for v in row)) - row[y]

    expected_ce = (ce([2.0, 0.0], 0) + ce([1.0, 3.0], 0)) / 2
    expected_text = 8.0 * (1 - 0.75)
    expected_visual = 6.0 * (1 - 0.5)
    # 10 * cos with the prototypes e1, e2: f_img -> [10, 0], [0, 10]; frozen -> [10, 0], [-10, 0]
    ce_img = (ce([10.0, 0.0], 0) + ce([0.0, 10.0], 0)) / 2
    ce_frozen = (ce([10.0, 0.0], 0) + ce([-10.0, 0.0], 0)) / 2
    expected_proto = 0.5 * (ce_img + ce_frozen)
    for name, value in (
        ("ce", expected_ce),
        ("text", expected_text),
        ("visual", expected_visual),
        ("proto", expected_proto),
        ("loss", expected_ce + expected_text + expected_visual + expected_proto),
    ):
        assert terms[name].item() == pytest.approx(value, rel=1e-5, abs=1e-6), name


def test_class_mean_prototypes_by_hand():
    features = torch.tensor([[3.0, 4.0], [2.0, 0.0], [0.0, 5.0]])
    labels = torch.tensor([0, 0, 1])
    protos = class_mean_prototypes(features, labels, 3)
    # class 0: mean([0.6, 0.8], [1, 0]) = [0.8, 0.4] -> [2, 1] / sqrt(5); class 1: [0, 1]
    expected = torch.tensor([[2 / math.sqrt(5), 1 / math.sqrt(5)], [0.0, 1.0], [0.0, 0.0]])
    torch.testing.assert_close(protos, expected)


# ---------------------------------------------------------------------------------------------
# Prompted encoders against the written-out reference
# ---------------------------------------------------------------------------------------------

CLASSNAMES = ["cat", "golden retriever dog", "a b c d e f g h"]


def _perturb(model):
    """Non-trivial learnable values (the fresh TFMs are identical copies)."""
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.prompt_learner.named_parameters():
            if "scale" in name:
                p.copy_(0.5 + 0.4 * torch.rand(p.shape, generator=gen))
            else:
                p.add_(0.05 * torch.randn(p.shape, generator=gen))


@pytest.mark.parametrize("axis", ["batch", "tokens"])
def test_prompted_encoders_match_reference(axis):
    model = build_custom_clip(CLASSNAMES, ATTN_AXIS=axis)
    _perturb(model)
    images = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        text = model.text_features()
        image, frozen = model.image_features(images)
        logits = model(images)
        ref_txt = fuse_features(ref_text_features(model), model.text_features_hand)
        ref_frozen = F.normalize(model.image_encoder(images), dim=-1)
        ref_img = fuse_features(ref_image_features(model, images), ref_frozen)
    torch.testing.assert_close(text, ref_txt, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(frozen, ref_frozen)
    torch.testing.assert_close(image, ref_img, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(logits, 100 * ref_img @ ref_txt.T, atol=1e-3, rtol=1e-4)


def test_tokens_and_sample_make_predictions_batch_independent():
    images = torch.randn(4, 3, 32, 32)
    for axis, select, independent in (
        ("tokens", "sample", True),
        ("batch", "batch", False),
        ("batch", "sample", False),
    ):
        model = build_custom_clip(CLASSNAMES, ATTN_AXIS=axis, SELECT=select)
        _perturb(model)
        with torch.no_grad(), model.text_features_cached():
            alone = model(images[:1])[0]
            in_batch = model(images)[0]
        assert torch.allclose(alone, in_batch, atol=1e-5) is independent, (axis, select)


def test_text_features_computed_once_per_evaluation():
    model = build_custom_clip(CLASSNAMES)
    calls = []
    original = model.text_features
    model.text_features = lambda: calls.append(1) or original()
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad(), model.text_features_cached():
        first, second = model(images), model(images)
    assert len(calls) == 1
    torch.testing.assert_close(first, second)
    with torch.no_grad():
        model(images)
    assert len(calls) == 2  # outside an evaluation: every call


# ---------------------------------------------------------------------------------------------
# Release checkpoint mapping
# ---------------------------------------------------------------------------------------------


def release_state_dict(model: CustomCLIP) -> dict[str, torch.Tensor]:
    """Our prompt learner's values under the release's names and layout (fp16, 12 list entries
    for a 12-block encoder -> here depth entries, the last unused; template junk included)."""
    learner = model.prompt_learner
    ours_to_release = {v: k for k, v in sep.RELEASE_TFM_KEYS.items()}
    sd = {
        "ctx": learner.ctx,
        "ctx_visual": learner.ctx_visual,
        "token_prefix": torch.zeros(7, 1, 128),  # another class set
        "token_suffix": torch.zeros(7, 72, 128),
        "VPT_fc.weight": torch.zeros(7, 32),
        "meta_net_.linear1.weight": torch.zeros(4, 4),
        "visual_meta_net_.linear1.weight": torch.zeros(4, 4),
    }
    for release, modules in (("prompt_projections", learner.text_fusion),
                             ("visual_prompts", learner.visual_fusion)):  # fmt: skip
        for k in range(len(modules) + 1):  # one extra, unused entry as the release
            tfm = modules[min(k, len(modules) - 1)]
            unused = 100.0 if k == len(modules) else 0.0  # must not reach the model
            for ours, value in tfm.state_dict().items():
                value = value.reshape(1) if ours.startswith("scale") else value
                sd[f"{release}.{k}.{ours_to_release[ours]}"] = value + unused
            sd[f"{release}.{k}.ln_pa_1_token.weight"] = torch.ones(128)
            sd[f"{release}.{k}.ln_pa_1_token.bias"] = torch.zeros(128)
    return {k: v.detach().half() for k, v in sd.items()}


def test_release_names_map_to_ours():
    model = build_custom_clip(CLASSNAMES)
    _perturb(model)
    learner = model.prompt_learner
    mapped = map_release_state_dict(release_state_dict(model), 1, 1)  # tiny CLIP: blocks {1}
    ours = learner.state_dict()
    assert set(mapped) == set(ours)  # template junk, ln_pa_1_token and the last entry dropped
    for key, value in ours.items():
        if key in ("token_prefix", "token_suffix", "prototypes"):  # class-dependent
            continue
        assert mapped[key].shape == value.shape, key
        torch.testing.assert_close(mapped[key].float(), value.half().float(), msg=key)
    # our own names pass unchanged
    assert map_release_state_dict(ours, 1, 1).keys() == ours.keys()


# ---------------------------------------------------------------------------------------------
# The trainer on a six-image dataset
# ---------------------------------------------------------------------------------------------

TINY_CLASSES = ["cat", "golden retriever dog", "a b c d e f g h"]


def build_sep_trainer(tmp_path, tiny_clip_path, seed=0, **sep_options):
    """The SEP trainer (release recipe vit_b16_b32_ep50, batch 4, fp32 unless ``PREC`` is
    given, ``sep_options`` as TRAINER.SEP keys) on the six-image dataset."""
    from dassl.engine import build_trainer

    register_dataset("SEPTestImages", TINY_CLASSES)
    overrides = {
        "TRAINER.NAME": "SEP",
        "TRAINER.SEP.PREC": "fp32",
        "DATALOADER.TRAIN_X.BATCH_SIZE": 4,
        **{f"TRAINER.SEP.{key}": value for key, value in sep_options.items()},
    }
    cfg = trainer_cfg(
        "configs/trainers/SEP/vit_b16_b32_ep50.yaml",
        "SEPTestImages",
        tmp_path,
        tiny_clip_path,
        overrides,
    )
    torch.manual_seed(seed)
    return build_trainer(cfg)


def _logits(trainer, images: torch.Tensor) -> torch.Tensor:
    trainer.set_model_mode("eval")
    with torch.no_grad():
        return trainer.model_inference(images)


@pytest.fixture
def trainer(tmp_path, tiny_clip_path):
    return build_sep_trainer(tmp_path, tiny_clip_path)


def test_prototypes_initialised_from_training_images(trainer, tmp_path):
    # not at build time (an evaluation-only run never needs them), but before the first step
    assert torch.count_nonzero(trainer.model.prompt_learner.prototypes) == 0
    trainer.before_train()
    images, labels = load_images(tmp_path, len(TINY_CLASSES))
    clip_model = tiny_clip()
    with torch.no_grad():
        features = F.normalize(clip_model.encode_image(images), dim=-1)
    expected = torch.stack(
        [F.normalize(features[labels == c].mean(0), dim=0) for c in range(len(TINY_CLASSES))]
    )
    torch.testing.assert_close(trainer.model.prompt_learner.prototypes.data, expected, atol=1e-5,
                               rtol=1e-4)  # fmt: skip


def test_one_step_changes_exactly_the_sep_parameters(trainer):
    learner = trainer.model.prompt_learner
    optimized = {id(p) for group in trainer.optim.param_groups for p in group["params"]}
    assert optimized == {id(p) for p in learner.parameters()}
    trainer.init_prototypes()
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    batch = next(iter(trainer.train_loader_x))
    trainer.batch_idx, trainer.num_batches = 0, len(trainer.train_loader_x)
    trainer.set_model_mode("train")
    summary = trainer.forward_backward(batch)
    assert math.isfinite(summary["loss"])
    after = trainer.model.state_dict()
    learned = {f"prompt_learner.{n}" for n, _ in learner.named_parameters()}
    for key in before:
        changed = not torch.equal(before[key], after[key])
        if key in learned:
            assert changed, f"SEP parameter {key} did not change"
        else:
            assert not changed, f"frozen tensor {key} changed"


def _write_both_checkpoints(tmp_path, tiny_clip_path) -> tuple[object, Path, Path]:
    """A trained-looking SEP model saved in our layout and in the release's (fp16 tensors,
    release names, another class set): the trainer and the two run folders (epoch 5)."""
    source = build_sep_trainer(tmp_path, tiny_clip_path, seed=1)
    _perturb(source.model)
    with torch.no_grad():  # values an fp16 release checkpoint holds exactly
        for p in source.model.prompt_learner.parameters():
            p.copy_(p.half().float())
    ours, release = tmp_path / "ours", tmp_path / "release"
    source.save_model(4, str(ours))  # -> ours/prompt_learner/model.pth.tar-5
    (release / "prompt_learner").mkdir(parents=True)
    checkpoint = {"state_dict": release_state_dict(source.model), "epoch": 5, "optimizer": None,
                  "scheduler": None}  # fmt: skip
    torch.save(checkpoint, release / "prompt_learner" / "model.pth.tar-5")
    return source, ours, release


def test_release_checkpoint_evaluates_like_our_own(tmp_path, tiny_clip_path):
    source, ours, release = _write_both_checkpoints(tmp_path, tiny_clip_path)
    images, _ = load_images(tmp_path, len(TINY_CLASSES))
    expected = _logits(source, images)
    for directory in (ours, release):
        fresh = build_sep_trainer(tmp_path, tiny_clip_path, seed=2)
        assert not torch.allclose(_logits(fresh, images), expected, atol=1e-3)
        fresh.load_model(str(directory), epoch=5)
        torch.testing.assert_close(_logits(fresh, images), expected, atol=1e-5, rtol=1e-5)


def test_train_py_eval_only_reads_a_release_checkpoint(tmp_path, tiny_clip_path):
    """``train.py --eval-only`` on the demo's new classes: the release checkpoint gives the same
    result block as our own checkpoint of the same values."""
    _, ours, release = _write_both_checkpoints(tmp_path, tiny_clip_path)
    results = {}
    for directory in (ours, release):
        cmd = [
            sys.executable, str(REPO / "train.py"), "--root", str(tmp_path / "data"),
            "--seed", "1", "--trainer", "SEP",
            "--config-file", str(SEP_CONFIGS / "demo.yaml"),
            "--output-dir", str(tmp_path / f"eval_{directory.name}"),
            "--eval-only", "--model-dir", str(directory), "--load-epoch", "5",
            "DATASET.NAME", "Demo", "DATASET.NUM_SHOTS", "1", "DATASET.SUBSAMPLE_CLASSES", "new",
            "MODEL.BACKBONE.NAME", tiny_clip_path, "TRAINER.SEP.PREC", "fp32",
        ]  # fmt: skip
        run = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        assert "Loading weights to prompt_learner" in run.stdout
        results[directory.name] = run.stdout[run.stdout.index("=> result") :]
    assert "* accuracy:" in results["ours"]
    assert results["ours"] == results["release"]


def test_amp_computes_all_four_terms(tmp_path, tiny_clip_path):
    from trainers.common import autocast

    trainer = build_sep_trainer(tmp_path, tiny_clip_path, PREC="amp")
    assert trainer.prec == "amp" and trainer.scaler is None  # bf16 on the CPU needs no scaler
    images, labels = load_images(tmp_path, len(TINY_CLASSES))
    model = trainer.model
    with torch.no_grad():
        _, fp32 = model(images, labels)
        with autocast("amp", torch.device("cpu")):
            _, amp = model(images, labels)
    for name in ("ce", "text", "visual", "proto"):
        assert fp32[name].item() > 0
        assert amp[name].item() == pytest.approx(fp32[name].item(), rel=0.05, abs=0.02), name
    total = amp["ce"] + amp["text"] + amp["visual"] + amp["proto"]
    assert amp["loss"].item() == pytest.approx(total.item(), rel=1e-6)
    assert amp["loss"].item() > amp["ce"].item() + 0.1  # not the release's CE-only amp loss
    before = trainer.model.prompt_learner.ctx_visual.detach().clone()
    trainer.batch_idx, trainer.num_batches = 0, 2
    trainer.set_model_mode("train")
    assert math.isfinite(trainer.forward_backward(next(iter(trainer.train_loader_x)))["loss"])
    assert not torch.equal(trainer.model.prompt_learner.ctx_visual, before)


def test_fp16_on_cpu_falls_back_to_fp32(tmp_path, tiny_clip_path):
    with pytest.warns(UserWarning, match="fp16"):
        trainer = build_sep_trainer(tmp_path, tiny_clip_path, PREC="fp16")
    assert trainer.prec == "fp32"
    assert trainer.model.prompt_learner.ctx.dtype == torch.float32


# ---------------------------------------------------------------------------------------------
# Config
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(ATTN_AXIS="heads"), "ATTN_AXIS"),
        (dict(SELECT="image"), "SELECT"),
        (dict(N_CTX=0), "N_CTX"),
        (dict(N_CTX_V=0), "N_CTX_V"),
        (dict(FUSION_LAYERS=[1, 1]), "FUSION_LAYERS"),
        (dict(FUSION_LAYERS=[-1]), "FUSION_LAYERS"),
        (dict(PREC="bf16"), "PREC"),
        (dict(CTX_INIT="a photo of a", N_CTX=6), "N_CTX 4"),
    ],
)
def test_invalid_config_is_rejected_with_the_key(options, message):
    with pytest.raises(ValueError, match=message):
        sep.check_sep_config(sep_cfg(**options))


def test_fusion_layer_out_of_range_names_the_key():
    with pytest.raises(ValueError, match=r"FUSION_LAYERS \[1, 2\].*0\.\.1"):
        build_custom_clip(TINY_CLASSES, FUSION_LAYERS=[1, 2])  # the tiny CLIP has 2 blocks


def test_fusion_layers_default_adapts_to_depth():
    assert sep.resolve_fusion_layers([], 12, "text") == list(range(1, 12))
    assert sep.resolve_fusion_layers([], 2, "image") == [1]
    assert sep.resolve_fusion_layers([3, 0], 4, "image") == [0, 3]


def test_ctx_init_starts_from_the_words():
    model = build_custom_clip(TINY_CLASSES, CTX_INIT="a photo of a", N_CTX=4)
    tok = SimpleTokenizer()
    ids = tok.encode("a photo of a")
    torch.testing.assert_close(model.prompt_learner.ctx.data, token_table()[ids])


def _yaml(name: str) -> dict:
    return yaml.safe_load((SEP_CONFIGS / f"{name}.yaml").read_text())


@pytest.mark.parametrize(
    "readable, release",
    [
        ("vit_b16_b32_ep50", "vit_b32_ep50_ctxv1"),
        ("vit_b16_b128_ep10", "vit_b128_ep10_ctxv1"),
        ("vit_b16_b32_ep3_cross_dataset", "vit_b32_ep3_ctxv1_cross_dataset"),
    ],
)
def test_release_name_aliases_are_in_sync(readable, release):
    assert _yaml(readable) == _yaml(release)


@pytest.mark.parametrize(
    "name, batch, epochs",
    [
        ("vit_b16_b32_ep50", 32, 50),
        ("vit_b16_b128_ep10", 128, 10),
        ("vit_b16_b32_ep3_cross_dataset", 32, 3),
        ("vit_b16_b32_ep50_fewshot", 32, 50),
    ],
)
def test_configs_hold_the_release_recipe(name, batch, epochs):
    cfg = sep_cfg()
    cfg.merge_from_file(str(SEP_CONFIGS / f"{name}.yaml"))
    assert (cfg.DATALOADER.TRAIN_X.BATCH_SIZE, cfg.OPTIM.MAX_EPOCH) == (batch, epochs)
    assert cfg.DATALOADER.TRAIN_X.DROP_LAST is False
    assert cfg.DATALOADER.TEST.BATCH_SIZE == 500
    assert cfg.DATALOADER.TEST.SAMPLER == "SequentialSampler"
    assert (cfg.OPTIM.NAME, cfg.OPTIM.LR, cfg.OPTIM.EPS, cfg.OPTIM.WEIGHT_DECAY) == (
        "adam", 0.0025, 1e-3, 5e-4)  # fmt: skip
    assert (cfg.OPTIM.ADAM_BETA1, cfg.OPTIM.ADAM_BETA2) == (0.9, 0.999)
    assert (cfg.OPTIM.LR_SCHEDULER, cfg.OPTIM.WARMUP_EPOCH, cfg.OPTIM.WARMUP_TYPE) == (
        "cosine", 1, "constant")  # fmt: skip
    assert cfg.OPTIM.WARMUP_CONS_LR == 1e-5
    assert cfg.MODEL.BACKBONE.NAME == "ViT-B/16"
    assert list(cfg.INPUT.TRANSFORMS) == ["random_resized_crop", "random_flip", "normalize"]
    s = cfg.TRAINER.SEP
    assert (s.N_CTX, s.N_CTX_V, s.W, s.W_V, s.PREC) == (6, 4, 8.0, 6.0, "fp16")
    assert (s.ATTN_AXIS, s.SELECT, s.FUSION_LAYERS, s.MLP_HIDDEN, s.SCALE_INIT) == (
        "batch", "batch", [], 256, 0.75)  # fmt: skip
    sep.check_sep_config(cfg)


def test_demo_config_loads():
    cfg = sep_cfg()
    cfg.merge_from_file(str(SEP_CONFIGS / "demo.yaml"))
    sep.check_sep_config(cfg)
    assert cfg.MODEL.BACKBONE.NAME == "demo/weights/demo_clip.pt"
    assert cfg.INPUT.SIZE == (32, 32)


def test_more_visual_prompts_than_tokens_names_the_key():
    with pytest.raises(ValueError, match="N_CTX_V 18"):
        build_custom_clip(TINY_CLASSES, N_CTX_V=18)  # the tiny ViT has 1 + 16 tokens
