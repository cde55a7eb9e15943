"""``DataManager`` builds the dataset, the transforms and the train/val/test data loaders."""

from typing import Any, Callable

import torch
from PIL import Image
from tabulate import tabulate
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import Compose, Normalize, Resize, ToTensor
from yacs.config import CfgNode

from dassl.utils import read_image

from .datasets import Datum, build_dataset
from .samplers import build_sampler
from .transforms import INTERPOLATION_MODES, build_transform

__all__ = ["DataManager", "DatasetWrapper", "build_data_loader"]


def build_data_loader(
    cfg: CfgNode,
    sampler_type: str = "SequentialSampler",
    data_source: list[Datum] | None = None,
    batch_size: int = 64,
    tfm: Callable | None = None,
    is_train: bool = True,
    dataset_wrapper: type[Dataset] | None = None,
    drop_last: bool = False,
) -> DataLoader:
    """A ``DataLoader`` over ``data_source`` wrapped by ``dataset_wrapper`` (``DatasetWrapper``).

    ``drop_last`` drops the last incomplete batch, and only applies when ``data_source`` holds
    at least one full batch (as in Dassl), so a loader is never empty.
    """
    if not data_source:
        raise ValueError(
            "build_data_loader(): the data source is empty; check the dataset split files and "
            "DATASET.NUM_SHOTS / DATASET.SUBSAMPLE_CLASSES."
        )
    sampler = build_sampler(sampler_type, data_source)
    if dataset_wrapper is None:
        dataset_wrapper = DatasetWrapper
    return DataLoader(
        dataset_wrapper(cfg, data_source, transform=tfm, is_train=is_train),
        batch_size=batch_size,
        sampler=sampler,
        num_workers=cfg.DATALOADER.NUM_WORKERS,
        drop_last=drop_last and len(data_source) >= batch_size,
        pin_memory=torch.cuda.is_available() and cfg.USE_CUDA,
    )


class DataManager:
    """Dataset, transforms and data loaders of a config.

    Attributes:
        dataset: the ``DatasetBase`` built from ``cfg.DATASET.NAME``.
        train_loader_x: training loader (``DATALOADER.TRAIN_X``: sampler, batch size, drop_last).
        train_loader_u: None (unlabeled data is not used by this engine).
        val_loader: validation loader, or None when the dataset has no val split.
        test_loader: test loader (``DATALOADER.TEST``).
    """

    def __init__(
        self,
        cfg: CfgNode,
        custom_tfm_train: Callable | None = None,
        custom_tfm_test: Callable | None = None,
        dataset_wrapper: type[Dataset] | None = None,
    ) -> None:
        dataset = build_dataset(cfg)

        if custom_tfm_train is None:
            tfm_train = build_transform(cfg, is_train=True)
        else:
            print("* Using custom transform for training")
            tfm_train = custom_tfm_train
        if custom_tfm_test is None:
            tfm_test = build_transform(cfg, is_train=False)
        else:
            print("* Using custom transform for testing")
            tfm_test = custom_tfm_test

        test_kwargs = dict(
            sampler_type=cfg.DATALOADER.TEST.SAMPLER,
            batch_size=cfg.DATALOADER.TEST.BATCH_SIZE,
            tfm=tfm_test,
            is_train=False,
            dataset_wrapper=dataset_wrapper,
        )
        self.train_loader_x = build_data_loader(
            cfg,
            sampler_type=cfg.DATALOADER.TRAIN_X.SAMPLER,
            data_source=dataset.train_x,
            batch_size=cfg.DATALOADER.TRAIN_X.BATCH_SIZE,
            tfm=tfm_train,
            is_train=True,
            dataset_wrapper=dataset_wrapper,
            drop_last=cfg.DATALOADER.TRAIN_X.DROP_LAST,
        )
        self.train_loader_u = None
        self.val_loader = None
        if dataset.val:
            self.val_loader = build_data_loader(cfg, data_source=dataset.val, **test_kwargs)
        self.test_loader = build_data_loader(cfg, data_source=dataset.test, **test_kwargs)

        self._num_classes = dataset.num_classes
        self._num_source_domains = len(cfg.DATASET.SOURCE_DOMAINS)
        self._lab2cname = dataset.lab2cname
        self.dataset = dataset

        if cfg.VERBOSE:
            self.show_dataset_summary(cfg)

    @property
    def num_classes(self) -> int:
        return self._num_classes

    @property
    def num_source_domains(self) -> int:
        return self._num_source_domains

    @property
    def lab2cname(self) -> dict[int, str]:
        return self._lab2cname

    def show_dataset_summary(self, cfg: CfgNode) -> None:
        """Print a table: dataset, domains (if any), #classes, #train_x, #val, #test."""
        table = [["Dataset", cfg.DATASET.NAME]]
        if cfg.DATASET.SOURCE_DOMAINS:
            table.append(["Source", cfg.DATASET.SOURCE_DOMAINS])
        if cfg.DATASET.TARGET_DOMAINS:
            table.append(["Target", cfg.DATASET.TARGET_DOMAINS])
        table.append(["# classes", f"{self.num_classes:,}"])
        table.append(["# train_x", f"{len(self.dataset.train_x):,}"])
        if self.dataset.val:
            table.append(["# val", f"{len(self.dataset.val):,}"])
        table.append(["# test", f"{len(self.dataset.test):,}"])
        print(tabulate(table))


