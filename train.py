"""Train or evaluate a prompt learner: CoOp's command line on our Dassl-compatible engine.

    python train.py --root DATA --seed 1 --trainer SEP \
        --dataset-config-file configs/datasets/eurosat.yaml \
        --config-file configs/trainers/SEP/vit_b16_b32_ep50.yaml \
        --output-dir output/... DATASET.NUM_SHOTS 16 DATASET.SUBSAMPLE_CLASSES base
"""

from __future__ import annotations

import argparse
import os.path as osp

import torch

import datasets  # noqa: F401  (registers the datasets)
import trainers  # noqa: F401  (registers the trainers)
from dassl.config import get_cfg_default
from dassl.engine import build_trainer
from dassl.utils import collect_env_info, set_random_seed, setup_logger
from trainers import cocoop, coop, kgcoop, sep


def print_args(args, cfg) -> None:
    print("***************")
    print("** Arguments **")
    print("***************")
    for key in sorted(args.__dict__):
        print(f"{key}: {args.__dict__[key]}")
    print("************")
    print("** Config **")
    print("************")
    print(cfg)


def reset_cfg(cfg, args) -> None:
    if args.root:
        cfg.DATASET.ROOT = args.root
    if args.output_dir:
        cfg.OUTPUT_DIR = args.output_dir
    if args.resume:
        cfg.RESUME = args.resume
    if args.seed is not None and args.seed >= 0:  # upstream's `if args.seed:` ignored seed 0
        cfg.SEED = args.seed
    if args.source_domains:
        cfg.DATASET.SOURCE_DOMAINS = args.source_domains
    if args.target_domains:
        cfg.DATASET.TARGET_DOMAINS = args.target_domains
    if args.transforms:
        cfg.INPUT.TRANSFORMS = args.transforms
    if args.trainer:
        cfg.TRAINER.NAME = args.trainer
    if args.backbone:
        cfg.MODEL.BACKBONE.NAME = args.backbone
    if args.head:
        cfg.MODEL.HEAD.NAME = args.head


def extend_cfg(cfg) -> None:
    """Add every method's config node (each trainer module owns its node)."""
    coop.add_config(cfg)
    cocoop.add_config(cfg)
    kgcoop.add_config(cfg)
    sep.add_config(cfg)


def _merge_file(cfg, path: str, flag: str) -> None:
    if not osp.isfile(path):
        raise FileNotFoundError(
            f"{flag} '{path}' does not exist (paths are relative to the repo root)."
        )
    try:
        cfg.merge_from_file(path)
    except (AssertionError, KeyError, ValueError) as e:  # yacs reports bad keys by assertion
        raise ValueError(f"{flag} '{path}': {e} (see dassl/config/defaults.py and train.py)") from e


def _merge_opts(cfg, opts: list[str]) -> None:
    try:
        cfg.merge_from_list(opts)
    except (AssertionError, KeyError, ValueError) as e:
        raise ValueError(
            f"Config override in {' '.join(opts)!r}: {e}. Overrides are KEY VALUE pairs of "
            "existing keys (see dassl/config/defaults.py and each trainer's add_config)."
        ) from e


def setup_cfg(args):
    cfg = get_cfg_default()
    extend_cfg(cfg)
    if args.dataset_config_file:
        _merge_file(cfg, args.dataset_config_file, "--dataset-config-file")
    if args.config_file:
        _merge_file(cfg, args.config_file, "--config-file")
    reset_cfg(cfg, args)
    _merge_opts(cfg, args.opts)
    cfg.freeze()
    return cfg


def main(args) -> None:
    cfg = setup_cfg(args)
    if cfg.SEED >= 0:
        print(f"Setting fixed seed: {cfg.SEED}")
        set_random_seed(cfg.SEED)
    setup_logger(cfg.OUTPUT_DIR)

    if torch.cuda.is_available() and cfg.USE_CUDA:
        torch.backends.cudnn.benchmark = True

    print_args(args, cfg)
    print("Collecting env info ...")
    print(f"** System info **\n{collect_env_info()}\n")

    trainer = build_trainer(cfg)

    if args.eval_only:
        trainer.load_model(args.model_dir, epoch=args.load_epoch)
        trainer.test()
        return

    if not args.no_train:
        trainer.train()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", type=str, default="", help="path to dataset")
    parser.add_argument("--output-dir", type=str, default="", help="output directory")
    parser.add_argument(
        "--resume",
        type=str,
        default="",
        help="checkpoint directory (from which the training resumes)",
    )
    parser.add_argument(
        "--seed", type=int, default=-1, help="only non-negative values enable a fixed seed"
    )
    parser.add_argument("--source-domains", type=str, nargs="+", help="source domains for DA/DG")
    parser.add_argument("--target-domains", type=str, nargs="+", help="target domains for DA/DG")
    parser.add_argument("--transforms", type=str, nargs="+", help="data augmentation methods")
    parser.add_argument("--config-file", type=str, default="", help="path to config file")
    parser.add_argument(
        "--dataset-config-file", type=str, default="", help="path to config file for dataset setup"
    )
    parser.add_argument("--trainer", type=str, default="", help="name of trainer")
    parser.add_argument("--backbone", type=str, default="", help="name of CNN backbone")
    parser.add_argument("--head", type=str, default="", help="name of head")
    parser.add_argument("--eval-only", action="store_true", help="evaluation only")
    parser.add_argument(
        "--model-dir",
        type=str,
        default="",
        help="load model from this directory for eval-only mode",
    )
    parser.add_argument(
        "--load-epoch", type=int, help="load model weights at this epoch for evaluation"
    )
    parser.add_argument("--no-train", action="store_true", help="do not call trainer.train()")
    parser.add_argument(
        "opts",
        default=None,
        nargs=argparse.REMAINDER,
        help="modify config options using the command-line",
    )
    return parser


if __name__ == "__main__":
    main(build_parser().parse_args())
