"""SEP, Self-Enhanced Prompt Tuning (Yao et al., arXiv 2405.15549), as the authors' release does it.

CoOp's prompt tokens do not depend on the input. SEP rebuilds them before each fused encoder block
from the block's own pre-trained tokens with a small cross-attention Token Fusion Module (TFM), in
both CLIP encoders:

- text: the prompt states (positions 1..n_t) query the next n_t positions (the class-name pieces);
- image: n_v prompt tokens appended after the patches query the n_v tokens of largest mean squared
  activation (CLS included).

Prompted features are added to frozen CLIP features (hand-crafted template / prompt-free image)
before normalising, and the loss adds KgCoOp-style consistency terms on both sides and a prototype
classifier. The defaults of ``TRAINER.SEP`` (:func:`add_config`) reproduce the release, including
its quirks, kept on purpose and exposed as switches:

- ``TRAINER.SEP.ATTN_AXIS "batch"``: the release feeds (batch, tokens, d) tensors to a
  sequence-first ``nn.MultiheadAttention``, so each prompt slot attends across the *batch* (images
  of the mini-batch; classes on the text side, so new-class prompts depend on the evaluated class
  set). ``"tokens"`` attends within each sample instead.
- ``TRAINER.SEP.SELECT "batch"``: one visual top-k for the whole mini-batch; ``"sample"`` per image.
  Predictions are independent of the test-batch composition only with ``ATTN_AXIS tokens`` *and*
  ``SELECT sample``.
- ``TRAINER.SEP.ROUND_SCALES_FP16 True``: the TFM scalars s1, s2 are rounded to fp16 before mixing.

Deliberate departures from the release (its faults): every precision works (the TFMs follow
CLIP's dtype; fp32 and amp run, amp computes all four loss terms), the hand-crafted text features
are computed in fp32 whatever the precision, in fp16 mode the fused features, logits and losses
are fp32, and the visual token scores are always computed in fp32 (fp16 squares overflow).
Checkpoints of the release load through :func:`map_release_state_dict`.
"""

from __future__ import annotations

import copy
import re
from collections import OrderedDict

import torch
import torch.nn as nn
from torch.nn import functional as F
from yacs.config import CfgNode as CN

import clip
from clip.model import CLIP, LayerNorm, QuickGELU, convert_weights
from dassl.engine import TRAINER_REGISTRY
from dassl.metrics import compute_accuracy
from trainers.common import (
    PromptLearningTrainer,
    TextEncoder,
    TextFeatureCache,
    autocast,
    cast_clip,
    class_texts,
    encode_texts,
    load_clip_to_cpu,
    resolve_precision,
)
from trainers.templates import SEP_TEMPLATES, get_template

ATTN_AXES = ("batch", "tokens")
SELECT_MODES = ("batch", "sample")
PROTO_LOSS_WEIGHT = 0.5  # weight of the two prototype cross-entropies (release)
PROTO_LOGIT_SCALE = 10.0  # temperature of the prototype classifier (release)
COS_EPS = 1e-7  # eps of the release's nn.CosineSimilarity


# ---------------------------------------------------------------------------------------------
# Config
# ---------------------------------------------------------------------------------------------


def add_config(cfg: CN) -> None:
    """Add the ``TRAINER.SEP`` node (the release's hyper-parameters as defaults)."""
    cfg.TRAINER.SEP = CN()
    cfg.TRAINER.SEP.N_CTX = 6  # text prompt tokens n_t
    cfg.TRAINER.SEP.N_CTX_V = 4  # visual prompt tokens n_v
    cfg.TRAINER.SEP.CTX_INIT = ""  # "" = N(0, 0.02^2) as the release; else a text of N_CTX tokens
    # 0-based blocks fused in both encoders; [] = 1 .. depth-1 (blocks 1..11 on a 12-block CLIP)
    cfg.TRAINER.SEP.FUSION_LAYERS = []
    cfg.TRAINER.SEP.W = 8.0  # text consistency weight
    cfg.TRAINER.SEP.W_V = 6.0  # visual consistency weight
    cfg.TRAINER.SEP.ATTN_AXIS = "batch"  # "batch" (release) | "tokens"
    cfg.TRAINER.SEP.SELECT = "batch"  # "batch" (release) | "sample"
    cfg.TRAINER.SEP.PREC = "fp16"  # "fp16" | "fp32" | "amp"
    cfg.TRAINER.SEP.MLP_HIDDEN = 256  # TFM MLP hidden width
    cfg.TRAINER.SEP.SCALE_INIT = 0.75  # initial s1, s2 of every TFM
    cfg.TRAINER.SEP.ROUND_SCALES_FP16 = True  # round s1, s2 to fp16 before mixing (release)


