"""Pieces every CLIP prompt-learning trainer shares: CLIP loading, precision, the text encoder,
frozen text features, checkpoint loading and once-per-evaluation text features.

Method files (``coop.py``, ``sep.py``, ...) import from here and only hold what makes the method
different.
"""

from __future__ import annotations

import contextlib
import os
import os.path as osp
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
import torch.nn as nn
from torch.nn import functional as F

import clip
from clip.model import CLIP, convert_weights
from dassl.engine import TrainerX
from dassl.optim import build_lr_scheduler, build_optimizer
from dassl.utils import load_checkpoint, load_pretrained_weights

REPO_ROOT = Path(__file__).resolve().parent.parent
PRECISIONS = ("fp16", "fp32", "amp")


def resolve_backbone(name: str) -> str:
    """An OpenAI model name is returned as is; a file path is resolved against the working
    directory first, then against the repository root (so configs can name committed files)."""
    if name in clip.available_models():
        return name
    for candidate in (Path(name), REPO_ROOT / name):
        if candidate.is_file():
            return str(candidate)
    raise FileNotFoundError(
        f"MODEL.BACKBONE.NAME '{name}' is neither an OpenAI CLIP model "
        f"({', '.join(clip.available_models())}) nor an existing file (looked in {os.getcwd()} "
        f"and {REPO_ROOT}). Set MODEL.BACKBONE.NAME to one of those names or to a checkpoint path."
    )


def load_clip_to_cpu(cfg) -> CLIP:
    """The frozen CLIP named by ``cfg.MODEL.BACKBONE.NAME`` on the CPU, in fp32 and eval mode.

    Trainers cast it with :func:`cast_clip` once the precision is known.
    """
    model, _ = clip.load(resolve_backbone(cfg.MODEL.BACKBONE.NAME), device="cpu")
    return model.float().eval()


def resolve_precision(prec: str, device: torch.device) -> str:
    """Validate ``prec``; pure fp16 needs a GPU, so on the CPU it falls back to fp32 with a warning."""
    if prec not in PRECISIONS:
        raise ValueError(f"Unknown precision '{prec}': choose one of {', '.join(PRECISIONS)}.")
    if prec == "fp16" and torch.device(device).type != "cuda":
        warnings.warn(
            "PREC fp16 needs a CUDA device; running in fp32 on the CPU instead "
            "(use PREC amp for bf16 autocast on the CPU).",
            stacklevel=2,
        )
        return "fp32"
    return prec


def check_context_options(cfg, node_name: str) -> None:
    """Validate the CoOp-style context keys of ``cfg.TRAINER.<node_name>`` (N_CTX, CTX_INIT and,
    where the node has it, CLASS_TOKEN_POSITION); the error names the key."""
    node = cfg.TRAINER[node_name]
    position = node.get("CLASS_TOKEN_POSITION", "end")
    if position not in ("end", "middle", "front"):
        raise ValueError(
            f"TRAINER.{node_name}.CLASS_TOKEN_POSITION '{position}': choose end, middle or front."
        )
    if node.N_CTX < 1 and not node.CTX_INIT:
        raise ValueError(f"TRAINER.{node_name}.N_CTX must be at least 1 (or set CTX_INIT).")


def cast_clip(clip_model: CLIP, prec: str) -> CLIP:
    """fp16 converts CLIP's weights like OpenAI's release; fp32 and amp keep fp32 weights."""
    if prec == "fp16":
        convert_weights(clip_model)
    else:
        clip_model.float()
    return clip_model


def autocast(prec: str, device: torch.device) -> contextlib.AbstractContextManager:
    """Autocast for ``amp`` (fp16 on CUDA, bf16 on the CPU); a no-op for fp16 and fp32."""
    device = torch.device(device)
    if prec != "amp":
        return contextlib.nullcontext()
    dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    return torch.autocast(device_type=device.type, dtype=dtype)


