"""Speed and memory of one training step and of evaluation, per method, precision and device.

    python benchmarks/bench_step.py                                # tiny CLIP, CPU, fp32
    python benchmarks/bench_step.py --size vit_b16 --batch 4       # ViT-B/16-size CLIP (random weights)
    python benchmarks/bench_step.py --size vit_b16 --device cuda --prec fp16 amp fp32 --batch 32

The CLIP has OpenAI's architecture with random weights (no download), so the figures are those of
the real model size. For each method and precision it prints the median time of a training step
(forward, the method's loss, backward, optimizer step), the evaluation throughput (images/s, text
features computed once as in ``test()``) and the peak memory (CUDA allocator, or the process's RSS
growth on the CPU).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

import torch
from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from clip.model import CLIP  # noqa: E402
from dassl.config import get_cfg_default  # noqa: E402
from trainers import coop, sep  # noqa: E402
from trainers.common import autocast, cast_clip, encode_texts, resolve_precision  # noqa: E402

SIZES = {
    # OpenAI's ViT-B/16 CLIP
    "vit_b16": dict(
        embed_dim=512, image_resolution=224, vision_layers=12, vision_width=768,
        vision_patch_size=16, context_length=77, vocab_size=49408, transformer_width=512,
        transformer_heads=8, transformer_layers=12,
    ),
    # the tests' tiny CLIP
    "tiny": dict(
        embed_dim=32, image_resolution=32, vision_layers=2, vision_width=128, vision_patch_size=8,
        context_length=77, vocab_size=49408, transformer_width=128, transformer_heads=2,
        transformer_layers=2,
    ),
}  # fmt: skip


def make_cfg(n_ctx_coop: int = 16):
    cfg = get_cfg_default()
    coop.add_config(cfg)
    sep.add_config(cfg)
    cfg.TRAINER.COOP.N_CTX = n_ctx_coop
    return cfg


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build(method: str, size: str, prec: str, device: torch.device, n_cls: int):
    torch.manual_seed(0)
    clip_model = CLIP(**SIZES[size]).float().eval()
    classnames = [f"class {i}" for i in range(n_cls)]
    cfg = make_cfg()
    clip_model.to(device)
    if method == "SEP":
        hand = encode_texts(clip_model, [f"a photo of a {c}." for c in classnames], device)
        cast_clip(clip_model, prec)
        model = sep.CustomCLIP(cfg, classnames, clip_model, hand)
    else:
        cast_clip(clip_model, prec)
        model = coop.CustomCLIP(cfg, classnames, clip_model)
    for name, param in model.named_parameters():
        param.requires_grad_(name.startswith("prompt_learner"))
    model.to(device)
    learner = model.prompt_learner
    eps = 1e-3 if prec == "fp16" else 1e-8
    optim = torch.optim.Adam([p for p in learner.parameters() if p.requires_grad], lr=1e-3, eps=eps)
    return model, optim


def step(method, model, optim, images, labels, prec, device):
    with autocast(prec, device):
        if method == "SEP":
            _, losses = model(images, labels)
            loss = losses["loss"]
        else:
            loss = torch.nn.functional.cross_entropy(model(images).float(), labels)
    optim.zero_grad()
    loss.backward()
    optim.step()


def timed(fn, repeats: int, device: torch.device) -> float:
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(method: str, prec: str, args, device: torch.device) -> list:
    """One table row: [method, prec, step ms, eval img/s, peak MB]."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    res = SIZES[args.size]["image_resolution"]
    model, optim = build(method, args.size, prec, device, args.classes)
    images = torch.randn(args.batch, 3, res, res, device=device)
    labels = torch.randint(0, args.classes, (args.batch,), device=device)
    model.train()
    step(method, model, optim, images, labels, prec, device)  # warm-up
    t_step = timed(
        lambda: step(method, model, optim, images, labels, prec, device), args.repeats, device
    )
    model.eval()
    eval_images = torch.randn(args.eval_batch, 3, res, res, device=device)

    def evaluate():
        with torch.no_grad(), model.text_features_cached(), autocast(prec, device):
            model(eval_images)

    t_eval = timed(evaluate, max(2, args.repeats // 2), device)
    return [
        method,
        prec,
        f"{t_step * 1000:.1f}",
        f"{args.eval_batch / t_eval:.1f}",
        f"{peak_memory_mb(device):.0f}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="tiny")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--prec", nargs="+", default=["fp32"])
    parser.add_argument("--methods", nargs="+", default=["CoOp", "SEP"])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--eval-batch", type=int, default=100)
    parser.add_argument("--classes", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    device = torch.device(args.device)
    rows = [
        measure(method, resolve_precision(prec, device), args, device)
        for prec in args.prec
        for method in args.methods
    ]
    print(
        f"CLIP size {args.size}, device {device}, train batch {args.batch}, "
        f"eval batch {args.eval_batch}, {args.classes} classes, torch {torch.__version__}"
    )
    headers = ["method", "prec", "train step (ms)", "eval (img/s)", "peak memory (MB)"]
    print(tabulate(rows, headers=headers))


if __name__ == "__main__":
    main()
