"""Shared helpers for the benchmark datasets in CoOp's on-disk layouts.

CoOp keeps these as static methods of ``OxfordPets`` and ``DescribableTextures`` and pastes the
few-shot cache block into every dataset file; here they live once:

- ``read_split`` / ``save_split``: CoOp's ``split_zhou_<Name>.json`` files, keys ``train``, ``val``,
  ``test``, each a list of ``[path relative to the image folder, label, classname]``.
- ``split_trainval`` (OxfordPets-style 80/20 split of a trainval list) and ``read_and_split_data``
  (DTD-style 50/20/30 split of an ``images/<class>/<image>`` tree); both draw from Python's global
  ``random``, exactly as CoOp does, so the seed set by ``set_random_seed`` decides the split.
- ``load_or_build_split``: read the split file, or build it from the raw files and save it.
- ``load_fewshot``: Dassl's few-shot sampling (the engine's ``generate_fewshot_dataset``) with
  CoOp's cache ``split_fewshot/shot_{K}-seed_{SEED}.pkl``.
- ``finish_splits``: few-shot sampling then the engine's ``DatasetBase.subsample_classes``
  (base/new/all classes), the tail of every dataset's ``__init__``.

Few-shot cache format. The cache is a pickle of ``{"train": [Datum, ...], "val": [Datum, ...]}``
(ImageNet: ``train`` only), the format Dassl/CoOp write, so CoOp and this code can share a data root
and read each other's caches. Reading goes through a restricted unpickler that admits only Datum
objects and plain Python values (a pickle can otherwise run arbitrary code), and the content is
checked against the current split: every cached image must be in it with the same label and class
name, and each class must hold ``min(K, n)`` images. A cache that fails a check (written from another
split file, another data location or another number of shots), a truncated file or a foreign pickle
raises ``DataCacheError`` naming the file; deleting it regenerates the same split for the seed.
Caches are written to a temporary file and renamed, so an interrupted run never leaves half a file.
"""

from __future__ import annotations

import os
import pickle
import random
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from dassl.data.datasets import DatasetBase, Datum
from dassl.utils import atomic_write, listdir_nohidden, mkdir_if_missing, read_json, write_json

DATASETS_DOC = "DATASETS.md"


class DatasetFileError(FileNotFoundError):
    """A file or folder of a dataset's expected layout is missing."""


class DataCacheError(RuntimeError):
    """A cache file (few-shot split, ImageNet's parsed lists) is unreadable or out of date."""


def dataset_root(cfg: Any) -> str:
    """Absolute path of ``cfg.DATASET.ROOT`` (``~`` expanded)."""
    return os.path.abspath(os.path.expanduser(cfg.DATASET.ROOT))


def gdown_hint(file_id: str, dest: str) -> str:
    """The command that fetches CoOp's Google-Drive file ``file_id`` to ``dest``."""
    return f"pip install gdown && gdown {file_id} -O {dest}"


def require(path: str, what: str, hint: str = "") -> str:
    """Return ``path`` if it exists, else raise one ``DatasetFileError`` that names it.

    Args:
        path: the expected file or folder.
        what: what it is, e.g. "EuroSAT image folder".
        hint: where to get it (appended to the message).
    """
    if not os.path.exists(path):
        message = f"{what} not found: expected {path}."
        if hint:
            message += f" {hint}"
        message += f" See {DATASETS_DOC} for the expected layout of every dataset."
        raise DatasetFileError(message)
    return path


def read_classnames(text_file: str) -> OrderedDict[str, str]:
    """Read ImageNet's ``classnames.txt`` (lines ``<folder> <class name>``), in file order."""
    classnames: OrderedDict[str, str] = OrderedDict()
    with open(text_file) as f:
        for line in f:
            parts = line.strip().split(" ")
            if parts == [""]:
                continue
            classnames[parts[0]] = " ".join(parts[1:])
    return classnames


def read_split(filepath: str, path_prefix: str) -> tuple[list[Datum], list[Datum], list[Datum]]:
    """Read a CoOp split file; image paths are joined to ``path_prefix``.

    Raises ``DatasetFileError`` when the first image of a split does not exist, which is what a
    split file paired with a differently nested image folder looks like.
    """
    print(f"Reading split from {filepath}")
    split = read_json(filepath)
    missing_keys = [key for key in ("train", "val", "test") if key not in split]
    if missing_keys:
        raise ValueError(
            f"Split file {filepath} has no {missing_keys} entries; a CoOp split file holds "
            f"'train', 'val' and 'test'. Delete it to rebuild it from the raw files "
            f"(see {DATASETS_DOC})."
        )
    out = []
    for key in ("train", "val", "test"):
        if split[key]:
            first = os.path.join(path_prefix, split[key][0][0])
            require(first, f"Image listed in {filepath}")
        out.append(
            [
                Datum(impath=os.path.join(path_prefix, impath), label=int(label), classname=cname)
                for impath, label, cname in split[key]
            ]
        )
    return out[0], out[1], out[2]


