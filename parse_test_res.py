#!/usr/bin/env python
"""Read test results from run logs and print the tables papers print.

Two modes, chosen from what ``directory`` holds.

1. A folder of seed runs (CoOp's ``parse_test_res.py``, same flags, same printout)::

       python parse_test_res.py output/base2new/train_base/eurosat/shots_16/CoOp/vit_b16_ep50
       python parse_test_res.py output/base2new/test_new/eurosat/shots_16/CoOp/vit_b16_ep50 --test-log
       python parse_test_res.py output/my_experiment --multi-exp    # a folder of such folders

   Each seed's value, then ``* accuracy: mean% +- std%`` (``--ci95``: 1.96 * std / sqrt(n)).

2. An output root (or any folder above runs), with no flags::

       python parse_test_res.py output/ [--ci95] [--format table|markdown|csv] [--out F] [--plot DIR]

   Every run below it in the layouts the scripts write is found, and every table that has data is
   printed: base-to-new (Base / New / HM per dataset and trainer, with the Average row),
   cross-dataset, domain generalisation and few-shot. Layouts (``<cfg>`` = trainer config name)::

       base2new/{train_base|test_new}/<dataset>/shots_<K>/<trainer>/<cfg>/seed<S>
       xd/{train|test}/<dataset>/shots_<K>/<trainer>/<cfg>/seed<S>
       fewshot/<dataset>/shots_<K>/<trainer>/<cfg>/seed<S>

Which result a log gives: the last result block (``=> result`` then ``* accuracy: 54.1%`` ...) after
the last end-of-training line (``Finish training``, or ``Finished training`` of older forks). A log
with no end-of-training line and no training progress lines is an eval-only log (``--eval-only`` runs,
zero-shot CLIP): its last result block counts. A later run in the same folder (a resumed one) is
appended to ``log.txt`` after a ``===== <time>: new run ... =====`` line, or (upstream Dassl) written
to ``log.txt-<time>``; each run is read on its own and the newest run that has a result is used.

Statistics follow CoOp: std is the population std (numpy's ``np.std``); HM = 2 B N / (B + N) of the
mean Base and New accuracies; the Average row of base-to-new averages Base and New over the datasets
and takes the HM of those averages. Runs that lack a result and seeds missing for one dataset but
present for others are listed under "Missing / incomplete" and marked ``*`` in the tables; averages
over datasets use only complete datasets and say which were left out.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import os
import re
import sys
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from tabulate import tabulate

END_OF_TRAINING = re.compile(r"\bFinish(?:ed)? training\b")
RESULT_START = re.compile(r"=> result\b")
RESULT_ITEM = re.compile(r"\*\s+(\w+):\s+([-+\d.,eE]+)%?\s*$")
PROGRESS = re.compile(r"\bepoch \[\d+/\d+\]")
# dassl.utils.setup_logger appends a later run to an existing log.txt after such a line.
NEW_RUN_SEPARATOR = re.compile(r"^=====.*\bnew run\b.*=====[ \t]*$", re.MULTILINE)
SEED_DIR = re.compile(r"seed(\d+)$")
SHOTS_DIR = re.compile(r"shots_(\d+)$")

SPLITS = {"base2new": ("train_base", "test_new"), "xd": ("train", "test")}

# Config name -> name in the papers' tables, in the papers' order.
DATASET_NAMES = {
    "imagenet": "ImageNet",
    "caltech101": "Caltech101",
    "oxford_pets": "OxfordPets",
    "stanford_cars": "StanfordCars",
    "oxford_flowers": "Flowers102",
    "food101": "Food101",
    "fgvc_aircraft": "FGVCAircraft",
    "sun397": "SUN397",
    "dtd": "DTD",
    "eurosat": "EuroSAT",
    "ucf101": "UCF101",
    "imagenetv2": "ImageNetV2",
    "imagenet_sketch": "ImageNet-Sketch",
    "imagenet_a": "ImageNet-A",
    "imagenet_r": "ImageNet-R",
    "demo": "Demo",  # the embedded demo (make demo)
}
DG_TARGETS = ("imagenetv2", "imagenet_sketch", "imagenet_a", "imagenet_r")
TRAINER_ORDER = ("ZeroshotCLIP", "CoOp", "CoCoOp", "KgCoOp", "SEP")
ZERO_SHOT = ("ZeroshotCLIP",)  # evaluation only: never has a cross-dataset training (source) run


class ParseError(Exception):
    """A problem with the input that the user has to fix; main() prints it and exits with 1."""


# ----------------------------------------------------------------------------------------------
# Reading logs
# ----------------------------------------------------------------------------------------------


def parse_log_text(
    text: str, keyword: str = "accuracy", mode: str = "auto"
) -> tuple[float | None, str]:
    """Pick the result of one log.

    Args:
        text: the whole log.
        keyword: the result item to read (``accuracy``, ``error``, ``macro_f1`` ...).
        mode: ``"train"`` (CoOp's default: the last result block after the last end-of-training
            line), ``"test"`` (``--test-log``: the last result block) or ``"auto"`` (``"train"`` when
            the log has an end-of-training line or training progress lines, else ``"test"``).

    Returns:
        ``(value, "")``, or ``(None, reason)`` when the log holds no usable result.
    """
    if mode not in ("train", "test", "auto"):
        raise ValueError(f"parse_log_text: mode must be train, test or auto, got {mode!r}")
    blocks: list[dict[str, float]] = []
    blocks_before_end = None  # number of result blocks printed before the last end line
    saw_progress = False
    current: dict[str, float] | None = None
    for line in text.splitlines():
        if END_OF_TRAINING.search(line):
            blocks_before_end = len(blocks)
            current = None
        elif RESULT_START.search(line):
            current = {}
            blocks.append(current)
        elif current is not None and (item := RESULT_ITEM.search(line)):
            current[item.group(1)] = float(item.group(2).replace(",", ""))
        else:
            current = None
            saw_progress = saw_progress or bool(PROGRESS.search(line))

    if mode == "auto":
        mode = "test" if blocks_before_end is None and not saw_progress else "train"
    if mode == "train":
        if blocks_before_end is None and saw_progress:
            return None, "training did not finish (no 'Finish training' line)"
        if blocks_before_end is None:
            hint = "; it has a result block: an eval-only log? add --test-log" if blocks else ""
            return None, f"no end-of-training line ('Finish training' / 'Finished training'){hint}"
        blocks = blocks[blocks_before_end:]
        if not blocks:
            return None, "no result block ('=> result') after 'Finish training'"
    if not blocks:
        return None, "no result block ('=> result')"
    if keyword not in blocks[-1]:
        return None, f"the last result block has no '* {keyword}:' line"
    return blocks[-1][keyword], ""


def log_files(folder: str) -> list[str]:
    """Log files of a run folder, oldest first: ``log.txt``, then ``log.txt-<time>`` by name."""
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    stamped = sorted(n for n in names if n.startswith("log.txt-"))
    first = ["log.txt"] if "log.txt" in names else []
    return [os.path.join(folder, n) for n in first + stamped]


def read_run(
    folder: str, keyword: str = "accuracy", mode: str = "auto"
) -> tuple[float | None, str, str]:
    """Result of one run folder: ``(value, problem, log path)``; value is None when it has none.

    Runs are read newest first (later log files, then later runs appended to one file); the first
    with a result wins. With none, the problem of the newest run is given.
    """
    logs = log_files(folder)
    if not logs:
        return None, "no log.txt", ""
    problems = []
    for path in reversed(logs):
        with open(path, encoding="utf-8", errors="replace") as f:
            runs = NEW_RUN_SEPARATOR.split(f.read())
        for text in reversed(runs):
            value, problem = parse_log_text(text, keyword, mode)
            if value is not None:
                return value, "", path
            problems.append(problem)
    several = len(logs) > 1 or len(problems) > 1
    where = f" (newest run, in {os.path.basename(logs[-1])})" if several else ""
    return None, problems[0] + where, logs[-1]


def mean_and_spread(values: list[float], ci95: bool = False) -> tuple[float, float]:
    """Mean and std (population std, as CoOp's ``np.std``) or 95% CI (1.96 * std / sqrt(n))."""
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / n)
    return mean, (1.96 * std / math.sqrt(n) if ci95 else std)


