"""The 15 benchmark datasets on miniature trees in CoOp's exact layouts (tests/dataset_trees.py).

Expected class names and per-class split sizes below are written by hand from the trees' contents
and CoOp's rules (50/20/30 split with Python's ``round``; 20% of trainval to val).
"""

from __future__ import annotations

import os
import pickle
import pickletools
import random
import shutil
from collections import Counter

import pytest

import datasets  # noqa: F401  (registers the datasets)
from dassl.config import get_cfg_default
from dassl.data.data_manager import DatasetWrapper
from dassl.data.datasets import DATASET_REGISTRY, Datum, build_dataset
from datasets import imagenet as imagenet_module
from datasets.base import DataCacheError, DatasetFileError
from tests.dataset_trees import BUILDERS, main

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CLASS_OF = {
    "imagenet": "ImageNet",
    "caltech101": "Caltech101",
    "oxford_pets": "OxfordPets",
    "stanford_cars": "StanfordCars",
    "oxford_flowers": "OxfordFlowers",
    "food101": "Food101",
    "fgvc_aircraft": "FGVCAircraft",
    "sun397": "SUN397",
    "dtd": "DescribableTextures",
    "eurosat": "EuroSAT",
    "ucf101": "UCF101",
    "imagenetv2": "ImageNetV2",
    "imagenet_sketch": "ImageNetSketch",
    "imagenet_a": "ImageNetA",
    "imagenet_r": "ImageNetR",
}

IMAGENET6 = ["tench", "goldfish", "great white shark", "tiger shark", "hammerhead shark"]
IMAGENET6 += ["electric ray"]

# config name -> (class names in label order, per-class (train, val, test) sizes)
EXPECTED: dict[str, tuple[list[str], list[tuple[int, int, int]]]] = {
    "eurosat": (
        [
            "Annual Crop Land",
            "Forest",
            "Herbaceous Vegetation Land",
            "Highway or Road",
            "Sea or Lake",
        ],
        [(20, 8, 12), (5, 2, 3), (2, 1, 2), (3, 1, 2), (2, 1, 1)],  # 40, 10, 5, 6, 4 images
    ),
    "dtd": (
        ["banded", "blotchy", "braided", "bubbly"],
        [(2, 1, 2), (2, 1, 1), (3, 1, 2), (2, 1, 2)],  # 5, 4, 6, 5 images
    ),
    "caltech101": (
        ["face", "leopard", "accordion", "airplane"],  # BACKGROUND_Google, Faces_easy ignored
        [(2, 1, 2), (2, 1, 1), (3, 1, 2), (2, 1, 2)],
    ),
    "food101": (["apple_pie", "bibimbap", "waffles"], [(2, 1, 2), (2, 1, 1), (3, 1, 2)]),
    "oxford_pets": (  # trainval 5, 3, 8; test 2, 2, 3
        ["abyssinian", "american_bulldog", "american_pit_bull_terrier"],
        [(4, 1, 2), (2, 1, 2), (6, 2, 3)],
    ),
    "stanford_cars": (  # train 4, 3, 5; test 2, 2, 2
        ["2000 AM General Hummer SUV", "2012 Acura RL Sedan", "2012 Audi TTS Coupe"],
        [(3, 1, 2), (2, 1, 2), (4, 1, 2)],
    ),
    "oxford_flowers": (
        ["pink primrose", "hard-leaved pocket orchid", "canterbury bells"],
        [(2, 1, 2), (2, 1, 1), (3, 1, 2)],
    ),
    "fgvc_aircraft": (["707-320", "Cessna 172", "F-16A/B"], [(3, 1, 2), (2, 1, 1), (4, 2, 1)]),
    "sun397": (  # trainval 5, 3, 4; test 2, 2, 2
        ["abbey", "outdoor apartment_building", "shop bakery"],
        [(4, 1, 2), (2, 1, 2), (3, 1, 2)],
    ),
    "ucf101": (  # trainval 4, 5, 3; test 2, 2, 2
        ["Apply_Eye_Makeup", "Archery", "Yo_Yo"],
        [(3, 1, 2), (4, 1, 2), (2, 1, 2)],
    ),
    "imagenet": (IMAGENET6, [(n, 3, 3) for n in (20, 5, 6, 3, 4, 4)]),  # val is the test set
    "imagenetv2": (IMAGENET6, [(2, 0, 2)] * 6),  # test only: train_x = test, no val
    "imagenet_sketch": (IMAGENET6, [(2, 0, 2)] * 6),
    "imagenet_a": (["goldfish", "tiger shark", "electric ray"], [(2, 0, 2)] * 3),
    "imagenet_r": (["goldfish", "tiger shark", "electric ray"], [(2, 0, 2)] * 3),
}

