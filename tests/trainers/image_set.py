"""A tiny image dataset for the trainer tests, shared by every tests/trainers/test_*.py.

Import it as ``from image_set import ...`` (tests/trainers/conftest.py puts this folder on sys.path;
there is deliberately no ``tests/trainers/__init__.py``, which would shadow the ``trainers`` package).

- :func:`write_images`: ``per_class`` seeded-noise 32 x 32 PNGs per class, written once.
- :func:`register_dataset`: a ``DatasetBase`` named ``name`` over those images (train = val = test,
  then ``DATASET.SUBSAMPLE_CLASSES``), registered once in ``DATASET_REGISTRY``.
- :func:`trainer_cfg`: ``train.py``'s config tree, a trainer config file, the settings that make
  the tests exact and fast (32 px, normalise only, CPU, no workers), then the caller's overrides.
- :func:`load_images`: the images normalised exactly as the test loader gives them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from yacs.config import CfgNode

REPO = Path(__file__).resolve().parents[2]
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
PER_CLASS = 2
_REGISTERED: dict[str, list[str]] = {}  # dataset name -> class names registered by this module


def write_images(root: Path, n_classes: int, per_class: int = PER_CLASS) -> list[tuple[str, int]]:
    """``per_class`` 32 x 32 RGB PNGs of seeded noise per class (``<label>_<k>.png`` under
    ``root``, written once): [(path, label)] ordered by label, then k."""
    rng = np.random.default_rng(0)
    items = []
    for label in range(n_classes):
        for k in range(per_class):
            path = root / f"{label}_{k}.png"
            pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)  # drawn even if on disk
            if not path.exists():
                root.mkdir(parents=True, exist_ok=True)
                Image.fromarray(pixels).save(path)
            items.append((str(path), label))
    return items


def register_dataset(name: str, classnames: list[str], per_class: int = PER_CLASS) -> None:
    """Register ``name`` in ``DATASET_REGISTRY``: :func:`write_images` under ``DATASET.ROOT`` with
    ``classnames[label]`` as class names; train = val = test, then base/new subsampling. Calling
    it again with the same class names is a no-op."""
    from dassl.data.datasets import DATASET_REGISTRY, DatasetBase, Datum

    if name in _REGISTERED:
        if _REGISTERED[name] != list(classnames):
            raise ValueError(
                f"tests/trainers/image_set.py: dataset '{name}' is already registered with "
                f"classes {_REGISTERED[name]}, not {list(classnames)}; use another name."
            )
        return
    names = list(classnames)

    class TestImages(DatasetBase):
        def __init__(self, cfg):
            items = [
                Datum(impath=path, label=label, classname=names[label])
                for path, label in write_images(Path(cfg.DATASET.ROOT), len(names), per_class)
            ]
            train, val, test = self.subsample_classes(
                items, items, items, subsample=cfg.DATASET.SUBSAMPLE_CLASSES
            )
            super().__init__(train_x=train, val=val, test=test)

    TestImages.__name__ = TestImages.__qualname__ = name  # the registry's key
    TestImages.__doc__ = f"{per_class} images per class of {names}; train = val = test."
    DATASET_REGISTRY.register(TestImages)
    _REGISTERED[name] = names


def trainer_cfg(
    config_file: str,
    dataset: str,
    root: Path,
    backbone: str,
    overrides: dict[str, Any] | None = None,
) -> CfgNode:
    """The config a trainer test runs with.

    ``config_file`` (relative to the repository root, e.g. ``configs/trainers/CoOp/
    vit_b16_ep50.yaml``) is merged into ``train.py``'s tree (every method's node); then the
    registered ``dataset`` with images under ``root/data``, outputs under ``root/out``, the CLIP
    file ``backbone``, 32 x 32 inputs that are only normalised (deterministic, so references are
    exact), no loader workers, the CPU; then ``overrides`` ({"TRAINER.COOP.PREC": "fp32", ...}),
    type-checked by yacs like command-line options.
    """
    from dassl.config import get_cfg_default
    from train import extend_cfg

    cfg = get_cfg_default()
    extend_cfg(cfg)
    cfg.merge_from_file(str(REPO / config_file))
    settings = {
        "DATASET.NAME": dataset,
        "DATASET.ROOT": str(root / "data"),
        "OUTPUT_DIR": str(root / "out"),
        "MODEL.BACKBONE.NAME": backbone,
        "INPUT.SIZE": (32, 32),
        "INPUT.TRANSFORMS": ["normalize"],
        "DATALOADER.NUM_WORKERS": 0,
        "USE_CUDA": False,
        "VERBOSE": False,
        **(overrides or {}),
    }
    cfg.merge_from_list([item for pair in settings.items() for item in pair])
    return cfg


def load_images(
    root: Path, n_classes: int, labels: list[int] | None = None, per_class: int = PER_CLASS
) -> tuple[torch.Tensor, torch.Tensor]:
    """The images under ``root/data`` of ``labels`` (all when None), normalised with CLIP's
    mean and std like the test loader of :func:`trainer_cfg` (32 px images: the resize and crop
    are identities): images (n, 3, 32, 32) and their original labels (n,), in file order."""
    mean = torch.tensor(CLIP_MEAN).view(3, 1, 1)
    std = torch.tensor(CLIP_STD).view(3, 1, 1)
    items = [
        (path, label)
        for path, label in write_images(root / "data", n_classes, per_class)
        if labels is None or label in labels
    ]
    images = [
        (torch.from_numpy(np.array(Image.open(path))).permute(2, 0, 1).float() / 255 - mean) / std
        for path, _ in items
    ]
    return torch.stack(images), torch.tensor([label for _, label in items])
