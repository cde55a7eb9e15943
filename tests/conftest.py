"""Shared pytest setup: import paths and the tiny CLIP checkpoint fixture."""

from __future__ import annotations

import os
import sys

import pytest

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(TESTS_DIR)
for _path in (REPO_ROOT, TESTS_DIR):  # `import clip`, `from tiny_clip import ...` from any test dir
    if _path not in sys.path:
        sys.path.insert(0, _path)


@pytest.fixture(scope="session")
def tiny_clip_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Path of the tiny ViT CLIP (seed 0) saved as a plain OpenAI-format state dict."""
    from tiny_clip import save_tiny_clip

    return save_tiny_clip(tmp_path_factory.mktemp("tiny_clip") / "tiny_vit.pt")
