"""OpenAI's CLIP architecture, plus one explicit extension point for deep-prompt methods.

Same modules, parameter names and numerics as OpenAI's `clip/model.py`, so OpenAI's checkpoints load
unchanged. Additions (see docs/DESIGN.md), none of which changes the plain forward:

- `Transformer.forward(x, before_block=None)`: `before_block(i, x) -> x` runs before block `i`.
- `VisionTransformer.embed(images)` and `VisionTransformer.forward(..., extra_tokens=...)`.
- The compact state-dict form (token table holding only the used rows), expanded by `build_model`;
  `compact_state_dict` writes it.

Sequence tensors inside transformers are `(L, N, D)` (length, batch, width) as in OpenAI's code.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn

BeforeBlock = Callable[[int, torch.Tensor], torch.Tensor]

COMPACT_ROWS_KEY = "token_embedding.rows"
COMPACT_NUM_KEY = "token_embedding.num_embeddings"


class Bottleneck(nn.Module):
    """ResNet bottleneck with anti-aliased downsampling (avgpool before strided convs)."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        # all convs have stride 1; an avgpool follows the second conv when stride > 1
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu2 = nn.ReLU(inplace=True)
        self.avgpool = nn.AvgPool2d(stride) if stride > 1 else nn.Identity()
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu3 = nn.ReLU(inplace=True)
        self.downsample = None
        self.stride = stride
        if stride > 1 or inplanes != planes * Bottleneck.expansion:
            self.downsample = nn.Sequential(
                OrderedDict(
                    [
                        ("-1", nn.AvgPool2d(stride)),
                        ("0", nn.Conv2d(inplanes, planes * self.expansion, 1, bias=False)),
                        ("1", nn.BatchNorm2d(planes * self.expansion)),
                    ]
                )
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, inplanes, H, W) -> (B, 4 * planes, H / stride, W / stride)."""
        identity = x
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.relu2(self.bn2(self.conv2(out)))
        out = self.avgpool(out)
        out = self.bn3(self.conv3(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu3(out)


class AttentionPool2d(nn.Module):
    """QKV attention pooling: the mean token attends over all spatial tokens."""

    def __init__(
        self, spacial_dim: int, embed_dim: int, num_heads: int, output_dim: int | None = None
    ) -> None:
        super().__init__()
        self.positional_embedding = nn.Parameter(
            torch.randn(spacial_dim**2 + 1, embed_dim) / embed_dim**0.5
        )
        self.k_proj = nn.Linear(embed_dim, embed_dim)
        self.q_proj = nn.Linear(embed_dim, embed_dim)
        self.v_proj = nn.Linear(embed_dim, embed_dim)
        self.c_proj = nn.Linear(embed_dim, output_dim or embed_dim)
        self.num_heads = num_heads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, output_dim)."""
        x = x.flatten(start_dim=2).permute(2, 0, 1)  # (HW, B, C)
        x = torch.cat([x.mean(dim=0, keepdim=True), x], dim=0)  # (HW + 1, B, C)
        x = x + self.positional_embedding[:, None, :].to(x.dtype)
        x, _ = F.multi_head_attention_forward(
            query=x[:1],
            key=x,
            value=x,
            embed_dim_to_check=x.shape[-1],
            num_heads=self.num_heads,
            q_proj_weight=self.q_proj.weight,
            k_proj_weight=self.k_proj.weight,
            v_proj_weight=self.v_proj.weight,
            in_proj_weight=None,
            in_proj_bias=torch.cat([self.q_proj.bias, self.k_proj.bias, self.v_proj.bias]),
            bias_k=None,
            bias_v=None,
            add_zero_attn=False,
            dropout_p=0.0,
            out_proj_weight=self.c_proj.weight,
            out_proj_bias=self.c_proj.bias,
            use_separate_proj_weight=True,
            training=self.training,
            need_weights=False,
        )
        return x.squeeze(0)  # (B, output_dim)


