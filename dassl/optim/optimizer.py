"""``build_optimizer``: sgd, adam, amsgrad, adamw, radam, rmsprop from ``cfg.OPTIM``."""

import warnings
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn
from yacs.config import CfgNode

from dassl.utils import get_most_similar_str_to_a_from_b

__all__ = ["AVAI_OPTIMS", "build_optimizer"]

AVAI_OPTIMS = ["adam", "amsgrad", "sgd", "rmsprop", "radam", "adamw"]


def build_optimizer(
    model: nn.Module | Iterable[Any], optim_cfg: CfgNode, param_groups: Iterable[Any] | None = None
) -> torch.optim.Optimizer:
    """Build the optimizer of ``optim_cfg`` (``cfg.OPTIM``).

    Args:
        model: a module (all its parameters are optimised) or an iterable of parameters or of
            param-group dicts.
        optim_cfg: ``NAME``, ``LR``, ``WEIGHT_DECAY``, ``MOMENTUM``, ``SGD_DAMPNING``,
            ``SGD_NESTEROV``, ``RMSPROP_ALPHA``, ``ADAM_BETA1/2``, ``EPS``, ``STAGED_LR``,
            ``NEW_LAYERS``, ``BASE_LR_MULT``.
        param_groups: explicit param groups (then ``model`` is ignored, and so is ``STAGED_LR``).
    """
    optim = optim_cfg.NAME
    lr = optim_cfg.LR
    weight_decay = optim_cfg.WEIGHT_DECAY
    betas = (optim_cfg.ADAM_BETA1, optim_cfg.ADAM_BETA2)
    eps = optim_cfg.EPS

    if optim not in AVAI_OPTIMS:
        guess = get_most_similar_str_to_a_from_b(optim, AVAI_OPTIMS)
        raise ValueError(
            f'OPTIM.NAME: unknown optimizer "{optim}" (did you mean "{guess}"?). '
            f"Available: {AVAI_OPTIMS}"
        )

    if param_groups is not None and optim_cfg.STAGED_LR:
        warnings.warn(
            "OPTIM.STAGED_LR is ignored when param_groups are given; set the learning rates in "
            "the param groups yourself",
            stacklevel=2,
        )

    if param_groups is None:
        if optim_cfg.STAGED_LR:
            param_groups = _staged_param_groups(model, optim_cfg)
        elif isinstance(model, nn.Module):
            param_groups = model.parameters()
        else:
            param_groups = model

    if optim in ("adam", "amsgrad"):
        return torch.optim.Adam(
            param_groups,
            lr=lr,
            weight_decay=weight_decay,
            betas=betas,
            eps=eps,
            amsgrad=optim == "amsgrad",
        )
    if optim == "sgd":
        return torch.optim.SGD(
            param_groups,
            lr=lr,
            momentum=optim_cfg.MOMENTUM,
            weight_decay=weight_decay,
            dampening=optim_cfg.SGD_DAMPNING,
            nesterov=optim_cfg.SGD_NESTEROV,
        )
    if optim == "rmsprop":
        return torch.optim.RMSprop(
            param_groups,
            lr=lr,
            momentum=optim_cfg.MOMENTUM,
            weight_decay=weight_decay,
            alpha=optim_cfg.RMSPROP_ALPHA,
            eps=eps,
        )
    if optim == "radam":
        return torch.optim.RAdam(
            param_groups, lr=lr, weight_decay=weight_decay, betas=betas, eps=eps
        )
    return torch.optim.AdamW(param_groups, lr=lr, weight_decay=weight_decay, betas=betas, eps=eps)


def _staged_param_groups(model: nn.Module | Iterable[Any], optim_cfg: CfgNode) -> list[dict]:
    """Children named in ``NEW_LAYERS`` get ``LR``; the others ``LR * BASE_LR_MULT``."""
    if not isinstance(model, nn.Module):
        raise TypeError("OPTIM.STAGED_LR = True needs build_optimizer() to get an nn.Module")
    if isinstance(model, nn.DataParallel):
        model = model.module
    new_layers = optim_cfg.NEW_LAYERS
    if isinstance(new_layers, str):
        new_layers = [new_layers]
    if not new_layers:
        warnings.warn(
            "OPTIM.NEW_LAYERS is empty, so OPTIM.STAGED_LR has no new layers", stacklevel=2
        )
    base_params, new_params = [], []
    for name, module in model.named_children():
        if name in new_layers:
            new_params += list(module.parameters())
        else:
            base_params += list(module.parameters())
    return [
        {"params": base_params, "lr": optim_cfg.LR * optim_cfg.BASE_LR_MULT},
        {"params": new_params},
    ]
