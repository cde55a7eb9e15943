"""Pretrain the tiny demo CLIP on the demo world and save it as ``demo/weights/demo_clip.pt``.

Run from the repository root (2 CPU threads, deterministic for a seed)::

    python -m demo.pretrain                # writes demo/weights/demo_clip.pt
    python -m demo.pretrain --out /tmp/x.pt --steps 500

The model is OpenAI's CLIP architecture (``clip.model.CLIP``) at toy size: a 32 px ViT with 8 px
patches (width 128, 4 layers) and a text transformer (width 128, 3 layers, context 77, the full
49,408-token vocabulary). It is trained contrastively on images drawn afresh at every step from
``demo.world`` (every colour x texture x light) paired with captions such as "a photo of a red
striped square under yellow light.". A caption describes its image up to the template, so captions
with the same (colour, texture, light) are all positives of an image (soft targets), not negatives.

Two shortcuts, both exact:
- Captions are at most ``T`` tokens. Under the causal mask, the text feature (taken at the EOT token)
  never depends on later positions, so training at context ``T`` equals training at 77; the saved
  positional table is padded to 77 rows with OpenAI's initialisation (N(0, 0.01^2)).
- Only the token rows the world's captions use are trained (a k-row table indexed by an
  order-preserving id map, so the EOT token keeps the highest id). The file stores them in the
  compact form of docs/DESIGN.md; ``clip.load`` expands it to the full table (other rows zero).

Weights are stored in fp16. At the end the script reloads the file with ``clip.load`` and prints
zero-shot accuracy on the Demo test split (base and new classes) with the prompt template below.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import clip
from clip.clip import CLIP_MEAN, CLIP_STD
from clip.model import CLIP, compact_state_dict
from demo import world

DEFAULT_OUT = Path(__file__).resolve().parent / "weights" / "demo_clip.pt"
TEMPLATE = "a photo of a {}."  # the Demo entry of trainers/templates.py
ARCH = {
    "embed_dim": 128,
    "image_resolution": world.IMAGE_SIZE,
    "vision_layers": 4,
    "vision_width": 128,
    "vision_patch_size": 8,
    "context_length": 77,
    "vocab_size": 49408,
    "transformer_width": 128,
    "transformer_heads": 2,
    "transformer_layers": 3,
}


def to_model_input(images: np.ndarray) -> torch.Tensor:
    """(B, H, W, 3) uint8 -> (B, 3, H, W) float32 normalised as CLIP's preprocessing."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0  # (B, 3, H, W)
    mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    return (x - mean) / std


class CaptionTable:
    """Every world caption tokenized once, with the token ids remapped to a compact vocabulary.

    `rows` (k,) are the used token ids (sorted); `tokens` (n_captions, T) are compact ids.
    """

    def __init__(self) -> None:
        captions = world.all_captions() + [TEMPLATE.format(n) for n in world.class_names()]
        full = clip.tokenize(captions)  # (n, 77)
        self.length = int((full != 0).sum(dim=1).max())  # T: longest caption incl. SOT/EOT
        self.rows = torch.unique(full)  # (k,) sorted; includes 0 (padding)
        remap = torch.zeros(ARCH["vocab_size"], dtype=torch.long)
        remap[self.rows] = torch.arange(len(self.rows))
        self.tokens = remap[full[:, : self.length]]  # (n, T) order-preserving ids
        self.index = {c: i for i, c in enumerate(captions)}

    def __call__(self, captions: list[str]) -> torch.Tensor:
        """(B,) caption strings -> (B, T) compact token ids."""
        return self.tokens[[self.index[c] for c in captions]]


def build_training_model(table: CaptionTable) -> CLIP:
    """The demo CLIP at context T with a k-row token table (see the module docstring)."""
    arch = dict(ARCH, context_length=table.length, vocab_size=len(table.rows))
    return CLIP(**arch)


def export_state_dict(model: CLIP, table: CaptionTable, seed: int) -> dict[str, torch.Tensor]:
    """OpenAI-format compact fp16 state dict of the full-size model (context 77, 49,408 tokens)."""
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    width = ARCH["transformer_width"]
    generator = torch.Generator().manual_seed(seed)
    tail = torch.randn(ARCH["context_length"] - table.length, width, generator=generator) * 0.01
    state["positional_embedding"] = torch.cat([state["positional_embedding"], tail])  # (77, D)
    full_table = torch.zeros(ARCH["vocab_size"], width)
    full_table[table.rows] = state["token_embedding.weight"]  # (49408, D)
    state["token_embedding.weight"] = full_table
    state = compact_state_dict(state, table.rows.tolist())
    return {k: v.half() if v.is_floating_point() else v for k, v in state.items()}


