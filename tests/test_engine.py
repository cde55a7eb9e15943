"""Engine tests: schedulers, optimizers, registries, evaluator, metrics and a tiny TrainerX that
trains, logs, checkpoints and resumes exactly after being killed."""

import math
import os
import re
import sys

import pytest
import torch
from PIL import Image
from torch import nn

from dassl.config import get_cfg_default
from dassl.data.datasets import DATASET_REGISTRY, DatasetBase, Datum
from dassl.engine import TRAINER_REGISTRY, TrainerX, build_trainer
from dassl.evaluation import build_evaluator
from dassl.metrics import compute_accuracy
from dassl.optim import build_lr_scheduler, build_optimizer
from dassl.utils import Logger, Registry, load_checkpoint, set_random_seed, setup_logger

torch.set_num_threads(1)

PROGRESS_LINE = re.compile(
    r"^epoch \[(\d+)/(\d+)\] batch \[(\d+)/(\d+)\] time \d+\.\d{3} \(\d+\.\d{3}\) "
    r"data \d+\.\d{3} \(\d+\.\d{3}\) loss \d+\.\d{4} \(\d+\.\d{4}\) "
    r"acc \d+\.\d{4} \(\d+\.\d{4}\) lr (\d\.\d{4}e[+-]\d{2}) eta \d+:\d{2}:\d{2}$"
)


@pytest.fixture
def restore_stdout():
    """Undo ``setup_logger``'s replacement of ``sys.stdout`` after a test."""
    saved = sys.stdout
    yield
    if isinstance(sys.stdout, Logger):
        sys.stdout.close()
    sys.stdout = saved


def test_setup_logger_tees_to_one_file_at_a_time(tmp_path, restore_stdout):
    setup_logger(str(tmp_path / "first"))
    print("to the first log")
    setup_logger(str(tmp_path / "second" / "custom.txt"))
    print("to the second log")
    assert sys.stdout.encoding  # stream attributes come from the console
    sys.stdout.flush()
    assert (tmp_path / "first" / "log.txt").read_text() == "to the first log\n"
    assert (tmp_path / "second" / "custom.txt").read_text() == "to the second log\n"


# ---------------------------------------------------------------------------------------------
# Learning-rate schedulers and optimizers
# ---------------------------------------------------------------------------------------------


def _epoch_lrs(optim_cfg, num_epochs: int) -> list[float]:
    """LR used in each epoch when the scheduler is stepped once per epoch."""
    optimizer = build_optimizer([nn.Parameter(torch.zeros(2))], optim_cfg)
    scheduler = build_lr_scheduler(optimizer, optim_cfg)
    lrs = []
    for _ in range(num_epochs):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


def _sgd_cosine_cfg():
    cfg = get_cfg_default()
    cfg.OPTIM.NAME = "sgd"
    cfg.OPTIM.LR = 0.002
    cfg.OPTIM.LR_SCHEDULER = "cosine"
    cfg.OPTIM.MAX_EPOCH = 50
    cfg.OPTIM.WARMUP_EPOCH = 1
    cfg.OPTIM.WARMUP_TYPE = "constant"
    cfg.OPTIM.WARMUP_CONS_LR = 1e-5
    return cfg


def test_golden_lr_sequence_constant_warmup_cosine():
    lrs = _epoch_lrs(_sgd_cosine_cfg().OPTIM, 50)
    golden = [1e-5, 2e-3, 1.998027e-3, 1.992115e-3, 1.982287e-3]
    assert lrs[:5] == pytest.approx(golden, rel=1e-6, abs=0)
    # epoch e >= 1 follows the cosine restarted after warm-up: 0.002 * (1 + cos(pi (e-1) / 50)) / 2
    for e in range(1, 50):
        assert lrs[e] == pytest.approx(0.001 * (1 + math.cos(math.pi * (e - 1) / 50)), rel=1e-9)


def test_linear_warmup_then_cosine():
    cfg = get_cfg_default()
    cfg.OPTIM.NAME = "sgd"
    cfg.OPTIM.LR = 0.01
    cfg.OPTIM.LR_SCHEDULER = "cosine"
    cfg.OPTIM.MAX_EPOCH = 10
    cfg.OPTIM.WARMUP_EPOCH = 3
    cfg.OPTIM.WARMUP_TYPE = "linear"
    cfg.OPTIM.WARMUP_MIN_LR = 1e-5
    lrs = _epoch_lrs(cfg.OPTIM, 6)
    cos1 = 0.005 * (1 + math.cos(math.pi / 10))
    cos2 = 0.005 * (1 + math.cos(2 * math.pi / 10))
    assert lrs == pytest.approx([1e-5, 0.01 / 3, 0.02 / 3, 0.01, cos1, cos2], rel=1e-9)