class DatasetWrapper(Dataset):
    """Reads the images of a list of ``Datum`` and applies a transform.

    An item is a dict: ``img`` (the transformed image, e.g. a ``(3, H, W)`` tensor; a list of
    ``DATALOADER.K_TRANSFORMS`` of them during training when K > 1; ``img2``, ``img3``, ... when
    ``transform`` is a list of transforms), ``label``, ``domain``, ``impath``, ``index``, and
    ``img0`` (resized, not augmented) when ``DATALOADER.RETURN_IMG0``.
    """

    def __init__(
        self,
        cfg: CfgNode,
        data_source: list[Datum],
        transform: Callable | list[Callable] | tuple[Callable, ...] | None = None,
        is_train: bool = False,
    ) -> None:
        self.cfg = cfg
        self.data_source = data_source
        self.transform = transform
        self.is_train = is_train
        # Augmenting an image K > 1 times is only done during training
        self.k_tfm = cfg.DATALOADER.K_TRANSFORMS if is_train else 1
        self.return_img0 = cfg.DATALOADER.RETURN_IMG0

        if self.k_tfm > 1 and transform is None:
            raise ValueError(
                f"DATALOADER.K_TRANSFORMS = {self.k_tfm} needs a transform, but transform is None"
            )

        to_tensor = [
            Resize(cfg.INPUT.SIZE, interpolation=INTERPOLATION_MODES[cfg.INPUT.INTERPOLATION]),
            ToTensor(),
        ]
        if "normalize" in cfg.INPUT.TRANSFORMS:
            to_tensor += [Normalize(mean=cfg.INPUT.PIXEL_MEAN, std=cfg.INPUT.PIXEL_STD)]
        self.to_tensor = Compose(to_tensor)

    def __len__(self) -> int:
        return len(self.data_source)

    def __getitem__(self, idx: int) -> dict[str, Any]:
        item = self.data_source[idx]
        output = {"label": item.label, "domain": item.domain, "impath": item.impath, "index": idx}
        img0 = read_image(item.impath)

        if self.transform is None:
            output["img"] = img0
        elif isinstance(self.transform, (list, tuple)):
            for i, tfm in enumerate(self.transform):
                keyname = "img" if i == 0 else f"img{i + 1}"
                output[keyname] = self._transform_image(tfm, img0)
        else:
            output["img"] = self._transform_image(self.transform, img0)

        if self.return_img0:
            output["img0"] = self.to_tensor(img0)
        return output

    def _transform_image(self, tfm: Callable, img0: Image.Image) -> Any:
        img_list = [tfm(img0) for _ in range(self.k_tfm)]
        return img_list[0] if len(img_list) == 1 else img_list
