"""Trainers: ``TrainerBase`` (models, checkpoints, loop), ``SimpleTrainer`` (data, evaluation,
resume), ``TrainerX`` (one epoch over labelled data).

A method subclasses ``TrainerX``, builds its model in ``build_model`` and registers it with
``register_model(name, model, optim, sched)``; ``forward_backward(batch)`` computes the loss,
calls ``model_backward_and_update(loss)``, steps the LR scheduler with ``update_lr()`` after the
last batch of an epoch and returns a dict of floats for the progress line.

After every epoch a checkpoint of each registered model is written atomically, together with the
random-generator states; a run that is stopped and started again with the same command resumes
from its last finished epoch and gives the same result as an uninterrupted run.
"""

import datetime
import os
import os.path as osp
import re
import time
from collections import OrderedDict
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm
from yacs.config import CfgNode

from dassl.data import DataManager
from dassl.evaluation import build_evaluator
from dassl.utils import (
    AverageMeter,
    MetricMeter,
    get_rng_state,
    load_checkpoint,
    restore_training_state,
    save_checkpoint,
    set_rng_state,
    tolist_if_not,
)

__all__ = ["TrainerBase", "SimpleTrainer", "TrainerX"]

_EPOCH_FILE = re.compile(r"^model\.pth\.tar-(\d+)$")


def _epoch_files(directory: str) -> dict[int, str]:
    """Epoch -> path of the ``model.pth.tar-<epoch>`` files of a model folder."""
    if not osp.isdir(directory):
        return {}
    files = {}
    for fname in os.listdir(directory):
        match = _EPOCH_FILE.match(fname)
        if match:
            files[int(match.group(1))] = osp.join(directory, fname)
    return files