WITH_SPLIT_JSON = [
    "eurosat",
    "dtd",
    "caltech101",
    "food101",
    "oxford_pets",
    "stanford_cars",
    "oxford_flowers",
    "sun397",
    "ucf101",
]


def load(root, name: str, shots: int = -1, seed: int = 1, subsample: str = "all"):
    """Build dataset ``name`` from ``root`` after seeding Python's random (as train.py does)."""
    cfg = get_cfg_default()
    cfg.DATASET.ROOT = str(root)
    cfg.DATASET.NAME = CLASS_OF[name]
    cfg.DATASET.NUM_SHOTS = shots
    cfg.DATASET.SUBSAMPLE_CLASSES = subsample
    cfg.SEED = seed
    random.seed(seed)
    return build_dataset(cfg)


def entries(items, prefix: str) -> list[tuple[str, int, str]]:
    """(path relative to ``prefix``, label, classname) of each Datum, in order."""
    return [(os.path.relpath(d.impath, prefix), d.label, d.classname) for d in items]


def split_prefix(name: str, dataset_dir: str) -> str:
    """The folder the split file's paths are relative to (CoOp's ``path_prefix``)."""
    sub = {
        "eurosat": "2750",
        "caltech101": "101_ObjectCategories",
        "oxford_pets": "images",
        "stanford_cars": "",
        "oxford_flowers": "jpg",
        "sun397": "SUN397",
        "ucf101": "UCF-101-midframes",
    }.get(name, "images")
    return os.path.join(dataset_dir, sub)


def per_class_counts(ds) -> list[tuple[int, int, int]]:
    counts = [Counter(d.label for d in split or []) for split in (ds.train_x, ds.val, ds.test)]
    return [tuple(c[y] for c in counts) for y in range(ds.num_classes)]


def dassl_fewshot(items: list, num_shots: int) -> list:
    """Independent re-implementation of Dassl's sampling: group by label (first appearance),
    ``random.sample`` K per group, all of a smaller group."""
    groups: dict[int, list] = {}
    for item in items:
        groups.setdefault(item[1], []).append(item)
    out = []
    for group in groups.values():
        out.extend(random.sample(group, num_shots) if len(group) >= num_shots else group)
    return out


def test_configs_name_coop_classes():
    for name, cls in CLASS_OF.items():
        path = os.path.join(REPO_ROOT, "configs", "datasets", f"{name}.yaml")
        cfg = get_cfg_default()
        cfg.merge_from_file(path)
        assert cfg.DATASET.NAME == cls
        assert DATASET_REGISTRY.get(cls).__name__ == cls


@pytest.mark.parametrize("name", list(CLASS_OF))
def test_class_names_labels_and_counts(tmp_path, name):
    tree = BUILDERS[name](str(tmp_path), True)
    ds = load(tmp_path, name)
    classnames, counts = EXPECTED[name]
    assert ds.classnames == classnames
    assert per_class_counts(ds) == counts
    for split in (ds.train_x, ds.val or [], ds.test):
        assert all(d.classname == classnames[d.label] for d in split)
    if tree.split is not None:  # the split file is read exactly, paths under CoOp's prefix
        prefix = split_prefix(name, tree.dataset_dir)
        assert entries(ds.train_x, prefix) == tree.split["train"]
        assert entries(ds.val, prefix) == tree.split["val"]
        assert entries(ds.test, prefix) == tree.split["test"]
    if name == "imagenet":
        assert ds.val == ds.test
        assert os.path.relpath(ds.test[0].impath, tree.dataset_dir) == os.path.join(
            "images", "val", "n01440764", "ILSVRC2012_val_00000001.JPEG"
        )
    if name in ("imagenetv2", "imagenet_sketch", "imagenet_a", "imagenet_r"):
        assert ds.val is None and ds.train_x == ds.test