def check_sep_config(cfg: CN) -> None:
    """Reject invalid ``TRAINER.SEP`` values with a message naming the key and the fix."""
    sep = cfg.TRAINER.SEP

    def fail(key: str, why: str) -> None:
        raise ValueError(f"TRAINER.SEP.{key} = {getattr(sep, key)!r}: {why}")

    if sep.ATTN_AXIS not in ATTN_AXES:
        fail("ATTN_AXIS", f"choose one of {', '.join(ATTN_AXES)}.")
    if sep.SELECT not in SELECT_MODES:
        fail("SELECT", f"choose one of {', '.join(SELECT_MODES)}.")
    if sep.PREC not in ("fp16", "fp32", "amp"):
        fail("PREC", "choose one of fp16, fp32, amp.")
    for key in ("N_CTX", "N_CTX_V", "MLP_HIDDEN"):
        if not isinstance(getattr(sep, key), int) or getattr(sep, key) < 1:
            fail(key, "must be an integer >= 1.")
    layers = list(sep.FUSION_LAYERS)
    if any(not isinstance(i, int) or i < 0 for i in layers):
        fail(
            "FUSION_LAYERS",
            "must list 0-based block indices (integers >= 0), or [] for 1..depth-1.",
        )
    if len(set(layers)) != len(layers):
        fail("FUSION_LAYERS", "lists a block twice.")
    if sep.W < 0 or sep.W_V < 0:
        fail("W" if sep.W < 0 else "W_V", "loss weights must be >= 0.")
    if sep.CTX_INIT:
        n_tokens = len(clip.tokenize(sep.CTX_INIT)[0].nonzero()) - 2  # minus SOS and EOT
        if n_tokens != sep.N_CTX:
            raise ValueError(
                f"TRAINER.SEP.CTX_INIT {sep.CTX_INIT!r} is {n_tokens} tokens but "
                f"TRAINER.SEP.N_CTX is {sep.N_CTX}: set TRAINER.SEP.N_CTX {n_tokens}."
            )


def resolve_fusion_layers(layers: list[int], depth: int, encoder: str) -> list[int]:
    """The sorted 0-based fused blocks of an encoder of ``depth`` blocks ([] -> 1 .. depth-1)."""
    if not layers:
        return list(range(1, depth))
    bad = [i for i in layers if not 0 <= i < depth]
    if bad:
        raise ValueError(
            f"TRAINER.SEP.FUSION_LAYERS {list(layers)}: block(s) {bad} out of range for the "
            f"{depth}-block {encoder} encoder of this CLIP; use indices 0..{depth - 1} or []."
        )
    return sorted(layers)


# ---------------------------------------------------------------------------------------------
# Release checkpoints: their names -> ours, in this one place
# ---------------------------------------------------------------------------------------------

