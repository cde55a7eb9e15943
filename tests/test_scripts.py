"""The launcher behind scripts/<trainer>/*.sh: layouts, config choice, skipping and errors."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))

import generate  # noqa: E402
import launch  # noqa: E402


@pytest.fixture(autouse=True)
def _output_root(tmp_path, monkeypatch):
    monkeypatch.setenv("OUTPUT", str(tmp_path / "out"))
    monkeypatch.delenv("XD_SOURCE", raising=False)


def test_generated_scripts_are_up_to_date():
    for path, text in generate.expected_files().items():
        assert path.read_text() == text, f"{path} is stale: run python scripts/generate.py"
        assert os.access(path, os.X_OK)
    assert (REPO / "scripts/sep/base2new_train.sh").exists()
    assert (REPO / "scripts/zsclip/base2new.sh").exists()


def test_every_configured_trainer_config_exists():
    for trainer, settings in launch.CONFIGS.items():
        for config in {*settings.values(), "demo"}:
            assert launch.trainer_config(trainer, config).is_file()
    for (trainer, _, _), config in launch.DATASET_CONFIGS.items():
        assert launch.trainer_config(trainer, config).is_file()


def test_base2new_layout_and_configs(tmp_path):
    out = tmp_path / "out"
    (train,) = launch.plan("SEP", "base2new_train", ["eurosat", "2", "OPTIM.MAX_EPOCH", "3"])
    assert (
        train.output_dir == out / "base2new/train_base/eurosat/shots_16/SEP/vit_b16_b32_ep50/seed2"
    )
    assert train.opts == [
        "DATASET.NUM_SHOTS",
        "16",
        "DATASET.SUBSAMPLE_CLASSES",
        "base",
        "OPTIM.MAX_EPOCH",
        "3",
    ]
    assert not train.eval_only
    (test,) = launch.plan("SEP", "base2new_test", ["imagenet", "1"])
    # the release trains ImageNet (and SUN397) with batch 128 x 10 epochs
    assert test.config == "vit_b16_b128_ep10"
    assert (
        test.output_dir == out / "base2new/test_new/imagenet/shots_16/SEP/vit_b16_b128_ep10/seed1"
    )
    assert (
        test.model_dir == out / "base2new/train_base/imagenet/shots_16/SEP/vit_b16_b128_ep10/seed1"
    )
    assert test.opts == ["DATASET.NUM_SHOTS", "16", "DATASET.SUBSAMPLE_CLASSES", "new"]
    assert test.eval_only
    # the demo dataset always takes the trainer's demo config
    (demo,) = launch.plan("CoOp", "base2new_train", ["demo", "1"])
    assert demo.config == "demo"


def test_zero_shot_base2new_runs_two_evaluations(tmp_path):
    on_base, on_new = launch.plan("ZeroshotCLIP", "base2new", ["dtd", "1"])
    assert on_base.eval_only and on_new.eval_only
    assert on_base.model_dir is None and on_new.model_dir is None
    assert "base" in on_base.opts and "new" in on_new.opts
    with pytest.raises(launch.LaunchError, match="base2new_train"):
        launch.plan("CoOp", "base2new", ["dtd", "1"])


def test_cross_dataset_and_few_shot_layouts(tmp_path, monkeypatch):
    out = tmp_path / "out"
    (train,) = launch.plan("SEP", "xd_train", ["1"])
    assert train.dataset == "imagenet"
    assert (
        train.output_dir
        == out / "xd/train/imagenet/shots_16/SEP/vit_b16_b32_ep3_cross_dataset/seed1"
    )
    (test,) = launch.plan("SEP", "xd_test", ["imagenet_a", "1"])
    assert test.model_dir == train.output_dir
    assert (
        test.output_dir
        == out / "xd/test/imagenet_a/shots_16/SEP/vit_b16_b32_ep3_cross_dataset/seed1"
    )
    monkeypatch.setenv("XD_SOURCE", "demo")
    (train,) = launch.plan("CoOp", "xd_train", ["3"])
    assert train.dataset == "demo" and train.config == "demo"
    (few,) = launch.plan("CoOp", "few_shot", ["eurosat", "4", "1"])
    assert few.output_dir == out / "fewshot/eurosat/shots_4/CoOp/vit_b16_ep50/seed1"
    assert few.opts == ["DATASET.NUM_SHOTS", "4"]


def test_command_line(tmp_path):
    (run,) = launch.plan("CoOp", "base2new_train", ["eurosat", "1"])
    cmd = run.command("/data")
    assert cmd[1].endswith("train.py")
    assert cmd[cmd.index("--root") + 1] == "/data"
    assert cmd[cmd.index("--seed") + 1] == "1"
    assert cmd[cmd.index("--trainer") + 1] == "CoOp"
    assert cmd[cmd.index("--config-file") + 1].endswith("configs/trainers/CoOp/vit_b16_ep50.yaml")
    assert "--eval-only" not in cmd


def test_finished_run_is_skipped_and_test_needs_a_finished_training(tmp_path, capsys, monkeypatch):
    (train,) = launch.plan("CoOp", "base2new_train", ["eurosat", "1"])
    (test,) = launch.plan("CoOp", "base2new_test", ["eurosat", "1"])
    with pytest.raises(launch.LaunchError, match="has not finished"):
        launch.execute(test, "/data")
    train.output_dir.mkdir(parents=True)
    (train.output_dir / "log.txt").write_text("Finish training\n=> result\n* accuracy: 50.0%\n")
    calls = []
    monkeypatch.setattr(launch.subprocess, "run", lambda *a, **k: calls.append(a))
    launch.execute(train, "/data")
    assert calls == [] and "so skip this job" in capsys.readouterr().out
    (train.output_dir / "prompt_learner").mkdir()
    (train.output_dir / "prompt_learner" / "model.pth.tar-7").write_bytes(b"")
    (train.output_dir / "prompt_learner" / "model.pth.tar-12").write_bytes(b"")
    launch.execute(test, "/data")
    (cmd,) = calls[0]
    assert cmd[cmd.index("--load-epoch") + 1] == "12"
    assert cmd[cmd.index("--model-dir") + 1] == str(train.output_dir)


def test_usage_errors():
    with pytest.raises(launch.LaunchError, match="DATASET SEED"):
        launch.plan("CoOp", "base2new_train", ["eurosat"])
    with pytest.raises(launch.LaunchError, match="Unknown trainer"):
        launch.plan("CoOpp", "base2new_train", ["eurosat", "1"])
    (run,) = launch.plan("CoOp", "base2new_train", ["no_such_dataset", "1"])
    with pytest.raises(launch.LaunchError, match="Unknown dataset 'no_such_dataset'"):
        run.command("/data")
    assert launch.main(["CoOp", "nonsense"]) == 2


def _bash(script: str, *args: str, env: dict) -> subprocess.CompletedProcess:
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / script), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def test_scripts_on_miniature_benchmarks(tmp_path):
    """CoOp base-to-new on dtd and imagenet; SEP cross-dataset (ImageNet -> DTD and ImageNet-A) and
    few-shot: the real scripts on miniature trees with the tiny CLIP."""
    from tests.dataset_trees import build_dtd, build_eurosat, build_imagenet, build_imagenet_a
    from tests.tiny_clip import save_tiny_clip

    data = tmp_path / "data"
    for build in (build_dtd, build_eurosat, build_imagenet, build_imagenet_a):
        build(str(data))
    weights = save_tiny_clip(str(tmp_path / "tiny.pt"))
    fast = ["MODEL.BACKBONE.NAME", weights, "INPUT.SIZE", "(32, 32)", "OPTIM.MAX_EPOCH", "1"]
    fast += ["DATALOADER.NUM_WORKERS", "0"]
    env = dict(os.environ, DATA=str(data), OUTPUT=str(tmp_path / "out"))
    out = tmp_path / "out"

    for dataset in ("dtd", "imagenet"):
        _bash("coop/base2new_train.sh", dataset, "1", *fast, env=env)
        run = out / f"base2new/train_base/{dataset}/shots_16/CoOp/vit_b16_ep50/seed1"
        assert "* accuracy:" in (run / "log.txt").read_text()
        assert (run / "prompt_learner" / "model.pth.tar-1").is_file()

    _bash("sep/xd_train.sh", "1", *fast, env=env)
    for target in ("dtd", "imagenet_a"):
        _bash("sep/xd_test.sh", target, "1", *fast, env=env)
        log = out / f"xd/test/{target}/shots_16/SEP/vit_b16_b32_ep3_cross_dataset/seed1/log.txt"
        assert "Loading weights to prompt_learner" in log.read_text()
        assert "* accuracy:" in log.read_text()
    _bash("sep/few_shot.sh", "eurosat", "2", "1", *fast, env=env)
    few = out / "fewshot/eurosat/shots_2/SEP/vit_b16_b32_ep50_fewshot/seed1/log.txt"
    assert "* accuracy:" in few.read_text()

    tables = subprocess.run(
        [sys.executable, str(REPO / "parse_test_res.py"), str(out)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for title in ("Base-to-new", "Cross-dataset", "Domain generalisation", "Few-shot"):
        assert title.lower() in tables.lower(), tables