def test_single_step_multi_step_and_constant_schedulers():
    cfg = get_cfg_default()
    cfg.OPTIM.NAME = "sgd"
    cfg.OPTIM.LR = 1.0
    cfg.OPTIM.GAMMA = 0.5
    cfg.OPTIM.LR_SCHEDULER = "single_step"
    cfg.OPTIM.STEPSIZE = (2,)
    assert _epoch_lrs(cfg.OPTIM, 5) == pytest.approx([1, 1, 0.5, 0.5, 0.25])
    cfg.OPTIM.LR_SCHEDULER = "multi_step"
    cfg.OPTIM.STEPSIZE = (1, 3)
    assert _epoch_lrs(cfg.OPTIM, 5) == pytest.approx([1, 0.5, 0.5, 0.25, 0.25])
    cfg.OPTIM.LR_SCHEDULER = "constant"
    cfg.OPTIM.WARMUP_EPOCH = 2
    cfg.OPTIM.WARMUP_TYPE = "constant"
    cfg.OPTIM.WARMUP_CONS_LR = 0.1
    assert _epoch_lrs(cfg.OPTIM, 4) == pytest.approx([0.1, 0.1, 1.0, 1.0])


def test_warmup_scheduler_state_dict_is_plain_and_resumes(tmp_path):
    cfg = _sgd_cosine_cfg()
    optimizer = build_optimizer([nn.Parameter(torch.zeros(2))], cfg.OPTIM)
    scheduler = build_lr_scheduler(optimizer, cfg.OPTIM)
    for _ in range(3):
        optimizer.step()
        scheduler.step()
    path = tmp_path / "sched.pt"
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, path)
    state = torch.load(path, weights_only=True)  # no pickled scheduler objects

    optimizer2 = build_optimizer([nn.Parameter(torch.zeros(2))], cfg.OPTIM)
    scheduler2 = build_lr_scheduler(optimizer2, cfg.OPTIM)
    optimizer2.load_state_dict(state["optimizer"])
    scheduler2.load_state_dict(state["scheduler"])
    for _ in range(4):
        optimizer.step()
        scheduler.step()
        optimizer2.step()
        scheduler2.step()
        assert optimizer2.param_groups[0]["lr"] == optimizer.param_groups[0]["lr"]
    # epoch 8 (index 7) of the golden schedule
    expected = 0.001 * (1 + math.cos(math.pi * 6 / 50))
    assert optimizer2.param_groups[0]["lr"] == pytest.approx(expected, rel=1e-9)


def test_build_optimizer_settings_and_inputs():
    cfg = get_cfg_default()
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    cfg.OPTIM.NAME = "adam"
    cfg.OPTIM.EPS = 1e-3
    cfg.OPTIM.ADAM_BETA1 = 0.8
    cfg.OPTIM.ADAM_BETA2 = 0.95
    adam = build_optimizer(model, cfg.OPTIM)
    assert isinstance(adam, torch.optim.Adam)
    group = adam.param_groups[0]
    assert (group["eps"], group["betas"], group["lr"], group["weight_decay"]) == (
        1e-3,
        (0.8, 0.95),
        0.0003,
        5e-4,
    )
    assert len(group["params"]) == 4

    cfg.OPTIM.NAME = "sgd"
    groups = [{"params": model[0].parameters(), "lr": 0.5}, {"params": model[1].parameters()}]
    sgd = build_optimizer(groups, cfg.OPTIM)
    assert [g["lr"] for g in sgd.param_groups] == [0.5, 0.0003]
    assert sgd.param_groups[0]["momentum"] == 0.9

    cfg.OPTIM.STAGED_LR = True
    cfg.OPTIM.NEW_LAYERS = ("1",)
    staged = build_optimizer(model, cfg.OPTIM)
    assert [g["lr"] for g in staged.param_groups] == pytest.approx([0.00003, 0.0003])
    assert staged.param_groups[1]["params"][0] is model[1].weight

    cfg.OPTIM.STAGED_LR = False
    cfg.OPTIM.NAME = "adamw"
    assert isinstance(build_optimizer(model, cfg.OPTIM), torch.optim.AdamW)
    cfg.OPTIM.NAME = "rmsprop"
    assert build_optimizer(model, cfg.OPTIM).param_groups[0]["eps"] == 1e-3
    cfg.OPTIM.NAME = "adan"
    with pytest.raises(ValueError, match='did you mean "adam"'):
        build_optimizer(model, cfg.OPTIM)


