"""Evaluators accumulate model outputs batch by batch and print/return the results."""

import os.path as osp
from collections import OrderedDict, defaultdict

import torch
from yacs.config import CfgNode

from dassl.utils import mkdir_if_missing

from .build import EVALUATOR_REGISTRY

__all__ = ["EvaluatorBase", "Classification", "macro_f1_score", "confusion_matrix"]


def macro_f1_score(y_true: torch.Tensor, y_pred: torch.Tensor) -> float:
    """Macro-averaged F1 over the labels present in ``y_true`` (as scikit-learn's
    ``f1_score(y_true, y_pred, average="macro", labels=unique(y_true))``), in [0, 1].

    Per label c: F1 = 2 TP / (2 TP + FP + FN), 0 when c is never predicted correctly.

    Args:
        y_true, y_pred: integer labels ``(N,)``.
    """
    labels = torch.unique(y_true)
    f1s = []
    for c in labels:
        tp = ((y_pred == c) & (y_true == c)).sum().item()
        fp = ((y_pred == c) & (y_true != c)).sum().item()
        fn = ((y_pred != c) & (y_true == c)).sum().item()
        f1s.append(2 * tp / (2 * tp + fp + fn))
    return sum(f1s) / len(f1s)


def confusion_matrix(y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
    """Row-normalised confusion matrix ``(L, L)`` over the sorted labels of ``y_true`` and
    ``y_pred``: entry (i, j) is the fraction of samples of label i predicted as label j."""
    labels = torch.unique(torch.cat([y_true, y_pred]))  # sorted
    index = {int(c): i for i, c in enumerate(labels)}
    cmat = torch.zeros(len(labels), len(labels), dtype=torch.float64)
    for t, p in zip(y_true.tolist(), y_pred.tolist()):
        cmat[index[t], index[p]] += 1
    return cmat / cmat.sum(dim=1, keepdim=True).clamp(min=1)


class EvaluatorBase:
    """Interface: ``reset()``, ``process(model_output, ground_truth)``, ``evaluate() -> dict``."""

    def __init__(self, cfg: CfgNode) -> None:
        self.cfg = cfg

    def reset(self) -> None:
        raise NotImplementedError

    def process(self, mo: torch.Tensor, gt: torch.Tensor) -> None:
        raise NotImplementedError

    def evaluate(self) -> OrderedDict:
        raise NotImplementedError


@EVALUATOR_REGISTRY.register()
class Classification(EvaluatorBase):
    """Accuracy, error and macro-F1 (percent); per-class accuracies with
    ``TEST.PER_CLASS_RESULT``; the confusion matrix with ``TEST.COMPUTE_CMAT``."""

    def __init__(self, cfg: CfgNode, lab2cname: dict[int, str] | None = None, **kwargs) -> None:
        super().__init__(cfg)
        if cfg.TEST.PER_CLASS_RESULT and lab2cname is None:
            raise ValueError("TEST.PER_CLASS_RESULT needs lab2cname (label -> class name)")
        self._lab2cname = lab2cname
        self.reset()

    def reset(self) -> None:
        self._correct = 0
        self._total = 0
        self._y_true: list[int] = []
        self._y_pred: list[int] = []
        self._per_class_res = defaultdict(list) if self.cfg.TEST.PER_CLASS_RESULT else None

    def process(self, mo: torch.Tensor, gt: torch.Tensor) -> None:
        """Accumulate a batch: ``mo`` logits ``(batch, num_classes)``, ``gt`` labels ``(batch,)``."""
        pred = mo.max(1)[1]
        matches = pred.eq(gt).int()
        self._correct += int(matches.sum().item())
        self._total += gt.shape[0]
        self._y_true.extend(gt.tolist())
        self._y_pred.extend(pred.tolist())
        if self._per_class_res is not None:
            for label, match in zip(gt.tolist(), matches.tolist()):
                self._per_class_res[label].append(match)

    def evaluate(self) -> OrderedDict:
        """Print the result block and return ``accuracy`` (first), ``error_rate``, ``macro_f1``
        (and ``perclass_accuracy``), all in percent."""
        if self._total == 0:
            raise RuntimeError("Classification.evaluate(): no sample was processed")
        y_true = torch.tensor(self._y_true)
        y_pred = torch.tensor(self._y_pred)
        results = OrderedDict()
        acc = 100.0 * self._correct / self._total
        err = 100.0 - acc
        macro_f1 = 100.0 * macro_f1_score(y_true, y_pred)
        results["accuracy"] = acc  # the first value is what trainer.test() returns
        results["error_rate"] = err
        results["macro_f1"] = macro_f1

        print(
            "=> result\n"
            f"* total: {self._total:,}\n"
            f"* correct: {self._correct:,}\n"
            f"* accuracy: {acc:.1f}%\n"
            f"* error: {err:.1f}%\n"
            f"* macro_f1: {macro_f1:.1f}%"
        )

        if self._per_class_res is not None:
            print("=> per-class result")
            accs = []
            for label in sorted(self._per_class_res):
                res = self._per_class_res[label]
                correct, total = sum(res), len(res)
                class_acc = 100.0 * correct / total
                accs.append(class_acc)
                print(
                    f"* class: {label} ({self._lab2cname[label]})\t"
                    f"total: {total:,}\t"
                    f"correct: {correct:,}\t"
                    f"acc: {class_acc:.1f}%"
                )
            mean_acc = sum(accs) / len(accs)
            print(f"* average: {mean_acc:.1f}%")
            results["perclass_accuracy"] = mean_acc

        if self.cfg.TEST.COMPUTE_CMAT:
            save_path = osp.join(self.cfg.OUTPUT_DIR, "cmat.pt")
            mkdir_if_missing(self.cfg.OUTPUT_DIR)
            torch.save(confusion_matrix(y_true, y_pred), save_path)
            print(f"Confusion matrix is saved to {save_path}")

        return results
