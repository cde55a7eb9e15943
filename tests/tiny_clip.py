"""A tiny but real CLIP for tests, in OpenAI's exact state-dict format.

Stable API (other test files import it as `from tiny_clip import ...`; tests/conftest.py puts
tests/ and the repository root on sys.path; the session fixture `tiny_clip_path` is a saved copy):

- `TINY_SIZES[vision]`: the sizes below, as a dict, for `vision` in {"vit", "resnet"}.
- `tiny_clip_state_dict(seed=0, vision="vit") -> dict[str, Tensor]`: random weights (fp32, seeded,
  deterministic) under OpenAI's key names, so `clip.build_model` infers every size from it.
- `tiny_clip(seed=0, vision="vit") -> CLIP`: `clip.build_model(...)` then `.float()` (what
  `clip.load(..., device="cpu")` returns), in eval mode.
- `save_tiny_clip(path, fmt="state_dict", seed=0, vision="vit", keep_rows=None) -> str`: writes
  `fmt` = "state_dict" (torch.save of the dict), "torchscript" (a traced archive like OpenAI's .pt
  files, with the `input_resolution`, `context_length`, `vocab_size` entries) or "compact" (the
  compact form of docs/DESIGN.md keeping `keep_rows` of the token table; None keeps every row).
  Returns `path`.

Sizes. Text: context 77, vocabulary 49408 (CLIP's tokenizer), width 128, 2 heads, 2 layers; embed
dim 32. ViT: 32 px, patch 8 (16 patches + CLS), width 128, 2 heads, 2 layers. ResNet: 64 px, stem
width 8, one bottleneck per stage, attention pool over a 2x2 grid at width 256 with 4 heads.
Heads follow OpenAI's rule (width // 64; ResNet width * 32 // 64). `logit_scale` is ln(100), as in
OpenAI's trained models. A forward + backward on a batch takes tens of milliseconds on one CPU core.

The state dict is generated key by key here, independently of `clip/model.py`, so tests that build
from it check the key names and inferred sizes.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterable

import torch

from clip.model import CLIP, build_model, compact_state_dict

TINY_SIZES = {
    "vit": dict(
        embed_dim=32,
        image_resolution=32,
        vision_layers=2,
        vision_width=128,
        vision_patch_size=8,
        vision_heads=2,
        context_length=77,
        vocab_size=49408,
        transformer_width=128,
        transformer_heads=2,
        transformer_layers=2,
    ),
    "resnet": dict(
        embed_dim=32,
        image_resolution=64,
        vision_layers=(1, 1, 1, 1),
        vision_width=8,
        vision_patch_size=None,
        vision_heads=4,
        context_length=77,
        vocab_size=49408,
        transformer_width=128,
        transformer_heads=2,
        transformer_layers=2,
    ),
}


class _Init:
    """Seeded tensor factory: weights ~ N(0, std^2), LayerNorm/BatchNorm scales near 1."""

    def __init__(self, seed: int) -> None:
        self.gen = torch.Generator().manual_seed(seed)

    def normal(self, *shape: int, std: float) -> torch.Tensor:
        return torch.randn(*shape, generator=self.gen) * std

    def norm_scale(self, n: int) -> torch.Tensor:
        return 1.0 + self.normal(n, std=0.1)


def _add_layer_norm(sd: dict, prefix: str, width: int, init: _Init) -> None:
    sd[f"{prefix}.weight"] = init.norm_scale(width)
    sd[f"{prefix}.bias"] = init.normal(width, std=0.05)


def _add_batch_norm(sd: dict, prefix: str, channels: int, init: _Init) -> None:
    sd[f"{prefix}.weight"] = init.norm_scale(channels)
    sd[f"{prefix}.bias"] = init.normal(channels, std=0.05)
    sd[f"{prefix}.running_mean"] = init.normal(channels, std=0.05)
    sd[f"{prefix}.running_var"] = 1.0 + init.normal(channels, std=0.1).abs()
    sd[f"{prefix}.num_batches_tracked"] = torch.tensor(0, dtype=torch.int64)


def _add_transformer(sd: dict, prefix: str, width: int, layers: int, init: _Init) -> None:
    attn_std, proj_std = width**-0.5, width**-0.5 * (2 * layers) ** -0.5
    for i in range(layers):
        p = f"{prefix}.resblocks.{i}"
        sd[f"{p}.attn.in_proj_weight"] = init.normal(3 * width, width, std=attn_std)
        sd[f"{p}.attn.in_proj_bias"] = init.normal(3 * width, std=0.02)
        sd[f"{p}.attn.out_proj.weight"] = init.normal(width, width, std=proj_std)
        sd[f"{p}.attn.out_proj.bias"] = init.normal(width, std=0.02)
        _add_layer_norm(sd, f"{p}.ln_1", width, init)
        sd[f"{p}.mlp.c_fc.weight"] = init.normal(4 * width, width, std=(2 * width) ** -0.5)
        sd[f"{p}.mlp.c_fc.bias"] = init.normal(4 * width, std=0.02)
        sd[f"{p}.mlp.c_proj.weight"] = init.normal(width, 4 * width, std=proj_std)
        sd[f"{p}.mlp.c_proj.bias"] = init.normal(width, std=0.02)
        _add_layer_norm(sd, f"{p}.ln_2", width, init)


def _add_vit(sd: dict, s: dict, init: _Init) -> None:
    width, patch = s["vision_width"], s["vision_patch_size"]
    n_tokens = (s["image_resolution"] // patch) ** 2 + 1
    sd["visual.class_embedding"] = init.normal(width, std=width**-0.5)
    sd["visual.positional_embedding"] = init.normal(n_tokens, width, std=width**-0.5)
    sd["visual.proj"] = init.normal(width, s["embed_dim"], std=width**-0.5)
    sd["visual.conv1.weight"] = init.normal(width, 3, patch, patch, std=(3 * patch * patch) ** -0.5)
    _add_layer_norm(sd, "visual.ln_pre", width, init)
    _add_transformer(sd, "visual.transformer", width, s["vision_layers"], init)
    _add_layer_norm(sd, "visual.ln_post", width, init)


def _add_resnet(sd: dict, s: dict, init: _Init) -> None:
    width = s["vision_width"]

    def conv(name: str, c_out: int, c_in: int, k: int) -> None:
        sd[name] = init.normal(c_out, c_in, k, k, std=(c_in * k * k) ** -0.5)

    conv("visual.conv1.weight", width // 2, 3, 3)
    _add_batch_norm(sd, "visual.bn1", width // 2, init)
    conv("visual.conv2.weight", width // 2, width // 2, 3)
    _add_batch_norm(sd, "visual.bn2", width // 2, init)
    conv("visual.conv3.weight", width, width // 2, 3)
    _add_batch_norm(sd, "visual.bn3", width, init)
    inplanes = width
    for stage, blocks in enumerate(s["vision_layers"]):
        planes = width * 2**stage
        stride = 1 if stage == 0 else 2
        for b in range(blocks):
            p = f"visual.layer{stage + 1}.{b}"
            conv(f"{p}.conv1.weight", planes, inplanes, 1)
            _add_batch_norm(sd, f"{p}.bn1", planes, init)
            conv(f"{p}.conv2.weight", planes, planes, 3)
            _add_batch_norm(sd, f"{p}.bn2", planes, init)
            conv(f"{p}.conv3.weight", 4 * planes, planes, 1)
            _add_batch_norm(sd, f"{p}.bn3", 4 * planes, init)
            if b == 0 and (stride > 1 or inplanes != 4 * planes):
                conv(f"{p}.downsample.0.weight", 4 * planes, inplanes, 1)
                _add_batch_norm(sd, f"{p}.downsample.1", 4 * planes, init)
            inplanes = 4 * planes
    feat = width * 32
    grid = s["image_resolution"] // 32
    sd["visual.attnpool.positional_embedding"] = init.normal(grid**2 + 1, feat, std=feat**-0.5)
    for name in ("k_proj", "q_proj", "v_proj"):
        sd[f"visual.attnpool.{name}.weight"] = init.normal(feat, feat, std=feat**-0.5)
        sd[f"visual.attnpool.{name}.bias"] = init.normal(feat, std=0.02)
    sd["visual.attnpool.c_proj.weight"] = init.normal(s["embed_dim"], feat, std=feat**-0.5)
    sd["visual.attnpool.c_proj.bias"] = init.normal(s["embed_dim"], std=0.02)


def tiny_clip_state_dict(seed: int = 0, vision: str = "vit") -> dict[str, torch.Tensor]:
    """Seeded random weights of the tiny CLIP (`TINY_SIZES[vision]`) under OpenAI's key names."""
    if vision not in TINY_SIZES:
        raise ValueError(
            f"tests/tiny_clip.py: vision must be one of {list(TINY_SIZES)}, got {vision!r}"
        )
    s = TINY_SIZES[vision]
    init = _Init(seed)
    width = s["transformer_width"]
    sd: dict[str, torch.Tensor] = {}
    sd["positional_embedding"] = init.normal(s["context_length"], width, std=0.01)
    sd["text_projection"] = init.normal(width, s["embed_dim"], std=width**-0.5)
    sd["logit_scale"] = torch.tensor(math.log(100.0))
    if vision == "vit":
        _add_vit(sd, s, init)
    else:
        _add_resnet(sd, s, init)
    _add_transformer(sd, "transformer", width, s["transformer_layers"], init)
    sd["token_embedding.weight"] = init.normal(s["vocab_size"], width, std=0.02)
    _add_layer_norm(sd, "ln_final", width, init)
    return sd