class ModifiedResNet(nn.Module):
    """CLIP's ResNet: 3-conv stem with avgpool, anti-aliased strides, attention pooling."""

    def __init__(
        self,
        layers: tuple[int, int, int, int],
        output_dim: int,
        heads: int,
        input_resolution: int = 224,
        width: int = 64,
    ) -> None:
        super().__init__()
        self.output_dim = output_dim
        self.input_resolution = input_resolution

        self.conv1 = nn.Conv2d(3, width // 2, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width // 2)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(width // 2, width // 2, kernel_size=3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width // 2)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv3 = nn.Conv2d(width // 2, width, kernel_size=3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(width)
        self.relu3 = nn.ReLU(inplace=True)
        self.avgpool = nn.AvgPool2d(2)

        self._inplanes = width  # mutated by _make_layer while building
        self.layer1 = self._make_layer(width, layers[0])
        self.layer2 = self._make_layer(width * 2, layers[1], stride=2)
        self.layer3 = self._make_layer(width * 4, layers[2], stride=2)
        self.layer4 = self._make_layer(width * 8, layers[3], stride=2)

        embed_dim = width * 32  # ResNet feature width
        self.attnpool = AttentionPool2d(input_resolution // 32, embed_dim, heads, output_dim)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        layers = [Bottleneck(self._inplanes, planes, stride)]
        self._inplanes = planes * Bottleneck.expansion
        layers += [Bottleneck(self._inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, R, R) images -> (B, output_dim)."""
        x = x.type(self.conv1.weight.dtype)
        x = self.relu1(self.bn1(self.conv1(x)))
        x = self.relu2(self.bn2(self.conv2(x)))
        x = self.relu3(self.bn3(self.conv3(x)))
        x = self.avgpool(x)
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        x = self.layer4(x)
        return self.attnpool(x)


class LayerNorm(nn.LayerNorm):
    """LayerNorm computed in fp32 and cast back to the input dtype (fp16-safe)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        orig_type = x.dtype
        ret = super().forward(x.type(torch.float32))
        return ret.type(orig_type)


class QuickGELU(nn.Module):
    """x * sigmoid(1.702 x), the GELU approximation CLIP was trained with."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class ResidualAttentionBlock(nn.Module):
    """Pre-LN transformer block: x + attn(ln_1(x)), then x + mlp(ln_2(x))."""

    def __init__(self, d_model: int, n_head: int, attn_mask: torch.Tensor | None = None) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(d_model, n_head)
        self.ln_1 = LayerNorm(d_model)
        self.mlp = nn.Sequential(
            OrderedDict(
                [
                    ("c_fc", nn.Linear(d_model, d_model * 4)),
                    ("gelu", QuickGELU()),
                    ("c_proj", nn.Linear(d_model * 4, d_model)),
                ]
            )
        )
        self.ln_2 = LayerNorm(d_model)
        self.attn_mask = attn_mask  # (L, L) additive mask or None; a plain attribute as in OpenAI's

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        """(L, N, D) -> (L, N, D) self-attention with the block's mask.

        A sequence shorter than the mask uses its top-left (L, L) corner: with the causal text
        mask, running only the first L tokens gives exactly their states of the full run.
        """
        mask = self.attn_mask
        if mask is not None:
            self.attn_mask = mask = mask.to(dtype=x.dtype, device=x.device)
            mask = mask[: x.shape[0], : x.shape[0]]
        return self.attn(x, x, x, need_weights=False, attn_mask=mask)[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(L, N, D) -> (L, N, D)."""
        x = x + self.attention(self.ln_1(x))
        x = x + self.mlp(self.ln_2(x))
        return x


class Transformer(nn.Module):
    """A stack of residual attention blocks with an optional per-block hook."""

    def __init__(
        self, width: int, layers: int, heads: int, attn_mask: torch.Tensor | None = None
    ) -> None:
        super().__init__()
        self.width = width
        self.layers = layers
        self.resblocks = nn.Sequential(
            *[ResidualAttentionBlock(width, heads, attn_mask) for _ in range(layers)]
        )

    def forward(self, x: torch.Tensor, before_block: BeforeBlock | None = None) -> torch.Tensor:
        """(L, N, D) -> (L, N, D).

        `before_block(i, x)`, when given, runs before block `i` (0-based) and returns the tensor the
        block gets, of the same `(L, N, D)` shape (e.g. with some token states replaced). With
        `before_block=None` this is exactly OpenAI's forward.
        """
        if before_block is None:
            return self.resblocks(x)
        for i, block in enumerate(self.resblocks):
            new_x = before_block(i, x)
            if new_x.shape != x.shape:
                raise ValueError(
                    f"clip/model.py Transformer: before_block({i}, x) returned shape "
                    f"{tuple(new_x.shape)}, expected {tuple(x.shape)} (L, N, D); the hook may "
                    "replace token states but not add or remove tokens."
                )
            x = block(new_x)
        return x


class VisionTransformer(nn.Module):
    """CLIP's ViT image encoder; `embed` and `extra_tokens` open it to visual prompts."""

    def __init__(
        self,
        input_resolution: int,
        patch_size: int,
        width: int,
        layers: int,
        heads: int,
        output_dim: int,
    ) -> None:
        super().__init__()
        self.input_resolution = input_resolution
        self.output_dim = output_dim
        self.conv1 = nn.Conv2d(3, width, kernel_size=patch_size, stride=patch_size, bias=False)
        scale = width**-0.5
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(
            scale * torch.randn((input_resolution // patch_size) ** 2 + 1, width)
        )
        self.ln_pre = LayerNorm(width)
        self.transformer = Transformer(width, layers, heads)
        self.ln_post = LayerNorm(width)
        self.proj = nn.Parameter(scale * torch.randn(width, output_dim))

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, R, R) -> (B, 1 + N_patches, width): class token + patches + positional embedding.

        Computed in the dtype of the input (callers cast images to the model dtype first).
        """
        x = self.conv1(images)  # (B, width, grid, grid)
        x = x.flatten(start_dim=2).permute(0, 2, 1)  # (B, grid ** 2, width)
        cls = self.class_embedding.to(x.dtype) + torch.zeros(
            x.shape[0], 1, x.shape[-1], dtype=x.dtype, device=x.device
        )  # (B, 1, width)
        x = torch.cat([cls, x], dim=1)  # (B, 1 + grid ** 2, width)
        return x + self.positional_embedding.to(x.dtype)

    def forward(
        self,
        images: torch.Tensor,
        before_block: BeforeBlock | None = None,
        extra_tokens: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(B, 3, R, R) images -> (B, output_dim) image features.

        `extra_tokens` (B, n, width), if given, are appended after the positional embedding (they
        get none) and before `ln_pre`. `before_block(i, x)` sees `(1 + N_patches + n, B, width)`.
        """
        x = self.embed(images)  # (B, 1 + N, width)
        if extra_tokens is not None:
            if (
                extra_tokens.dim() != 3
                or extra_tokens.shape[0] != x.shape[0]
                or (extra_tokens.shape[2] != x.shape[2])
            ):
                raise ValueError(
                    f"clip/model.py VisionTransformer: extra_tokens must be (B={x.shape[0]}, n, "
                    f"width={x.shape[2]}), got {tuple(extra_tokens.shape)}; expand per-image "
                    "prompts to the batch size."
                )
            x = torch.cat([x, extra_tokens.to(x.dtype)], dim=1)  # (B, 1 + N + n, width)
        x = self.ln_pre(x)
        x = x.permute(1, 0, 2)  # (L, B, width)
        x = self.transformer(x, before_block=before_block)
        x = x.permute(1, 0, 2)  # (B, L, width)
        x = self.ln_post(x[:, 0, :])  # (B, width)
        if self.proj is not None:
            x = x @ self.proj  # (B, output_dim)
        return x


class CLIP(nn.Module):
    """CLIP: an image encoder (ModifiedResNet or VisionTransformer) and a causal text encoder."""

    def __init__(
        self,
        embed_dim: int,
        # vision
        image_resolution: int,
        vision_layers: tuple[int, int, int, int] | int,
        vision_width: int,
        vision_patch_size: int | None,
        # text
        context_length: int,
        vocab_size: int,
        transformer_width: int,
        transformer_heads: int,
        transformer_layers: int,
    ) -> None:
        super().__init__()
        self.context_length = context_length

        if isinstance(vision_layers, (tuple, list)):
            self.visual = ModifiedResNet(
                layers=tuple(vision_layers),
                output_dim=embed_dim,
                heads=vision_width * 32 // 64,
                input_resolution=image_resolution,
                width=vision_width,
            )
        else:
            if vision_patch_size is None:
                raise ValueError("clip/model.py CLIP: a ViT image encoder needs vision_patch_size")
            self.visual = VisionTransformer(
                input_resolution=image_resolution,
                patch_size=vision_patch_size,
                width=vision_width,
                layers=vision_layers,
                heads=vision_width // 64,
                output_dim=embed_dim,
            )

        self.transformer = Transformer(
            width=transformer_width,
            layers=transformer_layers,
            heads=transformer_heads,
            attn_mask=self.build_attention_mask(),
        )
        self.vocab_size = vocab_size
        self.token_embedding = nn.Embedding(vocab_size, transformer_width)
        self.positional_embedding = nn.Parameter(torch.empty(context_length, transformer_width))
        self.ln_final = LayerNorm(transformer_width)
        self.text_projection = nn.Parameter(torch.empty(transformer_width, embed_dim))
        self.logit_scale = nn.Parameter(torch.ones([]) * math.log(1 / 0.07))
        self.initialize_parameters()

    def initialize_parameters(self) -> None:
        """OpenAI's initialisation (used when training from scratch)."""
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)

        if isinstance(self.visual, ModifiedResNet):
            pool = self.visual.attnpool
            std = pool.c_proj.in_features**-0.5
            for proj in (pool.q_proj, pool.k_proj, pool.v_proj, pool.c_proj):
                nn.init.normal_(proj.weight, std=std)
            for stage in (
                self.visual.layer1,
                self.visual.layer2,
                self.visual.layer3,
                self.visual.layer4,
            ):
                for name, param in stage.named_parameters():
                    if name.endswith("bn3.weight"):
                        nn.init.zeros_(param)

        width, layers = self.transformer.width, self.transformer.layers
        proj_std = (width**-0.5) * ((2 * layers) ** -0.5)
        attn_std = width**-0.5
        fc_std = (2 * width) ** -0.5
        for block in self.transformer.resblocks:
            nn.init.normal_(block.attn.in_proj_weight, std=attn_std)
            nn.init.normal_(block.attn.out_proj.weight, std=proj_std)
            nn.init.normal_(block.mlp.c_fc.weight, std=fc_std)
            nn.init.normal_(block.mlp.c_proj.weight, std=proj_std)
        nn.init.normal_(self.text_projection, std=width**-0.5)

    def build_attention_mask(self) -> torch.Tensor:
        """(context_length, context_length) additive causal mask: -inf above the diagonal."""
        mask = torch.full((self.context_length, self.context_length), float("-inf"))
        return mask.triu_(1)

    @property
    def dtype(self) -> torch.dtype:
        """dtype of the weights (fp16 after `convert_weights`, fp32 after `.float()`)."""
        return self.visual.conv1.weight.dtype

    def encode_image(self, image: torch.Tensor) -> torch.Tensor:
        """(B, 3, R, R) -> (B, embed_dim) unnormalised image features."""
        return self.visual(image.type(self.dtype))

    def encode_text(self, text: torch.Tensor) -> torch.Tensor:
        """(N, context_length) token ids -> (N, embed_dim) features at the EOT (highest id)."""
        x = self.token_embedding(text).type(self.dtype)  # (N, L, D)
        x = x + self.positional_embedding.type(self.dtype)
        x = x.permute(1, 0, 2)  # (L, N, D)
        x = self.transformer(x)
        x = x.permute(1, 0, 2)  # (N, L, D)
        x = self.ln_final(x).type(self.dtype)
        eot = text.argmax(dim=-1)  # (N,)
        return x[torch.arange(x.shape[0], device=x.device), eot] @ self.text_projection

    def forward(self, image: torch.Tensor, text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, R, R), (N, L) -> logits_per_image (B, N) and logits_per_text (N, B)."""
        image_features = self.encode_image(image)
        text_features = self.encode_text(text)
        image_features = image_features / image_features.norm(dim=1, keepdim=True)
        text_features = text_features / text_features.norm(dim=1, keepdim=True)
        logits_per_image = self.logit_scale.exp() * image_features @ text_features.t()
        return logits_per_image, logits_per_image.t()


def convert_weights(model: nn.Module) -> None:
    """Convert conv/linear/attention weights and the projections to fp16, in place (as OpenAI).

    LayerNorms, embeddings, class/positional embeddings and logit_scale stay fp32.
    """

    def _to_fp16(module: nn.Module) -> None:
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Linear)):
            module.weight.data = module.weight.data.half()
            if module.bias is not None:
                module.bias.data = module.bias.data.half()
        if isinstance(module, nn.MultiheadAttention):
            names = [
                "in_proj_weight",
                "q_proj_weight",
                "k_proj_weight",
                "v_proj_weight",
                "in_proj_bias",
                "bias_k",
                "bias_v",
            ]
            for name in names:
                tensor = getattr(module, name)
                if tensor is not None:
                    tensor.data = tensor.data.half()
        for name in ("text_projection", "proj"):
            tensor = getattr(module, name, None)
            if isinstance(tensor, torch.Tensor):
                tensor.data = tensor.data.half()

    model.apply(_to_fp16)


def compact_state_dict(
    state_dict: dict[str, torch.Tensor], rows: Iterable[int]
) -> dict[str, torch.Tensor]:
    """The compact form of a CLIP state dict: keep only `rows` of the token table.

    Returns a new dict whose `token_embedding.weight` is `(k, D)` (the kept rows, sorted), plus
    `token_embedding.rows` `(k,)` int64 and `token_embedding.num_embeddings` (0-d int64). Other
    tensors are shared with the input. `build_model` expands it back (unused rows are zero).
    """
    table = state_dict["token_embedding.weight"]  # (vocab, D)
    keep = torch.tensor(sorted(set(int(r) for r in rows)), dtype=torch.int64)  # (k,)
    if keep.numel() == 0 or keep[0] < 0 or keep[-1] >= table.shape[0]:
        raise ValueError(
            "clip/model.py compact_state_dict: rows must be a non-empty set of ids in "
            f"[0, {table.shape[0]}), got {keep.tolist()[:10]}..."
        )
    compact = dict(state_dict)
    compact["token_embedding.weight"] = table[keep].clone()  # (k, D)
    compact[COMPACT_ROWS_KEY] = keep
    compact[COMPACT_NUM_KEY] = torch.tensor(table.shape[0], dtype=torch.int64)
    return compact


def expand_compact_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Undo `compact_state_dict`: a new dict with the full `(num_embeddings, D)` token table.

    A state dict without `token_embedding.rows` is returned as a shallow copy.
    """
    expanded = dict(state_dict)
    if COMPACT_ROWS_KEY not in expanded:
        return expanded
    if COMPACT_NUM_KEY not in expanded:
        raise KeyError(
            f"clip/model.py: compact CLIP state dict has '{COMPACT_ROWS_KEY}' but no "
            f"'{COMPACT_NUM_KEY}' (the full vocabulary size); re-save it with compact_state_dict."
        )
    rows = expanded.pop(COMPACT_ROWS_KEY).long()  # (k,)
    num = int(expanded.pop(COMPACT_NUM_KEY))
    weight = expanded["token_embedding.weight"]  # (k, D)
    if weight.shape[0] != rows.shape[0] or (rows.numel() and int(rows.max()) >= num):
        raise ValueError(
            f"clip/model.py: compact CLIP state dict is inconsistent: token_embedding.weight has "
            f"{weight.shape[0]} rows, token_embedding.rows has {rows.shape[0]} ids (max "
            f"{int(rows.max()) if rows.numel() else None}), num_embeddings is {num}."
        )
    full = weight.new_zeros(num, weight.shape[1])  # (vocab, D)
    full[rows] = weight
    expanded["token_embedding.weight"] = full
    return expanded


def _count_blocks(state_dict: dict[str, torch.Tensor], prefix: str) -> int:
    """Number of distinct block indices `<prefix><i>.` among the keys."""
    return len({k[len(prefix) :].split(".")[0] for k in state_dict if k.startswith(prefix)})


def build_model(state_dict: dict[str, torch.Tensor]) -> CLIP:
    """Build CLIP from an OpenAI-format state dict, inferring every size from it (ViT or ResNet).

    Accepts the compact form (see `compact_state_dict`). Does not modify `state_dict`. Returns the
    model in eval mode with OpenAI's fp16 weights (`convert_weights`); call `.float()` for fp32.
    """
    state_dict = expand_compact_state_dict(state_dict)
    required = [
        "text_projection",
        "positional_embedding",
        "token_embedding.weight",
        "ln_final.weight",
    ]
    missing = [k for k in required if k not in state_dict]
    if missing or not ("visual.proj" in state_dict or "visual.layer1.0.conv1.weight" in state_dict):
        raise KeyError(
            f"clip/model.py build_model: not a CLIP state dict (missing {missing or 'visual.*'}); "
            "pass OpenAI CLIP weights (an OpenAI .pt archive's state_dict() or a saved state dict)."
        )

    vit = "visual.proj" in state_dict
    if vit:
        vision_width = state_dict["visual.conv1.weight"].shape[0]
        vision_layers: tuple[int, int, int, int] | int = _count_blocks(
            state_dict, "visual.transformer.resblocks."
        )
        vision_patch_size = state_dict["visual.conv1.weight"].shape[-1]
        grid_size = round((state_dict["visual.positional_embedding"].shape[0] - 1) ** 0.5)
        image_resolution = vision_patch_size * grid_size
    else:
        counts = [_count_blocks(state_dict, f"visual.layer{b}.") for b in (1, 2, 3, 4)]
        vision_layers = (counts[0], counts[1], counts[2], counts[3])
        vision_width = state_dict["visual.layer1.0.conv1.weight"].shape[0]
        n_pool_tokens = state_dict["visual.attnpool.positional_embedding"].shape[0]
        output_width = round((n_pool_tokens - 1) ** 0.5)
        if output_width**2 + 1 != n_pool_tokens:
            raise ValueError(
                "clip/model.py build_model: visual.attnpool.positional_embedding has "
                f"{n_pool_tokens} rows, expected a square grid + 1."
            )
        vision_patch_size = None
        image_resolution = output_width * 32

    embed_dim = state_dict["text_projection"].shape[1]
    context_length = state_dict["positional_embedding"].shape[0]
    vocab_size = state_dict["token_embedding.weight"].shape[0]
    transformer_width = state_dict["ln_final.weight"].shape[0]
    transformer_heads = transformer_width // 64
    transformer_layers = _count_blocks(state_dict, "transformer.resblocks.")

    model = CLIP(
        embed_dim,
        image_resolution,
        vision_layers,
        vision_width,
        vision_patch_size,
        context_length,
        vocab_size,
        transformer_width,
        transformer_heads,
        transformer_layers,
    )
    for key in ("input_resolution", "context_length", "vocab_size"):
        state_dict.pop(key, None)  # metadata stored in OpenAI's TorchScript archives

    convert_weights(model)
    model.load_state_dict(state_dict)
    return model.eval()