def save_split(
    train: Sequence[Datum],
    val: Sequence[Datum],
    test: Sequence[Datum],
    filepath: str,
    path_prefix: str,
) -> None:
    """Save a split in CoOp's format, image paths relative to ``path_prefix``."""

    def _extract(items: Sequence[Datum]) -> list[tuple[str, int, str]]:
        return [(os.path.relpath(d.impath, path_prefix), d.label, d.classname) for d in items]

    split = {"train": _extract(train), "val": _extract(val), "test": _extract(test)}
    write_json(split, filepath)
    print(f"Saved split to {filepath}")


def split_trainval(
    trainval: Sequence[Datum], p_val: float = 0.2
) -> tuple[list[Datum], list[Datum]]:
    """Split each class of ``trainval`` into train and val (CoOp's ``OxfordPets.split_trainval``).

    Per label (first-appearance order), ``round(n * p_val)`` shuffled items go to val.
    """
    print(f"Splitting trainval into {1 - p_val:.0%} train and {p_val:.0%} val")
    tracker: defaultdict[int, list[int]] = defaultdict(list)
    for idx, item in enumerate(trainval):
        tracker[item.label].append(idx)

    train, val = [], []
    for label, idxs in tracker.items():
        n_val = round(len(idxs) * p_val)
        if n_val == 0:
            raise ValueError(
                f"Class {label} ({trainval[idxs[0]].classname!r}) has {len(idxs)} trainval "
                f"images, too few to hold out {p_val:.0%} for validation."
            )
        random.shuffle(idxs)
        for n, idx in enumerate(idxs):
            (val if n < n_val else train).append(trainval[idx])
    return train, val


def read_and_split_data(
    image_dir: str,
    p_trn: float = 0.5,
    p_val: float = 0.2,
    ignored: Sequence[str] = (),
    new_cnames: dict[str, str] | None = None,
) -> tuple[list[Datum], list[Datum], list[Datum]]:
    """Split an ``image_dir/<class>/<image>`` tree per class (CoOp's ``DTD.read_and_split_data``).

    Classes are the sorted folder names minus ``ignored``; labels follow that order and
    ``new_cnames`` renames folders to class names. Per class the shuffled images go
    ``round(n * p_trn)`` to train, ``round(n * p_val)`` to val and the rest to test.
    Unlike CoOp, the images of a class are sorted before shuffling (CoOp shuffles
    ``os.listdir``'s order, which depends on the file system), so a seed gives one split everywhere.
    """
    categories = sorted(c for c in listdir_nohidden(image_dir) if c not in ignored)
    p_tst = 1 - p_trn - p_val
    print(f"Splitting into {p_trn:.0%} train, {p_val:.0%} val, and {p_tst:.0%} test")

    train, val, test = [], [], []
    for label, category in enumerate(categories):
        category_dir = os.path.join(image_dir, category)
        images = [os.path.join(category_dir, im) for im in sorted(listdir_nohidden(category_dir))]
        random.shuffle(images)
        n_total = len(images)
        n_train = round(n_total * p_trn)
        n_val = round(n_total * p_val)
        if not (n_train > 0 and n_val > 0 and n_total - n_train - n_val > 0):
            raise ValueError(
                f"Class folder {category_dir} has {n_total} images, too few for a "
                f"{p_trn:.0%}/{p_val:.0%}/{p_tst:.0%} train/val/test split."
            )
        cname = new_cnames.get(category, category) if new_cnames else category

        def _collate(ims: list[str], y: int = label, c: str = cname) -> list[Datum]:
            return [Datum(impath=im, label=y, classname=c) for im in ims]

        train.extend(_collate(images[:n_train]))
        val.extend(_collate(images[n_train : n_train + n_val]))
        test.extend(_collate(images[n_train + n_val :]))
    return train, val, test