# Release TFM lists -> ours. Entry k of a release list is the TFM of the k-th fused block (with
# blocks 1..11 fused, entry 0 runs before block 1 and entry 11 is never used).
RELEASE_TFM_LISTS = {"prompt_projections": "text_fusion", "visual_prompts": "visual_fusion"}
RELEASE_TFM_KEYS = {
    "promt_attention_visual.in_proj_weight": "attn.in_proj_weight",
    "promt_attention_visual.in_proj_bias": "attn.in_proj_bias",
    "promt_attention_visual.out_proj.weight": "attn.out_proj.weight",
    "promt_attention_visual.out_proj.bias": "attn.out_proj.bias",
    "ln_pa_1_visual.weight": "ln_1.weight",
    "ln_pa_1_visual.bias": "ln_1.bias",
    "mlp_pa_visual.c_fc1.weight": "mlp.c_fc.weight",
    "mlp_pa_visual.c_proj.weight": "mlp.c_proj.weight",
    "ln_pa_2_visual.weight": "ln_2.weight",
    "ln_pa_2_visual.bias": "ln_2.bias",
    "scale1": "scale_attn",
    "scale2": "scale_mlp",
}
RELEASE_TOP_KEYS = {"VPT_fc.weight": "prototypes"}  # ctx, ctx_visual, token_* keep their names
RELEASE_UNUSED = re.compile(r"^(meta_net_|visual_meta_net_)\.|\.ln_pa_1_token\.(weight|bias)$")
_RELEASE_TFM = re.compile(r"^(prompt_projections|visual_prompts)\.(\d+)\.(.+)$")


def map_release_state_dict(
    state_dict: dict[str, torch.Tensor], n_text_fusion: int, n_visual_fusion: int
) -> dict[str, torch.Tensor]:
    """Rename a release ``prompt_learner`` state dict to our names.

    Drops the unused ``meta_net_.*``, ``visual_meta_net_.*``, ``*.ln_pa_1_token.*`` and the list
    entries beyond our fusion modules (the release's last entry); the scalars ``scale1``/``scale2``
    become 0-d. Keys that are already ours pass unchanged, so our own checkpoints load through it.
    Dtypes are left as stored (``load_state_dict`` casts fp16 into the model's dtype).
    """
    n_fusion = {"text_fusion": n_text_fusion, "visual_fusion": n_visual_fusion}
    mapped = {}
    for key, value in state_dict.items():
        if RELEASE_UNUSED.search(key):
            continue
        match = _RELEASE_TFM.match(key)
        if match:
            ours, entry, rest = RELEASE_TFM_LISTS[match[1]], int(match[2]), match[3]
            if rest not in RELEASE_TFM_KEYS:
                raise KeyError(f"Unknown key '{key}' in a SEP release checkpoint.")
            if entry >= n_fusion[ours]:
                continue
            rest = RELEASE_TFM_KEYS[rest]
            if rest.startswith("scale_"):
                value = value.reshape(())
            mapped[f"{ours}.{entry}.{rest}"] = value
        else:
            mapped[RELEASE_TOP_KEYS.get(key, key)] = value
    return mapped


# ---------------------------------------------------------------------------------------------
# Token Fusion Module and the pure tensor steps of SEP
# ---------------------------------------------------------------------------------------------


