"""Caltech101 (100 classes): ``caltech-101/101_ObjectCategories/<class>/`` +
``split_zhou_Caltech101.json``."""

import os

from dassl.data.datasets import DATASET_REGISTRY, DatasetBase

from .base import (
    dataset_root,
    finish_splits,
    load_or_build_split,
    read_and_split_data,
    require,
)

SPLIT_GDOWN_ID = "1hyarUivQE36mY6jSomru6Fjd-JzwcCzN"

IGNORED = ["BACKGROUND_Google", "Faces_easy"]
NEW_CNAMES = {
    "airplanes": "airplane",
    "Faces": "face",
    "Leopards": "leopard",
    "Motorbikes": "motorbike",
}


@DATASET_REGISTRY.register()
class Caltech101(DatasetBase):
    """Without the split file, the folders minus ``IGNORED`` are split 50/20/30 per class."""

    dataset_dir = "caltech-101"

    def __init__(self, cfg):
        self.dataset_dir = os.path.join(dataset_root(cfg), self.dataset_dir)
        self.image_dir = require(
            os.path.join(self.dataset_dir, "101_ObjectCategories"), "Caltech101 images"
        )
        self.split_path = os.path.join(self.dataset_dir, "split_zhou_Caltech101.json")
        self.split_fewshot_dir = os.path.join(self.dataset_dir, "split_fewshot")

        train, val, test = load_or_build_split(
            self.split_path,
            self.image_dir,
            lambda: read_and_split_data(self.image_dir, ignored=IGNORED, new_cnames=NEW_CNAMES),
            SPLIT_GDOWN_ID,
        )
        train, val, test = finish_splits(cfg, self.dataset_dir, train, val, test)
        super().__init__(train_x=train, val=val, test=test)
