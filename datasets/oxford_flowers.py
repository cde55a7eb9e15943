"""Oxford Flowers 102: ``oxford_flowers/jpg`` + ``imagelabels.mat`` + ``cat_to_name.json`` +
``split_zhou_OxfordFlowers.json``."""

import os
import random
from collections import defaultdict

from scipy.io import loadmat

from dassl.data.datasets import DATASET_REGISTRY, DatasetBase, Datum
from dassl.utils import read_json

from .base import dataset_root, finish_splits, load_or_build_split, require

SPLIT_GDOWN_ID = "1Pp0sRXzZFZq15zVOzKjKBu4A9i01nozT"
CAT_TO_NAME_GDOWN_ID = "1AkcxCXeK_RCGCEC_GvmWxjcjaNhu-at0"


@DATASET_REGISTRY.register()
class OxfordFlowers(DatasetBase):
    """Without the split file, each class of ``imagelabels.mat`` is split 50/20/30 into
    train/val/test; class names come from ``cat_to_name.json`` (1-based label -> name)."""

    dataset_dir = "oxford_flowers"

    def __init__(self, cfg):
        self.dataset_dir = os.path.join(dataset_root(cfg), self.dataset_dir)
        self.image_dir = require(os.path.join(self.dataset_dir, "jpg"), "OxfordFlowers images")
        self.label_file = os.path.join(self.dataset_dir, "imagelabels.mat")
        self.lab2cname_file = os.path.join(self.dataset_dir, "cat_to_name.json")
        self.split_path = os.path.join(self.dataset_dir, "split_zhou_OxfordFlowers.json")
        self.split_fewshot_dir = os.path.join(self.dataset_dir, "split_fewshot")

        train, val, test = load_or_build_split(
            self.split_path, self.image_dir, self.read_data, SPLIT_GDOWN_ID
        )
        train, val, test = finish_splits(cfg, self.dataset_dir, train, val, test)
        super().__init__(train_x=train, val=val, test=test)

    def read_data(self) -> tuple[list[Datum], list[Datum], list[Datum]]:
        """Split ``image_{i:05d}.jpg`` (i from 1, labels from ``imagelabels.mat``) per class."""
        require(self.label_file, "OxfordFlowers label file")
        require(
            self.lab2cname_file,
            "OxfordFlowers class-name file",
            f"Get it with: pip install gdown && gdown {CAT_TO_NAME_GDOWN_ID} "
            f"-O {self.lab2cname_file}",
        )
        tracker: defaultdict[int, list[str]] = defaultdict(list)
        for i, label in enumerate(loadmat(self.label_file)["labels"][0]):
            impath = os.path.join(self.image_dir, f"image_{i + 1:05d}.jpg")
            tracker[int(label)].append(impath)

        print("Splitting data into 50% train, 20% val, and 30% test")
        lab2cname = read_json(self.lab2cname_file)
        train, val, test = [], [], []
        for label, impaths in tracker.items():
            random.shuffle(impaths)
            n_total = len(impaths)
            n_train = round(n_total * 0.5)
            n_val = round(n_total * 0.2)
            if not (n_train > 0 and n_val > 0 and n_total - n_train - n_val > 0):
                raise ValueError(
                    f"Class {label} of {self.label_file} has {n_total} images, too few for a "
                    f"50/20/30 train/val/test split."
                )
            cname = lab2cname[str(label)]

            def _collate(ims: list[str], y: int = label - 1, c: str = cname) -> list[Datum]:
                return [Datum(impath=im, label=y, classname=c) for im in ims]

            train.extend(_collate(impaths[:n_train]))
            val.extend(_collate(impaths[n_train : n_train + n_val]))
            test.extend(_collate(impaths[n_train + n_val :]))
        return train, val, test
