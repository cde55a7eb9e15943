"""Oxford-IIIT Pets (37 breeds): ``oxford_pets/images`` + ``annotations`` + ``split_zhou_OxfordPets.json``."""

import os

from dassl.data.datasets import DATASET_REGISTRY, DatasetBase, Datum

from .base import dataset_root, finish_splits, load_or_build_split, require, split_trainval

SPLIT_GDOWN_ID = "1501r8Ber4nNKvmlFVQZ8SeUHTcdTTEqs"


@DATASET_REGISTRY.register()
class OxfordPets(DatasetBase):
    """Without the split file, ``annotations/trainval.txt`` is split 80/20 into train/val and
    ``annotations/test.txt`` is the test set; class names are the lower-cased breeds."""

    dataset_dir = "oxford_pets"

    def __init__(self, cfg):
        self.dataset_dir = os.path.join(dataset_root(cfg), self.dataset_dir)
        self.image_dir = require(os.path.join(self.dataset_dir, "images"), "OxfordPets images")
        self.anno_dir = os.path.join(self.dataset_dir, "annotations")
        self.split_path = os.path.join(self.dataset_dir, "split_zhou_OxfordPets.json")
        self.split_fewshot_dir = os.path.join(self.dataset_dir, "split_fewshot")

        def build():
            trainval = self.read_data("trainval.txt")
            test = self.read_data("test.txt")
            train, val = split_trainval(trainval)
            return train, val, test

        train, val, test = load_or_build_split(
            self.split_path, self.image_dir, build, SPLIT_GDOWN_ID
        )
        train, val, test = finish_splits(cfg, self.dataset_dir, train, val, test)
        super().__init__(train_x=train, val=val, test=test)

    def read_data(self, split_file: str) -> list[Datum]:
        """Parse ``annotations/<split_file>`` (lines ``<image> <class id> <species> <breed id>``)."""
        filepath = require(os.path.join(self.anno_dir, split_file), "OxfordPets annotation file")
        items = []
        with open(filepath) as f:
            for line in f:
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                imname, label, _species, _breed_id = line.split(" ")
                breed = "_".join(imname.split("_")[:-1]).lower()
                impath = os.path.join(self.image_dir, imname + ".jpg")
                items.append(Datum(impath=impath, label=int(label) - 1, classname=breed))
        return items