# ---------------------------------------------------------------------------------------------
# Registries, metrics, evaluator
# ---------------------------------------------------------------------------------------------


def test_registry_duplicates_and_suggestions():
    registry = Registry("THING")

    @registry.register()
    class PromptLearner:
        pass

    assert registry.get("PromptLearner") is PromptLearner
    assert registry.registered_names() == ["PromptLearner"]
    with pytest.raises(KeyError, match='already registered in the "THING" registry'):
        registry.register(PromptLearner)

    class Replacement:
        pass

    Replacement.__name__ = "PromptLearner"
    registry.register(Replacement, force=True)
    assert registry.get("PromptLearner") is Replacement
    with pytest.raises(KeyError, match='Did you mean "PromptLearner"'):
        registry.get("PromptLerner")


def test_build_trainer_unknown_name_suggests():
    cfg = get_cfg_default()
    cfg.TRAINER.NAME = "EngineTinyLinaer"
    with pytest.raises(ValueError, match=r"do you mean \[EngineTinyLinear\]"):
        build_trainer(cfg)


def test_compute_accuracy_topk():
    output = torch.tensor([[0.1, 0.9, 0.0], [0.8, 0.15, 0.05], [0.2, 0.3, 0.5], [0.3, 0.4, 0.3]])
    target = torch.tensor([1, 1, 0, 2])
    top1, top2 = compute_accuracy(output, target, topk=(1, 2))
    # top-1 correct: sample 0 only; top-2 correct: samples 0, 1 (0.15 2nd), 3 (tie 0.3: index 0
    # or 2 -> topk keeps the first index, 0), so 2 of 4
    assert top1.tolist() == [25.0]
    assert top2.tolist() == [50.0]


def _evaluator_cfg(per_class: bool = False):
    cfg = get_cfg_default()
    cfg.VERBOSE = False
    cfg.TEST.PER_CLASS_RESULT = per_class
    return cfg


def test_classification_evaluator_hand_computed(capsys):
    y_true = torch.tensor([0, 0, 1, 1, 2, 2, 2, 1])
    y_pred = torch.tensor([0, 1, 1, 1, 2, 0, 3, 1])  # label 3 is never a true label
    logits = nn.functional.one_hot(y_pred, 4).float()
    evaluator = build_evaluator(_evaluator_cfg(per_class=True), lab2cname={0: "a", 1: "b", 2: "c"})
    evaluator.process(logits[:5], y_true[:5])
    evaluator.process(logits[5:], y_true[5:])
    results = evaluator.evaluate()
    # F1 = 2TP / (2TP + FP + FN): class 0: TP 1, FP 1, FN 1 -> 1/2; class 1: TP 3, FP 1, FN 0 ->
    # 6/7; class 2: TP 1, FP 0, FN 2 -> 1/2. Macro over the true labels {0, 1, 2}.
    macro_f1 = 100 * (0.5 + 6 / 7 + 0.5) / 3
    assert list(results) == ["accuracy", "error_rate", "macro_f1", "perclass_accuracy"]
    assert results["accuracy"] == pytest.approx(500 / 8)
    assert results["error_rate"] == pytest.approx(300 / 8)
    assert results["macro_f1"] == pytest.approx(macro_f1)
    assert results["perclass_accuracy"] == pytest.approx(100 * (1 / 2 + 1 + 1 / 3) / 3)
    out = capsys.readouterr().out.splitlines()
    assert out[:6] == [
        "=> result",
        "* total: 8",
        "* correct: 5",
        "* accuracy: 62.5%",
        "* error: 37.5%",
        "* macro_f1: 61.9%",
    ]
    assert out[6] == "=> per-class result"
    assert out[7] == "* class: 0 (a)\ttotal: 2\tcorrect: 1\tacc: 50.0%"
    assert out[-1] == "* average: 61.1%"

    evaluator.reset()
    evaluator.process(torch.eye(3), torch.tensor([0, 1, 2]))
    assert evaluator.evaluate()["macro_f1"] == 100.0


