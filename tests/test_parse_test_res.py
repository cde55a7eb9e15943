"""Tests of parse_test_res.py on hand-written logs.

Every expected table value is computed here from the numbers written into the fake logs, with the
standard library (``statistics.fmean`` / ``pstdev``) and plain arithmetic, never with the parser's
own helpers.
"""

from __future__ import annotations

import csv
import importlib.util
import math
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("parse_test_res", REPO / "parse_test_res.py")
ptr = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("parse_test_res", ptr)  # dataclasses look their module up there
_spec.loader.exec_module(ptr)

# ----------------------------------------------------------------------------------------------
# Fake logs, shaped like our engine's output
# ----------------------------------------------------------------------------------------------

PROGRESS = (
    "epoch [{e}/2] batch [1/1] time 0.634 (0.823) data 0.000 (0.190) loss 2.7598 (2.6148) "
    "acc 40.6250 (34.3750) lr 1.9980e-03 eta 0:00:{e}2"
)


def result_block(acc: float) -> str:
    return (
        "=> result\n* total: 4,200\n* correct: 2,274\n"
        f"* accuracy: {acc}%\n* error: {100 - acc:.1f}%\n* macro_f1: {acc - 1:.1f}%\n"
    )


def train_log(acc: float, end: str = "Finish training") -> str:
    """A training run: progress, a val result before the end line (a decoy), then the test."""
    return (
        "Setting fixed seed: 1\n" + PROGRESS.format(e=1) + "\n"
        "Evaluate on the *val* set\n" + result_block(12.5) + PROGRESS.format(e=2) + "\n"
        f"{end}\nDeploy the last-epoch model\nEvaluate on the *test* set\n"
        + result_block(acc)
        + "Elapsed: 0:00:05\n"
    )


def killed_train_log() -> str:
    """A training run killed after a val evaluation: it has a result block but no result."""
    return PROGRESS.format(e=1) + "\nEvaluate on the *val* set\n" + result_block(33.3)


def eval_log(acc: float) -> str:
    """An eval-only run (--eval-only, zero-shot CLIP): no progress, no end-of-training line."""
    return (
        "Loading weights to prompt_learner from output/x/model.pth.tar-2 (epoch = 2)\n"
        "Evaluate on the *test* set\n" + result_block(acc)
    )


def appended(*runs: str) -> str:
    """One log.txt holding several runs, as dassl.utils.setup_logger appends a later run."""
    separator = "\n===== 2026-01-0{}: new run, appended to this log =====\n"
    return "".join((separator.format(i) if i else "") + run for i, run in enumerate(runs))


def write(folder: Path, text: str, name: str = "log.txt") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)


def run_main(capsys, *argv: str) -> tuple[int, str, str]:
    rc = ptr.main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


def stat(values: list[float], ci95: bool = False) -> tuple[float, float]:
    """Independent mean and spread: CoOp's np.std is the population std."""
    std = statistics.pstdev(values)
    return statistics.fmean(values), (1.96 * std / math.sqrt(len(values)) if ci95 else std)


def close(text: str, value: float) -> bool:
    return abs(float(text) - value) <= 0.005 + 1e-9


# ----------------------------------------------------------------------------------------------
# Reading one log
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("end", ["Finish training", "Finished training"])
def test_both_end_of_training_spellings_take_the_test_after_the_end(end):
    assert ptr.parse_log_text(train_log(67.3, end)) == (67.3, "")
    assert ptr.parse_log_text(train_log(67.3, end), mode="train") == (67.3, "")
    assert ptr.parse_log_text(train_log(67.3, end), keyword="error") == (pytest.approx(32.7), "")
    assert ptr.parse_log_text(train_log(67.3, end), keyword="total") == (4200.0, "")


def test_eval_only_log_gives_its_last_result_block():
    text = eval_log(40.0) + eval_log(58.8)
    assert ptr.parse_log_text(text) == (58.8, "")
    assert ptr.parse_log_text(text, mode="test") == (58.8, "")
    value, why = ptr.parse_log_text(text, mode="train")
    assert value is None and "add --test-log" in why


