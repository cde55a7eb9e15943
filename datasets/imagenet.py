"""ImageNet (1000 classes): ``imagenet/images/{train,val}/<wnid>/`` + ``classnames.txt``.

Listing 1.28M files takes minutes on a network file system, so the parsed lists are cached in
``imagenet/preprocessed.pkl`` as CoOp does: ``{"train": [Datum], "test": [Datum]}``, the format
CoOp reads and writes, plus a ``"fingerprint"`` that CoOp ignores: the size and modification time
of ``classnames.txt`` and the modification time of every class folder (adding or removing an image
changes its folder's). A later run checks about 2,000 folders instead of 1.28M images and relists
only when something changed. A cache written by CoOp has no fingerprint; it is used when all its
images lie under this ``images/`` folder. The cache is read through the restricted unpickler of
``datasets.base`` and written atomically.
"""

import os
from collections import OrderedDict
from typing import Any

from dassl.data.datasets import DATASET_REGISTRY, DatasetBase, Datum

from .base import (
    DataCacheError,
    dataset_root,
    datums_from_cache,
    dump_pickle,
    gdown_hint,
    load_fewshot,
    load_pickle,
    read_classnames,
    require,
)

CLASSNAMES_GDOWN_ID = "1-61f_ol77pEVuJ7hQ-U5WKJNB9jUuGSI"


def require_classnames(dataset_dir: str) -> OrderedDict[str, str]:
    """Read ``<dataset_dir>/classnames.txt`` (CoOp's file, ``<wnid> <class name>`` per line)."""
    text_file = os.path.join(dataset_dir, "classnames.txt")
    require(
        text_file,
        "ImageNet class-name file",
        f"Get CoOp's copy with: {gdown_hint(CLASSNAMES_GDOWN_ID, text_file)}",
    )
    return read_classnames(text_file)


def read_class_folders(
    image_dir: str, folders: list[str], classnames: dict[str, str], labels: list[int]
) -> list[Datum]:
    """Datums for ``image_dir/<folder>/<image>``; ``folders[i]`` gets label ``labels[i]`` and
    the class name of ``classnames[wnid]``. Images are listed in sorted order, without a stat."""
    items = []
    for folder, label in zip(folders, labels):
        folder_dir = os.path.join(image_dir, folder)
        imnames = sorted(f for f in os.listdir(folder_dir) if not f.startswith("."))
        classname = classnames[folder]
        items.extend(
            Datum(impath=os.path.join(folder_dir, im), label=label, classname=classname)
            for im in imnames
        )
    return items


def read_variant_test_set(dataset_dir: str, image_subdir: str, what: str) -> tuple[str, list]:
    """An ImageNet test-only variant laid out as ``<dataset_dir>/<image_subdir>/<wnid>/<image>``
    plus ``classnames.txt``: labels 0..k-1 follow the sorted WordNet-id folders present (the
    1000 classes of ImageNet-Sketch, the 200-class subsets of ImageNet-A and -R).
    Returns (image folder, Datums)."""
    image_dir = require(os.path.join(dataset_dir, image_subdir), what)
    classnames = require_classnames(dataset_dir)
    text_file = os.path.join(dataset_dir, "classnames.txt")
    folders = wnid_folders(image_dir, classnames, text_file)
    labels = list(range(len(folders)))
    return image_dir, read_class_folders(image_dir, folders, classnames, labels)


def wnid_folders(image_dir: str, classnames: dict[str, str], text_file: str) -> list[str]:
    """Sorted class folders of ``image_dir``; each must be a key of ``classnames``."""
    with os.scandir(image_dir) as it:
        folders = sorted(e.name for e in it if e.is_dir() and not e.name.startswith("."))
    unknown = [f for f in folders if f not in classnames]
    if unknown:
        raise ValueError(
            f"Class folders {unknown[:5]} of {image_dir} are not in {text_file}; the folders "
            f"must be WordNet ids listed in CoOp's classnames.txt."
        )
    return folders