def test_macro_f1_matches_precision_recall_definition():
    gen = torch.Generator().manual_seed(0)
    y_true = torch.randint(0, 5, (200,), generator=gen)
    y_pred = torch.where(torch.rand(200, generator=gen) < 0.6, y_true, (y_true + 1) % 6)
    evaluator = build_evaluator(_evaluator_cfg())
    evaluator.process(nn.functional.one_hot(y_pred, 6).float(), y_true)
    f1s = []
    for c in range(5):  # independent: F1 = 2 P R / (P + R)
        tp = ((y_pred == c) & (y_true == c)).sum().item()
        precision = tp / max((y_pred == c).sum().item(), 1)
        recall = tp / (y_true == c).sum().item()
        f1s.append(0.0 if tp == 0 else 2 * precision * recall / (precision + recall))
    assert evaluator.evaluate()["macro_f1"] == pytest.approx(100 * sum(f1s) / 5)


# ---------------------------------------------------------------------------------------------
# A tiny TrainerX on a tiny synthetic dataset
# ---------------------------------------------------------------------------------------------


@DATASET_REGISTRY.register()
class EngineTinyData(DatasetBase):
    """3 classes of 8x8 images whose brightness depends on the class; 18 train, 6 val/test."""

    def __init__(self, cfg):
        items = [
            Datum(os.path.join(cfg.DATASET.ROOT, f"{i}.png"), i % 3, 0, f"class{i % 3}")
            for i in range(24)
        ]
        super().__init__(train_x=items[:18], val=items[18:], test=items[18:])


@TRAINER_REGISTRY.register()
class EngineTinyLinear(TrainerX):
    """Dropout + linear classifier; ``crash_after_epoch`` simulates a kill."""

    crash_after_epoch: int | None = None  # 1-based epoch after which to raise
    crash_before_saving: bool = False

    def build_model(self):
        self.model = nn.Sequential(nn.Flatten(), nn.Dropout(0.2), nn.Linear(3 * 8 * 8, 3))
        self.model.to(self.device)
        self.optim = build_optimizer(self.model, self.cfg.OPTIM)
        self.sched = build_lr_scheduler(self.optim, self.cfg.OPTIM)
        self.register_model("model", self.model, self.optim, self.sched)

    def forward_backward(self, batch):
        image, label, _ = self.parse_batch_train(batch)
        output = self.model(image)
        loss = nn.functional.cross_entropy(output, label)
        self.model_backward_and_update(loss)
        if self.batch_idx + 1 == self.num_batches:
            self.update_lr()
        return {"loss": loss.item(), "acc": compute_accuracy(output, label)[0].item()}

    def after_epoch(self):
        crash = self.crash_after_epoch == self.epoch + 1
        if crash and self.crash_before_saving:
            raise KeyboardInterrupt("simulated kill before the checkpoint")
        super().after_epoch()
        if crash:
            raise KeyboardInterrupt("simulated kill after the checkpoint")


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_images")
    gen = torch.Generator().manual_seed(0)
    for i in range(24):
        pixels = torch.rand(8, 8, 3, generator=gen) * 120 + (i % 3) * 60
        Image.fromarray(pixels.byte().numpy()).save(root / f"{i}.png")
    return str(root)


def _tiny_cfg(root: str, output_dir: str, max_epoch: int = 4):
    cfg = get_cfg_default()
    cfg.DATASET.NAME = "EngineTinyData"
    cfg.DATASET.ROOT = root
    cfg.TRAINER.NAME = "EngineTinyLinear"
    cfg.OUTPUT_DIR = output_dir
    cfg.SEED = 1
    cfg.USE_CUDA = False
    cfg.INPUT.SIZE = (8, 8)
    cfg.INPUT.TRANSFORMS = ("random_resized_crop", "random_flip", "normalize")
    cfg.INPUT.RRCROP_SCALE = (0.5, 1.0)
    cfg.DATALOADER.NUM_WORKERS = 0
    cfg.DATALOADER.TRAIN_X.BATCH_SIZE = 4
    cfg.DATALOADER.TRAIN_X.DROP_LAST = False
    cfg.DATALOADER.TEST.BATCH_SIZE = 4
    cfg.OPTIM.NAME = "sgd"
    cfg.OPTIM.LR = 0.05
    cfg.OPTIM.MAX_EPOCH = max_epoch
    cfg.OPTIM.LR_SCHEDULER = "cosine"
    cfg.OPTIM.WARMUP_EPOCH = 1
    cfg.OPTIM.WARMUP_TYPE = "constant"
    cfg.OPTIM.WARMUP_CONS_LR = 0.01
    cfg.TRAIN.PRINT_FREQ = 2
    return cfg


