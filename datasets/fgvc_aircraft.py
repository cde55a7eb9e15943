"""FGVC-Aircraft (100 variants): ``fgvc_aircraft/images`` + ``variants.txt`` +
``images_variant_{train,val,test}.txt`` (the split comes with the data; no split json)."""

import os

from dassl.data.datasets import DATASET_REGISTRY, DatasetBase, Datum

from .base import dataset_root, finish_splits, require


@DATASET_REGISTRY.register()
class FGVCAircraft(DatasetBase):
    """Labels follow the line order of ``variants.txt``; class names are the variants."""

    dataset_dir = "fgvc_aircraft"

    def __init__(self, cfg):
        self.dataset_dir = os.path.join(dataset_root(cfg), self.dataset_dir)
        self.image_dir = require(os.path.join(self.dataset_dir, "images"), "FGVCAircraft images")
        self.split_fewshot_dir = os.path.join(self.dataset_dir, "split_fewshot")

        variants_file = os.path.join(self.dataset_dir, "variants.txt")
        with open(require(variants_file, "FGVCAircraft variants file")) as f:
            classnames = [line.strip() for line in f if line.strip()]
        cname2lab = {c: i for i, c in enumerate(classnames)}

        train = self.read_data(cname2lab, "images_variant_train.txt")
        val = self.read_data(cname2lab, "images_variant_val.txt")
        test = self.read_data(cname2lab, "images_variant_test.txt")
        train, val, test = finish_splits(cfg, self.dataset_dir, train, val, test)
        super().__init__(train_x=train, val=val, test=test)

    def read_data(self, cname2lab: dict[str, int], split_file: str) -> list[Datum]:
        """Parse lines ``<image id> <variant>`` of ``split_file``."""
        filepath = require(os.path.join(self.dataset_dir, split_file), "FGVCAircraft split file")
        items = []
        with open(filepath) as f:
            for line in f:
                parts = line.strip().split(" ")
                if parts == [""]:
                    continue
                classname = " ".join(parts[1:])
                if classname not in cname2lab:
                    raise ValueError(
                        f"{filepath}: variant {classname!r} of image {parts[0]} is not in "
                        f"variants.txt."
                    )
                impath = os.path.join(self.image_dir, parts[0] + ".jpg")
                items.append(Datum(impath=impath, label=cname2lab[classname], classname=classname))
        return items
