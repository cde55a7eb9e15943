"""KgCoOp (Yao et al., CVPR 2023): CoOp plus a knowledge-guided loss that keeps the learned class
text features close to frozen CLIP's features of a hand-crafted prompt.

    loss = CE(logits, y) + W * (1 - mean_c cos(f_txt[c], f_txt_hand[c]))

The hand-crafted features (``KG_TEMPLATES``) are computed once per class set; inference is CoOp's.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F
from yacs.config import CfgNode as CN

from dassl.engine import TRAINER_REGISTRY
from dassl.metrics import compute_accuracy

from . import coop
from .common import (
    PromptLearningTrainer,
    autocast,
    cast_clip,
    check_context_options,
    class_texts,
    encode_texts,
    load_clip_to_cpu,
    resolve_precision,
)
from .templates import KG_TEMPLATES, get_template

# Parameters of the official prompt learner that its forward never uses (a leftover meta-net and
# bias); they are in the release's checkpoints and are dropped on load.
UNUSED_RELEASE_KEYS = ("bias_vectors", "meta_net")


def add_config(cfg: CN) -> None:
    """The TRAINER.KGCOOP node (the release keeps these keys under TRAINER.COOP)."""
    cfg.TRAINER.KGCOOP = CN()
    cfg.TRAINER.KGCOOP.N_CTX = 4  # number of context vectors
    cfg.TRAINER.KGCOOP.CSC = False  # class-specific context
    cfg.TRAINER.KGCOOP.CTX_INIT = "a photo of a"  # initialisation words
    cfg.TRAINER.KGCOOP.PREC = "fp16"  # fp16, fp32, amp
    cfg.TRAINER.KGCOOP.W = 8.0  # weight of the knowledge-guided loss
    cfg.TRAINER.KGCOOP.CLASS_TOKEN_POSITION = "end"  # 'middle' or 'end' or 'front'


def knowledge_guided_loss(
    text_features: torch.Tensor, text_features_hand: torch.Tensor
) -> torch.Tensor:
    """1 - mean over classes of cos(text_features[c], text_features_hand[c]) (cos eps 1e-7, as the
    release), computed in fp32. Both (n_cls, E) -> 0-d."""
    cos = F.cosine_similarity(text_features.float(), text_features_hand.float(), dim=1, eps=1e-7)
    return 1.0 - cos.mean()


class CustomCLIP(coop.CustomCLIP):
    """CoOp's model plus the frozen hand-crafted class text features ``text_features_hand``
    (n_cls, E), L2-normalised; they are a non-persistent buffer, so checkpoints never hold them."""

    def __init__(
        self, cfg: CN, classnames: list[str], clip_model, text_features_hand: torch.Tensor
    ):
        super().__init__(cfg, classnames, clip_model, cfg.TRAINER.KGCOOP)
        if text_features_hand.shape[0] != len(classnames):
            raise ValueError(
                f"trainers/kgcoop.py CustomCLIP: {text_features_hand.shape[0]} hand-crafted text "
                f"features for {len(classnames)} classes; compute one per class name."
            )
        self.register_buffer("text_features_hand", text_features_hand, persistent=False)

    def forward(self, image: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """image (B, 3, H, W) -> logits (B, n_cls); while the prompt learner is in training mode,
        ``(logits, knowledge_guided_loss)`` (the second 0-d), the pair the release returns."""
        image_features = F.normalize(
            self.image_encoder(image.type(self.text_encoder.dtype)), dim=-1
        )
        text_features = self.cached_text_features(self.text_features)  # (n_cls, E)
        logits = self.logit_scale.exp() * image_features @ text_features.t()  # (B, n_cls)
        if self.prompt_learner.training:
            return logits, knowledge_guided_loss(text_features, self.text_features_hand)
        return logits


@TRAINER_REGISTRY.register()
class KgCoOp(PromptLearningTrainer):
    """Knowledge-guided Context Optimization (KgCoOp)."""

    def check_cfg(self, cfg):
        check_context_options(cfg, "KGCOOP")
        if cfg.TRAINER.KGCOOP.W < 0:
            raise ValueError(f"TRAINER.KGCOOP.W must be >= 0, got {cfg.TRAINER.KGCOOP.W}.")

    def build_model(self):
        cfg = self.cfg
        classnames = self.dm.dataset.classnames
        self.prec = resolve_precision(cfg.TRAINER.KGCOOP.PREC, self.device)
        self.w = cfg.TRAINER.KGCOOP.W

        print(f"Loading CLIP (backbone: {cfg.MODEL.BACKBONE.NAME})")
        clip_model = cast_clip(load_clip_to_cpu(cfg), self.prec)

        template = get_template(cfg.DATASET.NAME, KG_TEMPLATES)
        print(f'Hand-crafted prompt: "{template}"')
        clip_model.to(self.device)  # one text pass over every class, on the training device
        text_features_hand = encode_texts(
            clip_model, class_texts(template, classnames), self.device
        )

        print("Building custom CLIP")
        self.model = CustomCLIP(cfg, classnames, clip_model, text_features_hand)

        self.setup_prompt_learner()

    def forward_backward(self, batch):
        image, label = self.parse_batch_train(batch)
        with autocast(self.prec, self.device):
            output, score = self.model(image)
            score = score.mean()  # one value per GPU under DataParallel
            loss = F.cross_entropy(output.float(), label) + self.w * score
        self.backward_and_update(loss)

        loss_summary = {
            "loss": loss.item(),
            "loss_kg": score.item(),
            "acc": compute_accuracy(output, label)[0].item(),
        }
        if (self.batch_idx + 1) == self.num_batches:
            self.update_lr()
        return loss_summary

    def parse_batch_train(self, batch):
        return batch["img"].to(self.device), batch["label"].to(self.device)

    def map_checkpoint_keys(self, state_dict: dict, name: str) -> dict:
        """Drop the release's unused prompt-learner parameters (``bias_vectors``,
        ``meta_net.*``)."""
        return {
            k: v
            for k, v in state_dict.items()
            if not any(k == u or k.startswith(u + ".") for u in UNUSED_RELEASE_KEYS)
        }