def test_logs_without_a_usable_result_say_why():
    value, why = ptr.parse_log_text(killed_train_log())
    assert value is None and "did not finish" in why
    value, why = ptr.parse_log_text(PROGRESS.format(e=1) + "\nFinish training\n")
    assert value is None and "no result block" in why and "after 'Finish training'" in why
    value, why = ptr.parse_log_text(eval_log(50.0), keyword="top5")
    assert value is None and "'* top5:'" in why


def test_newest_log_with_a_result_wins(tmp_path):
    run = tmp_path / "seed1"
    write(run, killed_train_log())
    write(run, train_log(71.2), "log.txt-2026-01-02-10-00-00")
    assert ptr.read_run(str(run))[:2] == (71.2, "")
    write(run, train_log(73.9), "log.txt-2026-01-03-09-00-00")
    value, _, path = ptr.read_run(str(run))
    assert value == 73.9 and path.endswith("log.txt-2026-01-03-09-00-00")


def test_runs_appended_to_one_log_are_read_newest_first(tmp_path):
    run = tmp_path / "seed1"
    write(run, appended(killed_train_log(), train_log(71.2)))  # killed, then resumed
    assert ptr.read_run(str(run))[:2] == (71.2, "")
    # a later run that was killed (its val block comes after the first run's end line) does not
    # hide the finished run's test result
    write(run, appended(train_log(68.4), killed_train_log()))
    assert ptr.read_run(str(run))[:2] == (68.4, "")
    write(run, appended(killed_train_log(), killed_train_log()))
    value, why, _ = ptr.read_run(str(run))
    assert value is None and why.startswith("training did not finish") and "newest run" in why


# ----------------------------------------------------------------------------------------------
# CoOp's mode: a folder of seed runs
# ----------------------------------------------------------------------------------------------


