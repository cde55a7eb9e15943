"""ImageNet-Sketch (test only): ``imagenet-sketch/images/<wnid>/``
+ ``classnames.txt`` (a copy of ImageNet's)."""

import os

from dassl.data.datasets import DATASET_REGISTRY, DatasetBase

from .base import dataset_root
from .imagenet import read_variant_test_set


@DATASET_REGISTRY.register()
class ImageNetSketch(DatasetBase):
    """Labels 0-999 follow the sorted WordNet-id folders; names come from ``classnames.txt``.
    ``NUM_SHOTS`` and ``SUBSAMPLE_CLASSES`` do not apply."""

    dataset_dir = "imagenet-sketch"

    def __init__(self, cfg):
        self.dataset_dir = os.path.join(dataset_root(cfg), self.dataset_dir)
        self.image_dir, data = read_variant_test_set(
            self.dataset_dir, "images", "ImageNet-Sketch images"
        )
        super().__init__(train_x=data, test=data)
