"""Demo (40 classes, generated): ``demo/images/<class>/`` + ``split_zhou_Demo.json``.

The embedded demo world of ``demo/world.py``: 32 x 32 images of coloured, textured squares
("red striped square"), all under yellow light. Nothing to download: the dataset is generated
deterministically under ``<DATASET.ROOT>/demo`` the first time it is used (about two seconds),
atomically, so an interrupted generation never leaves a partial folder.
Labels 0-19 (base) and 20-39 (new) share every colour and texture but no colour-texture pair.
"""

import os

from dassl.data.datasets import DATASET_REGISTRY, DatasetBase
from demo.world import DATASET_DIR, SPLIT_FILE, write_demo_dataset

from .base import dataset_root, finish_splits, read_split


@DATASET_REGISTRY.register()
class Demo(DatasetBase):
    """24 train, 8 val and 20 test images per class (``demo.world.DEMO_SPLIT_SIZES``)."""

    dataset_dir = DATASET_DIR

    def __init__(self, cfg):
        self.dataset_dir = os.path.join(dataset_root(cfg), self.dataset_dir)
        self.image_dir = os.path.join(self.dataset_dir, "images")
        self.split_path = os.path.join(self.dataset_dir, SPLIT_FILE)
        self.split_fewshot_dir = os.path.join(self.dataset_dir, "split_fewshot")
        if not os.path.exists(self.split_path):
            print(f"Generating the Demo dataset in {self.dataset_dir}")
            write_demo_dataset(self.dataset_dir)

        train, val, test = read_split(self.split_path, self.image_dir)
        train, val, test = finish_splits(cfg, self.dataset_dir, train, val, test)
        super().__init__(train_x=train, val=val, test=test)