def test_folder_of_seeds_prints_coop_summary(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    accs = {1: 70.1, 2: 71.4, 3: 73.0}
    for seed, acc in accs.items():
        write(tmp_path / "exp" / f"seed{seed}", train_log(acc, "Finished training"))
    write(tmp_path / "exp" / "seed4", killed_train_log())
    rc, out, _ = run_main(capsys, "exp")
    assert rc == 0
    lines = out.splitlines()
    assert lines[0] == "Parsing files in exp"
    for seed, acc in accs.items():
        assert f"file: exp/seed{seed}/log.txt. accuracy: {acc:.2f}%. " in lines
    assert any(line.startswith("  exp/seed4: training did not finish") for line in lines)
    mean, std = stat(list(accs.values()))
    assert (mean, round(std, 2)) == (pytest.approx(71.5), 1.19)  # by hand: sqrt(4.22 / 3)
    assert lines[-4:] == ["===", "Summary of directory: exp", "* accuracy: 71.50% +- 1.19%", "==="]

    rc, out, _ = run_main(capsys, "exp", "--ci95")
    assert "* accuracy: 71.50% +- 1.34%" in out  # 1.96 * 1.1860 / sqrt(3)


def test_folder_of_eval_only_seeds_needs_test_log(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for seed, acc in {1: 60.5, 2: 62.0}.items():
        write(tmp_path / "new" / f"seed{seed}", eval_log(acc))
    rc, out, err = run_main(capsys, "new")
    assert rc == 1 and "add --test-log" in out and "Nothing found in new" in err
    rc, out, _ = run_main(capsys, "new", "--test-log")
    assert rc == 0 and "* accuracy: 61.25% +- 0.75%" in out


def test_multi_exp_averages_the_experiments(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exps = {"exp-1": [50.0, 52.0], "exp-2": [61.0, 64.0]}
    for name, accs in exps.items():
        for seed, acc in enumerate(accs, 1):
            write(tmp_path / "all" / name / f"seed{seed}", train_log(acc))
    rc, out, _ = run_main(capsys, "all", "--multi-exp")
    assert rc == 0
    assert "* accuracy: 51.00% +- 1.00%" in out and "* accuracy: 62.50% +- 1.50%" in out
    assert out.splitlines()[-2:] == ["Average performance", "* accuracy: 56.75%"]


def test_report_flags_on_a_folder_of_seeds_are_refused(tmp_path, capsys):
    write(tmp_path / "exp" / "seed1", train_log(50.0))
    rc, _, err = run_main(capsys, str(tmp_path / "exp"), "--format", "csv")
    assert rc == 1 and "--format applies to an output root" in err


# ----------------------------------------------------------------------------------------------
# Output-root mode: a fake output tree
# ----------------------------------------------------------------------------------------------

B2N_CFG = {"ZeroshotCLIP": "vit_b16", "CoOp": "vit_b16_ep50", "SEP": "vit_b32_ep50_ctxv1"}
B2N_DATASETS = ["imagenet", "dtd", "eurosat"]  # the papers' order
BASE = {
    ("ZeroshotCLIP", "imagenet"): {1: 72.4},
    ("ZeroshotCLIP", "dtd"): {1: 53.2},
    ("ZeroshotCLIP", "eurosat"): {1: 56.5},
    ("CoOp", "imagenet"): {1: 76.4, 2: 76.1, 3: 76.9},
    ("CoOp", "dtd"): {1: 80.2, 2: 79.5, 3: 81.9},
    ("CoOp", "eurosat"): {1: 90.1, 2: 91.4, 3: 89.7},
    ("SEP", "imagenet"): {1: 77.9, 2: 78.2, 3: 77.6},
    ("SEP", "dtd"): {1: 83.3, 2: 82.7, 3: 84.1},
    ("SEP", "eurosat"): {1: 95.3, 2: 94.8, 3: 96.0},
}
NEW = {
    ("ZeroshotCLIP", "imagenet"): {1: 68.1},
    ("ZeroshotCLIP", "dtd"): {1: 59.9},
    ("ZeroshotCLIP", "eurosat"): {1: 64.0},
    ("CoOp", "imagenet"): {1: 67.9, 2: 68.8, 3: 66.2},
    ("CoOp", "dtd"): {1: 44.3, 2: 47.0, 3: 45.6},
    ("CoOp", "eurosat"): {1: 55.1, 2: 61.7, 3: 58.2},
    ("SEP", "imagenet"): {1: 70.8, 2: 70.3, 3: 71.1},
    ("SEP", "dtd"): {1: 62.4, 2: 61.1},  # seed 3: base run without its new run
    ("SEP", "eurosat"): {1: 80.6, 2: 78.9, 3: 82.2},
}
XD_TARGETS = ["caltech101", "dtd", "eurosat"]
DG_TARGETS = ["imagenetv2", "imagenet_sketch"]
XD = {  # (trainer, dataset): {seed: acc}; "imagenet" is the source (xd/train)
    ("CoOp", "imagenet"): {1: 71.5, 2: 71.9},
    ("CoOp", "caltech101"): {1: 93.7, 2: 93.1},
    ("CoOp", "dtd"): {1: 41.9, 2: 42.8},
    ("CoOp", "eurosat"): {1: 46.4, 2: 44.9},
    ("CoOp", "imagenetv2"): {1: 64.5, 2: 64.1},
    ("CoOp", "imagenet_sketch"): {1: 47.9, 2: 48.3},
    ("SEP", "imagenet"): {1: 72.8, 2: 73.1},
    ("SEP", "caltech101"): {1: 94.2},  # seed 2 crashed before its result
    ("SEP", "dtd"): {1: 45.5, 2: 46.3},
    ("SEP", "eurosat"): {1: 50.2, 2: 48.6},
    ("SEP", "imagenetv2"): {1: 65.0, 2: 65.4},
    ("SEP", "imagenet_sketch"): {1: 49.1, 2: 49.6},
}
FEWSHOT = {  # (trainer, shots, dataset): {seed: acc}
    ("CoOp", 1, "dtd"): {1: 44.0, 2: 45.3},
    ("CoOp", 1, "eurosat"): {1: 50.6, 2: 54.1},
    ("CoOp", 4, "dtd"): {1: 53.9},  # seed 2 was killed during training
    ("CoOp", 4, "eurosat"): {1: 70.2, 2: 68.4},
    ("SEP", 1, "dtd"): {1: 49.7, 2: 50.5},
    ("SEP", 1, "eurosat"): {1: 61.3, 2: 63.8},  # seed 1: killed, then resumed in the same log
    ("SEP", 4, "dtd"): {1: 58.6, 2: 59.2},
    ("SEP", 4, "eurosat"): {1: 75.5, 2: 77.1},
}


def build_tree(root: Path) -> None:
    """output/ with base-to-new, cross-dataset and few-shot runs of the tables above."""
    end = {"CoOp": "Finished training", "SEP": "Finish training"}  # both spellings in one tree
    for trainer, dataset in BASE:
        cfg = (
            "vit_b128_ep10_ctxv1" if (trainer, dataset) == ("SEP", "imagenet") else B2N_CFG[trainer]
        )
        for split, table in (("train_base", BASE), ("test_new", NEW)):
            for seed, acc in table[(trainer, dataset)].items():
                folder = root / "base2new" / split / dataset / "shots_16" / trainer / cfg
                eval_only = split == "test_new" or trainer == "ZeroshotCLIP"
                log = eval_log(acc) if eval_only else train_log(acc, end[trainer])
                write(folder / f"seed{seed}", log)
    for (trainer, dataset), seeds in XD.items():
        split = "train" if dataset == "imagenet" else "test"
        folder = root / "xd" / split / dataset / "shots_16" / trainer / "vit_b16_ep3_xd"
        for seed, acc in seeds.items():
            write(folder / f"seed{seed}", train_log(acc) if split == "train" else eval_log(acc))
    write(root / "xd/test/caltech101/shots_16/SEP/vit_b16_ep3_xd/seed2", "Loading weights\n")
    for (trainer, shots, dataset), seeds in FEWSHOT.items():
        folder = root / "fewshot" / dataset / f"shots_{shots}" / trainer / "vit_b16_fs"
        for seed, acc in seeds.items():
            write(folder / f"seed{seed}", train_log(acc, end.get(trainer, "Finish training")))
    write(root / "fewshot/dtd/shots_4/CoOp/vit_b16_fs/seed2", killed_train_log())
    resumed = root / "fewshot/eurosat/shots_1/SEP/vit_b16_fs/seed1"
    write(resumed, appended(killed_train_log(), train_log(FEWSHOT[("SEP", 1, "eurosat")][1])))
    write(root / "old_experiment" / "seed1", train_log(10.0))


def md_tables(markdown: str) -> dict[str, list[list[str]]]:
    """Markdown sections (## title) -> table rows (header first), cells stripped."""
    tables, title = {}, None
    for line in markdown.splitlines():
        if line.startswith("## "):
            title = line[3:]
            tables[title] = []
        elif line.startswith("|") and not set(line) <= set("|-: "):
            tables[title].append([c.strip() for c in line.strip("|").split("|")])
    return tables


def csv_tables(text: str) -> dict[str, list[list[str]]]:
    """CSV blocks (title row, header, rows, note rows) -> rows (header first) without notes."""
    tables, block = {}, []
    for row in list(csv.reader(text.splitlines())) + [[]]:
        if row:
            block.append(row)
        elif block:
            tables[block[0][0]] = [r for r in block[1:] if not r[0].startswith("Note: ")]
            block = []
    return tables


def as_dict(rows: list[list[str]], key_columns: int = 1) -> dict:
    """{row key: {column name: cell}}."""
    header = rows[0]
    return {
        tuple(r[:key_columns]) if key_columns > 1 else r[0]: dict(zip(header, r)) for r in rows[1:]
    }


def check_md(cell: str, mean: float, spread: float | None, incomplete: bool) -> None:
    """A Markdown cell ``54.10 ± 0.30`` (``*`` when incomplete) against independent values."""
    assert cell.endswith("*") == incomplete, cell
    parts = cell.rstrip("*").split(" ± ")
    assert close(parts[0], mean), (cell, mean)
    if spread is None:
        assert len(parts) == 1, cell
    else:
        assert close(parts[1], spread), (cell, spread)


def check_csv(row: dict, column: str, mean: float, spread: float | None, seeds: str | None) -> None:
    assert close(row[column], mean), (column, row[column], mean)
    if spread is not None:
        assert close(row[f"{column} std"], spread), (column, row[f"{column} std"], spread)
        assert row[f"{column} seeds"] == seeds


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    build_tree(root / "output")
    return root


def report_text(tree: Path, capsys, monkeypatch, *flags: str) -> str:
    monkeypatch.chdir(tree)
    rc, out, err = run_main(capsys, "output/", *flags)
    assert rc == 0, err
    return out


def expected_base2new() -> dict:
    """{trainer: {dataset | "Average": (base, new, hm, base_spread, new_spread, incomplete)}}."""
    expected = {}
    for trainer in B2N_CFG:
        rows, complete = {}, []
        for dataset in B2N_DATASETS:
            base_vals = list(BASE[(trainer, dataset)].values())
            new_vals = list(NEW[(trainer, dataset)].values())
            (base, base_sd), (new, new_sd) = stat(base_vals), stat(new_vals)
            incomplete = len(new_vals) < len(base_vals)
            rows[dataset] = (base, new, 2 * base * new / (base + new), base_sd, new_sd, incomplete)
            if not incomplete:
                complete.append(dataset)
        base = sum(rows[d][0] for d in complete) / len(complete)
        new = sum(rows[d][1] for d in complete) / len(complete)
        partial = len(complete) < len(B2N_DATASETS)
        rows["Average"] = (base, new, 2 * base * new / (base + new), None, None, partial)
        expected[trainer] = rows
    return expected


NAMES = {
    "imagenet": "ImageNet",
    "dtd": "DTD",
    "eurosat": "EuroSAT",
    "caltech101": "Caltech101",
    "imagenetv2": "ImageNetV2",
    "imagenet_sketch": "ImageNet-Sketch",
    "Average": "Average",
}


def test_base2new_markdown_and_csv(tree, capsys, monkeypatch):
    expected = expected_base2new()
    # SEP has dtd incomplete: its average uses imagenet and eurosat only
    assert expected["SEP"]["Average"][0] == pytest.approx(
        (77.9 + 78.2 + 77.6 + 95.3 + 94.8 + 96) / 6
    )
    md = as_dict(
        md_tables(report_text(tree, capsys, monkeypatch, "--format", "markdown"))[
            "Base-to-new generalisation"
        ]
    )
    rows = as_dict(
        csv_tables(report_text(tree, capsys, monkeypatch, "--format", "csv"))[
            "Base-to-new generalisation"
        ]
    )
    assert list(md) == ["ImageNet", "DTD", "EuroSAT", "Average"] == list(rows)
    for trainer, by_dataset in expected.items():
        for dataset, (base, new, hm, base_sd, new_sd, incomplete) in by_dataset.items():
            cells = md[NAMES[dataset]]
            check_md(cells[f"{trainer} Base"], base, base_sd, dataset == "Average" and incomplete)
            check_md(cells[f"{trainer} New"], new, new_sd, incomplete)
            check_md(cells[f"{trainer} HM"], hm, None, incomplete)
            row = rows[NAMES[dataset]]
            n = len(BASE[(trainer, "dtd")])  # expected seeds: 1 for ZeroshotCLIP, else 3
            new_seeds = None if dataset == "Average" else f"{len(NEW[(trainer, dataset)])}/{n}"
            check_csv(row, f"{trainer} Base", base, base_sd, f"{n}/{n}")
            check_csv(row, f"{trainer} New", new, new_sd, new_seeds)
            check_csv(row, f"{trainer} HM", hm, None, None)


def test_base2new_terminal_table_and_notes(tree, capsys, monkeypatch):
    out = report_text(tree, capsys, monkeypatch)
    lines = out.splitlines()
    assert lines[0] == "Base-to-new generalisation"
    header = lines[1].split()
    assert header[:4] == ["Dataset", "ZeroshotCLIP", "Base", "ZeroshotCLIP"]
    assert (
        "Average of SEP: over 2 of 3 datasets (complete ones only); left out: DTD "
        "(incomplete)." in out
    )
    # SEP's ImageNet run uses another config: still one SEP column, both configs named
    assert "SEP: vit_b128_ep10_ctxv1, vit_b32_ep50_ctxv1" in out
    assert "SEP [" not in out


def test_cross_dataset_and_domain_generalisation(tree, capsys, monkeypatch):
    md_all = md_tables(report_text(tree, capsys, monkeypatch, "--format", "markdown", "--ci95"))
    csv_all = csv_tables(report_text(tree, capsys, monkeypatch, "--format", "csv"))
    for title, targets in (
        ("Cross-dataset transfer", XD_TARGETS),
        ("Domain generalisation", DG_TARGETS),
    ):
        md, rows = as_dict(md_all[title]), as_dict(csv_all[title])
        assert md_all[title][0] == ["Trainer", "ImageNet (source)"] + [
            NAMES[t] for t in targets
        ] + ["Average"]
        for trainer in ("CoOp", "SEP"):
            source = list(XD[(trainer, "imagenet")].values())
            check_md(md[trainer]["ImageNet (source)"], *stat(source, ci95=True), False)
            check_csv(rows[trainer], "ImageNet (source)", *stat(source), "2/2")
            complete_means = []
            for target in targets:
                values = list(XD[(trainer, target)].values())
                incomplete = len(values) < 2
                check_md(md[trainer][NAMES[target]], *stat(values, ci95=True), incomplete)
                check_csv(rows[trainer], NAMES[target], *stat(values), f"{len(values)}/2")
                if not incomplete:
                    complete_means.append(statistics.fmean(values))
            partial = len(complete_means) < len(targets)
            average = sum(complete_means) / len(complete_means)
            check_md(md[trainer]["Average"], average, None, partial)
            assert close(rows[trainer]["Average"], average)
    # SEP's cross-dataset average leaves out caltech101 (one of its two seeds has no result)
    assert md["SEP"]["Average"] != "-"


def test_fewshot_table(tree, capsys, monkeypatch):
    md = as_dict(
        md_tables(report_text(tree, capsys, monkeypatch, "--format", "markdown"))[
            "Few-shot learning"
        ],
        key_columns=2,
    )
    rows = as_dict(
        csv_tables(report_text(tree, capsys, monkeypatch, "--format", "csv"))["Few-shot learning"],
        key_columns=2,
    )
    assert list(md) == [("CoOp", "1"), ("CoOp", "4"), ("SEP", "1"), ("SEP", "4")] == list(rows)
    for trainer, shots in (("CoOp", 1), ("CoOp", 4), ("SEP", 1), ("SEP", 4)):
        key = (trainer, str(shots))
        complete_means = []
        for dataset in ("dtd", "eurosat"):
            values = list(FEWSHOT[(trainer, shots, dataset)].values())
            incomplete = len(values) < 2
            check_md(md[key][NAMES[dataset]], *stat(values), incomplete)
            check_csv(rows[key], NAMES[dataset], *stat(values), f"{len(values)}/2")
            if not incomplete:
                complete_means.append(statistics.fmean(values))
        average = sum(complete_means) / len(complete_means)
        check_md(md[key]["Average"], average, None, len(complete_means) < 2)
        assert close(rows[key]["Average"], average)
    # the resumed run counted: SEP 1-shot EuroSAT has both seeds
    assert rows[("SEP", "1")]["EuroSAT seeds"] == "2/2"


def test_missing_and_ignored_runs_are_listed(tree, capsys, monkeypatch):
    out = report_text(tree, capsys, monkeypatch, "--format", "csv")
    tables = csv_tables(out)
    missing = {(r[1], r[2]) for r in tables["Missing / incomplete"][1:]}
    b2n, xd, fs = "output/base2new/", "output/xd/", "output/fewshot/"
    assert missing == {
        (
            b2n + "test_new/dtd/shots_16/SEP/vit_b32_ep50_ctxv1/seed3",
            "base run without its new run",
        ),
        (
            xd + "test/caltech101/shots_16/SEP/vit_b16_ep3_xd/seed2",
            "no result block ('=> result')",
        ),
        (
            fs + "dtd/shots_4/CoOp/vit_b16_fs/seed2",
            "training did not finish (no 'Finish training' line)",
        ),
    }
    assert tables["Ignored: log folders outside the known layouts"] == [
        ["output/old_experiment/seed1"]
    ]
    text = report_text(tree, capsys, monkeypatch)
    assert "Missing / incomplete (3)" in text
    assert "  output/old_experiment/seed1" in text


def test_absent_runs_and_split_configs_are_named(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    b2n = tmp_path / "output" / "base2new"
    for cfg, acc in (("ctx4", 70.0), ("ctx16", 74.0)):  # two configs of one trainer, one dataset
        for seed in (1, 2):
            write(b2n / f"train_base/eurosat/shots_16/CoOp/{cfg}/seed{seed}", train_log(acc + seed))
            write(b2n / f"test_new/eurosat/shots_16/CoOp/{cfg}/seed{seed}", eval_log(acc - seed))
    write(b2n / "test_new/dtd/shots_16/CoOp/ctx4/seed1", eval_log(50.0))  # new run, no base run
    rc, out, _ = run_main(capsys, "output", "--format", "markdown")
    assert rc == 0
    md = as_dict(md_tables(out)["Base-to-new generalisation"])
    check_md(md["EuroSAT"]["CoOp [ctx4] Base"], 71.5, 0.5, False)
    check_md(md["EuroSAT"]["CoOp [ctx16] New"], 72.5, 0.5, False)
    check_md(md["DTD"]["CoOp [ctx4] New"], 50.0, 0.0, True)
    assert md["DTD"]["CoOp [ctx4] Base"] == "-" and md["DTD"]["CoOp [ctx4] HM"] == "-"
    assert (
        "- output/base2new/train_base/dtd/shots_16/CoOp/ctx4/seed1: new run without its "
        "base run" in out
    )
    assert "- output/base2new/test_new/dtd/shots_16/CoOp/ctx4/seed2: no run for seed 2" in out
    assert "- output/base2new/train_base/dtd/shots_16/CoOp/ctx16/seed*: no runs" in out


def test_plots_are_written(tree, capsys, monkeypatch, tmp_path):
    out = report_text(tree, capsys, monkeypatch, "--plot", str(tmp_path / "figs"))
    names = sorted(os.listdir(tmp_path / "figs"))
    assert names == [
        "base2new_average.png",
        "base2new_dtd.png",
        "base2new_eurosat.png",
        "base2new_imagenet.png",
        "fewshot_average.png",
        "fewshot_dtd.png",
        "fewshot_eurosat.png",
    ]
    assert f"Wrote 7 figure(s) to {tmp_path / 'figs'}" in out
    for name in names:
        assert (tmp_path / "figs" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_writes_out_file_and_reports_errors(tree, tmp_path):
    out_file = tmp_path / "tables.md"
    script = str(REPO / "parse_test_res.py")
    done = subprocess.run(
        [sys.executable, script, "output", "--format", "markdown", "--out", str(out_file)],
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"Wrote markdown to {out_file}\n"
    assert set(md_tables(out_file.read_text())) >= {
        "Base-to-new generalisation",
        "Cross-dataset transfer",
        "Domain generalisation",
        "Few-shot learning",
    }
    (tmp_path / "empty").mkdir()
    done = subprocess.run(
        [sys.executable, script, str(tmp_path / "empty")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and "no runs found below" in done.stderr


def test_runs_from_two_output_roots_are_not_mixed(tmp_path, capsys):
    for root, acc in (("output", 60.0), ("output_old", 40.0)):
        write(tmp_path / root / "fewshot/dtd/shots_1/CoOp/c/seed1", train_log(acc))
    rc, _, err = run_main(capsys, str(tmp_path))
    assert rc == 1 and "come from 2 output roots" in err and "output_old" in err
