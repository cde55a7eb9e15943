"""CoOp (Zhou et al., IJCV 2022): learnable context vectors in front of the class name."""

from __future__ import annotations

import torch
import torch.nn as nn
from torch.nn import functional as F
from yacs.config import CfgNode as CN

import clip
from dassl.engine import TRAINER_REGISTRY
from dassl.metrics import compute_accuracy

from .common import (
    PromptLearningTrainer,
    TextEncoder,
    TextFeatureCache,
    autocast,
    cast_clip,
    check_context_options,
    load_clip_to_cpu,
    resolve_precision,
)


def add_config(cfg: CN) -> None:
    """The TRAINER.COOP node, with upstream CoOp's keys and types."""
    cfg.TRAINER.COOP = CN()
    cfg.TRAINER.COOP.N_CTX = 16  # number of context vectors
    cfg.TRAINER.COOP.CSC = False  # class-specific context
    cfg.TRAINER.COOP.CTX_INIT = ""  # initialisation words
    cfg.TRAINER.COOP.PREC = "fp16"  # fp16, fp32, amp
    cfg.TRAINER.COOP.CLASS_TOKEN_POSITION = "end"  # 'middle' or 'end' or 'front'


class PromptLearner(nn.Module):
    """Context vectors (shared or class-specific) spliced around the class-name tokens."""

    def __init__(self, cfg, classnames: list[str], clip_model, options=None):
        """``options``: the method's config node (N_CTX, CTX_INIT, and optionally CSC and
        CLASS_TOKEN_POSITION); ``cfg.TRAINER.COOP`` by default."""
        super().__init__()
        options = cfg.TRAINER.COOP if options is None else options
        csc = options.get("CSC", False)
        n_cls = len(classnames)
        n_ctx = options.N_CTX
        ctx_init = options.CTX_INIT
        dtype = clip_model.dtype
        ctx_dim = clip_model.ln_final.weight.shape[0]
        device = clip_model.token_embedding.weight.device

        if ctx_init:
            ctx_init = ctx_init.replace("_", " ")
            n_ctx = len(ctx_init.split(" "))
            prompt = clip.tokenize(ctx_init).to(device)
            with torch.no_grad():
                embedding = clip_model.token_embedding(prompt).type(dtype)
            ctx_vectors = embedding[0, 1 : 1 + n_ctx, :]  # (n_ctx, dim)
            prompt_prefix = ctx_init
        else:
            if csc:
                print("Initializing class-specific contexts")
                ctx_vectors = torch.empty(n_cls, n_ctx, ctx_dim, dtype=dtype, device=device)
            else:
                print("Initializing a generic context")
                ctx_vectors = torch.empty(n_ctx, ctx_dim, dtype=dtype, device=device)
            nn.init.normal_(ctx_vectors, std=0.02)
            prompt_prefix = " ".join(["X"] * n_ctx)
        if csc and ctx_vectors.dim() == 2:
            ctx_vectors = ctx_vectors.unsqueeze(0).expand(n_cls, -1, -1).clone()

        print(f'Initial context: "{prompt_prefix}"')
        print(f"Number of context words (tokens): {n_ctx}")
        self.ctx = nn.Parameter(ctx_vectors)  # (n_ctx, dim) or (n_cls, n_ctx, dim)

        classnames = [name.replace("_", " ") for name in classnames]
        self.name_lens = [len(clip.tokenize(name)[0].nonzero()) - 2 for name in classnames]
        prompts = [prompt_prefix + " " + name + "." for name in classnames]
        tokenized_prompts = clip.tokenize(prompts).to(device)  # (n_cls, L)
        with torch.no_grad():
            embedding = clip_model.token_embedding(tokenized_prompts).type(dtype)

        # class-dependent buffers: SOS, and class tokens + EOS; dropped when a checkpoint is loaded
        self.register_buffer("token_prefix", embedding[:, :1, :])  # (n_cls, 1, dim)
        self.register_buffer("token_suffix", embedding[:, 1 + n_ctx :, :])  # (n_cls, *, dim)
        self.register_buffer("tokenized_prompts", tokenized_prompts, persistent=False)
        self.n_cls = n_cls
        self.n_ctx = n_ctx
        self.class_token_position = options.get("CLASS_TOKEN_POSITION", "end")

    def forward(self) -> torch.Tensor:
        """-> (n_cls, L, dim) prompt token embeddings."""
        ctx = self.ctx
        if ctx.dim() == 2:
            ctx = ctx.unsqueeze(0).expand(self.n_cls, -1, -1)
        prefix, suffix = self.token_prefix, self.token_suffix

        if self.class_token_position == "end":
            return torch.cat([prefix, ctx, suffix], dim=1)
        half = self.n_ctx // 2
        prompts = []
        for i, name_len in enumerate(self.name_lens):
            class_i = suffix[i : i + 1, :name_len, :]
            rest_i = suffix[i : i + 1, name_len:, :]
            ctx_i = ctx[i : i + 1]
            if self.class_token_position == "middle":
                parts = [prefix[i : i + 1], ctx_i[:, :half], class_i, ctx_i[:, half:], rest_i]
            else:  # front
                parts = [prefix[i : i + 1], class_i, ctx_i, rest_i]
            prompts.append(torch.cat(parts, dim=1))
        return torch.cat(prompts, dim=0)


class CustomCLIP(TextFeatureCache, nn.Module):
    def __init__(self, cfg, classnames: list[str], clip_model, options=None):
        super().__init__()
        self.prompt_learner = PromptLearner(cfg, classnames, clip_model, options)
        self.image_encoder = clip_model.visual
        self.text_encoder = TextEncoder(clip_model)
        self.logit_scale = clip_model.logit_scale

    def text_features(self) -> torch.Tensor:
        """(n_cls, E) L2-normalised prompted class text features."""
        prompts = self.prompt_learner()
        features = self.text_encoder(prompts, self.prompt_learner.tokenized_prompts)
        return F.normalize(features, dim=-1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """image (B, 3, H, W) -> logits (B, n_cls)."""
        image_features = F.normalize(
            self.image_encoder(image.type(self.text_encoder.dtype)), dim=-1
        )
        text_features = self.cached_text_features(self.text_features)
        return self.logit_scale.exp() * image_features @ text_features.t()


@TRAINER_REGISTRY.register()
class CoOp(PromptLearningTrainer):
    """Context Optimization (CoOp)."""

    def check_cfg(self, cfg):
        check_context_options(cfg, "COOP")

    def build_model(self):
        cfg = self.cfg
        classnames = self.dm.dataset.classnames
        self.prec = resolve_precision(cfg.TRAINER.COOP.PREC, self.device)

        print(f"Loading CLIP (backbone: {cfg.MODEL.BACKBONE.NAME})")
        clip_model = cast_clip(load_clip_to_cpu(cfg), self.prec)

        print("Building custom CLIP")
        self.model = CustomCLIP(cfg, classnames, clip_model)

        self.setup_prompt_learner()

    def forward_backward(self, batch):
        image, label = self.parse_batch_train(batch)
        with autocast(self.prec, self.device):
            output = self.model(image)
            loss = F.cross_entropy(output.float(), label)
        self.backward_and_update(loss)

        loss_summary = {"loss": loss.item(), "acc": compute_accuracy(output, label)[0].item()}
        if (self.batch_idx + 1) == self.num_batches:
            self.update_lr()
        return loss_summary

    def parse_batch_train(self, batch):
        return batch["img"].to(self.device), batch["label"].to(self.device)
