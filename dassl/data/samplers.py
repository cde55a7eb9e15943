"""Samplers of the data loaders: ``RandomSampler`` and ``SequentialSampler``."""

from typing import Sized

from torch.utils.data import RandomSampler, Sampler, SequentialSampler

from dassl.utils import get_most_similar_str_to_a_from_b

__all__ = ["AVAI_SAMPLERS", "build_sampler"]

AVAI_SAMPLERS = ["RandomSampler", "SequentialSampler"]


def build_sampler(sampler_type: str, data_source: Sized) -> Sampler:
    """Build a sampler over ``data_source``.

    ``RandomSampler`` draws a new permutation every epoch from torch's global generator, so a
    seeded run (and a run resumed with the saved generator states) is reproducible.
    """
    if sampler_type == "RandomSampler":
        return RandomSampler(data_source)
    if sampler_type == "SequentialSampler":
        return SequentialSampler(data_source)
    guess = get_most_similar_str_to_a_from_b(sampler_type, AVAI_SAMPLERS)
    raise ValueError(
        f'DATALOADER.*.SAMPLER: unknown sampler "{sampler_type}" (did you mean "{guess}"?). '
        f"Available: {AVAI_SAMPLERS}"
    )
