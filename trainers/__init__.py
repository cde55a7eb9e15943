"""Prompt-learning trainers for CLIP.

Every module of this package registers its trainer(s) with ``dassl.engine.TRAINER_REGISTRY`` on
import; importing the package imports them all (``common`` and ``templates`` hold shared code).
"""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")