def harmonic_mean(base: float, new: float) -> float:
    """HM = 2 B N / (B + N) (0 when both are 0)."""
    return 2 * base * new / (base + new) if base + new else 0.0


def _natural_key(name: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def _subfolders(directory: str) -> list[str]:
    names = [n for n in os.listdir(directory) if not n.startswith(".")]
    names = [n for n in names if os.path.isdir(os.path.join(directory, n))]
    return [os.path.join(directory, n) for n in sorted(names, key=_natural_key)]


# ----------------------------------------------------------------------------------------------
# CoOp's mode: one folder of seed runs (or --multi-exp: a folder of such folders)
# ----------------------------------------------------------------------------------------------


def parse_seed_folders(directory: str, keyword: str, ci95: bool, mode: str) -> float:
    """Print each seed's value and the summary as CoOp's script does; return the mean."""
    print(f"Parsing files in {directory}")
    values, problems = [], []
    for sub in _subfolders(directory):
        value, problem, path = read_run(sub, keyword, mode)
        if value is None:
            problems.append(f"{sub}: {problem}")
        else:
            values.append(value)
            print(f"file: {path}. {keyword}: {value:.2f}%. ")
    if problems:
        print(f"Missing / incomplete ({len(problems)} folder(s), left out of the summary):")
        for line in problems:
            print(f"  {line}")
    if not values:
        raise ParseError(
            f"Nothing found in {directory}: no seed folder below it has a result "
            f"(see the list above)"
        )
    mean, spread = mean_and_spread(values, ci95)
    print("===")
    print(f"Summary of directory: {directory}")
    print(f"* {keyword}: {mean:.2f}% +- {spread:.2f}%")
    print("===")
    return mean


def parse_multi_exp(directory: str, keyword: str, ci95: bool, mode: str) -> None:
    """``--multi-exp``: summarise each experiment folder, then average the experiments' means."""
    means, failed = [], []
    for exp in _subfolders(directory):
        try:
            means.append(parse_seed_folders(exp, keyword, ci95, mode))
        except ParseError as err:
            print(err)
            failed.append(exp)
    if not means:
        raise ParseError(
            f"Nothing found in {directory}: no experiment folder below it has a result"
        )
    if failed:
        print(f"Left out of the average ({len(failed)} without results): {', '.join(failed)}")
    print("Average performance")
    print(f"* {keyword}: {sum(means) / len(means):.2f}%")


# ----------------------------------------------------------------------------------------------
# Output-root mode: discovering runs
# ----------------------------------------------------------------------------------------------


@dataclass
class Run:
    """One seed folder found in a known layout and what its logs gave."""

    folder: str
    base: str  # the output root: the folder that holds base2new/, xd/, fewshot/
    setting: str  # "base2new" | "xd" | "fewshot"
    split: str  # "train_base" | "test_new" | "train" | "test" | "" (fewshot)
    dataset: str
    shots: int
    trainer: str
    cfg: str
    seed: int
    value: float | None
    problem: str


def match_layout(folder: str) -> dict | None:
    """Layout fields of a seed folder (see the module docstring), or None if it is in none."""
    parts = os.path.abspath(folder).split(os.sep)
    if len(parts) >= 8 and parts[-7] in SPLITS and parts[-6] in SPLITS[parts[-7]]:
        setting, split, dataset, shots, trainer, cfg, seed = parts[-7:]
        base = os.sep.join(parts[:-7])
    elif len(parts) >= 7 and parts[-6] == "fewshot":
        setting, dataset, shots, trainer, cfg, seed = parts[-6:]
        split, base = "", os.sep.join(parts[:-6])
    else:
        return None
    shots_match, seed_match = SHOTS_DIR.match(shots), SEED_DIR.match(seed)
    if not (shots_match and seed_match):
        return None
    return dict(
        base=base or os.sep,
        setting=setting,
        split=split,
        dataset=dataset,
        shots=int(shots_match.group(1)),
        trainer=trainer,
        cfg=cfg,
        seed=int(seed_match.group(1)),
    )


def discover_runs(root: str, keyword: str = "accuracy") -> tuple[list[Run], list[str]]:
    """Every seed folder below ``root`` in a known layout, and the log folders in none."""
    runs, ignored = [], []
    for dirpath, dirnames, _ in os.walk(root):
        dirnames[:] = sorted((d for d in dirnames if not d.startswith(".")), key=_natural_key)
        fields = match_layout(dirpath)
        if fields is not None:
            value, problem, _ = read_run(dirpath, keyword)
            runs.append(
                Run(folder=os.path.abspath(dirpath), value=value, problem=problem, **fields)
            )
            dirnames[:] = []  # checkpoints below a run are not runs
        elif log_files(dirpath):
            ignored.append(os.path.abspath(dirpath))
    bases = sorted({r.base for r in runs})
    if len(bases) > 1:
        raise ParseError(
            f"runs below {root} come from {len(bases)} output roots "
            f"({', '.join(bases)}); pass one of them"
        )
    return runs, ignored


def _dataset_key(name: str) -> tuple:
    order = list(DATASET_NAMES)
    return (order.index(name), "") if name in order else (len(order), name)


def dataset_name(name: str) -> str:
    """Name of a dataset config in the papers' tables (unknown names are kept)."""
    return DATASET_NAMES.get(name, name)


def _trainer_key(label: str) -> tuple:
    trainer = label.split(" [")[0]
    rank = TRAINER_ORDER.index(trainer) if trainer in TRAINER_ORDER else len(TRAINER_ORDER)
    return rank, _natural_key(label)


def assign_labels(runs: list[Run]) -> dict[tuple[str, str, int], str]:
    """Table label of each ``(trainer, cfg, shots)`` of one setting.

    A trainer keeps its plain name while each of its table cells comes from one config (SEP may use
    one config for ImageNet and another elsewhere). When some cell would mix configs (or shot
    counts outside the few-shot setting), the label adds them: ``CoOp [vit_b16_ep50]``.
    """
    fewshot = bool(runs) and runs[0].setting == "fewshot"
    labels = {}
    by_trainer: dict[str, list[Run]] = defaultdict(list)
    for run in runs:
        by_trainer[run.trainer].append(run)
    for trainer, trainer_runs in by_trainer.items():
        variants = defaultdict(set)
        for run in trainer_runs:
            variants[(run.split, run.dataset, run.shots if fewshot else 0)].add(
                (run.cfg, run.shots)
            )
        clash = any(len(v) > 1 for v in variants.values())
        several_cfgs = len({run.cfg for run in trainer_runs}) > 1
        several_shots = not fewshot and len({run.shots for run in trainer_runs}) > 1
        for run in trainer_runs:
            extra = [run.cfg] if clash and several_cfgs else []
            extra += [f"{run.shots}-shot"] if clash and several_shots else []
            labels[(trainer, run.cfg, run.shots)] = (
                f"{trainer} [{', '.join(extra)}]" if extra else trainer
            )
    return labels


@dataclass
class Cell:
    """The seed runs behind one table cell, and the seeds it should have."""

    runs: list[Run]
    expected: set[int]

    @property
    def values(self) -> list[float]:
        return [r.value for r in self.runs if r.value is not None]

    @property
    def complete(self) -> bool:
        return {r.seed for r in self.runs if r.value is not None} >= self.expected

    def stat(self, ci95: bool) -> Stat | None:
        """Mean ± spread over the seeds with a result (None when there is none)."""
        if not self.values:
            return None
        mean, spread = mean_and_spread(self.values, ci95)
        seeds = f"{len(self.values)}/{len(self.expected)}"
        return Stat(mean, spread, seeds, not self.complete)


@dataclass
class Stat:
    """A table value: a mean over seeds (with spread and seed count) or a derived value."""

    mean: float
    spread: float | None = None
    seeds: str | None = None  # "k/n": k of the n expected seeds have a result
    incomplete: bool = False


class Setting:
    """The runs of one setting arranged into cells, with the missing ones listed.

    ``cells[(split, dataset, label, shots)]``: ``shots`` is 0 outside the few-shot setting, ``split``
    is "" in it. The expected seeds of a cell are all the seeds its table row (label; label and
    shots in the few-shot table) has in any cell.
    """

    def __init__(
        self,
        setting: str,
        runs: list[Run],
        slots: list[tuple[str, str]],
        display: Callable[[str], str],
    ):
        self.name = setting
        self.labels = assign_labels(runs)
        fewshot = setting == "fewshot"
        self.cells: dict[tuple[str, str, str, int], Cell] = {}
        self.missing: list[tuple[str, str, str]] = []
        self.cfgs: dict[str, set[str]] = defaultdict(set)
        seeds: dict[tuple[str, int], set[int]] = defaultdict(set)  # shared with the cells
        label_runs: dict[str, list[Run]] = defaultdict(list)
        for run in runs:
            label, shots = self.label(run), run.shots if fewshot else 0
            seeds[(label, shots)].add(run.seed)
            label_runs[label].append(run)
            self.cfgs[label].add(run.cfg)
            key = (run.split, run.dataset, label, shots)
            self.cells.setdefault(key, Cell([], seeds[(label, shots)])).runs.append(run)
        rows = sorted({(k[2], k[3]) for k in self.cells}, key=lambda r: (_trainer_key(r[0]), r[1]))
        for split, dataset in slots:
            for label, shots in rows:
                key = (split, dataset, label, shots)
                cell = self.cells.setdefault(key, Cell([], seeds[(label, shots)]))
                self._list_missing(cell, key, label_runs[label], display)

    def label(self, run: Run) -> str:
        return self.labels[(run.trainer, run.cfg, run.shots)]

    def cell(self, split: str, dataset: str, label: str, shots: int = 0) -> Cell:
        return self.cells[(split, dataset, label, shots)]

    def _list_missing(self, cell: Cell, key: tuple, label_runs: list[Run], display) -> None:
        split, dataset, label, shots = key
        for run in cell.runs:
            if run.value is None:
                self.missing.append((self.name, display(run.folder), run.problem))
        some = label_runs[0]
        found = {r.seed for r in cell.runs}
        cfgs = {r.cfg for r in (cell.runs or label_runs)}
        all_shots = {r.shots for r in (cell.runs or label_runs)}
        parts = [
            some.base,
            self.name,
            split,
            dataset,
            f"shots_{shots or (all_shots.pop() if len(all_shots) == 1 else '*')}",
            some.trainer,
            cfgs.pop() if len(cfgs) == 1 else "*",
        ]
        folder = os.path.join(*[p for p in parts if p])
        if not cell.runs and self.name == "xd" and split == "train" and some.trainer in ZERO_SHOT:
            return
        if not cell.runs and not self._twin_seeds(split, dataset, label, shots):
            self.missing.append(
                (
                    self.name,
                    display(os.path.join(folder, "seed*")),
                    f"no runs ({label} has runs for other cells of this table)",
                )
            )
            return
        for seed in sorted(cell.expected - found):
            self.missing.append(
                (
                    self.name,
                    display(os.path.join(folder, f"seed{seed}")),
                    self._why_absent(split, dataset, label, shots, seed),
                )
            )

    def _twin_seeds(self, split: str, dataset: str, label: str, shots: int) -> set[int]:
        """Base-to-new: seeds with a folder in the other split of the cell (base <-> new)."""
        if self.name != "base2new":
            return set()
        other = "test_new" if split == "train_base" else "train_base"
        twin = self.cells.get((other, dataset, label, shots))
        return {r.seed for r in twin.runs} if twin else set()

    def _why_absent(self, split: str, dataset: str, label: str, shots: int, seed: int) -> str:
        if seed in self._twin_seeds(split, dataset, label, shots):
            return (
                "base run without its new run"
                if split == "test_new"
                else "new run without its base run"
            )
        return f"no run for seed {seed} ({label} has it for other cells of this table)"


# ----------------------------------------------------------------------------------------------
# Tables
# ----------------------------------------------------------------------------------------------


@dataclass
class Table:
    """A table to print. ``stat_columns`` name the columns whose cells are means over seeds."""

    title: str
    header: list[str]
    rows: list[list]  # str | Stat | None per cell
    stat_columns: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)


