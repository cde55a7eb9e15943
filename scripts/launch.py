"""One implementation behind every ``scripts/<trainer>/*.sh`` entry point.

    python scripts/launch.py TRAINER SETTING ARGS... [CONFIG OVERRIDES...]

Settings and their positional arguments:

    base2new_train DATASET SEED      train on the base classes (the test at the end = Base accuracy)
    base2new_test  DATASET SEED      evaluate the last epoch of that run on the new classes
    base2new       DATASET SEED      zero-shot only: evaluate on base, then on new
    xd_train       SEED              train on all classes of the source (ImageNet, or $XD_SOURCE)
    xd_test        DATASET SEED      evaluate that model on DATASET (cross-dataset / domain gen.)
    few_shot       DATASET SHOTS SEED  train on all classes with SHOTS shots and test

Everything after the positional arguments is passed to train.py as config overrides
(e.g. ``MODEL.BACKBONE.NAME path/to/model.pt``). The data root is ``$DATA`` (default ``./data``),
the output root ``$OUTPUT`` (default ``./output``). A finished run (its log holds a result block) is
skipped with a message; an unfinished one resumes from its last checkpoint.

Output layout (read by parse_test_res.py):
    output/base2new/{train_base|test_new}/<dataset>/shots_16/<trainer>/<cfg>/seed<S>
    output/xd/{train/<source>|test/<dataset>}/shots_16/<trainer>/<cfg>/seed<S>
    output/fewshot/<dataset>/shots_<K>/<trainer>/<cfg>/seed<S>
"""

from __future__ import annotations

import glob
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHOTS = 16
# The trainer's config for each setting; ``None`` = the trainer does not train (zero-shot).
# The demo dataset always uses the trainer's ``demo`` config.
CONFIGS = {
    "ZeroshotCLIP": {"base2new": "vit_b16", "xd": "vit_b16", "fewshot": "vit_b16"},
    "CoOp": {"base2new": "vit_b16_ep50", "xd": "vit_b16_ep50", "fewshot": "vit_b16_ep50"},
    "CoCoOp": {
        "base2new": "vit_b16_c4_ep10_batch1_ctxv1",
        "xd": "vit_b16_c4_ep10_batch1_ctxv1",
        "fewshot": "vit_b16_c4_ep10_batch1_ctxv1",
    },
    "KgCoOp": {
        "base2new": "vit_b16_ep100_ctxv1",
        "xd": "vit_b16_ep100_ctxv1",
        "fewshot": "vit_b16_ep100_ctxv1",
    },
    "SEP": {
        "base2new": "vit_b16_b32_ep50",
        "xd": "vit_b16_b32_ep3_cross_dataset",
        "fewshot": "vit_b16_b32_ep50_fewshot",
    },
}
# Per-dataset exceptions (the release trains ImageNet and SUN397 with batch 128 x 10 epochs).
DATASET_CONFIGS = {
    ("SEP", "base2new", "imagenet"): "vit_b16_b128_ep10",
    ("SEP", "base2new", "sun397"): "vit_b16_b128_ep10",
}
EVAL_ONLY = {"ZeroshotCLIP"}


class LaunchError(RuntimeError):
    """A usage error: the message says what to do."""


@dataclass
class Run:
    """One call of train.py."""

    trainer: str
    dataset: str
    config: str
    seed: int
    output_dir: Path
    opts: list[str]
    model_dir: Path | None = None  # eval-only when set (or for zero-shot)

    @property
    def eval_only(self) -> bool:
        return self.model_dir is not None or self.trainer in EVAL_ONLY

    def command(self, data_root: str) -> list[str]:
        cmd = [
            sys.executable, str(REPO / "train.py"),
            "--root", data_root,
            "--seed", str(self.seed),
            "--trainer", self.trainer,
            "--dataset-config-file", str(dataset_config(self.dataset)),
            "--config-file", str(trainer_config(self.trainer, self.config)),
            "--output-dir", str(self.output_dir),
        ]  # fmt: skip
        if self.eval_only:
            cmd.append("--eval-only")
        if self.model_dir is not None:
            epoch = last_epoch(self.model_dir)
            cmd += ["--model-dir", str(self.model_dir), "--load-epoch", str(epoch)]
        return cmd + self.opts


def dataset_config(dataset: str) -> Path:
    path = REPO / "configs" / "datasets" / f"{dataset}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in path.parent.glob("*.yaml"))
        raise LaunchError(f"Unknown dataset '{dataset}' ({path} missing). Choose one of: {known}")
    return path


def trainer_config(trainer: str, config: str) -> Path:
    path = REPO / "configs" / "trainers" / trainer / f"{config}.yaml"
    if not path.is_file():
        raise LaunchError(f"Trainer config {path} is missing.")
    return path


def pick_config(trainer: str, setting: str, dataset: str) -> str:
    if trainer not in CONFIGS:
        raise LaunchError(f"Unknown trainer '{trainer}'. Choose one of: {sorted(CONFIGS)}")
    if dataset == "demo":
        return "demo"
    return DATASET_CONFIGS.get((trainer, setting, dataset), CONFIGS[trainer][setting])