def _run(cfg):
    """What train.py does: log, seed, build, train; returns the trainer."""
    setup_logger(cfg.OUTPUT_DIR)
    set_random_seed(cfg.SEED)
    trainer = build_trainer(cfg)
    trainer.train()
    return trainer


def test_tiny_trainer_logs_checkpoints_and_tests(tiny_root, tmp_path, restore_stdout):
    cfg = _tiny_cfg(tiny_root, str(tmp_path / "run"), max_epoch=4)
    trainer = _run(cfg)
    sys.stdout.flush()
    log = (tmp_path / "run" / "log.txt").read_text().splitlines()

    progress = [line for line in log if line.startswith("epoch [")]
    assert all(PROGRESS_LINE.match(line) for line in progress), progress
    # 18 images, batch 4, drop_last False -> 5 batches; printed at batches 2, 4 (PRINT_FREQ 2)
    assert [PROGRESS_LINE.match(line).group(1, 3, 4) for line in progress[:2]] == [
        ("1", "2", "5"),
        ("1", "4", "5"),
    ]
    assert len(progress) == 8
    # warm-up epoch at 1e-2, then cosine over 4 epochs from 5e-2
    lr = [PROGRESS_LINE.match(line).group(5) for line in progress]
    assert lr[0] == "1.0000e-02" and lr[2] == "5.0000e-02"
    assert lr[4] == f"{0.025 * (1 + math.cos(math.pi / 4)):.4e}"

    assert "Finish training" in log
    assert "Deploy the last-epoch model" in log
    block = log[log.index("=> result") : log.index("=> result") + 6]
    assert block[1] == "* total: 6"
    correct = int(block[2].split(": ")[1])
    assert block[3] == f"* accuracy: {100 * correct / 6:.1f}%"
    assert trainer.test() == pytest.approx(100 * correct / 6)
    assert correct >= 4  # the classes differ in brightness: the model learns them

    model_dir = tmp_path / "run" / "model"
    assert sorted(os.listdir(model_dir)) == ["checkpoint", "model.pth.tar-4"]
    assert (model_dir / "checkpoint").read_text() == "model.pth.tar-4\n"
    checkpoint = torch.load(model_dir / "model.pth.tar-4", weights_only=True)
    assert checkpoint["epoch"] == 4
    assert checkpoint["val_result"] is None
    assert torch.equal(checkpoint["state_dict"]["2.weight"], trainer.model[2].weight)
    # 4 steps: the warm-up scheduler counts 1, then hands 3 steps to the cosine successor
    assert checkpoint["scheduler"]["last_epoch"] == 1
    assert checkpoint["scheduler"]["successor"]["last_epoch"] == 3


def test_checkpoint_freq_keeps_multiples_and_second_run_appends_log(
    tiny_root, tmp_path, restore_stdout
):
    cfg = _tiny_cfg(tiny_root, str(tmp_path / "run"), max_epoch=3)
    cfg.TRAIN.CHECKPOINT_FREQ = 2
    _run(cfg)
    model_dir = tmp_path / "run" / "model"
    assert sorted(os.listdir(model_dir)) == ["checkpoint", "model.pth.tar-2", "model.pth.tar-3"]

    _run(cfg)  # same command again: everything is done, it resumes at the end and tests
    sys.stdout.flush()
    log = (tmp_path / "run" / "log.txt").read_text()
    assert log.count("Finish training") == 2
    assert re.search(r"\n===== \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}: new run, appended", log)
    second = log.split("===== ")[1]
    assert "resume training from epoch 4" in second
    assert "epoch [" not in second


