"""Miniature trees of the 15 benchmark datasets, in CoOp's exact on-disk layouts.

Each builder writes ``<root>/<dataset folder>/...`` with a few classes of a few tiny JPEG images,
the annotation files in their original formats (``.txt`` lists, ``.mat`` files written with
``scipy.io.savemat``, ``classnames.txt``) and, when ``with_split`` is true and CoOp has one, the
``split_zhou_<Name>.json`` split file. The split file assigns images deterministically (per class
in list order: train first, then val, then test), so tests can compare what a dataset reads with
what was written.

From the command line (``DIR`` is then ``DATASET.ROOT``)::

    python -m tests.dataset_trees eurosat DIR            # DIR/eurosat/2750/... + split json
    python -m tests.dataset_trees dtd DIR --no-split     # raw files only
    python -m tests.dataset_trees all DIR                # every dataset
"""

from __future__ import annotations

import argparse
import json
import os
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from PIL import Image
from scipy.io import savemat

SplitEntry = tuple[str, int, str]  # (path relative to the split's image folder, label, classname)


@dataclass
class Tree:
    """A built miniature dataset.

    Attributes:
        dataset_dir: ``<root>/<dataset folder>``.
        split: the content of the split json written (``train``/``val``/``test`` lists), or
            ``None`` when none was written.
    """

    dataset_dir: str
    split: dict[str, list[SplitEntry]] | None = field(default=None)


