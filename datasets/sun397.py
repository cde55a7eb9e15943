"""SUN397 (397 scene classes): ``sun397/SUN397/<letter>/<class>/...`` + ``ClassName.txt`` +
``Training_01.txt`` / ``Testing_01.txt`` + ``split_zhou_SUN397.json``."""

import os

from dassl.data.datasets import DATASET_REGISTRY, DatasetBase, Datum

from .base import dataset_root, finish_splits, load_or_build_split, require, split_trainval

SPLIT_GDOWN_ID = "1y2RD81BYuiyvebdN-JymPfyWYcd8_MUq"


@DATASET_REGISTRY.register()
class SUN397(DatasetBase):
    """Without the split file, ``Training_01.txt`` is split 80/20 into train/val and
    ``Testing_01.txt`` is the test set. Labels follow ``ClassName.txt``; a class
    ``/a/abbey`` is named "abbey" and ``/b/bakery/shop`` "shop bakery" (the letter dropped, the
    rest reversed so that words like indoor/outdoor come first)."""

    dataset_dir = "sun397"

    def __init__(self, cfg):
        self.dataset_dir = os.path.join(dataset_root(cfg), self.dataset_dir)
        self.image_dir = require(os.path.join(self.dataset_dir, "SUN397"), "SUN397 images")
        self.split_path = os.path.join(self.dataset_dir, "split_zhou_SUN397.json")
        self.split_fewshot_dir = os.path.join(self.dataset_dir, "split_fewshot")

        def build():
            classname_file = os.path.join(self.dataset_dir, "ClassName.txt")
            with open(require(classname_file, "SUN397 class list")) as f:
                classnames = [line.strip()[1:] for line in f if line.strip()]  # drop leading /
            cname2lab = {c: i for i, c in enumerate(classnames)}
            trainval = self.read_data(cname2lab, "Training_01.txt")
            test = self.read_data(cname2lab, "Testing_01.txt")
            train, val = split_trainval(trainval)
            return train, val, test

        train, val, test = load_or_build_split(
            self.split_path, self.image_dir, build, SPLIT_GDOWN_ID
        )
        train, val, test = finish_splits(cfg, self.dataset_dir, train, val, test)
        super().__init__(train_x=train, val=val, test=test)

    def read_data(self, cname2lab: dict[str, int], text_file: str) -> list[Datum]:
        """Parse the image list ``text_file`` (lines ``/a/abbey/sun_xxx.jpg``)."""
        text_file = require(os.path.join(self.dataset_dir, text_file), "SUN397 partition file")
        items = []
        with open(text_file) as f:
            for line in f:
                imname = line.strip()[1:]  # drop leading /
                if not imname:
                    continue
                folder = os.path.dirname(imname)
                if folder not in cname2lab:
                    raise ValueError(f"{text_file}: class /{folder} is not in ClassName.txt.")
                classname = " ".join(folder.split("/")[1:][::-1])
                impath = os.path.join(self.image_dir, imname)
                items.append(Datum(impath=impath, label=cname2lab[folder], classname=classname))
        return items