@DATASET_REGISTRY.register()
class ImageNet(DatasetBase):
    """Train on ``images/train``; ``images/val`` (class folders) is both the val and test set.
    Labels follow the sorted WordNet-id folders; names come from ``classnames.txt``."""

    dataset_dir = "imagenet"

    def __init__(self, cfg):
        self.dataset_dir = os.path.join(dataset_root(cfg), self.dataset_dir)
        self.image_dir = require(os.path.join(self.dataset_dir, "images"), "ImageNet images")
        self.preprocessed = os.path.join(self.dataset_dir, "preprocessed.pkl")
        self.split_fewshot_dir = os.path.join(self.dataset_dir, "split_fewshot")

        train, test = self.load_lists()
        train, _ = load_fewshot(self.dataset_dir, train, None, cfg.DATASET.NUM_SHOTS, cfg.SEED)
        train, test = self.subsample_classes(train, test, subsample=cfg.DATASET.SUBSAMPLE_CLASSES)
        super().__init__(train_x=train, val=test, test=test)

    def fingerprint(self) -> dict[str, Any]:
        """What the cached lists depend on: ``classnames.txt`` and the class folders' mtimes."""
        stat = os.stat(os.path.join(self.dataset_dir, "classnames.txt"))
        fingerprint: dict[str, Any] = {"classnames.txt": (stat.st_size, stat.st_mtime_ns)}
        for split in ("train", "val"):
            split_dir = os.path.join(self.image_dir, split)
            with os.scandir(split_dir) as it:
                fingerprint[split] = sorted(
                    (e.name, e.stat().st_mtime_ns) for e in it if e.is_dir()
                )
        return fingerprint

    def load_lists(self) -> tuple[list[Datum], list[Datum]]:
        """(train, test) from ``preprocessed.pkl`` when it is up to date, else from the folders."""
        classnames = require_classnames(self.dataset_dir)
        for split in ("train", "val"):
            require(os.path.join(self.image_dir, split), f"ImageNet {split} folder")
        fingerprint = self.fingerprint()
        if os.path.exists(self.preprocessed):
            lists = self.read_preprocessed(fingerprint)
            if lists is not None:
                return lists

        text_file = os.path.join(self.dataset_dir, "classnames.txt")
        train_dir, val_dir = (os.path.join(self.image_dir, split) for split in ("train", "val"))
        folders = wnid_folders(train_dir, classnames, text_file)
        val_folders = wnid_folders(val_dir, classnames, text_file)
        if val_folders != folders:  # labels are folder positions: both must list the same classes
            differ = sorted(set(folders) ^ set(val_folders))
            raise ValueError(
                f"{train_dir} and {val_dir} must hold the same class folders; {differ[:5]} are "
                f"in only one of them. Put the validation images into class folders (see "
                f"DATASETS.md)."
            )
        labels = list(range(len(folders)))
        train = read_class_folders(train_dir, folders, classnames, labels)
        test = read_class_folders(val_dir, folders, classnames, labels)
        print(f"Saving the parsed ImageNet lists to {self.preprocessed}")
        dump_pickle({"train": train, "test": test, "fingerprint": fingerprint}, self.preprocessed)
        return train, test

    def read_preprocessed(
        self, fingerprint: dict[str, Any]
    ) -> tuple[list[Datum], list[Datum]] | None:
        """The cached lists, or ``None`` (with the reason printed) when they are out of date."""
        data = load_pickle(self.preprocessed)
        if not isinstance(data, dict) or not {"train", "test"} <= set(data):
            raise DataCacheError(
                f"{self.preprocessed} is not an ImageNet list cache (a dict with 'train' and "
                f"'test'); delete it and rerun to rebuild it."
            )
        if "fingerprint" in data:
            if data["fingerprint"] != fingerprint:
                print(f"{self.preprocessed} is out of date (the folders changed): relisting")
                return None
        prefix = self.image_dir + os.sep
        train = datums_from_cache(self.preprocessed, data["train"])
        test = datums_from_cache(self.preprocessed, data["test"])
        if not all(d.impath.startswith(prefix) for d in train + test):
            print(f"{self.preprocessed} lists images outside {self.image_dir}: relisting")
            return None
        print(f"Loaded the parsed ImageNet lists from {self.preprocessed}")
        return train, test