def _spread_name(ci95: bool) -> str:
    return "95% CI" if ci95 else "std"


def _status(*stats: Stat | None) -> bool | None:
    """None when an entry lacks a value, else whether all of its values are complete."""
    if any(s is None for s in stats):
        return None
    return not any(s.incomplete for s in stats)


def _complete_entries(
    status: list[bool | None], names: list[str], label: str, what: str, notes: list[str]
) -> tuple[list[int], bool]:
    """Indices of the complete entries (what an average may use), and whether any was left out.

    ``status`` as given by ``_status``. Adds a note naming the entries left out and why.
    """
    used = [i for i, ok in enumerate(status) if ok]
    left_out = [
        f"{n} ({'no result' if ok is None else 'incomplete'})"
        for n, ok in zip(names, status)
        if not ok
    ]
    if left_out:
        notes.append(
            f"Average of {label}: over {len(used)} of {len(names)} {what} (complete "
            f"ones only); left out: {', '.join(left_out)}."
        )
    return used, bool(left_out)


def _mean_of(stats: list[Stat | None], indices: list[int], partial: bool) -> Stat | None:
    """Average of the means at ``indices`` (None when there are none); ``*`` when partial."""
    if not indices:
        return None
    return Stat(sum(stats[i].mean for i in indices) / len(indices), incomplete=partial)