def tiny_clip(seed: int = 0, vision: str = "vit") -> CLIP:
    """The tiny CLIP as `clip.load(..., device="cpu")` gives it: fp16-rounded fp32 weights, eval."""
    return build_model(tiny_clip_state_dict(seed, vision)).float()


def save_tiny_clip(
    path: str | os.PathLike,
    fmt: str = "state_dict",
    seed: int = 0,
    vision: str = "vit",
    keep_rows: Iterable[int] | None = None,
) -> str:
    """Write the tiny CLIP to `path` as "state_dict", "torchscript" or "compact"; returns `path`."""
    path = os.fspath(path)
    sd = tiny_clip_state_dict(seed, vision)
    if fmt == "state_dict":
        torch.save(sd, path)
    elif fmt == "compact":
        rows = range(sd["token_embedding.weight"].shape[0]) if keep_rows is None else keep_rows
        torch.save(compact_state_dict(sd, rows), path)
    elif fmt == "torchscript":
        s = TINY_SIZES[vision]
        model = build_model(sd).float()
        # OpenAI's archives carry these three entries in their state dict (here plain attributes)
        del model.context_length, model.vocab_size
        model.register_buffer("input_resolution", torch.tensor(s["image_resolution"]))
        model.register_buffer("context_length", torch.tensor(s["context_length"]))
        model.register_buffer("vocab_size", torch.tensor(s["vocab_size"]))
        res = s["image_resolution"]
        images = torch.zeros(1, 3, res, res)
        text = torch.zeros(1, s["context_length"], dtype=torch.long)
        text[0, :2] = torch.tensor([49406, 49407])
        with warnings.catch_warnings():  # torch.jit is deprecated; OpenAI's files still use it
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            archive = torch.jit.trace_module(
                model,
                {"encode_image": (images,), "encode_text": (text,), "forward": (images, text)},
            )
            torch.jit.save(archive, path)
    else:
        raise ValueError(
            f"tests/tiny_clip.py: fmt must be 'state_dict', 'torchscript' or 'compact', got {fmt!r}"
        )
    return path
