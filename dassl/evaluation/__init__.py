"""Evaluation: ``build_evaluator``, ``EVALUATOR_REGISTRY`` and the ``Classification`` evaluator."""

from .build import EVALUATOR_REGISTRY, build_evaluator
from .evaluator import Classification, EvaluatorBase

__all__ = ["EVALUATOR_REGISTRY", "Classification", "EvaluatorBase", "build_evaluator"]
