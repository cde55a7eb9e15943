"""ImageNet-A (test only): ``imagenet-adversarial/imagenet-a/<wnid>/``
+ ``classnames.txt`` (a copy of ImageNet's)."""

import os

from dassl.data.datasets import DATASET_REGISTRY, DatasetBase

from .base import dataset_root
from .imagenet import read_variant_test_set


@DATASET_REGISTRY.register()
class ImageNetA(DatasetBase):
    """ImageNet-A's 200-class subset: labels 0-199 follow the sorted WordNet-id folders present
    (``README.txt`` is ignored); names come from ``classnames.txt``. ``NUM_SHOTS`` and
    ``SUBSAMPLE_CLASSES`` do not apply."""

    dataset_dir = "imagenet-adversarial"

    def __init__(self, cfg):
        self.dataset_dir = os.path.join(dataset_root(cfg), self.dataset_dir)
        self.image_dir, data = read_variant_test_set(
            self.dataset_dir, "imagenet-a", "ImageNet-A images"
        )
        super().__init__(train_x=data, test=data)
