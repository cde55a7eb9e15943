"""Zero-shot CLIP: one hand-crafted template per dataset (CoOp's ``ZeroshotCLIP``)."""

from __future__ import annotations

import torch.nn as nn
from torch.nn import functional as F

from dassl.engine import TRAINER_REGISTRY

from .common import (
    PromptLearningTrainer,
    TextFeatureCache,
    cast_clip,
    class_texts,
    encode_texts,
    load_clip_to_cpu,
    resolve_precision,
)
from .templates import COOP_TEMPLATES, get_template


class ZeroshotModel(TextFeatureCache, nn.Module):
    """Frozen CLIP with class text features from one template."""

    def __init__(self, clip_model, texts: list[str]):
        super().__init__()
        self.clip_model = clip_model
        self.texts = texts

    def text_features(self):
        """(n_cls, E) L2-normalised text features of the templates."""
        return encode_texts(self.clip_model, self.texts, self.clip_model.logit_scale.device)

    def forward(self, image):
        """image (B, 3, H, W) -> logits (B, n_cls)."""
        image_features = F.normalize(self.clip_model.encode_image(image).float(), dim=-1)
        text_features = self.cached_text_features(self.text_features)
        return self.clip_model.logit_scale.exp() * image_features @ text_features.t()


@TRAINER_REGISTRY.register()
class ZeroshotCLIP(PromptLearningTrainer):
    """Evaluation only: run it with ``--eval-only``."""

    def build_model(self):
        cfg = self.cfg
        self.prec = resolve_precision(cfg.TRAINER.COOP.PREC, self.device)
        print(f"Loading CLIP (backbone: {cfg.MODEL.BACKBONE.NAME})")
        clip_model = cast_clip(load_clip_to_cpu(cfg), self.prec).to(self.device)
        template = get_template(cfg.DATASET.NAME, COOP_TEMPLATES)
        print(f'Prompt template: "{template}"')
        self.model = ZeroshotModel(clip_model, class_texts(template, self.dm.dataset.classnames))