def _configs_note(setting: Setting, labels: list[str]) -> str:
    return "Configs: " + "; ".join(
        f"{lab}: {', '.join(sorted(setting.cfgs[lab]))}" for lab in labels
    )


def base2new_table(setting: Setting, ci95: bool, keyword: str) -> Table:
    """Rows datasets + Average; per trainer Base, New (mean ± spread over seeds) and HM."""
    datasets = sorted({k[1] for k in setting.cells}, key=_dataset_key)
    labels = sorted({k[2] for k in setting.cells}, key=_trainer_key)
    header = ["Dataset"] + [f"{lab} {m}" for lab in labels for m in ("Base", "New", "HM")]
    notes = [
        f"Cells: {keyword} (%), mean ± {_spread_name(ci95)} over seeds; "
        "HM = 2·Base·New/(Base+New) of the means; Average row: Base and New averaged over "
        "datasets, HM of those averages."
    ]
    rows, columns = [], {lab: ([], []) for lab in labels}  # per label: Base stats, New stats
    for dataset in datasets:
        row = [dataset_name(dataset)]
        for lab in labels:
            base = setting.cell("train_base", dataset, lab).stat(ci95)
            new = setting.cell("test_new", dataset, lab).stat(ci95)
            columns[lab][0].append(base)
            columns[lab][1].append(new)
            hm = None
            if base and new:
                hm = Stat(
                    harmonic_mean(base.mean, new.mean), incomplete=base.incomplete or new.incomplete
                )
            row += [base, new, hm]
        rows.append(row)
    average = ["Average"]
    names = [dataset_name(d) for d in datasets]
    for lab in labels:
        bases, news = columns[lab]
        status = [_status(b, n) for b, n in zip(bases, news)]
        used, partial = _complete_entries(status, names, lab, "datasets", notes)
        base_avg, new_avg = _mean_of(bases, used, partial), _mean_of(news, used, partial)
        hm = (
            None
            if not used
            else Stat(harmonic_mean(base_avg.mean, new_avg.mean), incomplete=partial)
        )
        average += [base_avg, new_avg, hm]
    rows.append(average)
    notes.append(_configs_note(setting, labels))
    stat_columns = {f"{lab} {m}" for lab in labels for m in ("Base", "New")}
    return Table("Base-to-new generalisation", header, rows, stat_columns, notes)