def write_image(path: str) -> None:
    """A tiny 8 x 8 RGB image whose colour depends on ``path``; JPEG or PNG by extension."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    code = zlib.crc32(path.encode())
    color = (code & 255, (code >> 8) & 255, (code >> 16) & 255)
    fmt = "PNG" if path.lower().endswith(".png") else "JPEG"
    Image.new("RGB", (8, 8), color).save(path, format=fmt)


def write_text(path: str, lines: list[str]) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("".join(line + "\n" for line in lines))


def write_split(path: str, split: dict[str, list[SplitEntry]]) -> None:
    with open(path, "w") as f:
        json.dump({k: [list(e) for e in v] for k, v in split.items()}, f, indent=4)


def split_counts(n: int, p_trn: float = 0.5, p_val: float = 0.2) -> tuple[int, int, int]:
    """CoOp's per-class train/val/test sizes for ``n`` images (Python's ``round``)."""
    n_train, n_val = round(n * p_trn), round(n * p_val)
    return n_train, n_val, n - n_train - n_val


def _folder_tree(
    dataset_dir: str,
    image_dir: str,
    classes: dict[str, list[str]],
    split_name: str | None,
    ignored: tuple[str, ...] = (),
    new_cnames: dict[str, str] | None = None,
) -> Tree:
    """``image_dir/<class>/<image>`` and a 50/20/30 split json over the sorted classes."""
    for folder, images in classes.items():
        for im in images:
            write_image(os.path.join(image_dir, folder, im))
    if split_name is None:
        return Tree(dataset_dir)
    split: dict[str, list[SplitEntry]] = {"train": [], "val": [], "test": []}
    kept = sorted(c for c in classes if c not in ignored)
    for label, folder in enumerate(kept):
        cname = (new_cnames or {}).get(folder, folder)
        images = sorted(classes[folder])
        n_train, n_val, _ = split_counts(len(images))
        for i, im in enumerate(images):
            key = "train" if i < n_train else "val" if i < n_train + n_val else "test"
            split[key].append((f"{folder}/{im}", label, cname))
    write_split(os.path.join(dataset_dir, split_name), split)
    return Tree(dataset_dir, split)


def _trainval_split(
    trainval: list[SplitEntry], test: list[SplitEntry], p_val: float = 0.2
) -> dict[str, list[SplitEntry]]:
    """Per label (first-appearance order), the first ``round(n * p_val)`` entries go to val."""
    by_label: dict[int, list[SplitEntry]] = {}
    for entry in trainval:
        by_label.setdefault(entry[1], []).append(entry)
    train, val = [], []
    for entries in by_label.values():
        n_val = round(len(entries) * p_val)
        val.extend(entries[:n_val])
        train.extend(entries[n_val:])
    return {"train": train, "val": val, "test": test}


def build_eurosat(root: str, with_split: bool = True) -> Tree:
    """5 classes; AnnualCrop has 40 images (20 train) so that 16-shot sampling really samples."""
    sizes = {"AnnualCrop": 40, "Forest": 10, "HerbaceousVegetation": 5, "Highway": 6, "SeaLake": 4}
    classes = {c: [f"{c}_{i}.jpg" for i in range(1, n + 1)] for c, n in sizes.items()}
    dataset_dir = os.path.join(root, "eurosat")
    names = {
        "AnnualCrop": "Annual Crop Land",
        "Forest": "Forest",
        "HerbaceousVegetation": "Herbaceous Vegetation Land",
        "Highway": "Highway or Road",
        "SeaLake": "Sea or Lake",
    }
    split_name = "split_zhou_EuroSAT.json" if with_split else None
    return _folder_tree(
        dataset_dir, os.path.join(dataset_dir, "2750"), classes, split_name, new_cnames=names
    )


def build_dtd(root: str, with_split: bool = True) -> Tree:
    """4 texture classes of 5, 4, 6 and 5 images."""
    sizes = {"banded": 5, "blotchy": 4, "braided": 6, "bubbly": 5}
    classes = {c: [f"{c}_{i:04d}.jpg" for i in range(1, n + 1)] for c, n in sizes.items()}
    dataset_dir = os.path.join(root, "dtd")
    split_name = "split_zhou_DescribableTextures.json" if with_split else None
    return _folder_tree(dataset_dir, os.path.join(dataset_dir, "images"), classes, split_name)


def build_caltech101(root: str, with_split: bool = True) -> Tree:
    """6 folders, 2 of them ignored by CoOp (BACKGROUND_Google, Faces_easy), 3 renamed."""
    sizes = {
        "BACKGROUND_Google": 4,
        "Faces": 5,
        "Faces_easy": 4,
        "Leopards": 4,
        "accordion": 6,
        "airplanes": 5,
    }
    classes = {c: [f"image_{i:04d}.jpg" for i in range(1, n + 1)] for c, n in sizes.items()}
    dataset_dir = os.path.join(root, "caltech-101")
    split_name = "split_zhou_Caltech101.json" if with_split else None
    return _folder_tree(
        dataset_dir,
        os.path.join(dataset_dir, "101_ObjectCategories"),
        classes,
        split_name,
        ignored=("BACKGROUND_Google", "Faces_easy"),
        new_cnames={"airplanes": "airplane", "Faces": "face", "Leopards": "leopard"},
    )


def build_food101(root: str, with_split: bool = True) -> Tree:
    """3 classes of 5, 4 and 6 images named by numeric ids."""
    sizes = {"apple_pie": 5, "bibimbap": 4, "waffles": 6}
    classes = {
        c: [f"{1000 * k + i}.jpg" for i in range(n)] for k, (c, n) in enumerate(sizes.items())
    }
    dataset_dir = os.path.join(root, "food-101")
    split_name = "split_zhou_Food101.json" if with_split else None
    return _folder_tree(dataset_dir, os.path.join(dataset_dir, "images"), classes, split_name)


def build_oxford_pets(root: str, with_split: bool = True) -> Tree:
    """3 breeds (class ids 1-3); trainval 5/3/8 and test 2/2/3 images."""
    dataset_dir = os.path.join(root, "oxford_pets")
    breeds = [  # (image prefix, class id, species, breed id, trainval, test)
        ("Abyssinian", 1, 1, 1, 5, 2),
        ("american_bulldog", 2, 2, 1, 3, 2),
        ("american_pit_bull_terrier", 3, 2, 2, 8, 3),
    ]
    lists: dict[str, list[str]] = {"trainval.txt": [], "test.txt": []}
    entries: dict[str, list[SplitEntry]] = {"trainval.txt": [], "test.txt": []}
    number = 100
    for prefix, class_id, species, breed_id, n_trainval, n_test in breeds:
        for list_name, n in (("trainval.txt", n_trainval), ("test.txt", n_test)):
            for _ in range(n):
                imname = f"{prefix}_{number}"
                number += 1
                write_image(os.path.join(dataset_dir, "images", imname + ".jpg"))
                lists[list_name].append(f"{imname} {class_id} {species} {breed_id}")
                entries[list_name].append((imname + ".jpg", class_id - 1, prefix.lower()))
    for list_name, lines in lists.items():
        write_text(os.path.join(dataset_dir, "annotations", list_name), lines)
    if not with_split:
        return Tree(dataset_dir)
    split = _trainval_split(entries["trainval.txt"], entries["test.txt"])
    write_split(os.path.join(dataset_dir, "split_zhou_OxfordPets.json"), split)
    return Tree(dataset_dir, split)


STANFORD_CARS_META = ["AM General Hummer SUV 2000", "Acura RL Sedan 2012", "Audi TTS Coupe 2012"]


def _cars_annos(items: list[tuple[str, int]]) -> np.ndarray:
    """A (1, n) MATLAB struct array like the devkit's (bbox fields, ``class`` 1-based, ``fname``)."""
    fields = ["bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2", "class", "fname"]
    annos = np.zeros((1, len(items)), dtype=[(f, "O") for f in fields])
    for i, (fname, class_id) in enumerate(items):
        for f in fields[:4]:
            annos[f][0, i] = np.array([[1]], dtype=np.uint8)
        annos["class"][0, i] = np.array([[class_id]], dtype=np.uint8)
        annos["fname"][0, i] = np.array([fname])
    return annos


