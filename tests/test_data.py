"""Engine-side data: Datum, DatasetBase, few-shot sampling, subsample_classes, transforms,
DatasetWrapper, DataManager and read_image."""

import random
from collections import OrderedDict

import pytest
import torch
import torchvision.transforms.functional as F
from PIL import Image
from torchvision.transforms import InterpolationMode

from dassl.config import get_cfg_default
from dassl.data import DataManager, DatasetWrapper
from dassl.data.datasets import DATASET_REGISTRY, DatasetBase, Datum, build_dataset
from dassl.data.transforms import build_transform
from dassl.utils import read_image, set_random_seed

torch.set_num_threads(1)

IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)


def _items(labels: list[int]) -> list[Datum]:
    return [Datum(f"img_{i}.jpg", y, 0, f"class_{y}") for i, y in enumerate(labels)]


# ---------------------------------------------------------------------------------------------
# Datum and DatasetBase
# ---------------------------------------------------------------------------------------------


def test_datum_is_read_only():
    item = Datum(impath="a/b.jpg", label=3, domain=1, classname="cat")
    assert (item.impath, item.label, item.domain, item.classname) == ("a/b.jpg", 3, 1, "cat")
    for name in ("impath", "label", "domain", "classname"):
        with pytest.raises(AttributeError):
            setattr(item, name, None)
    with pytest.raises(TypeError, match="impath must be a str"):
        Datum(impath=123)


def test_datasetbase_derives_classes_from_train_x():
    train = [
        Datum("x", 2, 0, "dog"),
        Datum("y", 0, 0, "cat"),
        Datum("z", 2, 0, "dog"),
        Datum("w", 1, 0, "bird"),
    ]
    test = [Datum("t", 5, 0, "never seen in train")]
    dataset = DatasetBase(train_x=train, val=None, test=test)
    assert dataset.num_classes == 3
    assert dataset.classnames == ["cat", "bird", "dog"]
    assert dataset.lab2cname == {0: "cat", 1: "bird", 2: "dog"}
    assert dataset.train_x is train and dataset.test is test and dataset.val is None
    with pytest.raises(ValueError, match="train_x is empty"):
        DatasetBase(train_x=[], test=test)


# ---------------------------------------------------------------------------------------------
# Few-shot sampling
# ---------------------------------------------------------------------------------------------


def _reference_fewshot(data_source, num_shots, repeat=False):
    """Independent re-implementation of Dassl 0.6.3's generate_fewshot_dataset for one source:
    labels in first-appearance order, random.sample per label (all items when fewer)."""
    groups = OrderedDict()
    for item in data_source:
        groups.setdefault(item.label, []).append(item)
    out = []
    for items in groups.values():
        if len(items) >= num_shots:
            out += random.sample(items, num_shots)
        elif repeat:
            out += random.choices(items, k=num_shots)
        else:
            out += items
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("num_shots", [1, 2, 4, 16])
def test_fewshot_matches_reference_implementation(seed, num_shots):
    gen = random.Random(seed + 100)
    labels = [gen.randrange(7) for _ in range(150)]  # class sizes vary, some below 16
    train, val = _items(labels), _items(labels[::-1])
    sampler = DatasetBase(train_x=train)

    set_random_seed(seed)
    got_train = sampler.generate_fewshot_dataset(train, num_shots=num_shots)
    got_val = sampler.generate_fewshot_dataset(val, num_shots=min(num_shots, 4))
    set_random_seed(seed)
    ref_train = _reference_fewshot(train, num_shots)
    ref_val = _reference_fewshot(val, min(num_shots, 4))
    assert [x.impath for x in got_train] == [x.impath for x in ref_train]
    assert [x.impath for x in got_val] == [x.impath for x in ref_val]

    # several sources in one call consume the generator in order
    set_random_seed(seed)
    both = sampler.generate_fewshot_dataset(train, val, num_shots=num_shots, repeat=True)
    set_random_seed(seed)
    ref_both = [
        _reference_fewshot(train, num_shots, True),
        _reference_fewshot(val, num_shots, True),
    ]
    assert [[x.impath for x in s] for s in both] == [[x.impath for x in s] for s in ref_both]


