"""CoCoOp (Zhou et al., CVPR 2022): CoOp's context shifted per image by a small meta-net.

Each image gets its own prompts, ``ctx + meta_net(image_feature)``, so the class text features
depend on the image: they are computed per image (never cached) and the text encoder runs
``n_cls`` prompts for every image. Parameter names follow the official code (``ctx``,
``meta_net.linear1``, ``meta_net.linear2``), so its checkpoints load unchanged.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn as nn
from torch.nn import functional as F
from yacs.config import CfgNode as CN

from dassl.engine import TRAINER_REGISTRY

from . import coop
from .common import (
    PromptLearningTrainer,
    TextEncoder,
    autocast,
    cast_clip,
    check_context_options,
    load_clip_to_cpu,
    resolve_precision,
)


def add_config(cfg: CN) -> None:
    """The TRAINER.COCOOP node, with upstream CoCoOp's keys and types."""
    cfg.TRAINER.COCOOP = CN()
    cfg.TRAINER.COCOOP.N_CTX = 16  # number of context vectors
    cfg.TRAINER.COCOOP.CTX_INIT = ""  # initialisation words
    cfg.TRAINER.COCOOP.PREC = "fp16"  # fp16, fp32, amp


class PromptLearner(coop.PromptLearner):
    """CoOp's shared context plus the meta-net that shifts it by a per-image bias.

    meta_net: Linear(vis_dim, vis_dim // 16) -> ReLU -> Linear(vis_dim // 16, ctx_dim).
    """

    def __init__(self, cfg: CN, classnames: list[str], clip_model):
        super().__init__(cfg, classnames, clip_model, cfg.TRAINER.COCOOP)
        vis_dim = clip_model.visual.output_dim
        ctx_dim = clip_model.ln_final.weight.shape[0]
        hidden = vis_dim // 16
        self.meta_net = nn.Sequential(
            OrderedDict(
                [
                    ("linear1", nn.Linear(vis_dim, hidden)),
                    ("relu", nn.ReLU(inplace=True)),
                    ("linear2", nn.Linear(hidden, ctx_dim)),
                ]
            )
        ).to(clip_model.dtype)  # fp16 with an fp16 CLIP, as the official code does

    def forward(self, im_features: torch.Tensor) -> torch.Tensor:
        """im_features (B, vis_dim) -> per-image contexts (B, n_ctx, ctx_dim):
        ``ctx + meta_net(im_features[b])``, the bias added to every context vector."""
        bias = self.meta_net(im_features).unsqueeze(1)  # (B, 1, ctx_dim)
        return self.ctx.unsqueeze(0) + bias  # (B, n_ctx, ctx_dim)

    def class_prompts(self, ctx: torch.Tensor) -> torch.Tensor:
        """ctx (n_ctx, ctx_dim), one image's context -> prompts (n_cls, L, ctx_dim):
        [SOS] ctx [class name] . [EOS] for every class."""
        ctx = ctx.unsqueeze(0).expand(self.n_cls, -1, -1)  # (n_cls, n_ctx, ctx_dim)
        return torch.cat([self.token_prefix, ctx, self.token_suffix], dim=1)


class CustomCLIP(nn.Module):
    """Frozen CLIP with image-conditioned prompts. No text-feature cache: features depend on
    the image."""

    def __init__(self, cfg: CN, classnames: list[str], clip_model):
        super().__init__()
        self.prompt_learner = PromptLearner(cfg, classnames, clip_model)
        self.image_encoder = clip_model.visual
        self.text_encoder = TextEncoder(clip_model)
        self.logit_scale = clip_model.logit_scale

    def forward(self, image: torch.Tensor, label: torch.Tensor | None = None) -> torch.Tensor:
        """image (B, 3, H, W) -> logits (B, n_cls); while the prompt learner is in training mode,
        the cross-entropy against ``label`` (B,) instead (0-d), as in the official code."""
        image_features = self.image_encoder(image.type(self.text_encoder.dtype))
        image_features = F.normalize(image_features, dim=-1)  # (B, E)
        contexts = self.prompt_learner(image_features)  # (B, n_ctx, dim)
        tokenized_prompts = self.prompt_learner.tokenized_prompts  # (n_cls, L)

        logits = []  # one text-encoder pass over all classes per image, as in the official code
        for ctx_i, image_feature_i in zip(contexts, image_features):
            prompts_i = self.prompt_learner.class_prompts(ctx_i)  # (n_cls, L, dim)
            text_features = self.text_encoder(prompts_i, tokenized_prompts)  # (n_cls, E)
            text_features = F.normalize(text_features, dim=-1)
            logits.append(self.logit_scale.exp() * image_feature_i @ text_features.t())
        logits = torch.stack(logits)  # (B, n_cls)

        if self.prompt_learner.training:
            if label is None:
                raise ValueError(
                    "trainers/cocoop.py CustomCLIP returns the loss in training mode and needs "
                    "`label`; call it with (image, label) or switch the prompt learner to eval()."
                )
            return F.cross_entropy(logits.float(), label)
        return logits


@TRAINER_REGISTRY.register()
class CoCoOp(PromptLearningTrainer):
    """Conditional Context Optimization (CoCoOp)."""

    def check_cfg(self, cfg):
        check_context_options(cfg, "COCOOP")

    def build_model(self):
        cfg = self.cfg
        classnames = self.dm.dataset.classnames
        self.prec = resolve_precision(cfg.TRAINER.COCOOP.PREC, self.device)

        print(f"Loading CLIP (backbone: {cfg.MODEL.BACKBONE.NAME})")
        clip_model = cast_clip(load_clip_to_cpu(cfg), self.prec)

        print("Building custom CLIP")
        self.model = CustomCLIP(cfg, classnames, clip_model)

        self.setup_prompt_learner()

    def forward_backward(self, batch):
        image, label = self.parse_batch_train(batch)
        with autocast(self.prec, self.device):
            loss = self.model(image, label).mean()  # .mean(): one loss per GPU under DataParallel
        self.backward_and_update(loss)

        loss_summary = {"loss": loss.item()}
        if (self.batch_idx + 1) == self.num_batches:
            self.update_lr()
        return loss_summary

    def parse_batch_train(self, batch):
        return batch["img"].to(self.device), batch["label"].to(self.device)