class TrainerBase:
    """Registered models with their optimizers and schedulers, checkpoints and the epoch loop."""

    def __init__(self) -> None:
        self._models: OrderedDict[str, nn.Module] = OrderedDict()
        self._optims: OrderedDict[str, torch.optim.Optimizer | None] = OrderedDict()
        self._scheds: OrderedDict[str, Any] = OrderedDict()

    def register_model(
        self,
        name: str = "model",
        model: nn.Module | None = None,
        optim: torch.optim.Optimizer | None = None,
        sched: Any = None,
    ) -> None:
        """Register a module (and its optimizer and scheduler) under ``name``: it is saved to
        ``<output>/<name>/``, put in train/eval mode and updated by the engine."""
        if self.__dict__.get("_models") is None:
            raise AttributeError("Cannot register a model before super().__init__() is called")
        if name in self._models:
            raise KeyError(f'A model named "{name}" is already registered')
        if not isinstance(model, nn.Module):
            raise TypeError(
                f'register_model("{name}"): model must be an nn.Module, got {type(model).__name__}'
            )
        self._models[name] = model
        self._optims[name] = optim
        self._scheds[name] = sched

    def get_model_names(self, names: str | list[str] | None = None) -> list[str]:
        """All registered names, or ``names`` after checking that they are registered."""
        names_real = list(self._models.keys())
        if names is None:
            return names_real
        names = tolist_if_not(names)
        for name in names:
            if name not in names_real:
                raise KeyError(f'No model registered as "{name}"; registered: {names_real}')
        return names

    def save_model(
        self,
        epoch: int,
        directory: str,
        is_best: bool = False,
        val_result: float | None = None,
        model_name: str = "",
    ) -> None:
        """Save every registered model to ``<directory>/<name>/`` (``epoch`` is 0-based; the file
        is ``model.pth.tar-<epoch + 1>`` unless ``model_name`` is given). The checkpoint also
        holds the random-generator states and the best validation result, for exact resuming."""
        rng_state = get_rng_state()
        for name in self.get_model_names():
            optim, sched = self._optims[name], self._scheds[name]
            save_checkpoint(
                {
                    "state_dict": self._models[name].state_dict(),
                    "epoch": epoch + 1,
                    "optimizer": optim.state_dict() if optim is not None else None,
                    "scheduler": sched.state_dict() if sched is not None else None,
                    "val_result": None if val_result is None else float(val_result),
                    "best_result": float(getattr(self, "best_result", -np.inf)),
                    "rng_state": rng_state,
                },
                osp.join(directory, name),
                is_best=is_best,
                model_name=model_name,
            )

    def resume_model_if_exist(self, directory: str) -> int:
        """Resume from the newest epoch checkpointed for every registered model in
        ``directory``; return the number of finished epochs (0 = train from scratch)."""
        names = self.get_model_names()
        files = {name: _epoch_files(osp.join(directory, name)) for name in names}
        common = set.intersection(*(set(f) for f in files.values())) if names else set()
        if not common:
            print("No checkpoint found, train from scratch")
            return 0
        epoch = max(common)
        print(f'Found checkpoint at "{directory}" (will resume training from epoch {epoch + 1})')
        checkpoint = None
        for name in names:
            fpath = files[name][epoch]
            print(f'Loading checkpoint from "{fpath}"')
            checkpoint = load_checkpoint(fpath)
            restore_training_state(
                checkpoint, self._models[name], self._optims[name], self._scheds[name]
            )
        if checkpoint.get("best_result") is not None:
            self.best_result = checkpoint["best_result"]
        if checkpoint.get("rng_state") is not None:
            set_rng_state(checkpoint["rng_state"])
        return epoch

    def load_model(self, directory: str, epoch: int | None = None) -> None:
        """Load the weights of every registered model from ``<directory>/<name>/`` (the best-val
        checkpoint, or ``model.pth.tar-<epoch>``)."""
        if not directory:
            print(
                "Note that load_model() is skipped as no pretrained model is given "
                "(ignore this if it's done on purpose)"
            )
            return
        model_file = "model-best.pth.tar" if epoch is None else f"model.pth.tar-{epoch}"
        for name in self.get_model_names():
            model_path = osp.join(directory, name, model_file)
            if not osp.exists(model_path):
                raise FileNotFoundError(
                    f'No model at "{model_path}"; check the model directory and the epoch'
                )
            checkpoint = load_checkpoint(model_path)
            val_result = checkpoint.get("val_result")
            val_str = "n/a" if val_result is None else f"{val_result:.1f}"
            print(
                f'Load "{model_path}" to {name} (epoch={checkpoint["epoch"]}, val_result={val_str})'
            )
            self._models[name].load_state_dict(checkpoint["state_dict"])

    def set_model_mode(self, mode: str = "train", names: str | list[str] | None = None) -> None:
        """Put the registered models in ``train`` or ``eval`` (``test``) mode."""
        for name in self.get_model_names(names):
            if mode == "train":
                self._models[name].train()
            elif mode in ("test", "eval"):
                self._models[name].eval()
            else:
                raise KeyError(f'set_model_mode(): mode must be "train", "eval" or "test": {mode}')

    def update_lr(self, names: str | list[str] | None = None) -> None:
        """Step the LR schedulers (called by trainers after the last batch of an epoch)."""
        for name in self.get_model_names(names):
            if self._scheds[name] is not None:
                self._scheds[name].step()

    def detect_anomaly(self, loss: torch.Tensor) -> None:
        """Raise ``FloatingPointError`` if ``loss`` is NaN or infinite, naming the likely causes."""
        if not torch.isfinite(loss).all():
            optim_cfg = self.cfg.OPTIM if hasattr(self, "cfg") else None
            details = ""
            if optim_cfg is not None:
                details = (
                    f" (OPTIM.NAME={optim_cfg.NAME}, OPTIM.LR={optim_cfg.LR}, "
                    f"OPTIM.EPS={optim_cfg.EPS})"
                )
            epoch = getattr(self, "epoch", 0) + 1
            batch = getattr(self, "batch_idx", 0) + 1
            raise FloatingPointError(
                f"Loss is {loss.detach().float().flatten()[0].item()} at epoch {epoch}, batch "
                f"{batch}{details}. Likely causes: a learning rate too high (lower OPTIM.LR); "
                "fp16 parameters with an adaptive optimizer whose eps is 1e-8, which is 0 in "
                "fp16 and turns parameters into inf/NaN after one step (set OPTIM.EPS 1e-3, or "
                "use the amp or fp32 precision of the trainer); or NaN/inf in the inputs."
            )

    def train(self, start_epoch: int, max_epoch: int) -> None:
        """The epoch loop."""
        self.start_epoch = start_epoch
        self.max_epoch = max_epoch
        self.before_train()
        for epoch in range(self.start_epoch, self.max_epoch):
            self.epoch = epoch
            self.before_epoch()
            self.run_epoch()
            self.after_epoch()
        self.after_train()

    def before_train(self) -> None:
        pass

    def after_train(self) -> None:
        pass

    def before_epoch(self) -> None:
        pass

    def after_epoch(self) -> None:
        pass

    def run_epoch(self) -> None:
        raise NotImplementedError

    def test(self) -> float:
        raise NotImplementedError

    def parse_batch_train(self, batch: dict[str, Any]) -> Any:
        raise NotImplementedError

    def parse_batch_test(self, batch: dict[str, Any]) -> Any:
        raise NotImplementedError

    def forward_backward(self, batch: dict[str, Any]) -> dict[str, float]:
        raise NotImplementedError

    def model_inference(self, input: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def model_zero_grad(self, names: str | list[str] | None = None) -> None:
        for name in self.get_model_names(names):
            if self._optims[name] is not None:
                self._optims[name].zero_grad()

    def model_backward(self, loss: torch.Tensor) -> None:
        self.detect_anomaly(loss)
        loss.backward()

    def model_update(self, names: str | list[str] | None = None) -> None:
        for name in self.get_model_names(names):
            if self._optims[name] is not None:
                self._optims[name].step()

    def model_backward_and_update(
        self, loss: torch.Tensor, names: str | list[str] | None = None
    ) -> None:
        """Zero the gradients, back-propagate ``loss`` (a scalar; non-finite raises) and step
        the optimizers of ``names`` (default: all registered models)."""
        self.model_zero_grad(names)
        self.model_backward(loss)
        self.model_update(names)


class SimpleTrainer(TrainerBase):
    """Builds data loaders, the model (``build_model``, by the subclass) and the evaluator from
    ``cfg``; resumes, checkpoints and tests."""

    def __init__(self, cfg: CfgNode) -> None:
        super().__init__()
        self.check_cfg(cfg)

        # The one place the device is chosen (from USE_CUDA and what is present); models, data
        # and method code take it from here (self.device) and never name a device themselves.
        use_cuda = cfg.USE_CUDA and torch.cuda.is_available()
        self.device = torch.device("cuda" if use_cuda else "cpu")

        self.start_epoch = self.epoch = 0
        self.max_epoch = cfg.OPTIM.MAX_EPOCH
        self.output_dir = cfg.OUTPUT_DIR

        self.cfg = cfg
        self.build_data_loader()
        self.build_model()
        self.evaluator = build_evaluator(cfg, lab2cname=self.lab2cname)
        self.best_result = -np.inf

    def check_cfg(self, cfg: CfgNode) -> None:
        """Check the config before anything is built (override to validate a method's node)."""
        if cfg.TEST.FINAL_MODEL not in ("last_step", "best_val"):
            raise ValueError(
                f'TEST.FINAL_MODEL must be "last_step" or "best_val", got "{cfg.TEST.FINAL_MODEL}"'
            )

    def build_data_loader(self) -> None:
        """Build ``self.dm`` and set ``train_loader_x``, ``train_loader_u`` (None),
        ``val_loader`` (may be None), ``test_loader``, ``num_classes``, ``num_source_domains``
        and ``lab2cname``."""
        dm = DataManager(self.cfg)
        self.train_loader_x = dm.train_loader_x
        self.train_loader_u = dm.train_loader_u
        self.val_loader = dm.val_loader
        self.test_loader = dm.test_loader
        self.num_classes = dm.num_classes
        self.num_source_domains = dm.num_source_domains
        self.lab2cname = dm.lab2cname
        self.dm = dm

    def build_model(self) -> None:
        """Build the model(s) and ``register_model`` them (implemented by each method)."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement build_model(): build the model, its optimizer "
            "and scheduler, and register them with self.register_model(name, model, optim, sched)"
        )

    def train(self) -> None:
        """Train from ``start_epoch`` (or the resumed epoch) to ``max_epoch``, then test."""
        super().train(self.start_epoch, self.max_epoch)

    def before_train(self) -> None:
        """Resume from ``cfg.RESUME`` (which must hold checkpoints) or from the output folder
        (when it holds checkpoints of every registered model), and start the clock."""
        if self.cfg.RESUME:
            self.start_epoch = self.resume_model_if_exist(self.cfg.RESUME)
            if self.start_epoch == 0:
                raise FileNotFoundError(
                    f'RESUME = "{self.cfg.RESUME}" holds no checkpoint of every registered model '
                    f"({self.get_model_names()}); expected <RESUME>/<model name>/model.pth.tar-<E>"
                )
        else:
            self.start_epoch = self.resume_model_if_exist(self.output_dir)
        self.time_start = time.time()

    def after_train(self) -> None:
        print("Finish training")
        if not self.cfg.TEST.NO_TEST:
            if self.cfg.TEST.FINAL_MODEL == "best_val":
                print("Deploy the model with the best val performance")
                self.load_model(self.output_dir)
            else:
                print("Deploy the last-epoch model")
            self.test()
        elapsed = str(datetime.timedelta(seconds=round(time.time() - self.time_start)))
        print(f"Elapsed: {elapsed}")

    def after_epoch(self) -> None:
        """Evaluate on val (with ``TEST.FINAL_MODEL`` best_val) and save the checkpoint; keep the
        latest epoch file, plus those at multiples of ``TRAIN.CHECKPOINT_FREQ`` (> 0)."""
        if not self.cfg.TEST.NO_TEST and self.cfg.TEST.FINAL_MODEL == "best_val":
            curr_result = self.test(split="val")
            if curr_result > self.best_result:
                self.best_result = curr_result
                self.save_model(
                    self.epoch,
                    self.output_dir,
                    val_result=curr_result,
                    model_name="model-best.pth.tar",
                )
        self.save_model(self.epoch, self.output_dir)
        self._remove_old_checkpoints(last_epoch=self.epoch + 1)

    def _remove_old_checkpoints(self, last_epoch: int) -> None:
        freq = self.cfg.TRAIN.CHECKPOINT_FREQ
        for name in self.get_model_names():
            for epoch, fpath in _epoch_files(osp.join(self.output_dir, name)).items():
                keep = epoch == last_epoch or (freq > 0 and epoch % freq == 0)
                if not keep:
                    os.remove(fpath)

    @torch.no_grad()
    def test(self, split: str | None = None) -> float:
        """Evaluate on ``split`` ("test" or "val"; default ``TEST.SPLIT``; "test" when there is
        no val set), print the result block and return the first result (accuracy)."""
        self.set_model_mode("eval")
        self.evaluator.reset()
        if split is None:
            split = self.cfg.TEST.SPLIT
        if split == "val" and self.val_loader is not None:
            data_loader = self.val_loader
        else:
            split = "test"
            data_loader = self.test_loader
        print(f"Evaluate on the *{split}* set")
        for batch in tqdm(data_loader):
            input, label = self.parse_batch_test(batch)
            output = self.model_inference(input)
            self.evaluator.process(output, label)
        results = self.evaluator.evaluate()
        return list(results.values())[0]

    def model_inference(self, input: torch.Tensor) -> torch.Tensor:
        return self.model(input)

    def parse_batch_test(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """Images ``(B, 3, H, W)`` and labels ``(B,)`` on ``self.device``."""
        return batch["img"].to(self.device), batch["label"].to(self.device)

    def get_current_lr(self, names: str | list[str] | None = None) -> float:
        """LR of the first param group of the first (or first named) model's optimizer."""
        name = self.get_model_names(names)[0]
        return self._optims[name].param_groups[0]["lr"]


class TrainerX(SimpleTrainer):
    """A trainer using labelled data only: ``run_epoch`` iterates over ``train_loader_x``."""

    def run_epoch(self) -> None:
        """One epoch. Sets ``self.batch_idx`` and ``self.num_batches`` before each
        ``forward_backward(batch)`` and prints the progress line every ``TRAIN.PRINT_FREQ``
        batches (every batch when the epoch has fewer)."""
        self.set_model_mode("train")
        losses = MetricMeter()
        batch_time = AverageMeter()
        data_time = AverageMeter()
        self.num_batches = len(self.train_loader_x)

        end = time.time()
        for batch_idx, batch in enumerate(self.train_loader_x):
            self.batch_idx = batch_idx
            data_time.update(time.time() - end)
            loss_summary = self.forward_backward(batch)
            batch_time.update(time.time() - end)
            losses.update(loss_summary)

            meet_freq = (self.batch_idx + 1) % self.cfg.TRAIN.PRINT_FREQ == 0
            only_few_batches = self.num_batches < self.cfg.TRAIN.PRINT_FREQ
            if meet_freq or only_few_batches:
                nb_remain = self.num_batches - self.batch_idx - 1
                nb_remain += (self.max_epoch - self.epoch - 1) * self.num_batches
                eta = str(datetime.timedelta(seconds=int(batch_time.avg * nb_remain)))
                info = [
                    f"epoch [{self.epoch + 1}/{self.max_epoch}]",
                    f"batch [{self.batch_idx + 1}/{self.num_batches}]",
                    f"time {batch_time.val:.3f} ({batch_time.avg:.3f})",
                    f"data {data_time.val:.3f} ({data_time.avg:.3f})",
                    f"{losses}",
                    f"lr {self.get_current_lr():.4e}",
                    f"eta {eta}",
                ]
                print(" ".join(info))
            end = time.time()

    def parse_batch_train(
        self, batch: dict[str, Any]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Images ``(B, 3, H, W)``, labels ``(B,)`` and domains ``(B,)`` on ``self.device``."""
        input = batch["img"].to(self.device)
        label = batch["label"].to(self.device)
        domain = batch["domain"].to(self.device)
        return input, label, domain
