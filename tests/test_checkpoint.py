"""Checkpoints: atomic writes, plain contents, corrupt files reported clearly, other forks'
checkpoints, pretrained weights, random-generator states, JSON."""

import os
import random
import sys
import types

import numpy as np
import pytest
import torch
from torch import nn
from torch.optim.lr_scheduler import CosineAnnealingLR, LRScheduler

from dassl.utils import (
    get_rng_state,
    load_checkpoint,
    load_pretrained_weights,
    read_json,
    resume_from_checkpoint,
    save_checkpoint,
    set_rng_state,
    write_json,
)

torch.set_num_threads(1)


def _state(model: nn.Module, epoch: int) -> dict:
    return {"state_dict": model.state_dict(), "epoch": epoch, "val_result": None}


def test_save_checkpoint_layout_and_weights_only_contents(tmp_path):
    model = nn.Linear(3, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    state = _state(model, 7)
    state["optimizer"] = optimizer.state_dict()
    state["state_dict"] = {"module." + k: v for k, v in state["state_dict"].items()}
    path = save_checkpoint(state, str(tmp_path / "prompt_learner"), is_best=True)

    assert path == str(tmp_path / "prompt_learner" / "model.pth.tar-7")
    assert sorted(os.listdir(tmp_path / "prompt_learner")) == [
        "checkpoint",
        "model-best.pth.tar",
        "model.pth.tar-7",
    ]
    assert (tmp_path / "prompt_learner" / "checkpoint").read_text() == "model.pth.tar-7\n"
    loaded = torch.load(path, weights_only=True)  # plain torch, strictest mode
    assert list(loaded["state_dict"]) == ["weight", "bias"]  # "module." stripped
    assert torch.equal(loaded["state_dict"]["weight"], model.weight)
    momentum = loaded["optimizer"]["state"][0]["momentum_buffer"]
    assert torch.equal(momentum, optimizer.state[model.weight]["momentum_buffer"])
    best = load_checkpoint(str(tmp_path / "prompt_learner" / "model-best.pth.tar"))
    assert best["epoch"] == 7

    # a named file (e.g. model-best) does not move the pointer to the latest epoch
    save_checkpoint(_state(model, 8), str(tmp_path / "prompt_learner"), model_name="extra.pth")
    assert (tmp_path / "prompt_learner" / "checkpoint").read_text() == "model.pth.tar-7\n"


def test_save_checkpoint_refuses_non_plain_values(tmp_path):
    state = _state(nn.Linear(2, 2), 1)
    state["val_result"] = np.float64(71.3)
    with pytest.raises(TypeError, match=r"state\['val_result'\] is a numpy.float64"):
        save_checkpoint(state, str(tmp_path))
    assert os.listdir(tmp_path) == []


def test_crash_while_saving_keeps_previous_file(tmp_path, monkeypatch):
    model = nn.Linear(2, 2)
    path = save_checkpoint(_state(model, 1), str(tmp_path), model_name="model.pth.tar-1")
    before = open(path, "rb").read()

    def crashing_save(obj, f):
        f.write(b"PK\x03\x04 half a file")
        raise KeyboardInterrupt("killed while writing")

    monkeypatch.setattr(torch, "save", crashing_save)
    with torch.no_grad():
        model.weight.add_(1.0)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(_state(model, 1), str(tmp_path), model_name="model.pth.tar-1")
    assert open(path, "rb").read() == before
    assert sorted(os.listdir(tmp_path)) == ["model.pth.tar-1"]  # no temporary file left


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_corrupt_checkpoint_is_reported_with_path_and_remedy(tmp_path, damage):
    path = save_checkpoint(_state(nn.Linear(16, 16), 3), str(tmp_path))
    data = open(path, "rb").read()
    damaged = {"truncate": data[: len(data) // 2], "garbage": bytes(range(256)) * 2, "empty": b""}
    with open(path, "wb") as f:
        f.write(damaged[damage])
    with pytest.raises(RuntimeError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert path in message
    assert "truncated or corrupt" in message and "Delete it" in message
    with pytest.raises(FileNotFoundError, match="not found"):
        load_checkpoint(str(tmp_path / "model.pth.tar-99"))


def test_checkpoint_of_another_fork_loads_weights_without_running_code(tmp_path):
    """Dassl forks pickle the warm-up scheduler's successor (with its optimizer) and may store
    NumPy scalars; such files fail torch.load(weights_only=True)."""
    fork = types.ModuleType("some_fork_scheduler")

    class ForkWarmup(LRScheduler):
        def __init__(self, optimizer, successor):
            self.successor = successor
            super().__init__(optimizer)

        def get_lr(self):
            return [1e-5 for _ in self.base_lrs]

    ForkWarmup.__module__ = fork.__name__
    fork.ForkWarmup = ForkWarmup
    sys.modules[fork.__name__] = fork
    try:
        model = nn.Linear(3, 2)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        model(torch.ones(2, 3)).sum().backward()
        optimizer.step()
        scheduler = ForkWarmup(optimizer, CosineAnnealingLR(optimizer, 10.0))
        state = {
            "state_dict": model.state_dict(),
            "epoch": 50,
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "val_result": np.float64(71.25),
        }
        path = str(tmp_path / "model.pth.tar-50")
        torch.save(state, path)
    finally:
        del sys.modules[fork.__name__]
    with pytest.raises(Exception, match="Weights only load failed"):
        torch.load(path, weights_only=True)

    with pytest.warns(UserWarning, match="CosineAnnealingLR.*inert placeholders"):
        checkpoint = load_checkpoint(path)
    assert torch.equal(checkpoint["state_dict"]["weight"], model.weight)
    assert checkpoint["epoch"] == 50
    assert checkpoint["val_result"] == 71.25 and type(checkpoint["val_result"]) is float
    successor = checkpoint["scheduler"]["successor"]
    assert type(successor).__name__ == "CosineAnnealingLR"
    assert not isinstance(successor, LRScheduler)  # a placeholder, not the real class


def test_resume_from_checkpoint_restores_everything(tmp_path):
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    model(torch.ones(2, 3)).sum().backward()
    optimizer.step()
    scheduler.step()
    rng_state = get_rng_state()
    expected_draw = torch.rand(3)
    save_checkpoint(
        {
            "state_dict": model.state_dict(),
            "epoch": 4,
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "val_result": None,
            "rng_state": rng_state,
        },
        str(tmp_path),
    )

    model2 = nn.Linear(3, 2)
    optimizer2 = torch.optim.Adam(model2.parameters(), lr=0.01)
    scheduler2 = torch.optim.lr_scheduler.StepLR(optimizer2, step_size=1, gamma=0.5)
    torch.rand(10)  # move the generator on
    assert resume_from_checkpoint(str(tmp_path), model2, optimizer2, scheduler2) == 4
    assert torch.equal(model2.weight, model.weight)
    assert optimizer2.param_groups[0]["lr"] == 0.005
    assert torch.equal(
        optimizer2.state[model2.weight]["exp_avg"], optimizer.state[model.weight]["exp_avg"]
    )
    assert scheduler2.last_epoch == 1
    assert torch.equal(torch.rand(3), expected_draw)
    with pytest.raises(FileNotFoundError, match='No "checkpoint" file'):
        resume_from_checkpoint(str(tmp_path / "elsewhere"), model2)


def test_rng_state_round_trip_through_weights_only_file(tmp_path):
    random.seed(3)
    np.random.seed(3)
    torch.manual_seed(3)
    np.random.randn()  # leaves a cached Gaussian in NumPy's state
    state = get_rng_state()
    expected = (random.random(), np.random.randn(), np.random.rand(), torch.rand(2))
    torch.save(state, tmp_path / "rng.pt")
    random.seed(99)
    np.random.seed(99)
    torch.manual_seed(99)
    set_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True))
    got = (random.random(), np.random.randn(), np.random.rand(), torch.rand(2))
    assert got[:3] == expected[:3]
    assert torch.equal(got[3], expected[3])


def test_load_pretrained_weights_matches_names_and_shapes(tmp_path, capsys):
    source = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 5))
    state = {"module." + k: v for k, v in source.state_dict().items()}
    torch.save({"state_dict": state}, tmp_path / "weights.pth")
    target = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))  # second layer: other shape
    before = target[1].weight.detach().clone()
    load_pretrained_weights(target, str(tmp_path / "weights.pth"))
    assert torch.equal(target[0].weight, source[0].weight)
    assert torch.equal(target[1].weight, before)
    assert "Layers discarded due to unmatched keys or size: ['1.weight', '1.bias']" in (
        capsys.readouterr().out
    )


def test_write_json_is_atomic_and_round_trips(tmp_path, monkeypatch):
    path = str(tmp_path / "sub" / "split.json")
    write_json({"train": [["a.jpg", 0, "cat"]], "val": []}, path)
    assert read_json(path) == {"train": [["a.jpg", 0, "cat"]], "val": []}
    assert open(path).read().startswith('{\n    "train": [')

    def killed_before_rename(fd):  # the new content is written, the rename never happens
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", killed_before_rename)
    with pytest.raises(KeyboardInterrupt):
        write_json({"train": []}, path)
    assert read_json(path)["train"] == [["a.jpg", 0, "cat"]]
    assert os.listdir(tmp_path / "sub") == ["split.json"]
