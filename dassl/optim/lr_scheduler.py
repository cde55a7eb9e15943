"""``build_lr_scheduler`` and the warm-up schedulers, on ``torch.optim.lr_scheduler.LRScheduler``.

The scheduler is stepped once per epoch by the trainer. With a warm-up of ``WARMUP_EPOCH`` epochs
the warm-up scheduler sets the learning rate of those epochs, then hands over to the main
scheduler (its "successor"). Example (sgd, LR 0.002, cosine, 50 epochs, one constant warm-up
epoch at 1e-5): the learning rates of epochs 1..5 are 1e-5, 2e-3, 1.998027e-3, 1.992115e-3,
1.982287e-3.
"""

from typing import Any

import torch
from torch.optim.lr_scheduler import (
    ConstantLR,
    CosineAnnealingLR,
    LRScheduler,
    MultiStepLR,
    StepLR,
)
from yacs.config import CfgNode

from dassl.utils import get_most_similar_str_to_a_from_b

__all__ = [
    "AVAI_SCHEDS",
    "ConstantWarmupScheduler",
    "LinearWarmupScheduler",
    "build_lr_scheduler",
]

AVAI_SCHEDS = ["single_step", "multi_step", "cosine", "constant"]


class _BaseWarmupScheduler(LRScheduler):
    """Sets the LR for the first ``warmup_epoch`` epochs, then steps ``successor``.

    Its ``state_dict`` holds the successor's state dict (not the successor object), so a
    checkpoint holds only plain values.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        successor: LRScheduler,
        warmup_epoch: int,
        last_epoch: int = -1,
    ) -> None:
        self.successor = successor
        self.warmup_epoch = warmup_epoch
        super().__init__(optimizer, last_epoch)

    def step(self, epoch: int | None = None) -> None:
        if self.last_epoch >= self.warmup_epoch:
            self.successor.step(epoch)
            self._last_lr = self.successor.get_last_lr()
        else:
            super().step(epoch)

    def state_dict(self) -> dict[str, Any]:
        state = {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "successor")}
        state["successor"] = self.successor.state_dict()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state_dict = dict(state_dict)
        self.successor.load_state_dict(state_dict.pop("successor"))
        self.__dict__.update(state_dict)


class ConstantWarmupScheduler(_BaseWarmupScheduler):
    """Constant LR ``cons_lr`` during the warm-up epochs."""

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        successor: LRScheduler,
        warmup_epoch: int,
        cons_lr: float,
        last_epoch: int = -1,
    ) -> None:
        self.cons_lr = cons_lr
        super().__init__(optimizer, successor, warmup_epoch, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch >= self.warmup_epoch:
            return self.successor.get_last_lr()
        return [self.cons_lr for _ in self.base_lrs]


class LinearWarmupScheduler(_BaseWarmupScheduler):
    """LR ``min_lr`` in the first epoch, then ``base_lr * epoch / warmup_epoch`` (epoch 0-based)
    until the warm-up ends."""

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        successor: LRScheduler,
        warmup_epoch: int,
        min_lr: float,
        last_epoch: int = -1,
    ) -> None:
        self.min_lr = min_lr
        super().__init__(optimizer, successor, warmup_epoch, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch >= self.warmup_epoch:
            return self.successor.get_last_lr()
        if self.last_epoch == 0:
            return [self.min_lr for _ in self.base_lrs]
        return [lr * self.last_epoch / self.warmup_epoch for lr in self.base_lrs]


def build_lr_scheduler(optimizer: torch.optim.Optimizer, optim_cfg: CfgNode) -> LRScheduler:
    """Build the scheduler of ``optim_cfg`` (``cfg.OPTIM``), stepped once per epoch.

    ``LR_SCHEDULER``: ``single_step`` (``STEPSIZE`` epochs, <= 0 means ``MAX_EPOCH``, times
    ``GAMMA``), ``multi_step`` (milestones ``STEPSIZE``), ``cosine`` (to 0 over ``MAX_EPOCH``)
    or ``constant``. ``WARMUP_EPOCH > 0`` wraps it in a constant or linear warm-up
    (``WARMUP_TYPE``); with ``WARMUP_RECOUNT`` False the main scheduler starts counting at
    ``WARMUP_EPOCH`` instead of 0.
    """
    lr_scheduler = optim_cfg.LR_SCHEDULER
    stepsize = optim_cfg.STEPSIZE
    gamma = optim_cfg.GAMMA
    max_epoch = optim_cfg.MAX_EPOCH

    if lr_scheduler not in AVAI_SCHEDS:
        guess = get_most_similar_str_to_a_from_b(lr_scheduler, AVAI_SCHEDS)
        raise ValueError(
            f'OPTIM.LR_SCHEDULER: unknown scheduler "{lr_scheduler}" (did you mean "{guess}"?). '
            f"Available: {AVAI_SCHEDS}"
        )

    if lr_scheduler == "single_step":
        if isinstance(stepsize, (list, tuple)):
            stepsize = stepsize[-1]
        if not isinstance(stepsize, int):
            raise TypeError(
                f"OPTIM.STEPSIZE must be an int for single_step, got {type(stepsize).__name__}"
            )
        if stepsize <= 0:
            stepsize = max_epoch
        scheduler = StepLR(optimizer, step_size=stepsize, gamma=gamma)
    elif lr_scheduler == "multi_step":
        if not isinstance(stepsize, (list, tuple)):
            raise TypeError(
                "OPTIM.STEPSIZE must be a list of epochs for multi_step, got "
                f"{type(stepsize).__name__}"
            )
        scheduler = MultiStepLR(optimizer, milestones=list(stepsize), gamma=gamma)
    elif lr_scheduler == "cosine":
        scheduler = CosineAnnealingLR(optimizer, float(max_epoch))
    else:
        scheduler = ConstantLR(optimizer, factor=1.0, total_iters=0)

    if optim_cfg.WARMUP_EPOCH > 0:
        if not optim_cfg.WARMUP_RECOUNT:
            scheduler.last_epoch = optim_cfg.WARMUP_EPOCH
        if optim_cfg.WARMUP_TYPE == "constant":
            scheduler = ConstantWarmupScheduler(
                optimizer, scheduler, optim_cfg.WARMUP_EPOCH, optim_cfg.WARMUP_CONS_LR
            )
        elif optim_cfg.WARMUP_TYPE == "linear":
            scheduler = LinearWarmupScheduler(
                optimizer, scheduler, optim_cfg.WARMUP_EPOCH, optim_cfg.WARMUP_MIN_LR
            )
        else:
            raise ValueError(
                f'OPTIM.WARMUP_TYPE must be "constant" or "linear", got "{optim_cfg.WARMUP_TYPE}"'
            )
    return scheduler
