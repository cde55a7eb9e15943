"""Stanford Cars (196 classes): ``stanford_cars/cars_train``, ``cars_test``, ``devkit/`` +
``cars_test_annos_withlabels.mat`` + ``split_zhou_StanfordCars.json``."""

import os

from scipy.io import loadmat

from dassl.data.datasets import DATASET_REGISTRY, DatasetBase, Datum

from .base import dataset_root, finish_splits, load_or_build_split, require, split_trainval

SPLIT_GDOWN_ID = "1ObCFbaAgVu0I-k_Au-gIUcefirdAuizT"


@DATASET_REGISTRY.register()
class StanfordCars(DatasetBase):
    """Split-file paths are relative to ``stanford_cars/`` (``cars_train/00001.jpg``). Without
    the split file, ``devkit/cars_train_annos.mat`` is split 80/20 into train/val and
    ``cars_test_annos_withlabels.mat`` is the test set; class names ``"<year> <make> <model>"``
    come from ``devkit/cars_meta.mat`` (whose names end with the year)."""

    dataset_dir = "stanford_cars"

    def __init__(self, cfg):
        self.dataset_dir = require(
            os.path.join(dataset_root(cfg), self.dataset_dir), "StanfordCars folder"
        )
        self.split_path = os.path.join(self.dataset_dir, "split_zhou_StanfordCars.json")
        self.split_fewshot_dir = os.path.join(self.dataset_dir, "split_fewshot")

        def build():
            trainval_file = os.path.join(self.dataset_dir, "devkit", "cars_train_annos.mat")
            test_file = os.path.join(self.dataset_dir, "cars_test_annos_withlabels.mat")
            meta_file = os.path.join(self.dataset_dir, "devkit", "cars_meta.mat")
            trainval = self.read_data("cars_train", trainval_file, meta_file)
            test = self.read_data("cars_test", test_file, meta_file)
            train, val = split_trainval(trainval)
            return train, val, test

        train, val, test = load_or_build_split(
            self.split_path, self.dataset_dir, build, SPLIT_GDOWN_ID
        )
        train, val, test = finish_splits(cfg, self.dataset_dir, train, val, test)
        super().__init__(train_x=train, val=val, test=test)

    def read_data(self, image_dir: str, anno_file: str, meta_file: str) -> list[Datum]:
        """Items of an annotation ``.mat`` (fields ``fname``, ``class`` 1-based)."""
        require(os.path.join(self.dataset_dir, image_dir), "StanfordCars image folder")
        annos = loadmat(require(anno_file, "StanfordCars annotation file"))["annotations"][0]
        names = loadmat(require(meta_file, "StanfordCars devkit meta file"))["class_names"][0]
        items = []
        for anno in annos:
            impath = os.path.join(self.dataset_dir, image_dir, str(anno["fname"][0]))
            label = int(anno["class"][0, 0]) - 1
            words = str(names[label][0]).split(" ")
            year = words.pop(-1)
            classname = " ".join([year] + words)
            items.append(Datum(impath=impath, label=label, classname=classname))
        return items
