"""A plain OpenAI CLIP (model, loader, tokenizer) with one per-block hook for prompt methods."""

from .clip import _MODELS, _download, available_models, load, tokenize
from .model import build_model

__all__ = ["available_models", "load", "tokenize", "build_model", "_MODELS", "_download"]