def build_stanford_cars(root: str, with_split: bool = True) -> Tree:
    """3 models; train 4/3/5 and test 2/2/2 images; devkit ``.mat`` files as distributed."""
    dataset_dir = os.path.join(root, "stanford_cars")
    per_class = {"cars_train": [4, 3, 5], "cars_test": [2, 2, 2]}
    annos: dict[str, list[tuple[str, int]]] = {}
    entries: dict[str, list[SplitEntry]] = {}
    for image_dir, counts in per_class.items():
        annos[image_dir], entries[image_dir] = [], []
        number = 1
        # interleave classes as the real annotation lists do
        todo = [(class_id, n) for class_id, n in enumerate(counts, start=1)]
        while any(n for _, n in todo):
            for k, (class_id, n) in enumerate(todo):
                if n:
                    fname = f"{number:05d}.jpg"
                    number += 1
                    write_image(os.path.join(dataset_dir, image_dir, fname))
                    annos[image_dir].append((fname, class_id))
                    words = STANFORD_CARS_META[class_id - 1].split(" ")
                    cname = " ".join([words[-1]] + words[:-1])
                    entries[image_dir].append((f"{image_dir}/{fname}", class_id - 1, cname))
                    todo[k] = (class_id, n - 1)
    os.makedirs(os.path.join(dataset_dir, "devkit"), exist_ok=True)
    savemat(
        os.path.join(dataset_dir, "devkit", "cars_train_annos.mat"),
        {"annotations": _cars_annos(annos["cars_train"])},
    )
    savemat(
        os.path.join(dataset_dir, "cars_test_annos_withlabels.mat"),
        {"annotations": _cars_annos(annos["cars_test"])},
    )
    meta = np.empty((1, len(STANFORD_CARS_META)), dtype=object)
    for i, name in enumerate(STANFORD_CARS_META):
        meta[0, i] = name
    savemat(os.path.join(dataset_dir, "devkit", "cars_meta.mat"), {"class_names": meta})
    if not with_split:
        return Tree(dataset_dir)
    split = _trainval_split(entries["cars_train"], entries["cars_test"])
    write_split(os.path.join(dataset_dir, "split_zhou_StanfordCars.json"), split)
    return Tree(dataset_dir, split)