class TextEncoder(nn.Module):
    """CLIP's text tower run on token embeddings instead of token ids (CoOp's TextEncoder)."""

    def __init__(self, clip_model: CLIP):
        super().__init__()
        self.transformer = clip_model.transformer
        self.positional_embedding = clip_model.positional_embedding
        self.ln_final = clip_model.ln_final
        self.text_projection = clip_model.text_projection

    @property
    def dtype(self) -> torch.dtype:
        return self.text_projection.dtype

    def forward(
        self,
        prompts: torch.Tensor,
        tokenized_prompts: torch.Tensor,
        before_block: Callable[[int, torch.Tensor], torch.Tensor] | None = None,
        min_length: int = 0,
    ) -> torch.Tensor:
        """prompts (n_cls, L, D) token embeddings, tokenized_prompts (n_cls, L) ids -> (n_cls, E).

        Only the first ``max(EOT position) + 1`` tokens (at least ``min_length``) are run: under
        CLIP's causal mask the tokens after the last EOT cannot change any EOT state, so the
        features are those of the full 77-token pass at a fraction of the cost.
        ``before_block(i, x)`` with x (L', n_cls, D) runs before every transformer block (deep
        prompts); a hook that reads positions beyond the EOT must ask for them with ``min_length``.
        """
        eot = tokenized_prompts.argmax(dim=-1)  # (n_cls,) the EOT token has the largest id
        length = min(prompts.shape[1], max(int(eot.max()) + 1, min_length))
        x = prompts[:, :length] + self.positional_embedding[:length].type(self.dtype)
        x = x.permute(1, 0, 2)  # (L', n_cls, D)
        x = self.transformer(x, before_block=before_block)
        x = x.permute(1, 0, 2)  # (n_cls, L', D)
        x = self.ln_final(x).type(self.dtype)
        return x[torch.arange(x.shape[0], device=x.device), eot] @ self.text_projection


@torch.no_grad()
def encode_texts(
    clip_model: CLIP, texts: list[str], device: torch.device, chunk: int = 256
) -> torch.Tensor:
    """L2-normalised frozen CLIP text features of ``texts``: (len(texts), E), on ``device``."""
    features = []
    for start in range(0, len(texts), chunk):
        tokens = clip.tokenize(texts[start : start + chunk]).to(device)
        features.append(clip_model.encode_text(tokens))
    return F.normalize(torch.cat(features).float(), dim=-1)


def class_texts(template: str, classnames: list[str]) -> list[str]:
    """``template`` filled with each class name (underscores become spaces, as CoOp does)."""
    return [template.format(name.replace("_", " ")) for name in classnames]


def freeze_all_but(model: nn.Module, trainable_prefix: str) -> list[str]:
    """Freeze every parameter of ``model`` whose name does not start with ``trainable_prefix``;
    returns the names left trainable."""
    trainable = []
    for name, param in model.named_parameters():
        param.requires_grad_(name.startswith(trainable_prefix))
        if param.requires_grad:
            trainable.append(name)
    return trainable


class TextFeatureCache:
    """Mixin for CLIP wrappers whose class text features do not depend on the image batch.

    Inside ``with model.text_features_cached():`` the first call of
    ``self.cached_text_features(compute)`` computes the features and later calls reuse them; outside
    it, features are computed every call (training, where prompts change every step).
    """

    _text_cache_on = False
    _text_cache = None

    @contextlib.contextmanager
    def text_features_cached(self) -> Iterator[None]:
        self._text_cache_on, self._text_cache = True, None
        try:
            yield
        finally:
            self._text_cache_on, self._text_cache = False, None

    def cached_text_features(self, compute: Callable[[], torch.Tensor]) -> torch.Tensor:
        if not self._text_cache_on:
            return compute()
        if self._text_cache is None:
            self._text_cache = compute()
        return self._text_cache


