"""End-to-end regression on the committed demo CLIP: zero-shot, KgCoOp and SEP base-to-new on the
demo for two seeds through the real sweep runner, with bounds that have margin (issue: the methods
that regularise towards CLIP keep new-class accuracy within 5 points of zero-shot)."""

import os
import re
import subprocess
import sys
from pathlib import Path
from statistics import mean

REPO = Path(__file__).resolve().parent.parent


def accuracy(run: Path) -> float:
    return float(re.findall(r"\* accuracy: ([\d.]+)%", (run / "log.txt").read_text())[-1])


def test_kgcoop_and_sep_keep_new_class_accuracy_near_zero_shot(tmp_path):
    env = dict(os.environ, DATA=str(tmp_path / "data"), OUTPUT=str(tmp_path / "out"))
    cmd = [sys.executable, str(REPO / "scripts" / "sweep.py"), "base2new", "--datasets", "demo"]
    cmd += ["--trainers", "ZeroshotCLIP", "KgCoOp", "SEP", "--seeds", "1", "2", "--jobs", "2"]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    out = tmp_path / "out" / "base2new"

    def mean_acc(kind: str, trainer: str) -> float:
        runs = sorted((out / kind / "demo" / "shots_16" / trainer / "demo").glob("seed*"))
        assert len(runs) == 2
        return mean(accuracy(run) for run in runs)

    zs_base, zs_new = mean_acc("train_base", "ZeroshotCLIP"), mean_acc("test_new", "ZeroshotCLIP")
    assert zs_base >= 40 and zs_new >= 30  # committed weights: 75.0 / 73.8
    for trainer in ("KgCoOp", "SEP"):
        new = mean_acc("test_new", trainer)
        assert new >= zs_new - 5, f"{trainer} new {new:.1f} vs zero-shot new {zs_new:.1f}"
        # prompt learning on base classes beats zero-shot there (measured: +19 to +20 points)
        assert mean_acc("train_base", trainer) >= zs_base + 5