def transfer_table(
    setting: Setting, targets: list[str], title: str, ci95: bool, keyword: str
) -> Table:
    """Rows trainers; columns the source accuracy, each target and the average over targets."""
    sources = sorted({k[1] for k in setting.cells if k[0] == "train"}, key=_dataset_key)
    labels = sorted({k[2] for k in setting.cells}, key=_trainer_key)
    header = (
        ["Trainer"]
        + [f"{dataset_name(s)} (source)" for s in sources]
        + [dataset_name(t) for t in targets]
        + ["Average"]
    )
    notes = [
        f"Cells: {keyword} (%), mean ± {_spread_name(ci95)} over seeds; Average: over the "
        "targets (the source is not in it)."
    ]
    if not targets:
        notes.append("No target runs found (xd/test/<dataset>/...).")
    rows = []
    for lab in labels:
        source_stats = [setting.cell("train", s, lab).stat(ci95) for s in sources]
        target_stats = [setting.cell("test", t, lab).stat(ci95) for t in targets]
        row = [lab] + source_stats + target_stats
        names = [dataset_name(t) for t in targets]
        used, partial = _complete_entries(
            list(map(_status, target_stats)), names, lab, "targets", notes
        )
        row.append(_mean_of(target_stats, used, partial))
        rows.append(row)
    notes.append(_configs_note(setting, labels))
    return Table(title, header, rows, set(header[1:-1]), notes)