class PromptLearningTrainer(TrainerX):
    """TrainerX plus what every CLIP prompt learner needs.

    - ``self.prec``: the resolved precision (set by the subclass's ``build_model`` via
      :func:`resolve_precision`); ``model_inference`` runs under :func:`autocast`.
    - ``test()`` computes the class text features once per evaluation (when the model has
      :class:`TextFeatureCache`).
    - ``load_model()`` drops class-dependent tensors (``CLASS_DEPENDENT_KEYS``), so a model trained on
      base classes evaluates on new ones, and maps legacy names through ``map_checkpoint_keys``.
    """

    CLASS_DEPENDENT_KEYS: tuple[str, ...] = ("token_prefix", "token_suffix")
    prec = "fp32"
    scaler = None

    def model_inference(self, input):
        with autocast(self.prec, self.device):
            return self.model(input).float()

    def test(self, split=None):
        model = getattr(self.model, "module", self.model)  # unwrap DataParallel
        cache = getattr(model, "text_features_cached", contextlib.nullcontext)
        with cache():
            return super().test(split)

    def backward_and_update(self, loss: torch.Tensor, names=None) -> None:
        """``model_backward_and_update`` with a GradScaler when fp16 autocast needs one."""
        if self.scaler is None:
            self.model_backward_and_update(loss, names)
            return
        if not torch.isfinite(loss).all():
            raise FloatingPointError(f"Loss is {loss.item()}: training diverged.")
        self.model_zero_grad(names)
        self.scaler.scale(loss).backward()
        for name in self.get_model_names(names):
            if self._optims[name] is not None:
                self.scaler.step(self._optims[name])
        self.scaler.update()

    def setup_prompt_learner(self, data_parallel: bool = True) -> None:
        """The common tail of ``build_model`` once ``self.model`` (with a ``prompt_learner``) and
        ``self.prec`` exist: freeze everything else, load ``MODEL.INIT_WEIGHTS``, move to the
        device, build the optimizer and scheduler over the prompt learner only, register it as
        ``prompt_learner``, make the GradScaler amp needs, and use every GPU (DataParallel) when
        ``data_parallel`` and more than one is visible."""
        cfg = self.cfg
        print("Turning off gradients in both the image and the text encoder")
        trainable = freeze_all_but(self.model, "prompt_learner")
        print(f"Parameters to be updated: {len(trainable)} tensors in prompt_learner")
        learner = self.model.prompt_learner
        if cfg.MODEL.INIT_WEIGHTS:
            load_pretrained_weights(learner, cfg.MODEL.INIT_WEIGHTS)
        self.model.to(self.device)
        self.optim = build_optimizer(learner, cfg.OPTIM)
        self.sched = build_lr_scheduler(self.optim, cfg.OPTIM)
        self.register_model("prompt_learner", learner, self.optim, self.sched)
        self.make_grad_scaler()
        n_gpus = torch.cuda.device_count() if self.device.type == "cuda" else 0
        if data_parallel and n_gpus > 1:
            print(f"Multiple GPUs detected (n_gpus={n_gpus}), use all of them!")
            self.model = nn.DataParallel(self.model)

    def make_grad_scaler(self) -> None:
        """A GradScaler for ``amp`` on CUDA (fp16 autocast); bf16 on the CPU needs none."""
        if self.prec == "amp" and self.device.type == "cuda":
            self.scaler = torch.amp.GradScaler("cuda")

    def map_checkpoint_keys(self, state_dict: dict, name: str) -> dict:
        """Rename legacy checkpoint keys to ours (identity here; SEP maps its release's names)."""
        return state_dict

    def is_class_dependent(self, key: str) -> bool:
        return any(key == k or key.startswith(k + ".") for k in self.CLASS_DEPENDENT_KEYS)

    def load_model(self, directory, epoch=None):
        if not directory:
            print("Note that load_model() is skipped as no pretrained model is given")
            return
        model_file = "model-best.pth.tar" if epoch is None else f"model.pth.tar-{epoch}"
        for name in self.get_model_names():
            model_path = osp.join(directory, name, model_file)
            if not osp.exists(model_path):
                raise FileNotFoundError(
                    f'Model not found at "{model_path}": check --model-dir and --load-epoch '
                    f"(the folder should hold {name}/model.pth.tar-<epoch>)."
                )
            checkpoint = load_checkpoint(model_path)
            state_dict = self.map_checkpoint_keys(checkpoint["state_dict"], name)
            state_dict = {k: v for k, v in state_dict.items() if not self.is_class_dependent(k)}
            module = self._models[name]
            expected = {k for k in module.state_dict() if not self.is_class_dependent(k)}
            missing, unexpected = expected - state_dict.keys(), state_dict.keys() - expected
            if missing or unexpected:
                raise KeyError(
                    f"Checkpoint {model_path} does not fit model '{name}': "
                    f"missing {sorted(missing)[:8]}, unexpected {sorted(unexpected)[:8]}."
                )
            own = module.state_dict()
            for key, value in state_dict.items():
                if value.shape != own[key].shape:
                    raise ValueError(
                        f"Checkpoint {model_path}: '{key}' has shape {tuple(value.shape)} but the "
                        f"model expects {tuple(own[key].shape)} (a class-specific tensor trained for "
                        "another class set, or another backbone/config)."
                    )
            print(
                f'Loading weights to {name} from "{model_path}" (epoch = {checkpoint.get("epoch")})'
            )
            module.load_state_dict(state_dict, strict=False)
