"""UCF101 (101 actions, middle frames): ``ucf101/UCF-101-midframes/<Action_Name>/*.jpg`` +
``ucfTrainTestlist/`` + ``split_zhou_UCF101.json``."""

import os
import re

from dassl.data.datasets import DATASET_REGISTRY, DatasetBase, Datum

from .base import (
    dataset_root,
    finish_splits,
    gdown_hint,
    load_or_build_split,
    require,
    split_trainval,
)

SPLIT_GDOWN_ID = "1I0S0q91hJfsV9Gf4xDIjgDq4AqBNJb1y"
MIDFRAMES_GDOWN_ID = "10Jqome3vtUA2keJkNanAiFpgbyC9Hc2O"


@DATASET_REGISTRY.register()
class UCF101(DatasetBase):
    """Without the split file, ``trainlist01.txt`` is split 80/20 into train/val and
    ``testlist01.txt`` is the test set, labelled by ``classInd.txt``. CamelCase actions become
    underscore-joined names (``ApplyEyeMakeup`` -> ``Apply_Eye_Makeup``), which are both the
    frame folder and the class name."""

    dataset_dir = "ucf101"

    def __init__(self, cfg):
        self.dataset_dir = os.path.join(dataset_root(cfg), self.dataset_dir)
        self.image_dir = require(
            os.path.join(self.dataset_dir, "UCF-101-midframes"),
            "UCF101 middle-frame folder",
            "Get CoOp's frames with: "
            + gdown_hint(
                MIDFRAMES_GDOWN_ID, os.path.join(self.dataset_dir, "UCF-101-midframes.zip")
            )
            + " and unzip it there.",
        )
        self.split_path = os.path.join(self.dataset_dir, "split_zhou_UCF101.json")
        self.split_fewshot_dir = os.path.join(self.dataset_dir, "split_fewshot")

        def build():
            class_file = os.path.join(self.dataset_dir, "ucfTrainTestlist", "classInd.txt")
            cname2lab = {}
            with open(require(class_file, "UCF101 class index")) as f:
                for line in f:
                    if line.strip():
                        label, classname = line.strip().split(" ")
                        cname2lab[classname] = int(label) - 1
            trainval = self.read_data(cname2lab, "trainlist01.txt")
            test = self.read_data(cname2lab, "testlist01.txt")
            train, val = split_trainval(trainval)
            return train, val, test

        train, val, test = load_or_build_split(
            self.split_path, self.image_dir, build, SPLIT_GDOWN_ID
        )
        train, val, test = finish_splits(cfg, self.dataset_dir, train, val, test)
        super().__init__(train_x=train, val=val, test=test)

    def read_data(self, cname2lab: dict[str, int], list_file: str) -> list[Datum]:
        """Parse ``ucfTrainTestlist/<list_file>`` (lines ``Action/v_Action_g01_c01.avi [label]``)."""
        text_file = require(
            os.path.join(self.dataset_dir, "ucfTrainTestlist", list_file), "UCF101 split list"
        )
        items = []
        with open(text_file) as f:
            for line in f:
                entry = line.strip().split(" ")[0]
                if not entry:
                    continue
                action, filename = entry.split("/")
                renamed_action = "_".join(re.findall("[A-Z][^A-Z]*", action))
                impath = os.path.join(
                    self.image_dir, renamed_action, filename.replace(".avi", ".jpg")
                )
                items.append(
                    Datum(impath=impath, label=cname2lab[action], classname=renamed_action)
                )
        return items
