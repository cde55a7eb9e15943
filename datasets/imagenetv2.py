"""ImageNetV2 (test only): ``imagenetv2/imagenetv2-matched-frequency-format-val/<label>/`` +
``classnames.txt`` (a copy of ImageNet's)."""

import os

from dassl.data.datasets import DATASET_REGISTRY, DatasetBase

from .base import dataset_root, require
from .imagenet import read_class_folders, require_classnames


@DATASET_REGISTRY.register()
class ImageNetV2(DatasetBase):
    """Folders are named by ImageNet label (``0`` to ``999``); folder ``i`` is the ``i``-th
    class of ``classnames.txt``. ``NUM_SHOTS`` and ``SUBSAMPLE_CLASSES`` do not apply."""

    dataset_dir = "imagenetv2"

    def __init__(self, cfg):
        self.dataset_dir = os.path.join(dataset_root(cfg), self.dataset_dir)
        self.image_dir = require(
            os.path.join(self.dataset_dir, "imagenetv2-matched-frequency-format-val"),
            "ImageNetV2 images",
        )
        classnames = require_classnames(self.dataset_dir)
        by_label = {str(label): cname for label, cname in enumerate(classnames.values())}
        labels = list(range(len(by_label)))
        for label in labels:
            require(os.path.join(self.image_dir, str(label)), "ImageNetV2 class folder")
        data = read_class_folders(self.image_dir, [str(y) for y in labels], by_label, labels)
        super().__init__(train_x=data, test=data)
