"""EuroSAT (10 classes): ``eurosat/2750/<class>/`` + ``split_zhou_EuroSAT.json``."""

import os

from dassl.data.datasets import DATASET_REGISTRY, DatasetBase

from .base import (
    dataset_root,
    finish_splits,
    load_or_build_split,
    read_and_split_data,
    require,
)

SPLIT_GDOWN_ID = "1Ip7yaCWFi0eaOFUGga0lUdVi_DDQth1o"

NEW_CNAMES = {
    "AnnualCrop": "Annual Crop Land",
    "Forest": "Forest",
    "HerbaceousVegetation": "Herbaceous Vegetation Land",
    "Highway": "Highway or Road",
    "Industrial": "Industrial Buildings",
    "Pasture": "Pasture Land",
    "PermanentCrop": "Permanent Crop Land",
    "Residential": "Residential Buildings",
    "River": "River",
    "SeaLake": "Sea or Lake",
}


@DATASET_REGISTRY.register()
class EuroSAT(DatasetBase):
    """Without the split file, each class folder is split 50/20/30 and renamed by ``NEW_CNAMES``."""

    dataset_dir = "eurosat"

    def __init__(self, cfg):
        self.dataset_dir = os.path.join(dataset_root(cfg), self.dataset_dir)
        self.image_dir = require(os.path.join(self.dataset_dir, "2750"), "EuroSAT images")
        self.split_path = os.path.join(self.dataset_dir, "split_zhou_EuroSAT.json")
        self.split_fewshot_dir = os.path.join(self.dataset_dir, "split_fewshot")

        train, val, test = load_or_build_split(
            self.split_path,
            self.image_dir,
            lambda: read_and_split_data(self.image_dir, new_cnames=NEW_CNAMES),
            SPLIT_GDOWN_ID,
        )
        train, val, test = finish_splits(cfg, self.dataset_dir, train, val, test)
        super().__init__(train_x=train, val=val, test=test)