def test_fewshot_order_small_classes_and_passthrough():
    data = _items([2, 0, 2, 1, 0, 2, 2])
    sampler = DatasetBase(train_x=data)
    random.seed(0)
    out = sampler.generate_fewshot_dataset(data, num_shots=2)
    # label order of first appearance: 2, 0, 1; label 1 has one item, kept whole
    assert [x.label for x in out] == [2, 2, 0, 0, 1]
    assert {x.impath for x in out[2:4]} == {"img_1.jpg", "img_4.jpg"}
    assert out[4].impath == "img_3.jpg"
    assert sampler.generate_fewshot_dataset(data, num_shots=-1) is data
    assert sampler.generate_fewshot_dataset(data, data, num_shots=0) == (data, data)


# ---------------------------------------------------------------------------------------------
# Base-to-new class subsampling
# ---------------------------------------------------------------------------------------------


def test_subsample_classes_base_and_new():
    train = _items([4, 0, 3, 1, 2, 4, 0])  # 5 labels: base = {0, 1, 2} (ceil 5/2), new = {3, 4}
    test = _items([0, 1, 2, 3, 4, 6])  # label 6 is not in the first split: dropped from both
    base_train, base_test = DatasetBase.subsample_classes(train, test, subsample="base")
    assert [(x.impath, x.label) for x in base_train] == [
        ("img_1.jpg", 0),
        ("img_3.jpg", 1),
        ("img_4.jpg", 2),
        ("img_6.jpg", 0),
    ]
    assert [x.label for x in base_test] == [0, 1, 2]
    new_train, new_test = DatasetBase.subsample_classes(train, test, subsample="new")
    assert [(x.impath, x.label, x.classname) for x in new_train] == [
        ("img_0.jpg", 1, "class_4"),
        ("img_2.jpg", 0, "class_3"),
        ("img_5.jpg", 1, "class_4"),
    ]
    assert [(x.label, x.classname) for x in new_test] == [(0, "class_3"), (1, "class_4")]
    assert DatasetBase.subsample_classes(train, test, subsample="all") == (train, test)
    with pytest.raises(ValueError, match="SUBSAMPLE_CLASSES"):
        DatasetBase.subsample_classes(train, subsample="novel")


def test_subsample_classes_uses_labels_not_positions():
    # labels 10, 20, 30, 40 (not 0-based): base = {10, 20}, relabelled 0, 1
    train = _items([40, 10, 30, 20])
    (base,) = DatasetBase.subsample_classes(train, subsample="base")
    assert [(x.impath, x.label) for x in base] == [("img_1.jpg", 0), ("img_3.jpg", 1)]


# ---------------------------------------------------------------------------------------------
# Transforms
# ---------------------------------------------------------------------------------------------


def _gradient_image(width: int, height: int) -> Image.Image:
    x = torch.arange(width).view(1, width).expand(height, width)
    y = torch.arange(height).view(height, 1).expand(height, width)
    pixels = torch.stack([x * 7 % 256, y * 11 % 256, (x + y) * 5 % 256], dim=2)
    return Image.fromarray(pixels.byte().numpy())


def test_test_transform_resizes_smaller_edge_then_center_crops():
    cfg = get_cfg_default()
    cfg.INPUT.SIZE = (16, 16)
    cfg.INPUT.INTERPOLATION = "bicubic"
    cfg.INPUT.TRANSFORMS = ("random_resized_crop", "random_flip", "normalize")
    img = _gradient_image(40, 20)
    out = build_transform(cfg, is_train=False)(img)
    # by hand: 40x20 -> smaller edge 16 -> 32x16 (bicubic) -> center 16x16 -> [0, 1] -> normalise
    resized = F.resize(img, 16, interpolation=InterpolationMode.BICUBIC)
    assert resized.size == (32, 16)
    expected = F.to_tensor(resized.crop((8, 0, 24, 16)))
    expected = (expected - IMAGENET_MEAN) / IMAGENET_STD
    assert out.shape == (3, 16, 16)
    assert torch.allclose(out, expected, atol=1e-6)


