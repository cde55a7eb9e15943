"""Trainer tests: put this folder on sys.path so the test files import the shared tiny dataset
as ``from image_set import ...`` under any pytest import mode (no ``__init__.py`` here: it would
shadow the ``trainers`` package)."""

from __future__ import annotations

import os
import sys

TRAINER_TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
if TRAINER_TESTS_DIR not in sys.path:
    sys.path.insert(0, TRAINER_TESTS_DIR)