def sample_batch(
    batch_size: int, rng: np.random.Generator
) -> tuple[np.ndarray, list[str], torch.Tensor]:
    """Random (colour, texture, light) per example: images (B, 32, 32, 3) uint8, captions, and
    (B,) int64 keys that are equal exactly when two examples have the same attributes."""
    n_c, n_t, n_l = len(world.COLOURS), len(world.TEXTURES), len(world.LIGHTS)
    c = rng.integers(n_c, size=batch_size)
    t = rng.integers(n_t, size=batch_size)
    li = rng.integers(n_l, size=batch_size)
    colours = [list(world.COLOURS)[i] for i in c]
    textures = [world.TEXTURES[i] for i in t]
    lights = [list(world.LIGHTS)[i] for i in li]
    images = world.render(colours, textures, lights, rng)
    captions = [world.caption(*a, rng) for a in zip(colours, textures, lights)]
    keys = torch.from_numpy((c * n_t + t) * n_l + li)
    return images, captions, keys


def contrastive_loss(
    image_features: torch.Tensor,
    text_features: torch.Tensor,
    logit_scale: torch.Tensor,
    keys: torch.Tensor,
) -> torch.Tensor:
    """Symmetric InfoNCE with soft targets: every pair with equal keys is a positive.

    image_features, text_features: (B, D) L2-normalised; keys: (B,). Returns a scalar.
    """
    logits = logit_scale.exp() * image_features @ text_features.t()  # (B, B)
    positives = (keys[:, None] == keys[None, :]).float()  # (B, B), symmetric
    targets = positives / positives.sum(dim=1, keepdim=True)
    loss_i = torch.sum(-targets * F.log_softmax(logits, dim=1), dim=1).mean()
    loss_t = torch.sum(-targets * F.log_softmax(logits.t(), dim=1), dim=1).mean()
    return (loss_i + loss_t) / 2


@torch.no_grad()
def zero_shot_accuracy(
    encode_image: Callable[[torch.Tensor], torch.Tensor],
    encode_text: Callable[[list[str]], torch.Tensor],
    template: str = TEMPLATE,
) -> tuple[float, float]:
    """Zero-shot accuracy (percent) on the Demo test split, base and new classes separately.

    encode_image: (B, 3, 32, 32) -> (B, D); encode_text: list of strings -> (n, D). As in
    base-to-new evaluation, base images are classified among the 20 base classes and new images
    among the 20 new classes.
    """
    images, labels = world.demo_split("test")
    image_features = F.normalize(encode_image(to_model_input(images)).float(), dim=-1)  # (N, D)
    names = world.class_names()
    text_features = F.normalize(encode_text([template.format(n) for n in names]).float(), dim=-1)
    n_base = math.ceil(len(names) / 2)
    labels = torch.from_numpy(labels)
    results = []
    for lo, hi in ((0, n_base), (n_base, len(names))):
        keep = (labels >= lo) & (labels < hi)
        logits = image_features[keep] @ text_features[lo:hi].t()  # (n, hi - lo)
        correct = (logits.argmax(dim=1) + lo == labels[keep]).float().mean()
        results.append(100.0 * float(correct))
    return results[0], results[1]


def train(args: argparse.Namespace) -> CLIP:
    """Contrastive pretraining; returns the trained (fp32, training-size) model."""
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    table = CaptionTable()
    model = build_training_model(table)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "embedding" not in n]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2 or "embedding" in n]
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": args.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=args.lr,
        betas=(0.9, 0.98),
        eps=1e-6,
    )
    warmup = max(1, args.steps // 20)

    def lr_at(step: int) -> float:
        if step < warmup:
            return args.lr * (step + 1) / warmup
        return 0.5 * args.lr * (1 + math.cos(math.pi * (step - warmup) / (args.steps - warmup)))

    def encode_text(texts: list[str]) -> torch.Tensor:
        return model.encode_text(table(texts))

    start = time.time()
    model.train()
    for step in range(args.steps):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step)
        images, captions, keys = sample_batch(args.batch_size, rng)
        image_features = F.normalize(model.encode_image(to_model_input(images)), dim=-1)
        text_features = F.normalize(model.encode_text(table(captions)), dim=-1)
        loss = contrastive_loss(image_features, text_features, model.logit_scale, keys)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        if (step + 1) % args.log_every == 0 or step + 1 == args.steps:
            model.eval()
            base, new = zero_shot_accuracy(model.encode_image, encode_text)
            model.train()
            print(
                f"step {step + 1}/{args.steps} loss {loss.item():.4f} "
                f"scale {model.logit_scale.exp().item():.1f} zero-shot base {base:.1f} "
                f"new {new:.1f} time {time.time() - start:.0f}s",
                flush=True,
            )
    return model.eval()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output weight file")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--weight-decay", type=float, default=0.1)
    parser.add_argument("--log-every", type=int, default=250)
    parser.add_argument("--threads", type=int, default=2)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    start = time.time()
    model = train(args)
    table = CaptionTable()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    torch.save(export_state_dict(model, table, args.seed), tmp)
    tmp.replace(args.out)
    loaded, _ = clip.load(str(args.out), device="cpu")
    base, new = zero_shot_accuracy(
        loaded.encode_image, lambda texts: loaded.encode_text(clip.tokenize(texts))
    )
    print(
        f"saved {args.out} ({args.out.stat().st_size / 2**20:.2f} MiB) in "
        f"{time.time() - start:.0f}s"
    )
    print(f"zero-shot on the Demo test split with {TEMPLATE!r}: base {base:.1f}% new {new:.1f}%")


if __name__ == "__main__":
    main()