def test_train_transform_order_and_randomness_from_torch_seed():
    cfg = get_cfg_default()
    cfg.INPUT.SIZE = (8, 8)
    cfg.INPUT.INTERPOLATION = "bicubic"
    cfg.INPUT.TRANSFORMS = ("normalize", "random_flip", "random_resized_crop")
    tfm = build_transform(cfg, is_train=True)
    names = [type(t).__name__ for t in tfm.transforms]
    assert names == ["RandomResizedCrop", "RandomHorizontalFlip", "ToTensor", "Normalize"]
    assert tfm.transforms[0].interpolation == InterpolationMode.BICUBIC
    assert tfm.transforms[0].scale == (0.08, 1.0)
    img = _gradient_image(24, 16)
    torch.manual_seed(5)
    a = tfm(img)
    torch.manual_seed(5)
    assert torch.equal(a, tfm(img))

    cfg.INPUT.TRANSFORMS = ("random_flip",)
    names = [type(t).__name__ for t in build_transform(cfg, is_train=True).transforms]
    assert names == ["Resize", "RandomHorizontalFlip", "ToTensor"]
    cfg.INPUT.TRANSFORMS = ("center_crop",)
    names = [type(t).__name__ for t in build_transform(cfg, is_train=True).transforms]
    assert names == ["Resize", "CenterCrop", "ToTensor"]


def test_transform_config_errors():
    cfg = get_cfg_default()
    cfg.INPUT.TRANSFORMS = ("random_flip", "random_resize_crop")
    with pytest.raises(ValueError, match='did you mean "random_resized_crop"'):
        build_transform(cfg)
    cfg.INPUT.TRANSFORMS = ()
    cfg.INPUT.INTERPOLATION = "lanczos"
    with pytest.raises(ValueError, match="INPUT.INTERPOLATION"):
        build_transform(cfg)
    cfg.INPUT.NO_TRANSFORM = True
    assert build_transform(cfg) is None


# ---------------------------------------------------------------------------------------------
# Images, DatasetWrapper, DataManager
# ---------------------------------------------------------------------------------------------


def test_read_image_reports_missing_and_corrupt_files(tmp_path):
    good = tmp_path / "good.png"
    Image.new("L", (3, 2), color=7).save(good)
    img = read_image(str(good))
    assert img.mode == "RGB" and img.size == (3, 2) and img.getpixel((0, 0)) == (7, 7, 7)
    with pytest.raises(FileNotFoundError, match="missing.jpg"):
        read_image(str(tmp_path / "missing.jpg"))
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(OSError, match=r"corrupt\.jpg.*corrupt or truncated"):
        read_image(str(corrupt))


@DATASET_REGISTRY.register()
class DataTestTiny(DatasetBase):
    """10 train images of 2 classes, 3 val, 5 test, under DATASET.ROOT."""

    def __init__(self, cfg):
        def items(start, n):
            return [
                Datum(f"{cfg.DATASET.ROOT}/{i}.png", i % 2, 0, ["red", "blue"][i % 2])
                for i in range(start, start + n)
            ]

        super().__init__(train_x=items(0, 10), val=items(10, 3), test=items(13, 5))


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data_tiny")
    for i in range(18):
        Image.new("RGB", (12, 10), color=(15 * i, 255 - 10 * i, 3 * i)).save(root / f"{i}.png")
    return str(root)


