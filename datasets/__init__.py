"""Benchmark datasets in CoOp's on-disk layouts.

Every module of this package registers its dataset class(es) with
``dassl.data.datasets.DATASET_REGISTRY`` on import; importing the package imports them all.
"""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")