def fewshot_table(setting: Setting, ci95: bool, keyword: str) -> Table:
    """Rows (trainer, shots); columns datasets and their average."""
    datasets = sorted({k[1] for k in setting.cells}, key=_dataset_key)
    rows_keys = sorted(
        {(k[2], k[3]) for k in setting.cells}, key=lambda r: (_trainer_key(r[0]), r[1])
    )
    names = [dataset_name(d) for d in datasets]
    header = ["Trainer", "Shots"] + names + ["Average"]
    notes = [
        f"Cells: {keyword} (%), mean ± {_spread_name(ci95)} over seeds; Average: over datasets."
    ]
    rows = []
    for lab, shots in rows_keys:
        stats = [setting.cell("", d, lab, shots).stat(ci95) for d in datasets]
        used, partial = _complete_entries(
            list(map(_status, stats)), names, f"{lab} {shots}-shot", "datasets", notes
        )
        rows.append([lab, str(shots)] + stats + [_mean_of(stats, used, partial)])
    notes.append(_configs_note(setting, sorted({r[0] for r in rows_keys}, key=_trainer_key)))
    return Table("Few-shot learning", header, rows, set(names), notes)


@dataclass
class Report:
    """Everything found below an output root."""

    tables: list[Table]
    missing: list[tuple[str, str, str]]  # (setting, folder, problem)
    ignored: list[str]


def build_report(root: str, keyword: str = "accuracy", ci95: bool = False) -> Report:
    """Discover the runs below ``root`` and build every table that has data."""
    if not os.path.isdir(root):
        raise ParseError(
            f"{root} is not a folder; pass an output root (e.g. output/) or a folder of seed runs"
        )
    runs, ignored = discover_runs(root, keyword)
    relative = not os.path.isabs(root)

    def display(path: str) -> str:
        return os.path.relpath(path) if relative else path

    by_setting: dict[str, list[Run]] = defaultdict(list)
    for run in runs:
        by_setting[run.setting].append(run)
    settings, tables = {}, []
    if by_setting["base2new"]:
        datasets = sorted({r.dataset for r in by_setting["base2new"]}, key=_dataset_key)
        slots = [(s, d) for d in datasets for s in SPLITS["base2new"]]
        settings["base2new"] = Setting("base2new", by_setting["base2new"], slots, display)
        tables.append(base2new_table(settings["base2new"], ci95, keyword))
    if by_setting["xd"]:
        xd_runs = by_setting["xd"]
        sources = sorted({r.dataset for r in xd_runs if r.split == "train"}, key=_dataset_key)
        tested = sorted({r.dataset for r in xd_runs if r.split == "test"}, key=_dataset_key)
        cross = [d for d in tested if d not in DG_TARGETS and d not in sources]
        domain = [d for d in tested if d in DG_TARGETS]
        slots = [("train", s) for s in sources] + [("test", t) for t in cross + domain]
        settings["xd"] = Setting("xd", xd_runs, slots, display)
        skipped = [d for d in tested if d in sources]
        if cross or not domain:
            table = transfer_table(settings["xd"], cross, "Cross-dataset transfer", ci95, keyword)
            if skipped:
                table.notes.append(f"Not used as targets (they are sources): {', '.join(skipped)}.")
            tables.append(table)
        if domain:
            tables.append(
                transfer_table(settings["xd"], domain, "Domain generalisation", ci95, keyword)
            )
    if by_setting["fewshot"]:
        datasets = sorted({r.dataset for r in by_setting["fewshot"]}, key=_dataset_key)
        settings["fewshot"] = Setting(
            "fewshot", by_setting["fewshot"], [("", d) for d in datasets], display
        )
        tables.append(fewshot_table(settings["fewshot"], ci95, keyword))
    missing = [m for s in settings.values() for m in s.missing]
    if not tables:
        found = f"; log folders outside them: {', '.join(map(display, ignored))}" if ignored else ""
        raise ParseError(
            f"no runs found below {root}. Expected seed folders such as "
            "base2new/train_base/<dataset>/shots_16/<trainer>/<cfg>/seed1, "
            "xd/test/<dataset>/shots_16/<trainer>/<cfg>/seed1 or "
            f"fewshot/<dataset>/shots_<K>/<trainer>/<cfg>/seed1{found}"
        )
    return Report(tables, missing, [display(p) for p in ignored])


# ----------------------------------------------------------------------------------------------
# Rendering
# ----------------------------------------------------------------------------------------------


def format_cell(cell: str | Stat | None) -> str:
    """``54.10 ± 0.30`` (mean over seeds), ``54.10`` (derived value); ``*`` marks incomplete."""
    if cell is None:
        return "-"
    if isinstance(cell, str):
        return cell
    text = f"{cell.mean:.2f}"
    if cell.spread is not None:
        text += f" ± {cell.spread:.2f}"
    return text + ("*" if cell.incomplete else "")