def _tiny_cfg(root: str):
    cfg = get_cfg_default()
    cfg.DATASET.NAME = "DataTestTiny"
    cfg.DATASET.ROOT = root
    cfg.INPUT.SIZE = (8, 8)
    cfg.INPUT.TRANSFORMS = ("random_flip", "normalize")
    cfg.DATALOADER.NUM_WORKERS = 0
    cfg.DATALOADER.TRAIN_X.BATCH_SIZE = 4
    cfg.DATALOADER.TEST.BATCH_SIZE = 2
    cfg.USE_CUDA = False
    return cfg


def test_datamanager_loaders_summary_and_drop_last(tiny_root, capsys):
    cfg = _tiny_cfg(tiny_root)
    dm = DataManager(cfg)
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line.startswith(("Dataset", "# "))]
    assert rows == [
        ["Dataset", "DataTestTiny"],
        ["#", "classes", "2"],
        ["#", "train_x", "10"],
        ["#", "val", "3"],
        ["#", "test", "5"],
    ]
    assert dm.num_classes == 2 and dm.lab2cname == {0: "red", 1: "blue"}
    # Dassl default: drop the last incomplete batch -> 10 // 4 = 2 batches
    assert len(dm.train_loader_x) == 2
    assert type(dm.train_loader_x.sampler).__name__ == "RandomSampler"
    assert type(dm.test_loader.sampler).__name__ == "SequentialSampler"
    assert (len(dm.val_loader), len(dm.test_loader)) == (2, 3)

    batch = next(iter(dm.test_loader))
    assert batch["img"].shape == (2, 3, 8, 8)
    assert batch["label"].tolist() == [1, 0] and batch["index"].tolist() == [0, 1]
    # a uniform image stays uniform: value = (colour / 255 - mean) / std
    colour = torch.tensor([15 * 13, 255 - 10 * 13, 3 * 13]).float().view(3, 1, 1) / 255
    expected = ((colour - IMAGENET_MEAN) / IMAGENET_STD).expand(3, 8, 8)
    assert torch.allclose(batch["img"][0], expected, atol=1e-5)

    cfg.DATALOADER.TRAIN_X.DROP_LAST = False
    assert len(DataManager(cfg).train_loader_x) == 3
    cfg.DATALOADER.TRAIN_X.DROP_LAST = True
    cfg.DATALOADER.TRAIN_X.BATCH_SIZE = 16  # fewer items than a batch: never an empty loader
    assert len(DataManager(cfg).train_loader_x) == 1
    cfg.DATALOADER.TRAIN_X.SAMPLER = "RandomSampeler"
    with pytest.raises(ValueError, match='did you mean "RandomSampler"'):
        DataManager(cfg)


def test_datasetwrapper_k_transforms_and_img0(tiny_root):
    cfg = _tiny_cfg(tiny_root)
    cfg.DATALOADER.K_TRANSFORMS = 2
    cfg.DATALOADER.RETURN_IMG0 = True
    dataset = build_dataset(cfg)
    tfm = build_transform(cfg, is_train=True)
    item = DatasetWrapper(cfg, dataset.train_x, transform=tfm, is_train=True)[3]
    assert (item["label"], item["domain"], item["index"]) == (1, 0, 3)
    assert item["impath"].endswith("/3.png")
    assert isinstance(item["img"], list) and len(item["img"]) == 2
    # uniform colour: flips do not change it, so both views equal img0
    assert torch.equal(item["img"][0], item["img0"]) and torch.equal(item["img"][1], item["img0"])
    test_item = DatasetWrapper(cfg, dataset.test, transform=[tfm, tfm], is_train=False)[0]
    assert test_item["img"].shape == test_item["img2"].shape == (3, 8, 8)


def test_build_dataset_unknown_name_suggests(tiny_root):
    cfg = _tiny_cfg(tiny_root)
    cfg.DATASET.NAME = "DataTestTyni"
    with pytest.raises(ValueError, match=r"do you mean \[DataTestTiny\]"):
        build_dataset(cfg)