def load_or_build_split(
    split_path: str,
    path_prefix: str,
    build: Callable[[], tuple[list[Datum], list[Datum], list[Datum]]],
    gdown_id: str | None = None,
) -> tuple[list[Datum], list[Datum], list[Datum]]:
    """Read ``split_path`` if it exists; otherwise ``build()`` the split and save it there.

    A freshly built split is drawn from the current seed and differs from CoOp's published
    split file, so the message says how to fetch that one (``gdown_id``).
    """
    if os.path.exists(split_path):
        return read_split(split_path, path_prefix)
    note = f"{split_path} not found: building a new split from the raw files."
    if gdown_id is not None:
        note += (
            " Results are comparable with published numbers only on CoOp's split; "
            f"get it with: {gdown_hint(gdown_id, split_path)}"
        )
    print(note)
    try:
        train, val, test = build()
    except DatasetFileError as err:
        hint = f" (get it with: {gdown_hint(gdown_id, split_path)})" if gdown_id else ""
        raise DatasetFileError(
            f"Neither the split file {split_path}{hint} nor the raw files to build it are "
            f"there. {err}"
        ) from err
    save_split(train, val, test, split_path, path_prefix)
    return train, val, test


# Dassl's few-shot sampler is a method of DatasetBase that reads no instance state; this bare
# instance lends it to ``load_fewshot``, so the sampling code lives once, in the engine.
_SAMPLER = object.__new__(DatasetBase)

# Where Dassl (and our engine) define Datum: the global that CoOp's cache pickles name.
_PICKLED_DATUM = ("dassl.data.datasets.base_dataset", "Datum")


class _PickledDatum:
    """A Datum read back from a cache: Dassl's attributes ``_impath``, ``_label``, ``_domain``
    and ``_classname`` as unpickled; nothing runs on load."""

    def key(self) -> tuple[Any, Any, Any]:
        """(impath, label, classname), ``None`` for an attribute the pickle lacks."""
        return (
            getattr(self, "_impath", None),
            getattr(self, "_label", None),
            getattr(self, "_classname", None),
        )

    def to_datum(self, path: str) -> Datum:
        """The Datum; ``DataCacheError`` naming the cache ``path`` if a field is malformed."""
        impath, label, classname = self.key()
        domain = getattr(self, "_domain", 0)
        if not (
            isinstance(impath, str)
            and isinstance(label, int)
            and isinstance(domain, int)
            and isinstance(classname, str)
        ):
            raise DataCacheError(
                f"{path} holds a malformed Datum ({vars(self)!r}); delete it and rerun to "
                f"regenerate it."
            )
        return Datum(impath=impath, label=label, domain=domain, classname=classname)