FLOWER_LABELS = [1, 2, 1, 3, 3, 1, 2, 3, 1, 2, 3, 1, 3, 2, 3]  # 5 x class 1, 4 x 2, 6 x 3
FLOWER_NAMES = {"1": "pink primrose", "2": "hard-leaved pocket orchid", "3": "canterbury bells"}


def build_oxford_flowers(root: str, with_split: bool = True) -> Tree:
    """15 images ``image_00001.jpg``... labelled by ``imagelabels.mat`` (3 classes)."""
    dataset_dir = os.path.join(root, "oxford_flowers")
    for i in range(len(FLOWER_LABELS)):
        write_image(os.path.join(dataset_dir, "jpg", f"image_{i + 1:05d}.jpg"))
    savemat(
        os.path.join(dataset_dir, "imagelabels.mat"),
        {"labels": np.array([FLOWER_LABELS], dtype=np.uint8)},
    )
    with open(os.path.join(dataset_dir, "cat_to_name.json"), "w") as f:
        json.dump(FLOWER_NAMES, f)
    if not with_split:
        return Tree(dataset_dir)
    split: dict[str, list[SplitEntry]] = {"train": [], "val": [], "test": []}
    for label in (1, 2, 3):
        ims = [f"image_{i + 1:05d}.jpg" for i, y in enumerate(FLOWER_LABELS) if y == label]
        n_train, n_val, _ = split_counts(len(ims))
        for i, im in enumerate(ims):
            key = "train" if i < n_train else "val" if i < n_train + n_val else "test"
            split[key].append((im, label - 1, FLOWER_NAMES[str(label)]))
    write_split(os.path.join(dataset_dir, "split_zhou_OxfordFlowers.json"), split)
    return Tree(dataset_dir, split)


def build_fgvc_aircraft(root: str, with_split: bool = True) -> Tree:
    """3 variants (one with a space, one with a slash); train 3/2/4, val 1/1/2, test 2/1/1.

    FGVC-Aircraft has no split json: ``with_split`` is ignored."""
    dataset_dir = os.path.join(root, "fgvc_aircraft")
    variants = ["707-320", "Cessna 172", "F-16A/B"]
    counts = {"train": [3, 2, 4], "val": [1, 1, 2], "test": [2, 1, 1]}
    write_text(os.path.join(dataset_dir, "variants.txt"), variants)
    number = 1000000
    for split_name, ns in counts.items():
        lines = []
        for variant, n in zip(variants, ns):
            for _ in range(n):
                write_image(os.path.join(dataset_dir, "images", f"{number:07d}.jpg"))
                lines.append(f"{number:07d} {variant}")
                number += 1
        write_text(os.path.join(dataset_dir, f"images_variant_{split_name}.txt"), lines)
    return Tree(dataset_dir)


SUN_CLASSES = ["/a/abbey", "/a/apartment_building/outdoor", "/b/bakery/shop"]
SUN_NAMES = ["abbey", "outdoor apartment_building", "shop bakery"]


def build_sun397(root: str, with_split: bool = True) -> Tree:
    """3 scene classes (two with a sub-category); Training_01 5/3/4, Testing_01 2/2/2 images."""
    dataset_dir = os.path.join(root, "sun397")
    write_text(os.path.join(dataset_dir, "ClassName.txt"), SUN_CLASSES)
    entries: dict[str, list[SplitEntry]] = {}
    number = 0
    for list_name, counts in (("Training_01.txt", [5, 3, 4]), ("Testing_01.txt", [2, 2, 2])):
        lines, entries[list_name] = [], []
        for label, (cls, n) in enumerate(zip(SUN_CLASSES, counts)):
            for _ in range(n):
                rel = f"{cls[1:]}/sun_{number:08x}.jpg"
                number += 1
                write_image(os.path.join(dataset_dir, "SUN397", rel))
                lines.append("/" + rel)
                entries[list_name].append((rel, label, SUN_NAMES[label]))
        write_text(os.path.join(dataset_dir, list_name), lines)
    if not with_split:
        return Tree(dataset_dir)
    split = _trainval_split(entries["Training_01.txt"], entries["Testing_01.txt"])
    write_split(os.path.join(dataset_dir, "split_zhou_SUN397.json"), split)
    return Tree(dataset_dir, split)