def _table_notes(table: Table) -> list[str]:
    notes = list(table.notes)
    if any(isinstance(c, Stat) and c.incomplete for row in table.rows for c in row):
        notes.insert(
            1,
            "* incomplete: some seeds have no result (see Missing / incomplete), or "
            "an average leaves out incomplete entries.",
        )
    return notes


def render_text(report: Report, fmt: str) -> str:
    """The report as a terminal table (``fmt="table"``) or Markdown (``fmt="markdown"``)."""
    markdown = fmt == "markdown"
    out = []
    for table in report.tables:
        body = tabulate(
            [[format_cell(c) for c in row] for row in table.rows],
            table.header,
            tablefmt="github" if markdown else "simple",
            disable_numparse=True,
        )
        notes = _table_notes(table)
        if markdown:
            notes = [re.sub(r"^\* ", r"\\* ", n) for n in notes]  # not a nested list item
            out += [f"## {table.title}", "", body, ""] + [f"- {n}" for n in notes] + [""]
        else:
            out += [table.title, body] + [f"  {n}" for n in notes] + [""]
    for title, lines in _extra_sections(report):
        if markdown:
            out += [f"## {title}", ""] + [f"- {line}" for line in lines] + [""]
        else:
            out += [title] + [f"  {line}" for line in lines] + [""]
    return "\n".join(out)


def _extra_sections(report: Report) -> list[tuple[str, list[str]]]:
    sections = []
    if report.missing:
        sections.append(
            (
                f"Missing / incomplete ({len(report.missing)})",
                [f"{folder}: {problem}" for _, folder, problem in report.missing],
            )
        )
    if report.ignored:
        sections.append(
            (
                f"Ignored: log folders outside the known layouts ({len(report.ignored)})",
                report.ignored,
            )
        )
    return sections


def render_csv(report: Report, ci95: bool) -> str:
    """Each table as a CSV block: a title row, the header, the rows, note rows, a blank row.

    A column of means over seeds becomes three: ``<col>``, ``<col> std`` (or ``ci95``) and
    ``<col> seeds`` (``k/n``: k of the n expected seeds have a result). Numbers have 2 decimals.
    """
    spread = "ci95" if ci95 else "std"
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for table in report.tables:
        header = []
        for name in table.header:
            header += (
                [name, f"{name} {spread}", f"{name} seeds"]
                if name in table.stat_columns
                else [name]
            )
        writer.writerow([table.title])
        writer.writerow(header)
        for row in table.rows:
            cells = []
            for name, cell in zip(table.header, row):
                if isinstance(cell, str):
                    cells.append(cell)
                    continue
                cells.append("" if cell is None else f"{cell.mean:.2f}")
                if name in table.stat_columns:
                    has_spread = cell is not None and cell.spread is not None
                    cells += [
                        f"{cell.spread:.2f}" if has_spread else "",
                        cell.seeds if has_spread else "",
                    ]
            writer.writerow(cells)
        for note in table.notes:
            writer.writerow([f"Note: {note}"])
        writer.writerow([])
    if report.missing:
        writer.writerow(["Missing / incomplete"])
        writer.writerow(["Setting", "Folder", "Problem"])
        writer.writerows(report.missing)
        writer.writerow([])
    if report.ignored:
        writer.writerow(["Ignored: log folders outside the known layouts"])
        writer.writerows([folder] for folder in report.ignored)
        writer.writerow([])
    return buffer.getvalue()


# ----------------------------------------------------------------------------------------------
# Figures
# ----------------------------------------------------------------------------------------------