class _DatumUnpickler(pickle.Unpickler):
    """Unpickler that admits Datum objects and plain values, and nothing else."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == _PICKLED_DATUM:
            return _PickledDatum
        raise pickle.UnpicklingError(f"it refers to {module}.{name}, which a cache never holds")


def load_pickle(path: str) -> Any:
    """Load a Dassl/CoOp data cache through the restricted unpickler.

    Datum objects come back as ``_PickledDatum``. Raises ``DataCacheError`` naming ``path``
    when the file is truncated or is not such a cache.
    """
    try:
        with open(path, "rb") as f:
            return _DatumUnpickler(f).load()
    except Exception as err:
        raise DataCacheError(
            f"Cannot read the cache {path} ({type(err).__name__}: {err}). It is not a "
            f"Dassl/CoOp data cache or it is truncated; delete it and rerun to regenerate it."
        ) from err


def dump_pickle(obj: Any, path: str) -> None:
    """Pickle ``obj`` to ``path`` atomically (temporary file in the same folder, then rename)."""
    atomic_write(path, lambda f: pickle.dump(obj, f, protocol=pickle.HIGHEST_PROTOCOL))


def datums_from_cache(path: str, cached: Any) -> list[Datum]:
    """Datums from a list read by ``load_pickle``; ``DataCacheError`` names ``path`` if the
    list holds anything else."""
    if not isinstance(cached, list) or not all(isinstance(d, _PickledDatum) for d in cached):
        raise DataCacheError(
            f"{path} does not hold lists of Datum; delete it and rerun to regenerate it."
        )
    return [d.to_datum(path) for d in cached]


def _check_cached(
    path: str, key: str, cached: Any, current: Sequence[Datum], num_shots: int
) -> list[Datum]:
    """Match the cached ``key`` list against ``current``; return the matching current Datums.

    Every cached image must be in ``current`` with the same label and class name, and each label
    of ``current`` must have ``min(num_shots, n)`` cached images.
    """

    def stale(reason: str) -> DataCacheError:
        return DataCacheError(
            f"Few-shot cache {path} does not fit the current '{key}' split: {reason}. It was "
            f"written from another split file, data location or number of shots. Delete it "
            f"and rerun: the same seed samples the same few-shot split again."
        )

    if not isinstance(cached, list) or not all(isinstance(d, _PickledDatum) for d in cached):
        raise stale(f"'{key}' is not a list of Datum")
    by_path = {d.impath: d for d in current}
    counts: defaultdict[int, int] = defaultdict(int)
    for d in current:
        counts[d.label] += 1
    out: list[Datum] = []
    cached_counts: defaultdict[int, int] = defaultdict(int)
    for pickled in cached:
        impath, label, classname = pickled.key()
        match = by_path.get(impath)
        if match is None or (match.label, match.classname) != (label, classname):
            raise stale(f"it holds {impath} (label {label}, {classname!r})")
        cached_counts[label] += 1
        out.append(match)
    for label, n in counts.items():
        if cached_counts[label] != min(num_shots, n):
            raise stale(
                f"class {label} has {cached_counts[label]} images instead of {min(num_shots, n)}"
            )
    return out


def load_fewshot(
    dataset_dir: str,
    train: Sequence[Datum],
    val: Sequence[Datum] | None,
    num_shots: int,
    seed: int,
) -> tuple[list[Datum], list[Datum] | None]:
    """K-shot train (and ``min(K, 4)``-shot val) lists, cached as CoOp does.

    Args:
        dataset_dir: the dataset's folder; the cache is
            ``<dataset_dir>/split_fewshot/shot_{num_shots}-seed_{seed}.pkl``.
        train: the full training list.
        val: the full validation list, or ``None`` (ImageNet: its val is the test set and is
            not subsampled; the cache then holds ``train`` only, as in CoOp).
        num_shots: K; ``K < 1`` returns the lists unchanged.
        seed: ``cfg.SEED``. Sampling uses Python's global ``random`` as it stands (seeded by
            ``set_random_seed(seed)``, as in CoOp); with ``seed < 0`` nothing is cached, since an
            unseeded draw is not a reproducible split.
    """
    if num_shots < 1:
        return list(train), None if val is None else list(val)

    def sample() -> tuple[list[Datum], list[Datum] | None]:
        new_train = _SAMPLER.generate_fewshot_dataset(list(train), num_shots=num_shots)
        new_val = None
        if val is not None:
            new_val = _SAMPLER.generate_fewshot_dataset(list(val), num_shots=min(num_shots, 4))
        return new_train, new_val

    if seed < 0:
        print("SEED < 0: sampling a new few-shot split, not cached (set SEED to reuse one)")
        return sample()

    cache_dir = os.path.join(dataset_dir, "split_fewshot")
    path = os.path.join(cache_dir, f"shot_{num_shots}-seed_{seed}.pkl")
    expected_keys = {"train"} if val is None else {"train", "val"}
    if os.path.exists(path):
        print(f"Loading preprocessed few-shot data from {path}")
        data = load_pickle(path)
        if not isinstance(data, dict) or not expected_keys <= set(data):
            raise DataCacheError(
                f"Few-shot cache {path} is not a dict with keys {sorted(expected_keys)}; "
                f"delete it and rerun to regenerate it."
            )
        new_train = _check_cached(path, "train", data["train"], train, num_shots)
        new_val = None
        if val is not None:
            new_val = _check_cached(path, "val", data["val"], val, min(num_shots, 4))
        return new_train, new_val

    new_train, new_val = sample()
    data = {"train": new_train} if new_val is None else {"train": new_train, "val": new_val}
    mkdir_if_missing(cache_dir)
    print(f"Saving preprocessed few-shot data to {path}")
    dump_pickle(data, path)
    return new_train, new_val


def finish_splits(
    cfg: Any,
    dataset_dir: str,
    train: Sequence[Datum],
    val: Sequence[Datum],
    test: Sequence[Datum],
) -> tuple[list[Datum], list[Datum], list[Datum]]:
    """Few-shot sampling (``DATASET.NUM_SHOTS``, ``SEED``) then ``DATASET.SUBSAMPLE_CLASSES``."""
    train, val = load_fewshot(dataset_dir, train, val, cfg.DATASET.NUM_SHOTS, cfg.SEED)
    train, val, test = DatasetBase.subsample_classes(
        train, val, test, subsample=cfg.DATASET.SUBSAMPLE_CLASSES
    )
    return list(train), list(val), list(test)