@pytest.mark.parametrize("name", WITH_SPLIT_JSON)
def test_split_built_from_raw_files_and_saved(tmp_path, name):
    with_json = BUILDERS[name](str(tmp_path / "ref"), True)  # same images, with a split file
    tree = BUILDERS[name](str(tmp_path / "raw"), False)
    ds = load(tmp_path / "raw", name)
    classnames, counts = EXPECTED[name]
    assert ds.classnames == classnames
    assert per_class_counts(ds) == counts

    prefix = split_prefix(name, tree.dataset_dir)
    built = {k: entries(getattr(ds, a), prefix) for k, a in [("train", "train_x"), ("val", "val")]}
    built["test"] = entries(ds.test, prefix)
    everything = sorted(e for split in built.values() for e in split)
    assert everything == sorted(e for split in with_json.split.values() for e in split)
    assert len(set(everything)) == len(everything)  # disjoint splits

    (json_name,) = [f for f in os.listdir(with_json.dataset_dir) if f.startswith("split_zhou_")]
    saved = os.path.join(tree.dataset_dir, json_name)
    again = load(tmp_path / "raw", name, seed=7)  # read back from the saved file, not rebuilt
    assert entries(again.train_x, prefix) == built["train"]
    assert entries(again.test, prefix) == built["test"]
    with open(saved) as f:
        text = f.read()
    assert text.startswith('{\n    "train": [\n        [\n')  # CoOp's write_json layout


def test_built_split_is_the_same_for_a_seed_on_any_file_system(tmp_path):
    built = {}
    for folder, seed in (("a", 3), ("b", 3), ("c", 4)):
        tree = BUILDERS["dtd"](str(tmp_path / folder), False)
        ds = load(tmp_path / folder, "dtd", seed=seed)
        built[folder] = entries(ds.train_x + ds.val, os.path.join(tree.dataset_dir, "images"))
    assert built["a"] == built["b"]  # images are sorted before the seeded shuffle
    assert built["a"] != built["c"]


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("shots", [1, 4, 16])
def test_fewshot_matches_dassl_sampling(tmp_path, seed, shots):
    tree = BUILDERS["eurosat"](str(tmp_path), True)
    ds = load(tmp_path, "eurosat", shots=shots, seed=seed)
    random.seed(seed)
    expected_train = dassl_fewshot(tree.split["train"], shots)
    expected_val = dassl_fewshot(tree.split["val"], min(shots, 4))
    prefix = os.path.join(tree.dataset_dir, "2750")
    assert entries(ds.train_x, prefix) == expected_train
    assert entries(ds.val, prefix) == expected_val
    sizes = [min(shots, n) for n in (20, 5, 2, 3, 2)]
    assert [c[0] for c in per_class_counts(ds)] == sizes
    assert len(ds.test) == 20  # the test set is never subsampled


def test_fewshot_differs_between_seeds_and_is_cached(tmp_path):
    BUILDERS["eurosat"](str(tmp_path), True)
    one = load(tmp_path, "eurosat", shots=16, seed=1)
    two = load(tmp_path, "eurosat", shots=16, seed=2)
    annual = [sorted(d.impath for d in ds.train_x if d.label == 0) for ds in (one, two)]
    assert annual[0] != annual[1]

    cache = tmp_path / "eurosat" / "split_fewshot" / "shot_16-seed_1.pkl"
    assert sorted(os.listdir(cache.parent)) == ["shot_16-seed_1.pkl", "shot_16-seed_2.pkl"]
    # Reuse: another random state, same lists (read from the cache, not sampled again).
    cfg = get_cfg_default()
    cfg.DATASET.ROOT, cfg.DATASET.NAME = str(tmp_path), "EuroSAT"
    cfg.DATASET.NUM_SHOTS, cfg.SEED = 16, 1
    random.seed(12345)
    again = build_dataset(cfg)
    assert [d.impath for d in again.train_x] == [d.impath for d in one.train_x]
    assert [d.impath for d in again.val] == [d.impath for d in one.val]

    # The cache is CoOp's format: Dassl's Datum global, keys train/val; CoOp's pickle.load reads it.
    raw = cache.read_bytes()
    globals_named = [arg for op, arg, _ in pickletools.genops(raw) if op.name == "SHORT_BINUNICODE"]
    assert "dassl.data.datasets.base_dataset" in globals_named and "Datum" in globals_named
    data = pickle.loads(raw)
    assert set(data) == {"train", "val"}
    assert [(d.impath, d.label, d.classname) for d in data["train"]] == [
        (d.impath, d.label, d.classname) for d in one.train_x
    ]


