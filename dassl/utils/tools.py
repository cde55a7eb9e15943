"""Small helpers: files, JSON, images, seeds, environment, name suggestions."""

import difflib
import json
import os
import os.path as osp
import random
import tempfile
import warnings
from collections.abc import Callable, Sequence
from typing import Any, BinaryIO

import numpy as np
import PIL
import torch
from PIL import Image

__all__ = [
    "mkdir_if_missing",
    "check_isfile",
    "read_json",
    "write_json",
    "set_random_seed",
    "read_image",
    "collect_env_info",
    "listdir_nohidden",
    "get_most_similar_str_to_a_from_b",
    "check_availability",
    "atomic_write",
]


def mkdir_if_missing(dirname: str) -> None:
    """Create ``dirname`` (and its parents) unless it exists; "" means the current directory."""
    if dirname:
        os.makedirs(dirname, exist_ok=True)


def check_isfile(fpath: str) -> bool:
    """Return whether ``fpath`` is a file, warning when it is not."""
    isfile = osp.isfile(fpath)
    if not isfile:
        warnings.warn(f'No file found at "{fpath}"', stacklevel=2)
    return isfile


def read_json(fpath: str) -> Any:
    """Read a JSON file."""
    with open(fpath) as f:
        return json.load(f)


def atomic_write(fpath: str, write_fn: Callable[[BinaryIO], Any]) -> None:
    """Write a file atomically: ``write_fn(f)`` writes to a temporary binary file in the same
    folder, which is flushed to disk and renamed to ``fpath``. A crash leaves either the old file
    or the new one, never a truncated one."""
    dirname = osp.dirname(osp.abspath(fpath))
    mkdir_if_missing(dirname)
    fd, tmp_path = tempfile.mkstemp(dir=dirname, prefix=f".{osp.basename(fpath)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write_fn(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_path, fpath)
    except BaseException:
        if osp.exists(tmp_path):
            os.remove(tmp_path)
        raise


def write_json(obj: Any, fpath: str) -> None:
    """Write ``obj`` as indented JSON to ``fpath`` atomically (parent folders are created)."""
    text = json.dumps(obj, indent=4, separators=(",", ": "))
    atomic_write(fpath, lambda f: f.write(text.encode("utf-8")))


def set_random_seed(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and every GPU)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


def read_image(path: str, num_tries: int = 3) -> Image.Image:
    """Read an image as RGB with PIL.

    Raises:
        FileNotFoundError: no file at ``path``.
        OSError: the file cannot be decoded after ``num_tries`` attempts (a corrupt, truncated or
            non-image file); the message names the path.
    """
    if not osp.exists(path):
        raise FileNotFoundError(
            f'No image file at "{path}". Check DATASET.ROOT and that the dataset is fully '
            "extracted (see the dataset's preparation instructions)."
        )
    error = None
    for _ in range(num_tries):
        try:
            with Image.open(path) as img:
                return img.convert("RGB")
        except OSError as e:  # also covers PIL.UnidentifiedImageError; retried for flaky IO
            error = e
    raise OSError(
        f'Cannot read image "{path}": {error}. The file is probably corrupt or truncated; '
        "replace it with a good copy from the original dataset archive."
    ) from error


def collect_env_info() -> str:
    """Return a description of the environment (PyTorch's ``collect_env`` plus Pillow's version)."""
    from torch.utils.collect_env import get_pretty_env_info

    env_str = get_pretty_env_info()
    env_str += f"\n        Pillow ({PIL.__version__})"
    return env_str


def listdir_nohidden(path: str, sort: bool = False) -> list[str]:
    """List the entries of ``path`` whose names do not start with a dot."""
    items = [f for f in os.listdir(path) if not f.startswith(".")]
    if sort:
        items.sort()
    return items


def get_most_similar_str_to_a_from_b(a: str, b: Sequence[str]) -> str | None:
    """Return the string of ``b`` most similar to ``a`` (None when ``b`` is empty)."""
    best, highest_sim = None, -1.0
    for candidate in b:
        sim = difflib.SequenceMatcher(None, a, candidate).ratio()
        if sim > highest_sim:
            best, highest_sim = candidate, sim
    return best


def check_availability(requested: str, available: Sequence[str]) -> None:
    """Raise a ``ValueError`` with a "did you mean" suggestion unless ``requested`` is available."""
    if requested not in available and not available:
        raise ValueError(
            f"[{requested}] is requested but nothing is registered yet; import the package that "
            "registers them first (e.g. `import datasets, trainers`)"
        )
    if requested not in available:
        psb_ans = get_most_similar_str_to_a_from_b(requested, available)
        raise ValueError(
            f"The requested one is expected to belong to {sorted(available)}, but got "
            f"[{requested}] (do you mean [{psb_ans}]?)"
        )