def _file_stem(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", name).strip("_").lower()


def plot_report(report: Report, out_dir: str) -> list[str]:
    """Write PNG figures; return their paths.

    ``base2new_<dataset>.png`` (and ``_average``): grouped bars, one group per trainer, bars Base,
    New, HM, error bars the spread over seeds. ``fewshot_<dataset>.png`` (and ``_average``):
    accuracy against shots, one line per trainer. A trainer whose values include incomplete ones
    is named with ``*`` as in the tables. Rows or columns without any value get no figure.
    """
    try:
        import matplotlib
    except ImportError as err:
        raise ParseError("--plot needs matplotlib: pip install matplotlib") from err
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(out_dir, exist_ok=True)
    written = []
    for table in report.tables:
        if table.title.startswith("Base-to-new"):
            labels = [h[: -len(" Base")] for h in table.header if h.endswith(" Base")]
            for row in table.rows:
                stats = [row[1 + 3 * i : 4 + 3 * i] for i in range(len(labels))]
                if not any(any(s) for s in stats):
                    continue
                ticks = [
                    lab + ("*" if any(v and v.incomplete for v in s) else "")
                    for lab, s in zip(labels, stats)
                ]
                fig, ax = plt.subplots(figsize=(max(4.0, 1.6 * len(labels) + 1), 3.5))
                for j, (metric, color) in enumerate(
                    zip(("Base", "New", "HM"), ("#4c72b0", "#dd8452", "#55a868"))
                ):
                    xs = [i + (j - 1) * 0.27 for i in range(len(labels))]
                    heights = [s[j].mean if s[j] else 0.0 for s in stats]
                    errors = [(s[j].spread or 0.0) if s[j] else 0.0 for s in stats]
                    ax.bar(xs, heights, 0.27, yerr=errors, label=metric, color=color, capsize=2)
                ax.set_xticks(range(len(labels)), ticks)
                ax.set_ylabel("accuracy (%)")
                ax.set_title(f"Base-to-new: {row[0]}")
                ax.legend(fontsize="small")
                written.append(_save(fig, out_dir, f"base2new_{_file_stem(row[0])}.png"))
        elif table.title == "Few-shot learning":
            for col in range(2, len(table.header)):
                series: dict[str, list[tuple[int, Stat]]] = defaultdict(list)
                for row in table.rows:
                    if row[col] is not None:
                        series[row[0]].append((int(row[1]), row[col]))
                if not series:
                    continue
                fig, ax = plt.subplots(figsize=(4.5, 3.5))
                for label, points in series.items():
                    ax.errorbar(
                        [p[0] for p in points],
                        [p[1].mean for p in points],
                        yerr=[p[1].spread or 0.0 for p in points],
                        marker="o",
                        capsize=2,
                        label=label + ("*" if any(p[1].incomplete for p in points) else ""),
                    )
                shots = sorted({int(row[1]) for row in table.rows})
                ax.set_xscale("log", base=2)
                ax.set_xticks(shots, [str(s) for s in shots])
                ax.set_xlabel("shots per class")
                ax.set_ylabel("accuracy (%)")
                ax.set_title(f"Few-shot: {table.header[col]}")
                ax.legend(fontsize="small")
                written.append(_save(fig, out_dir, f"fewshot_{_file_stem(table.header[col])}.png"))
    return written


def _save(fig, out_dir: str, name: str) -> str:
    import matplotlib.pyplot as plt

    path = os.path.join(out_dir, name)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


# ----------------------------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------------------------


def is_seed_folder_parent(directory: str) -> bool:
    """True when a subfolder of ``directory`` holds a log: CoOp's "folder of seed runs"."""
    return os.path.isdir(directory) and any(log_files(sub) for sub in _subfolders(directory))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Results -> tables. A folder of seed runs: CoOp's summary (mean +- std). "
        "An output root: base-to-new, cross-dataset, domain-generalisation and few-shot tables."
    )
    parser.add_argument("directory", type=str, help="a folder of seed runs, or an output root")
    parser.add_argument(
        "--ci95",
        action="store_true",
        help="95%% confidence interval (1.96 * std / sqrt(n)) instead of std",
    )
    parser.add_argument(
        "--test-log",
        action="store_true",
        help="folder of seed runs: parse eval-only logs (the last result block); "
        "with an output root eval-only logs are recognised by themselves",
    )
    parser.add_argument(
        "--multi-exp",
        action="store_true",
        help="directory holds several experiment folders, each a folder of seeds",
    )
    parser.add_argument(
        "--keyword",
        default="accuracy",
        type=str,
        help="result item to read: accuracy (default), error, macro_f1 ...",
    )
    parser.add_argument(
        "--format",
        choices=("table", "markdown", "csv"),
        default=None,
        help="output root: terminal table (default), Markdown or CSV",
    )
    parser.add_argument(
        "--out",
        type=str,
        default=None,
        help="output root: write the tables to this file instead of printing",
    )
    parser.add_argument(
        "--plot",
        type=str,
        default=None,
        metavar="DIR",
        help="output root: write PNG figures (Base/New/HM bars, few-shot curves)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    mode = "test" if args.test_log else "train"
    try:
        if not os.path.isdir(args.directory):
            raise ParseError(
                f"{args.directory} is not a folder; pass an output root (e.g. "
                "output/) or a folder of seed runs"
            )
        coop_mode = args.multi_exp or is_seed_folder_parent(args.directory)
        report_flags = [f for f in ("format", "out", "plot") if getattr(args, f) is not None]
        if coop_mode and report_flags:
            raise ParseError(
                f"--{report_flags[0]} applies to an output root, but {args.directory} is a folder "
                "of seed runs (CoOp's mode); pass the output root (e.g. output/)"
            )
        if args.multi_exp:
            parse_multi_exp(args.directory, args.keyword, args.ci95, mode)
        elif coop_mode:
            parse_seed_folders(args.directory, args.keyword, args.ci95, mode)
        else:
            if args.test_log:
                raise ParseError(
                    "--test-log applies to a folder of seed runs; below an output "
                    "root eval-only logs are recognised by themselves (drop it)"
                )
            report = build_report(args.directory, args.keyword, args.ci95)
            fmt = args.format or "table"
            text = render_csv(report, args.ci95) if fmt == "csv" else render_text(report, fmt)
            if args.out:
                os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
                with open(args.out, "w", encoding="utf-8") as f:
                    f.write(text)
                print(f"Wrote {fmt} to {args.out}")
            else:
                print(text, end="" if text.endswith("\n") else "\n")
            if args.plot:
                written = plot_report(report, args.plot)
                print(
                    f"Wrote {len(written)} figure(s) to {args.plot}"
                    if written
                    else "No figures: --plot draws base-to-new and few-shot tables, none found"
                )
    except ParseError as err:
        print(f"parse_test_res.py: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