def test_legacy_coop_cache_is_used_as_written(tmp_path):
    tree = BUILDERS["eurosat"](str(tmp_path), True)
    prefix = os.path.join(tree.dataset_dir, "2750")

    def datum(entry):
        return Datum(impath=os.path.join(prefix, entry[0]), label=entry[1], classname=entry[2])

    # A 1-shot split CoOp could have drawn: the last train / val image of each class.
    last = {}
    for key in ("train", "val"):
        by_label = {e[1]: e for e in tree.split[key]}
        last[key] = [datum(e) for e in by_label.values()]
    os.makedirs(os.path.join(tree.dataset_dir, "split_fewshot"))
    with open(os.path.join(tree.dataset_dir, "split_fewshot", "shot_1-seed_1.pkl"), "wb") as f:
        pickle.dump({"train": last["train"], "val": last["val"]}, f, protocol=2)
    ds = load(tmp_path, "eurosat", shots=1, seed=1)
    assert [d.impath for d in ds.train_x] == [d.impath for d in last["train"]]
    assert [d.impath for d in ds.val] == [d.impath for d in last["val"]]


class _Payload:
    """A pickle that would create a folder when loaded by plain pickle."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.makedirs, (self.path,))


@pytest.mark.parametrize("kind", ["other_location", "other_shots", "foreign", "truncated", "list"])
def test_stale_or_foreign_cache_gives_clear_error(tmp_path, kind):
    BUILDERS["eurosat"](str(tmp_path / "a"), True)
    BUILDERS["eurosat"](str(tmp_path / "b"), True)
    load(tmp_path / "a", "eurosat", shots=4, seed=1)
    cache_a = tmp_path / "a" / "eurosat" / "split_fewshot" / "shot_4-seed_1.pkl"
    target = tmp_path / "b" / "eurosat" / "split_fewshot" / "shot_4-seed_1.pkl"
    target.parent.mkdir()
    shots = 4
    if kind == "other_location":  # written for the same data under another root
        shutil.copy(cache_a, target)
        match = "does not fit the current 'train' split"
    elif kind == "other_shots":  # a 4-shot cache under the 16-shot name
        target = target.with_name("shot_16-seed_1.pkl")
        load(tmp_path / "b", "eurosat", shots=4, seed=1)
        shutil.copy(target.with_name("shot_4-seed_1.pkl"), target)
        shots = 16
        match = "class 0 has 4 images instead of 16"
    elif kind == "foreign":
        target.write_bytes(pickle.dumps({"train": _Payload(str(tmp_path / "pwned"))}))
        match = "Cannot read the cache"
    elif kind == "truncated":
        target.write_bytes(cache_a.read_bytes()[:100])
        match = "Cannot read the cache"
    else:
        target.write_bytes(pickle.dumps([1, 2, 3]))
        match = "is not a dict with keys"
    with pytest.raises(DataCacheError, match=match) as err:
        load(tmp_path / "b", "eurosat", shots=shots, seed=1)
    assert str(target) in str(err.value) and "delete it" in str(err.value).lower()
    assert not (tmp_path / "pwned").exists()


def test_no_cache_without_a_seed(tmp_path):
    BUILDERS["dtd"](str(tmp_path), True)
    ds = load(tmp_path, "dtd", shots=1, seed=-1)
    assert [c[0] for c in per_class_counts(ds)] == [1, 1, 1, 1]
    assert not (tmp_path / "dtd" / "split_fewshot").exists()


@pytest.mark.parametrize("name", ["eurosat", "dtd"])
def test_base_new_subsampling_after_fewshot(tmp_path, name):
    tree = BUILDERS[name](str(tmp_path), True)
    classnames, _ = EXPECTED[name]
    m = (len(classnames) + 1) // 2  # ceil(n / 2) base classes
    full = {}
    for subsample in ("all", "base", "new"):
        full[subsample] = load(tmp_path, name, shots=16, seed=1, subsample=subsample)
    base, new = full["base"], full["new"]
    assert base.classnames == classnames[:m] and new.classnames == classnames[m:]

    random.seed(1)
    sampled = dassl_fewshot(tree.split["train"], 16)
    prefix = split_prefix(name, tree.dataset_dir)
    assert entries(base.train_x, prefix) == [e for e in sampled if e[1] < m]
    assert entries(new.train_x, prefix) == [(p, y - m, c) for p, y, c in sampled if y >= m]
    assert entries(new.test, prefix) == [(p, y - m, c) for p, y, c in tree.split["test"] if y >= m]
    assert len(base.test) + len(new.test) == len(full["all"].test)


def test_imagenet_fewshot_keeps_full_val_and_caches_train_only(tmp_path):
    tree = BUILDERS["imagenet"](str(tmp_path), True)
    ds = load(tmp_path, "imagenet", shots=16, seed=2)
    train_dir = os.path.join(tree.dataset_dir, "images", "train")
    listing = [
        (os.path.join(w, f), y, IMAGENET6[y])
        for y, w in enumerate(sorted(os.listdir(train_dir)))
        for f in sorted(os.listdir(os.path.join(train_dir, w)))
    ]
    random.seed(2)
    assert entries(ds.train_x, train_dir) == dassl_fewshot(listing, 16)
    assert len(ds.val) == len(ds.test) == 18
    with open(tmp_path / "imagenet" / "split_fewshot" / "shot_16-seed_2.pkl", "rb") as f:
        assert set(pickle.load(f)) == {"train"}  # as CoOp's ImageNet cache


def test_imagenet_lists_are_cached_and_refreshed(tmp_path, monkeypatch):
    tree = BUILDERS["imagenet"](str(tmp_path), True)
    first = load(tmp_path, "imagenet")
    cache = os.path.join(tree.dataset_dir, "preprocessed.pkl")
    with open(cache, "rb") as f:
        data = pickle.load(f)  # CoOp reads the same file: keys train/test of Datum
    assert [d.impath for d in data["train"]] == [d.impath for d in first.train_x]
    assert [d.impath for d in data["test"]] == [d.impath for d in first.test]

    def no_listing(*args, **kwargs):
        raise AssertionError("the image folders were listed again")

    with monkeypatch.context() as m:
        m.setattr(imagenet_module, "read_class_folders", no_listing)
        second = load(tmp_path, "imagenet")
    assert [d.impath for d in second.train_x] == [d.impath for d in first.train_x]

    # A new image changes its folder's fingerprint: the lists are rebuilt.
    extra = os.path.join(tree.dataset_dir, "images", "train", "n01443537", "n01443537_99.JPEG")
    shutil.copy(first.train_x[0].impath, extra)
    third = load(tmp_path, "imagenet")
    assert len(third.train_x) == len(first.train_x) + 1 and extra in [
        d.impath for d in third.train_x
    ]

    # A cache written by CoOp (no fingerprint) is used when its images are under images/.
    kept = first.train_x[:3]
    with open(cache, "wb") as f:
        pickle.dump({"train": kept, "test": first.test}, f)
    with monkeypatch.context() as m:
        m.setattr(imagenet_module, "read_class_folders", no_listing)
        fourth = load(tmp_path, "imagenet")
    assert [d.impath for d in fourth.train_x] == [d.impath for d in kept]

    # ... and relisted when they are not (the data moved since CoOp wrote it).
    moved = [Datum(impath="/elsewhere/x.JPEG", label=0, classname="tench")]
    with open(cache, "wb") as f:
        pickle.dump({"train": moved, "test": moved}, f)
    assert len(load(tmp_path, "imagenet").train_x) == len(third.train_x)


MISSING_FOLDER = {
    "imagenet": "imagenet/images",
    "caltech101": "caltech-101/101_ObjectCategories",
    "oxford_pets": "oxford_pets/images",
    "stanford_cars": "stanford_cars",
    "oxford_flowers": "oxford_flowers/jpg",
    "food101": "food-101/images",
    "fgvc_aircraft": "fgvc_aircraft/images",
    "sun397": "sun397/SUN397",
    "dtd": "dtd/images",
    "eurosat": "eurosat/2750",
    "ucf101": "ucf101/UCF-101-midframes",
    "imagenetv2": "imagenetv2/imagenetv2-matched-frequency-format-val",
    "imagenet_sketch": "imagenet-sketch/images",
    "imagenet_a": "imagenet-adversarial/imagenet-a",
    "imagenet_r": "imagenet-rendition/imagenet-r",
}


@pytest.mark.parametrize("name", list(CLASS_OF))
def test_missing_folder_names_the_expected_path(tmp_path, name):
    with pytest.raises(DatasetFileError) as err:
        load(tmp_path, name)
    message = str(err.value)
    assert f"expected {tmp_path / MISSING_FOLDER[name]}." in message
    assert "DATASETS.md" in message


# config name -> (file removed from the tree, text the error must contain)
MISSING_FILE = {
    "oxford_pets": ("annotations/trainval.txt", "gdown 1501r8Ber4nNKvmlFVQZ8SeUHTcdTTEqs -O"),
    "stanford_cars": ("devkit/cars_train_annos.mat", "gdown 1ObCFbaAgVu0I-k_Au-gIUcefirdAuizT -O"),
    "oxford_flowers": ("imagelabels.mat", "gdown 1Pp0sRXzZFZq15zVOzKjKBu4A9i01nozT -O"),
    "sun397": ("Training_01.txt", "gdown 1y2RD81BYuiyvebdN-JymPfyWYcd8_MUq -O"),
    "ucf101": ("ucfTrainTestlist/trainlist01.txt", "gdown 1I0S0q91hJfsV9Gf4xDIjgDq4AqBNJb1y -O"),
    "fgvc_aircraft": ("images_variant_val.txt", "FGVCAircraft split file not found"),
    "imagenet": ("classnames.txt", "gdown 1-61f_ol77pEVuJ7hQ-U5WKJNB9jUuGSI -O"),
    "imagenetv2": ("classnames.txt", "gdown 1-61f_ol77pEVuJ7hQ-U5WKJNB9jUuGSI -O"),
}


@pytest.mark.parametrize("name", list(MISSING_FILE))
def test_missing_split_file_names_the_expected_path(tmp_path, name):
    tree = BUILDERS[name](str(tmp_path), False)
    missing, text = MISSING_FILE[name]
    os.remove(os.path.join(tree.dataset_dir, missing))
    with pytest.raises(DatasetFileError) as err:
        load(tmp_path, name)
    message = str(err.value)
    assert f"expected {os.path.join(tree.dataset_dir, missing)}." in message
    assert text in message and "DATASETS.md" in message
    if name in WITH_SPLIT_JSON:  # one error offering both ways out
        assert f"Neither the split file {tree.dataset_dir}/split_zhou_" in message


def test_imagenet_val_must_have_the_train_classes(tmp_path):
    tree = BUILDERS["imagenet"](str(tmp_path), True)
    shutil.rmtree(os.path.join(tree.dataset_dir, "images", "val", "n01443537"))
    with pytest.raises(ValueError, match=r"\['n01443537'\] are in only one of them"):
        load(tmp_path, "imagenet")


def test_split_file_with_a_differently_nested_image_folder(tmp_path):
    tree = BUILDERS["eurosat"](str(tmp_path), True)
    image_dir = os.path.join(tree.dataset_dir, "2750")
    os.rename(image_dir, image_dir + "_x")  # the zip unpacked as 2750/2750/...
    os.makedirs(image_dir)
    os.rename(image_dir + "_x", os.path.join(image_dir, "2750"))
    with pytest.raises(DatasetFileError) as err:
        load(tmp_path, "eurosat")
    first = os.path.join(image_dir, tree.split["train"][0][0])
    split_file = os.path.join(tree.dataset_dir, "split_zhou_EuroSAT.json")
    assert f"Image listed in {split_file} not found: expected {first}." in str(err.value)


def test_corrupt_image_is_reported_with_its_path(tmp_path):
    BUILDERS["dtd"](str(tmp_path), True)
    ds = load(tmp_path, "dtd")
    bad = ds.test[0]
    with open(bad.impath, "wb") as f:
        f.write(b"not a jpeg")
    cfg = get_cfg_default()
    wrapper = DatasetWrapper(cfg, ds.test)
    assert wrapper[1]["label"] == ds.test[1].label  # a good image reads
    with pytest.raises(OSError, match="Cannot read image") as err:
        wrapper[0]
    assert bad.impath in str(err.value)


def test_command_line_builds_a_tree(tmp_path, capsys):
    main(["eurosat", str(tmp_path), "--no-split"])
    assert sorted(os.listdir(tmp_path / "eurosat" / "2750")) == [
        "AnnualCrop",
        "Forest",
        "HerbaceousVegetation",
        "Highway",
        "SeaLake",
    ]
    assert not (tmp_path / "eurosat" / "split_zhou_EuroSAT.json").exists()
    main(["dtd", str(tmp_path)])
    assert (tmp_path / "dtd" / "split_zhou_DescribableTextures.json").exists()
    assert "dtd: " in capsys.readouterr().out