UCF_ACTIONS = ["ApplyEyeMakeup", "Archery", "YoYo"]
UCF_NAMES = ["Apply_Eye_Makeup", "Archery", "Yo_Yo"]


def build_ucf101(root: str, with_split: bool = True) -> Tree:
    """3 actions (``YoYo`` -> ``Yo_Yo``); trainlist01 4/5/3 and testlist01 2/2/2 clips."""
    dataset_dir = os.path.join(root, "ucf101")
    lists_dir = os.path.join(dataset_dir, "ucfTrainTestlist")
    write_text(
        os.path.join(lists_dir, "classInd.txt"),
        [f"{i + 1} {a}" for i, a in enumerate(UCF_ACTIONS)],
    )
    entries: dict[str, list[SplitEntry]] = {}
    for list_name, counts, groups in (
        ("trainlist01.txt", [4, 5, 3], range(8, 25)),
        ("testlist01.txt", [2, 2, 2], range(1, 8)),
    ):
        lines, entries[list_name] = [], []
        for label, (action, n) in enumerate(zip(UCF_ACTIONS, counts)):
            for group in list(groups)[:n]:
                clip = f"v_{action}_g{group:02d}_c01"
                write_image(
                    os.path.join(dataset_dir, "UCF-101-midframes", UCF_NAMES[label], clip + ".jpg")
                )
                suffix = f" {label + 1}" if list_name.startswith("train") else ""
                lines.append(f"{action}/{clip}.avi{suffix}")
                entries[list_name].append(
                    (f"{UCF_NAMES[label]}/{clip}.jpg", label, UCF_NAMES[label])
                )
        write_text(os.path.join(lists_dir, list_name), lines)
    if not with_split:
        return Tree(dataset_dir)
    split = _trainval_split(entries["trainlist01.txt"], entries["testlist01.txt"])
    write_split(os.path.join(dataset_dir, "split_zhou_UCF101.json"), split)
    return Tree(dataset_dir, split)


IMAGENET_CLASSES = [  # the first lines of CoOp's classnames.txt
    ("n01440764", "tench"),
    ("n01443537", "goldfish"),
    ("n01484850", "great white shark"),
    ("n01491361", "tiger shark"),
    ("n01494475", "hammerhead shark"),
    ("n01496331", "electric ray"),
]


def _write_classnames(dataset_dir: str) -> None:
    write_text(
        os.path.join(dataset_dir, "classnames.txt"), [f"{w} {n}" for w, n in IMAGENET_CLASSES]
    )


def build_imagenet(root: str, with_split: bool = True) -> Tree:
    """The 6 classes of ``IMAGENET_CLASSES``: train 20/5/6/3/4/4, val 3 each.

    ImageNet has no split json: ``with_split`` is ignored."""
    dataset_dir = os.path.join(root, "imagenet")
    _write_classnames(dataset_dir)
    train_sizes = [20, 5, 6, 3, 4, 4]
    val_number = 1
    for (wnid, _), n_train in zip(IMAGENET_CLASSES, train_sizes):
        for i in range(n_train):
            write_image(os.path.join(dataset_dir, "images", "train", wnid, f"{wnid}_{i}.JPEG"))
        for _ in range(3):
            name = f"ILSVRC2012_val_{val_number:08d}.JPEG"
            val_number += 1
            write_image(os.path.join(dataset_dir, "images", "val", wnid, name))
    return Tree(dataset_dir)