def is_finished(run_dir: Path) -> bool:
    """A run is finished when one of its logs holds a result block."""
    for log in glob.glob(str(run_dir / "log.txt*")):
        with open(log, errors="replace") as f:
            if "* accuracy:" in f.read():
                return True
    return False


def last_epoch(run_dir: Path) -> int:
    """The epoch of the last checkpoint saved in a finished training run."""
    epochs = [
        int(m.group(1))
        for path in glob.glob(str(run_dir / "*" / "model.pth.tar-*"))
        if (m := re.search(r"model\.pth\.tar-(\d+)$", path))
    ]
    if not epochs:
        raise LaunchError(f"No checkpoint model.pth.tar-<epoch> below {run_dir}.")
    return max(epochs)


def out_root() -> Path:
    return Path(os.environ.get("OUTPUT", "output")).absolute()


def run_dir(kind: str, dataset: str, shots: int, trainer: str, config: str, seed: int) -> Path:
    return out_root() / kind / dataset / f"shots_{shots}" / trainer / config / f"seed{seed}"


def subsample(which: str) -> list[str]:
    return ["DATASET.SUBSAMPLE_CLASSES", which]


def plan(trainer: str, setting: str, args: list[str]) -> list[Run]:
    """The train.py runs of one script call, in order."""

    def take(n: int, names: str) -> list[str]:
        if len(args) < n:
            raise LaunchError(f"usage: {setting} {names} [CONFIG OVERRIDES...]")
        return args[:n]

    if setting in ("base2new_train", "base2new_test", "base2new"):
        dataset, seed = take(2, "DATASET SEED")
        seed, opts = int(seed), args[2:]
        cfg = pick_config(trainer, "base2new", dataset)
        base_dir = run_dir("base2new/train_base", dataset, SHOTS, trainer, cfg, seed)
        new_dir = run_dir("base2new/test_new", dataset, SHOTS, trainer, cfg, seed)
        shots = ["DATASET.NUM_SHOTS", str(SHOTS)]
        on_base = Run(trainer, dataset, cfg, seed, base_dir, shots + subsample("base") + opts)
        model_dir = None if trainer in EVAL_ONLY else base_dir
        on_new = Run(
            trainer, dataset, cfg, seed, new_dir, shots + subsample("new") + opts, model_dir
        )
        if setting == "base2new":
            if trainer not in EVAL_ONLY:
                raise LaunchError(f"{trainer} trains: use base2new_train, then base2new_test.")
            return [on_base, on_new]
        return [on_base] if setting == "base2new_train" else [on_new]
    if setting in ("xd_train", "xd_test"):
        source = os.environ.get("XD_SOURCE", "imagenet")
        if setting == "xd_train":
            (seed,) = take(1, "SEED")
            seed, opts, dataset = int(seed), args[1:], source
        else:
            dataset, seed = take(2, "DATASET SEED")
            seed, opts = int(seed), args[2:]
        cfg = pick_config(trainer, "xd", source)
        train_dir = run_dir("xd/train", source, SHOTS, trainer, cfg, seed)
        shots = ["DATASET.NUM_SHOTS", str(SHOTS)]
        if setting == "xd_train":
            return [Run(trainer, source, cfg, seed, train_dir, shots + opts)]
        test_dir = run_dir("xd/test", dataset, SHOTS, trainer, cfg, seed)
        model_dir = None if trainer in EVAL_ONLY else train_dir
        return [Run(trainer, dataset, cfg, seed, test_dir, shots + opts, model_dir)]
    if setting == "few_shot":
        dataset, shots, seed = take(3, "DATASET SHOTS SEED")
        seed, opts = int(seed), args[3:]
        cfg = pick_config(trainer, "fewshot", dataset)
        out = run_dir("fewshot", dataset, int(shots), trainer, cfg, seed)
        return [Run(trainer, dataset, cfg, seed, out, ["DATASET.NUM_SHOTS", shots] + opts)]
    raise LaunchError(
        f"Unknown setting '{setting}': base2new_train, base2new_test, base2new, xd_train, xd_test, "
        "few_shot."
    )


def execute(run: Run, data_root: str, env: dict | None = None, stdout=None) -> None:
    """Run ``run`` unless it has finished; ``env``/``stdout`` go to the train.py subprocess."""
    if is_finished(run.output_dir):
        print(f"Oops! The results exist at {run.output_dir} (so skip this job)", flush=True)
        return
    if run.model_dir is not None and not is_finished(run.model_dir):
        raise LaunchError(
            f"The training run {run.model_dir} has not finished: run the training script first."
        )
    if run.output_dir.exists() and not run.eval_only:
        print(f"Resuming the unfinished run in {run.output_dir} (delete the folder to start over)")
    command = run.command(data_root)
    print("Running:", " ".join(command), flush=True)
    subprocess.run(command, check=True, env=env, stdout=stdout, stderr=stdout)


def data_root() -> str:
    return str(Path(os.environ.get("DATA", "./data")).absolute())


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__)
        return 2
    trainer, setting, args = argv[0], argv[1], argv[2:]
    try:
        for run in plan(trainer, setting, args):
            execute(run, data_root())
    except LaunchError as e:
        print(f"Error: {e}", file=sys.stderr)
        return 2
    except subprocess.CalledProcessError as e:
        print(f"Error: train.py exited with status {e.returncode}", file=sys.stderr)
        return e.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
