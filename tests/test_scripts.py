"""The launcher behind scripts/<trainer>/*.sh: layouts, config choice, skipping and errors."""

import os
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