class TokenFusionModule(nn.Module):
    """TFM(S, P): new prompt tokens from the prompt states P and the selected pre-trained tokens S.

    ``A = MHA(LN1(P), LN1(S), LN1(S))``, ``H = s1 * S + (1 - s1) * A``,
    ``O = s2 * H + (1 - s2) * MLP(LN2(H))`` with MLP = Linear(d, hidden) -> QuickGELU ->
    Linear(hidden, d), both bias-free; heads = d / 64 (at least 1).

    ``attn_axis "batch"`` (release): for each token slot j, P[b, j] attends to S[:, j] over the
    batch axis. ``"tokens"``: P[b] attends to S[b] over the n tokens of its own sample.
    """

    def __init__(
        self,
        width: int,
        mlp_hidden: int = 256,
        attn_axis: str = "batch",
        scale_init: float = 0.75,
        round_scales_fp16: bool = True,
    ):
        super().__init__()
        if attn_axis not in ATTN_AXES:
            raise ValueError(f"attn_axis '{attn_axis}': choose one of {', '.join(ATTN_AXES)}.")
        heads = max(1, width // 64)
        if width % heads:
            raise ValueError(f"TFM width {width} is not divisible by its {heads} heads (d / 64).")
        self.attn_axis = attn_axis
        self.round_scales_fp16 = round_scales_fp16
        self.ln_1 = LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, heads)
        self.ln_2 = LayerNorm(width)
        self.mlp = nn.Sequential(
            OrderedDict(
                c_fc=nn.Linear(width, mlp_hidden, bias=False),
                gelu=QuickGELU(),
                c_proj=nn.Linear(mlp_hidden, width, bias=False),
            )
        )
        self.scale_attn = nn.Parameter(torch.tensor(float(scale_init)))  # s1, kept in fp32
        self.scale_mlp = nn.Parameter(torch.tensor(float(scale_init)))  # s2, kept in fp32

    def _mix(self, scale: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """(s, 1 - s) in ``dtype``; rounded through fp16 first like the release when asked."""
        if self.round_scales_fp16:  # the release's value rounding, not a model precision
            scale = scale.to(torch.float16)
        return scale.to(dtype), (1 - scale).to(dtype)

    def forward(self, selected: torch.Tensor, prompts: torch.Tensor) -> torch.Tensor:
        """selected S (B, n, d), prompts P (B, n, d) -> new prompts O (B, n, d) in P's dtype."""
        query, key = self.ln_1(prompts), self.ln_1(selected)
        if self.attn_axis == "batch":
            # sequence-first MHA on (B, n, d): the batch axis is the sequence, as in the release
            attended = self.attn(query, key, key, need_weights=False)[0]  # (B, n, d)
        else:
            query, key = query.transpose(0, 1), key.transpose(0, 1)  # (n, B, d)
            attended = self.attn(query, key, key, need_weights=False)[0].transpose(0, 1)
        s1, one_minus_s1 = self._mix(self.scale_attn, selected.dtype)
        hidden = s1 * selected + one_minus_s1 * attended  # residual on S, not on P
        s2, one_minus_s2 = self._mix(self.scale_mlp, hidden.dtype)
        out = s2 * hidden + one_minus_s2 * self.mlp(self.ln_2(hidden))
        return out.to(prompts.dtype)


def select_text_tokens(x: torch.Tensor, n_ctx: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Positional text selection of the release.

    x (L, n_cls, d) block input -> (prompts P, selected S), each (n_cls, n_ctx, d): P = positions
    1..n_ctx, S = positions n_ctx+1..2*n_ctx (the class-name pieces; for short names also ".",
    EOT and padding; long names contribute their first n_ctx pieces).
    """
    prompts = x[1 : 1 + n_ctx].permute(1, 0, 2)  # (n_cls, n_ctx, d)
    selected = x[1 + n_ctx : 1 + 2 * n_ctx].permute(1, 0, 2)  # (n_cls, n_ctx, d)
    return prompts, selected


def select_visual_tokens(x: torch.Tensor, n_prompts: int, mode: str = "batch") -> torch.Tensor:
    """Top-k selection of pre-trained visual tokens by mean over channels of x^2.

    x (L, B, d) block input whose last ``n_prompts`` positions are the prompts (excluded from the
    ranking; CLS included) -> S (B, n_prompts, d), tokens in descending score order.
    ``mode "batch"`` (release): scores averaged over the batch, one top-k for every image;
    ``"sample"``: top-k per image. Scores are computed in fp32 (fp16 squares can overflow).
    """
    tokens = x[: x.shape[0] - n_prompts]  # (1 + N, B, d)
    score = tokens.float().pow(2).mean(dim=-1)  # (1 + N, B)
    if mode == "batch":
        index = score.mean(dim=1).topk(n_prompts).indices  # (n_prompts,)
        return tokens[index].permute(1, 0, 2)  # (B, n_prompts, d)
    if mode == "sample":
        index = score.topk(n_prompts, dim=0).indices  # (n_prompts, B)
        gathered = tokens.gather(0, index.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))
        return gathered.permute(1, 0, 2)  # (B, n_prompts, d)
    raise ValueError(f"select mode '{mode}': choose one of {', '.join(SELECT_MODES)}.")


def fuse_features(prompted: torch.Tensor, frozen: torch.Tensor) -> torch.Tensor:
    """normalise(normalise(prompted) + frozen): prompted (n, E) any dtype, frozen (n, E) unit fp32
    -> (n, E) fp32."""
    return F.normalize(F.normalize(prompted.float(), dim=-1) + frozen, dim=-1)


@torch.no_grad()
def class_mean_prototypes(
    features: torch.Tensor, labels: torch.Tensor, num_classes: int
) -> torch.Tensor:
    """Prototype rows: per-class mean of L2-normalised features, L2-normalised.

    features (n, E), labels (n,) -> (num_classes, E) fp32 (a class without samples gets a zero row).
    """
    features = F.normalize(features.float(), dim=-1)
    sums = torch.zeros(num_classes, features.shape[1], device=features.device)
    sums.index_add_(0, labels, features)  # (num_classes, E)
    counts = torch.bincount(labels, minlength=num_classes).clamp(min=1).unsqueeze(1)
    return F.normalize(sums / counts, dim=-1)


def sep_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    text_features: torch.Tensor,
    text_features_hand: torch.Tensor,
    image_features: torch.Tensor,
    image_features_frozen: torch.Tensor,
    prototypes: torch.Tensor,
    w: float,
    w_v: float,
) -> dict[str, torch.Tensor]:
    """The four-term SEP loss.

    logits (B, n_cls); labels (B,); text_features / text_features_hand (n_cls, E) fused / frozen;
    image_features / image_features_frozen (B, E) fused / frozen (all unit norm); prototypes
    (n_cls, E) raw rows. Returns the terms (``ce``, ``text``, ``visual``, ``proto``, already
    weighted) and their sum ``loss``.
    """
    proto = F.normalize(prototypes.float(), dim=-1)  # (n_cls, E)
    terms = {
        "ce": F.cross_entropy(logits, labels),
        "text": w
        * (1 - F.cosine_similarity(text_features, text_features_hand, dim=1, eps=COS_EPS).mean()),
        "visual": w_v
        * (
            1
            - F.cosine_similarity(image_features_frozen, image_features, dim=1, eps=COS_EPS).mean()
        ),
        "proto": PROTO_LOSS_WEIGHT
        * (
            F.cross_entropy(PROTO_LOGIT_SCALE * image_features @ proto.t(), labels)
            + F.cross_entropy(PROTO_LOGIT_SCALE * image_features_frozen @ proto.t(), labels)
        ),
    }
    terms["loss"] = terms["ce"] + terms["text"] + terms["visual"] + terms["proto"]
    return terms


# ---------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------


class PromptLearner(nn.Module):
    """Everything SEP learns (registered as the model ``prompt_learner``).

    - ``ctx`` (n_t, d_text), ``ctx_visual`` (n_v, d_vis): prompt tokens;
    - ``text_fusion`` / ``visual_fusion``: one TFM per fused block, all copies of one initial module
      per encoder (as the release); ``text_fusion_layers`` / ``visual_fusion_layers`` their blocks;
    - ``prototypes`` (n_cls, E): prototype classifier rows (training only, class-dependent);
    - buffers ``token_prefix`` (n_cls, 1, d) and ``token_suffix`` (n_cls, L - 1 - n_t, d): the
      frozen embeddings of "[SOS]" and "<name>. [EOT] ..." (class-dependent).
    """

    def __init__(self, cfg: CN, classnames: list[str], clip_model: CLIP):
        super().__init__()
        sep = cfg.TRAINER.SEP
        dtype = clip_model.dtype
        text_width = clip_model.ln_final.weight.shape[0]
        visual_width = clip_model.visual.class_embedding.shape[0]
        embed_dim = clip_model.text_projection.shape[1]
        context_length = clip_model.positional_embedding.shape[0]
        self.n_ctx, self.n_ctx_v, self.select = sep.N_CTX, sep.N_CTX_V, sep.SELECT
        if 1 + 2 * self.n_ctx > context_length:
            raise ValueError(
                f"TRAINER.SEP.N_CTX {self.n_ctx}: prompts and selected class tokens need "
                f"1 + 2 * N_CTX <= {context_length} (the context length of this CLIP)."
            )
        n_visual_tokens = clip_model.visual.positional_embedding.shape[0]  # 1 + N patches
        if self.n_ctx_v > n_visual_tokens:
            raise ValueError(
                f"TRAINER.SEP.N_CTX_V {self.n_ctx_v}: the visual prompts select as many tokens "
                f"among the {n_visual_tokens} of this CLIP's image encoder; use at most that."
            )
        self.text_fusion_layers = resolve_fusion_layers(
            sep.FUSION_LAYERS, len(clip_model.transformer.resblocks), "text"
        )
        self.visual_fusion_layers = resolve_fusion_layers(
            sep.FUSION_LAYERS, len(clip_model.visual.transformer.resblocks), "image"
        )

        # token embeddings of "X X X X X X <name>." (or "<CTX_INIT> <name>.")
        device = clip_model.token_embedding.weight.device
        prefix = sep.CTX_INIT if sep.CTX_INIT else " ".join(["X"] * self.n_ctx)
        names = [name.replace("_", " ") for name in classnames]
        tokenized = clip.tokenize([f"{prefix} {name}." for name in names], context_length)
        with torch.no_grad():  # (n_cls, L, d_text)
            embedding = clip_model.token_embedding(tokenized.to(device)).type(dtype)
        if sep.CTX_INIT:
            ctx = embedding[0, 1 : 1 + self.n_ctx].clone()  # (n_ctx, d_text)
        else:
            ctx = torch.empty(self.n_ctx, text_width, dtype=dtype, device=device)
            nn.init.normal_(ctx, std=0.02)
        ctx_visual = torch.empty(self.n_ctx_v, visual_width, dtype=dtype, device=device)
        nn.init.normal_(ctx_visual, std=0.02)
        print(f'Initial text context: "{prefix}" ({self.n_ctx} tokens)')
        print(f"Number of visual prompt tokens: {self.n_ctx_v}")
        self.ctx = nn.Parameter(ctx)  # (n_t, d_text)
        self.ctx_visual = nn.Parameter(ctx_visual)  # (n_v, d_vis)
        self.register_buffer("token_prefix", embedding[:, :1])  # (n_cls, 1, d_text) SOS
        self.register_buffer("token_suffix", embedding[:, 1 + self.n_ctx :])  # name, EOT, pad
        self.register_buffer("tokenized_prompts", tokenized.to(device), persistent=False)

        def fusion_modules(width: int, count: int) -> nn.ModuleList:
            tfm = TokenFusionModule(
                width, sep.MLP_HIDDEN, sep.ATTN_AXIS, sep.SCALE_INIT, sep.ROUND_SCALES_FP16
            ).to(device)
            if dtype == torch.float16:
                convert_weights(tfm)  # fp16 linear/attention weights; LayerNorms and s1, s2 fp32
            return nn.ModuleList(copy.deepcopy(tfm) for _ in range(count))

        self.text_fusion = fusion_modules(text_width, len(self.text_fusion_layers))
        self.visual_fusion = fusion_modules(visual_width, len(self.visual_fusion_layers))
        self._text_index = {block: k for k, block in enumerate(self.text_fusion_layers)}
        self._visual_index = {block: k for k, block in enumerate(self.visual_fusion_layers)}
        self.prototypes = nn.Parameter(torch.zeros(len(classnames), embed_dim, device=device))

    def forward(self) -> torch.Tensor:
        """Text prompt embeddings [SOS][ctx][name . EOT pad]: (n_cls, L, d_text)."""
        ctx = self.ctx.unsqueeze(0).expand(self.token_prefix.shape[0], -1, -1)  # (n_cls, n_t, d)
        return torch.cat([self.token_prefix, ctx, self.token_suffix], dim=1)

    def text_block_hook(self, i: int, x: torch.Tensor) -> torch.Tensor:
        """Before text block i: positions 1..n_t <- TFM(S = the next n_t positions, P).

        x (L, n_cls, d) -> (L, n_cls, d)."""
        k = self._text_index.get(i)
        if k is None:
            return x
        prompts, selected = select_text_tokens(x, self.n_ctx)  # (n_cls, n_t, d) each
        fused = self.text_fusion[k](selected, prompts).permute(1, 0, 2)  # (n_t, n_cls, d)
        return torch.cat([x[:1], fused, x[1 + self.n_ctx :]], dim=0)

    def visual_block_hook(self, i: int, x: torch.Tensor) -> torch.Tensor:
        """Before image block i: last n_v positions <- TFM(S = top-k tokens, P).

        x (L, B, d) -> (L, B, d)."""
        k = self._visual_index.get(i)
        if k is None:
            return x
        selected = select_visual_tokens(x, self.n_ctx_v, self.select)  # (B, n_v, d)
        prompts = x[-self.n_ctx_v :].permute(1, 0, 2)  # (B, n_v, d)
        fused = self.visual_fusion[k](selected, prompts).permute(1, 0, 2)  # (n_v, B, d)
        return torch.cat([x[: -self.n_ctx_v], fused], dim=0)


class CustomCLIP(TextFeatureCache, nn.Module):
    """Frozen CLIP + SEP's prompt learner.

    ``text_features_hand`` (n_cls, E): frozen, L2-normalised CLIP features of the SEP template per
    class, computed once per class set by the trainer (fp32).
    """

    def __init__(
        self, cfg: CN, classnames: list[str], clip_model: CLIP, text_features_hand: torch.Tensor
    ):
        super().__init__()
        self.prompt_learner = PromptLearner(cfg, classnames, clip_model)
        self.text_encoder = TextEncoder(clip_model)
        self.image_encoder = clip_model.visual
        self.logit_scale = clip_model.logit_scale
        self.dtype = clip_model.dtype
        self.w, self.w_v = cfg.TRAINER.SEP.W, cfg.TRAINER.SEP.W_V
        self.register_buffer("text_features_hand", text_features_hand.float(), persistent=False)

    def text_features(self) -> torch.Tensor:
        """(n_cls, E) fused class text features: normalise(normalise(prompted) + hand), fp32."""
        learner = self.prompt_learner
        prompted = self.text_encoder(
            learner(),
            learner.tokenized_prompts,
            before_block=learner.text_block_hook,
            min_length=1 + 2 * learner.n_ctx,  # the hook reads positions n_t+1 .. 2 n_t
        )  # (n_cls, E)
        return fuse_features(prompted, self.text_features_hand)

    def image_features(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """image (B, 3, H, W) -> (fused f_img, frozen f_img_frozen), each (B, E) unit fp32."""
        image = image.type(self.dtype)
        with torch.no_grad():
            frozen = F.normalize(self.image_encoder(image).float(), dim=-1)  # (B, E)
        learner = self.prompt_learner
        ctx_visual = learner.ctx_visual.unsqueeze(0).expand(image.shape[0], -1, -1)  # (B, n_v, d)
        prompted = self.image_encoder(
            image, before_block=learner.visual_block_hook, extra_tokens=ctx_visual
        )  # (B, E)
        return fuse_features(prompted, frozen), frozen

    def forward(
        self, image: torch.Tensor, label: torch.Tensor | None = None
    ) -> torch.Tensor | tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """image (B, 3, H, W) -> logits (B, n_cls) fp32; with ``label`` (B,) -> (logits, losses)
        where ``losses`` are the terms of :func:`sep_loss`."""
        text_features = self.cached_text_features(self.text_features)  # (n_cls, E)
        image_features, image_features_frozen = self.image_features(image)
        logits = self.logit_scale.exp().float() * image_features @ text_features.t()
        if label is None:
            return logits
        losses = sep_loss(
            logits,
            label,
            text_features,
            self.text_features_hand,
            image_features,
            image_features_frozen,
            self.prompt_learner.prototypes,
            self.w,
            self.w_v,
        )
        return logits, losses


@TRAINER_REGISTRY.register()
class SEP(PromptLearningTrainer):
    """Self-Enhanced Prompt Tuning. Learnable module: ``prompt_learner`` (as the release)."""

    CLASS_DEPENDENT_KEYS = ("token_prefix", "token_suffix", "prototypes")

    def check_cfg(self, cfg: CN) -> None:
        check_sep_config(cfg)

    def build_model(self) -> None:
        cfg = self.cfg
        classnames = self.dm.dataset.classnames
        self.prec = resolve_precision(cfg.TRAINER.SEP.PREC, self.device)

        print(f"Loading CLIP (backbone: {cfg.MODEL.BACKBONE.NAME})")
        clip_model = load_clip_to_cpu(cfg).to(self.device)  # fp32
        if not hasattr(clip_model.visual, "transformer"):
            raise ValueError(
                f"MODEL.BACKBONE.NAME {cfg.MODEL.BACKBONE.NAME!r} has a ResNet image encoder; "
                "SEP prompts a ViT: use a ViT CLIP (e.g. ViT-B/16)."
            )
        template = get_template(cfg.DATASET.NAME, SEP_TEMPLATES)
        print(f'Hand-crafted template: "{template}"')
        text_features_hand = encode_texts(
            clip_model, class_texts(template, classnames), self.device
        )  # (n_cls, E) in fp32, whatever the precision
        cast_clip(clip_model, self.prec)

        print("Building custom CLIP")
        self.model = CustomCLIP(cfg, classnames, clip_model, text_features_hand)
        learner = self.model.prompt_learner
        print(
            f"Fused blocks: text {learner.text_fusion_layers}, image {learner.visual_fusion_layers}"
        )

        # one GPU per run: DataParallel would split the batch that ATTN_AXIS "batch" attends
        # across (sweep.py runs one job per GPU instead)
        self.setup_prompt_learner(data_parallel=False)

    def before_train(self) -> None:
        # The release initialises the prototypes at the end of build_model. Doing it here, still
        # before the first step and with nothing drawing random numbers in between, gives the same
        # prototypes and spares evaluation-only runs a pass over the training set (a resumed run
        # overwrites them with the checkpoint's).
        self.init_prototypes()
        super().before_train()

    @torch.no_grad()
    def init_prototypes(self) -> None:
        """Prototype rows <- class means of the frozen image features over the training loader
        (training augmentations, model in eval mode), as the release."""
        print("Initialising the prototypes from the training set")
        self.set_model_mode("eval")
        model = self.model
        features, labels = [], []
        for batch in self.train_loader_x:
            image, label = self.parse_batch_train(batch)
            with autocast(self.prec, self.device):
                features.append(model.image_encoder(image.type(model.dtype)).float())  # (B, E)
            labels.append(label)
        prototypes = class_mean_prototypes(
            torch.cat(features), torch.cat(labels), model.prompt_learner.prototypes.shape[0]
        )
        model.prompt_learner.prototypes.copy_(prototypes)

    def forward_backward(self, batch: dict) -> dict[str, float]:
        image, label = self.parse_batch_train(batch)
        with autocast(self.prec, self.device):
            logits, losses = self.model(image, label)
        self.backward_and_update(losses["loss"])

        summary = {"loss": losses["loss"].item(), "acc": compute_accuracy(logits, label)[0].item()}
        if (self.batch_idx + 1) == self.num_batches:
            self.update_lr()
        return summary

    def parse_batch_train(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        return batch["img"].to(self.device), batch["label"].to(self.device)

    def map_checkpoint_keys(self, state_dict: dict, name: str) -> dict:
        """Release checkpoints (``prompt_projections.<k>...``) -> our names; ours pass unchanged."""
        learner = self.model.prompt_learner
        return map_release_state_dict(
            state_dict, len(learner.text_fusion), len(learner.visual_fusion)
        )