def build_imagenetv2(root: str, with_split: bool = True) -> Tree:
    """Folders ``0``..``5`` (labels of ``classnames.txt``), 2 images each; no split json."""
    dataset_dir = os.path.join(root, "imagenetv2")
    _write_classnames(dataset_dir)
    for label in range(len(IMAGENET_CLASSES)):
        for i in range(2):
            image_dir = os.path.join(dataset_dir, "imagenetv2-matched-frequency-format-val")
            write_image(os.path.join(image_dir, str(label), f"{label:03d}{i}abc.jpeg"))
    return Tree(dataset_dir)


def build_imagenet_sketch(root: str, with_split: bool = True) -> Tree:
    """All 6 classes, 2 sketches each; no split json."""
    dataset_dir = os.path.join(root, "imagenet-sketch")
    _write_classnames(dataset_dir)
    for wnid, _ in IMAGENET_CLASSES:
        for i in range(2):
            write_image(os.path.join(dataset_dir, "images", wnid, f"sketch_{i}.JPEG"))
    return Tree(dataset_dir)


SUBSET_WNIDS = ["n01443537", "n01491361", "n01496331"]  # the 200-class subsets' stand-in


def build_imagenet_a(root: str, with_split: bool = True) -> Tree:
    """3 of the 6 classes (``SUBSET_WNIDS``), 2 images each, plus ``README.txt``."""
    dataset_dir = os.path.join(root, "imagenet-adversarial")
    _write_classnames(dataset_dir)
    image_dir = os.path.join(dataset_dir, "imagenet-a")
    for k, wnid in enumerate(SUBSET_WNIDS):
        for i in range(2):
            write_image(os.path.join(image_dir, wnid, f"0.00{k}{i}_goldfish _ goldfish_0.5.jpg"))
    write_text(os.path.join(image_dir, "README.txt"), ["ImageNet-A"])
    return Tree(dataset_dir)


def build_imagenet_r(root: str, with_split: bool = True) -> Tree:
    """3 of the 6 classes (``SUBSET_WNIDS``), 2 renditions each."""
    dataset_dir = os.path.join(root, "imagenet-rendition")
    _write_classnames(dataset_dir)
    for wnid in SUBSET_WNIDS:
        for i, kind in enumerate(("art", "cartoon")):
            write_image(os.path.join(dataset_dir, "imagenet-r", wnid, f"{kind}_{i}.jpg"))
    return Tree(dataset_dir)


BUILDERS: dict[str, Callable[[str, bool], Tree]] = {
    "imagenet": build_imagenet,
    "caltech101": build_caltech101,
    "oxford_pets": build_oxford_pets,
    "stanford_cars": build_stanford_cars,
    "oxford_flowers": build_oxford_flowers,
    "food101": build_food101,
    "fgvc_aircraft": build_fgvc_aircraft,
    "sun397": build_sun397,
    "dtd": build_dtd,
    "eurosat": build_eurosat,
    "ucf101": build_ucf101,
    "imagenetv2": build_imagenetv2,
    "imagenet_sketch": build_imagenet_sketch,
    "imagenet_a": build_imagenet_a,
    "imagenet_r": build_imagenet_r,
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tests.dataset_trees",
        description="Build miniature dataset trees in CoOp's layouts under DIR (= DATASET.ROOT).",
    )
    parser.add_argument("dataset", choices=[*BUILDERS, "all"], help="config name of the dataset")
    parser.add_argument("root", metavar="DIR", help="root folder (DATASET.ROOT)")
    parser.add_argument(
        "--no-split", action="store_true", help="write no split_zhou_*.json (raw files only)"
    )
    args = parser.parse_args(argv)
    names = list(BUILDERS) if args.dataset == "all" else [args.dataset]
    for name in names:
        tree = BUILDERS[name](args.root, not args.no_split)
        print(f"{name}: {tree.dataset_dir}")


if __name__ == "__main__":
    main()
