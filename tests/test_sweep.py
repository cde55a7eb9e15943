"""End to end: a sweep of every trainer over two seeds on a miniature EuroSAT with the tiny CLIP,
skipped when run again, resumed after a kill, and the table parse_test_res.py prints from it."""

import csv
import io
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from statistics import mean

import pytest

from tests.dataset_trees import build_eurosat
from tests.tiny_clip import save_tiny_clip

REPO = Path(__file__).resolve().parent.parent
TRAINERS = ["ZeroshotCLIP", "CoOp", "CoCoOp", "KgCoOp", "SEP"]
FAST = ["INPUT.SIZE", "(32, 32)", "OPTIM.MAX_EPOCH", "1", "DATALOADER.NUM_WORKERS", "0"]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    build_eurosat(str(root / "data"))
    weights = save_tiny_clip(str(root / "tiny.pt"))
    env = dict(os.environ, DATA=str(root / "data"), OUTPUT=str(root / "out"))
    return root, env, ["MODEL.BACKBONE.NAME", weights] + FAST


def sweep(env, opts, *args, **kwargs):
    cmd = [sys.executable, str(REPO / "scripts" / "sweep.py"), *args, "--", *opts]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, **kwargs)


def last_accuracy(run_dir: Path) -> float:
    return float(re.findall(r"\* accuracy: ([\d.]+)%", (run_dir / "log.txt").read_text())[-1])


def test_sweep_runs_every_trainer_skips_when_rerun_and_parses(world):
    root, env, opts = world
    args = ["base2new", "--trainers", *TRAINERS, "--datasets", "eurosat", "--seeds", "1", "2"]
    first = sweep(env, opts, *args, "--jobs", "2")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "[10/10]" in first.stdout and "Sweep finished." in first.stdout

    runs = sorted(root.glob("out/base2new/*/eurosat/shots_16/*/*/seed*"))
    assert len(runs) == 20  # 5 trainers x 2 seeds x (base, new)
    logs_before = {run: (run / "log.txt").read_text() for run in runs}

    again = sweep(env, opts, *args, "--jobs", "2")
    assert again.returncode == 0
    assert again.stdout.count("skipped (finished)") == 10
    assert {run: (run / "log.txt").read_text() for run in runs} == logs_before

    # the CSV table against the accuracies read from the logs here
    table = subprocess.run(
        [sys.executable, str(REPO / "parse_test_res.py"), str(root / "out"), "--format", "csv"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = list(csv.reader(io.StringIO(table)))
    header = next(r for r in rows if r and r[0] == "Dataset")
    eurosat = dict(zip(header, next(r for r in rows if r and r[0] == "EuroSAT")))
    out = root / "out" / "base2new"
    for trainer in TRAINERS:
        cfg_dirs = {
            kind: next((out / kind / "eurosat" / "shots_16" / trainer).iterdir())
            for kind in ("train_base", "test_new")
        }
        base = mean(last_accuracy(cfg_dirs["train_base"] / f"seed{s}") for s in (1, 2))
        new = mean(last_accuracy(cfg_dirs["test_new"] / f"seed{s}") for s in (1, 2))
        assert float(eurosat[f"{trainer} Base"]) == pytest.approx(base, abs=0.006)
        assert float(eurosat[f"{trainer} New"]) == pytest.approx(new, abs=0.006)
        assert eurosat[f"{trainer} Base seeds"] == "2/2"
        hm = 2 * base * new / (base + new) if base + new else 0.0
        assert float(eurosat[f"{trainer} HM"]) == pytest.approx(hm, abs=0.011)


def test_killed_sweep_resumes_without_redoing_finished_runs(world):
    root, env, opts = world
    env = dict(env, OUTPUT=str(root / "out_kill"))
    args = ["base2new", "--trainers", "CoOp", "--datasets", "eurosat", "--seeds", "1", "2"]
    cmd = [sys.executable, str(REPO / "scripts" / "sweep.py"), *args, "--", *opts]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True, start_new_session=True)
    seen = []
    for line in proc.stdout:  # kill the whole sweep as soon as its first job is done
        seen.append(line)
        if line.startswith("[1/2]"):
            os.killpg(proc.pid, signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert any("done" in line for line in seen), "".join(seen)[-3000:]
    finished = [
        run
        for run in (root / "out_kill").glob("base2new/*/eurosat/shots_16/CoOp/*/seed*")
        if "* accuracy:" in (run / "log.txt").read_text()
    ]
    assert len(finished) >= 2  # the first job's base and new runs
    before = {run: (run / "log.txt").read_text() for run in finished}

    time.sleep(0.1)
    resumed = sweep(env, opts, *args)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "Sweep finished." in resumed.stdout
    for run, text in before.items():  # finished runs untouched
        assert (run / "log.txt").read_text() == text
    all_runs = list((root / "out_kill").glob("base2new/*/eurosat/shots_16/CoOp/*/seed*"))
    assert len(all_runs) == 4
    assert all("* accuracy:" in (run / "log.txt").read_text() for run in all_runs)
