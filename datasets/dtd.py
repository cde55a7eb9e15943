"""Describable Textures (47 classes): ``dtd/images/<class>/`` + ``split_zhou_DescribableTextures.json``."""

import os

from dassl.data.datasets import DATASET_REGISTRY, DatasetBase

from .base import (
    dataset_root,
    finish_splits,
    load_or_build_split,
    read_and_split_data,
    require,
)

SPLIT_GDOWN_ID = "1u3_QfB467jqHgNXC00UIzbLZRQCg2S7x"


@DATASET_REGISTRY.register()
class DescribableTextures(DatasetBase):
    """Without the split file, each class folder is split 50/20/30 into train/val/test."""

    dataset_dir = "dtd"

    def __init__(self, cfg):
        self.dataset_dir = os.path.join(dataset_root(cfg), self.dataset_dir)
        self.image_dir = require(os.path.join(self.dataset_dir, "images"), "DTD images")
        self.split_path = os.path.join(self.dataset_dir, "split_zhou_DescribableTextures.json")
        self.split_fewshot_dir = os.path.join(self.dataset_dir, "split_fewshot")

        train, val, test = load_or_build_split(
            self.split_path,
            self.image_dir,
            lambda: read_and_split_data(self.image_dir),
            SPLIT_GDOWN_ID,
        )
        train, val, test = finish_splits(cfg, self.dataset_dir, train, val, test)
        super().__init__(train_x=train, val=val, test=test)
