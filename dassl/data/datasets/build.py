"""The dataset registry and ``build_dataset``."""

from yacs.config import CfgNode

from dassl.utils import Registry, check_availability

from .base_dataset import DatasetBase

DATASET_REGISTRY = Registry("DATASET")


def build_dataset(cfg: CfgNode) -> DatasetBase:
    """Instantiate the dataset class registered as ``cfg.DATASET.NAME`` with ``cfg``."""
    avai_datasets = DATASET_REGISTRY.registered_names()
    check_availability(cfg.DATASET.NAME, avai_datasets)
    if cfg.VERBOSE:
        print(f"Loading dataset: {cfg.DATASET.NAME}")
    return DATASET_REGISTRY.get(cfg.DATASET.NAME)(cfg)