def test_resume_after_kill_is_exact(tiny_root, tmp_path, monkeypatch, restore_stdout):
    reference = _run(_tiny_cfg(tiny_root, str(tmp_path / "reference")))
    ref_acc = reference.test()
    ref_params = {k: v.clone() for k, v in reference.model.state_dict().items()}

    for crash_epoch, before_saving in [(2, False), (3, True)]:
        output_dir = str(tmp_path / f"killed_{crash_epoch}")
        cfg = _tiny_cfg(tiny_root, output_dir)
        monkeypatch.setattr(EngineTinyLinear, "crash_after_epoch", crash_epoch)
        monkeypatch.setattr(EngineTinyLinear, "crash_before_saving", before_saving)
        with pytest.raises(KeyboardInterrupt):
            _run(cfg)
        last_saved = crash_epoch - 1 if before_saving else crash_epoch
        assert sorted(os.listdir(os.path.join(output_dir, "model"))) == [
            "checkpoint",
            f"model.pth.tar-{last_saved}",
        ]
        monkeypatch.setattr(EngineTinyLinear, "crash_after_epoch", None)

        resumed = _run(cfg)
        assert resumed.start_epoch == last_saved
        assert resumed.test() == ref_acc
        for name, value in resumed.model.state_dict().items():
            assert torch.equal(value, ref_params[name]), name

    # the restored generator states matter: resuming without them changes the parameters
    output_dir = str(tmp_path / "no_rng")
    cfg = _tiny_cfg(tiny_root, output_dir)
    monkeypatch.setattr(EngineTinyLinear, "crash_after_epoch", 2)
    with pytest.raises(KeyboardInterrupt):
        _run(cfg)
    monkeypatch.setattr(EngineTinyLinear, "crash_after_epoch", None)
    monkeypatch.setattr("dassl.engine.trainer.set_rng_state", lambda state: None)
    unrestored = _run(cfg)
    assert not torch.equal(unrestored.model[2].weight, ref_params["2.weight"])


def test_best_val_model_is_saved_deployed_and_resumed(tiny_root, tmp_path, restore_stdout):
    cfg = _tiny_cfg(tiny_root, str(tmp_path / "run"), max_epoch=3)
    cfg.TEST.FINAL_MODEL = "best_val"
    trainer = _run(cfg)
    sys.stdout.flush()
    log = (tmp_path / "run" / "log.txt").read_text()
    assert log.count("Evaluate on the *val* set") == 3
    assert "Deploy the model with the best val performance" in log
    best = load_checkpoint(str(tmp_path / "run" / "model" / "model-best.pth.tar"))
    assert best["val_result"] == trainer.best_result
    last = load_checkpoint(str(tmp_path / "run" / "model" / "model.pth.tar-3"))
    assert last["best_result"] == trainer.best_result
    # the deployed (tested) weights are the best-val ones
    assert torch.equal(trainer.model[2].weight, best["state_dict"]["2.weight"])

    resumed = build_trainer(cfg)
    resumed.before_train()
    assert resumed.best_result == trainer.best_result


def test_explicit_resume_folder_without_checkpoint_fails(tiny_root, tmp_path, restore_stdout):
    cfg = _tiny_cfg(tiny_root, str(tmp_path / "run"))
    cfg.RESUME = str(tmp_path / "nothing_here")
    with pytest.raises(FileNotFoundError, match="nothing_here"):
        _run(cfg)


def test_non_finite_loss_fails_fast_with_causes(tiny_root, tmp_path, restore_stdout):
    cfg = _tiny_cfg(tiny_root, str(tmp_path / "run"))
    cfg.VERBOSE = False
    trainer = build_trainer(cfg)
    before = trainer.model[2].weight.detach().clone()
    loss = trainer.model(torch.zeros(1, 3, 8, 8)).sum() * float("nan")
    with pytest.raises(FloatingPointError, match=r"OPTIM\.EPS 1e-3.*amp or fp32"):
        trainer.model_backward_and_update(loss)
    assert torch.equal(trainer.model[2].weight, before)  # no step was taken


def test_progress_line_regex_accepts_the_documented_example():
    example = (
        "epoch [3/50] batch [5/6] time 0.634 (0.823) data 0.000 (0.190) loss 2.7598 (2.6148) "
        "acc 40.6250 (34.3750) lr 1.9980e-03 eta 0:03:52"
    )
    assert PROGRESS_LINE.match(example).group(5) == "1.9980e-03"
