"""ImageNet-Sketch (test only): ``imagenet-sketch/images/<wnid>/``
+ ``classnames.txt`` (a copy of ImageNet's)."""

import os

from dassl.data.datasets import DATASET_REGISTRY, DatasetBase

from .base import dataset_root, require
from .imagenet import read_class_folders, require_classnames, wnid_folders


@DATASET_REGISTRY.register()
class ImageNetSketch(DatasetBase):
    """Labels 0-999 follow the sorted WordNet-id folders; names come from ``classnames.txt``.
    ``NUM_SHOTS`` and ``SUBSAMPLE_CLASSES`` do not apply."""

    dataset_dir = "imagenet-sketch"

    def __init__(self, cfg):
        self.dataset_dir = os.path.join(dataset_root(cfg), self.dataset_dir)
        self.image_dir = require(os.path.join(self.dataset_dir, "images"), "ImageNet-Sketch images")
        classnames = require_classnames(self.dataset_dir)
        text_file = os.path.join(self.dataset_dir, "classnames.txt")
        folders = wnid_folders(self.image_dir, classnames, text_file)
        labels = list(range(len(folders)))
        data = read_class_folders(self.image_dir, folders, classnames, labels)
        super().__init__(train_x=data, test=data)
