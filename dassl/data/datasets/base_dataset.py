"""``Datum`` (one labelled image) and ``DatasetBase`` (train_x / val / test splits)."""

import math
import random
from collections import defaultdict
from typing import Sequence

__all__ = ["Datum", "DatasetBase"]


class Datum:
    """One data instance: image path, label, domain and class name (all read-only).

    The path is not checked here (one ``stat`` per image makes large datasets slow to start);
    a missing or unreadable image is reported with its path when it is read. The attribute
    names are Dassl's, so Datum objects pickled by Dassl (few-shot caches) unpickle as these.
    """

    def __init__(self, impath: str = "", label: int = 0, domain: int = 0, classname: str = ""):
        if not isinstance(impath, str):
            raise TypeError(f"Datum: impath must be a str, got {type(impath).__name__}: {impath!r}")
        self._impath = impath
        self._label = int(label)
        self._domain = int(domain)
        self._classname = classname

    @property
    def impath(self) -> str:
        return self._impath

    @property
    def label(self) -> int:
        return self._label

    @property
    def domain(self) -> int:
        return self._domain

    @property
    def classname(self) -> str:
        return self._classname

    def __repr__(self) -> str:
        return (
            f"Datum(impath={self._impath!r}, label={self._label}, domain={self._domain}, "
            f"classname={self._classname!r})"
        )


class DatasetBase:
    """A dataset: labelled training data ``train_x``, optional ``train_u`` and ``val``, ``test``.

    ``classnames``, ``lab2cname`` and ``num_classes`` are derived from ``train_x`` (labels are
    ``0 .. num_classes - 1``).
    """

    dataset_dir = ""  # folder of the dataset under DATASET.ROOT
    domains: list[str] = []  # names of the domains (datasets with domains only)

    def __init__(
        self,
        train_x: list[Datum] | None = None,
        train_u: list[Datum] | None = None,
        val: list[Datum] | None = None,
        test: list[Datum] | None = None,
    ) -> None:
        if not train_x:
            raise ValueError(
                f"{type(self).__name__}: train_x is empty; a dataset needs labelled training "
                "data (its class names are read from it). Check the dataset files and split."
            )
        self._train_x = train_x
        self._train_u = train_u
        self._val = val
        self._test = test
        self._num_classes = self.get_num_classes(train_x)
        self._lab2cname, self._classnames = self.get_lab2cname(train_x)

    @property
    def train_x(self) -> list[Datum]:
        return self._train_x

    @property
    def train_u(self) -> list[Datum] | None:
        return self._train_u

    @property
    def val(self) -> list[Datum] | None:
        return self._val

    @property
    def test(self) -> list[Datum] | None:
        return self._test

    @property
    def lab2cname(self) -> dict[int, str]:
        return self._lab2cname

    @property
    def classnames(self) -> list[str]:
        return self._classnames

    @property
    def num_classes(self) -> int:
        return self._num_classes

    @staticmethod
    def get_num_classes(data_source: Sequence[Datum]) -> int:
        """``max(label) + 1`` over ``data_source``."""
        return max(item.label for item in data_source) + 1

    @staticmethod
    def get_lab2cname(data_source: Sequence[Datum]) -> tuple[dict[int, str], list[str]]:
        """Map label -> class name, and the class names sorted by label."""
        mapping = {item.label: item.classname for item in data_source}
        labels = sorted(mapping)
        return {label: mapping[label] for label in labels}, [mapping[label] for label in labels]

    def check_input_domains(self, source_domains: Sequence[str], target_domains: Sequence[str]):
        """Check that the requested source and target domains exist in ``self.domains``."""
        self.is_input_domain_valid(source_domains)
        self.is_input_domain_valid(target_domains)

    def is_input_domain_valid(self, input_domains: Sequence[str]) -> None:
        for domain in input_domains:
            if domain not in self.domains:
                raise ValueError(
                    f"Input domain must belong to {self.domains}, but got [{domain}]"
                )

    def generate_fewshot_dataset(
        self, *data_sources: list[Datum], num_shots: int = -1, repeat: bool = False
    ) -> list[Datum] | tuple[list[Datum], ...] | list[list[Datum]]:
        """Sample ``num_shots`` items per label from each data source, exactly as Dassl does.

        Items are grouped by label in order of first appearance; each group gives
        ``random.sample(items, num_shots)`` (Python's global ``random``), or all its items when it
        has fewer (``random.choices(items, k=num_shots)`` when ``repeat``).

        Returns:
            One list for one data source, else one list per data source; the inputs unchanged
            when ``num_shots < 1``.
        """
        if num_shots < 1:
            if len(data_sources) == 1:
                return data_sources[0]
            return data_sources

        print(f"Creating a {num_shots}-shot dataset")
        output = []
        for data_source in data_sources:
            tracker = self.split_dataset_by_label(data_source)
            dataset = []
            for items in tracker.values():
                if len(items) >= num_shots:
                    sampled_items = random.sample(items, num_shots)
                elif repeat:
                    sampled_items = random.choices(items, k=num_shots)
                else:
                    sampled_items = items
                dataset.extend(sampled_items)
            output.append(dataset)

        if len(output) == 1:
            return output[0]
        return output

    def split_dataset_by_label(self, data_source: Sequence[Datum]) -> dict[int, list[Datum]]:
        """Group items by label (keys in order of first appearance)."""
        output = defaultdict(list)
        for item in data_source:
            output[item.label].append(item)
        return output

    def split_dataset_by_domain(self, data_source: Sequence[Datum]) -> dict[int, list[Datum]]:
        """Group items by domain (keys in order of first appearance)."""
        output = defaultdict(list)
        for item in data_source:
            output[item.domain].append(item)
        return output

    @staticmethod
    def subsample_classes(
        *args: list[Datum], subsample: str = "all"
    ) -> tuple[list[Datum], ...] | list[list[Datum]]:
        """Keep the base or the new classes of each split (CoOp's base-to-new protocol).

        The labels present in the first split are sorted; the first ``ceil(n / 2)`` are the base
        classes, the rest the new classes. The kept labels are renumbered from 0 in that order.

        Args:
            args: splits, e.g. ``train, val, test``.
            subsample: "all" (splits returned unchanged), "base" or "new".
        """
        if subsample not in ("all", "base", "new"):
            raise ValueError(
                f'DATASET.SUBSAMPLE_CLASSES must be "all", "base" or "new", got "{subsample}"'
            )
        if subsample == "all":
            return args

        labels = sorted({item.label for item in args[0]})
        m = math.ceil(len(labels) / 2)
        print(f"SUBSAMPLE {subsample.upper()} CLASSES!")
        selected = labels[:m] if subsample == "base" else labels[m:]
        relabeler = {y: y_new for y_new, y in enumerate(selected)}

        output = []
        for dataset in args:
            output.append(
                [
                    Datum(
                        impath=item.impath,
                        label=relabeler[item.label],
                        domain=item.domain,
                        classname=item.classname,
                    )
                    for item in dataset
                    if item.label in relabeler
                ]
            )
        return output
