"""Utilities: files, logging, registries, meters, checkpoints and seeds (Dassl's ``dassl.utils``)."""

from .logger import Logger, setup_logger
from .meters import AverageMeter, MetricMeter
from .registry import Registry
from .tools import (
    atomic_write,
    check_availability,
    check_isfile,
    collect_env_info,
    get_most_similar_str_to_a_from_b,
    listdir_nohidden,
    mkdir_if_missing,
    read_image,
    read_json,
    set_random_seed,
    write_json,
)
from .torchtools import (
    count_num_param,
    get_rng_state,
    load_checkpoint,
    load_pretrained_weights,
    restore_training_state,
    resume_from_checkpoint,
    save_checkpoint,
    set_rng_state,
    tolist_if_not,
)

__all__ = [
    "AverageMeter",
    "Logger",
    "MetricMeter",
    "Registry",
    "atomic_write",
    "check_availability",
    "check_isfile",
    "collect_env_info",
    "count_num_param",
    "get_most_similar_str_to_a_from_b",
    "get_rng_state",
    "listdir_nohidden",
    "load_checkpoint",
    "load_pretrained_weights",
    "mkdir_if_missing",
    "read_image",
    "read_json",
    "restore_training_state",
    "resume_from_checkpoint",
    "save_checkpoint",
    "set_random_seed",
    "set_rng_state",
    "setup_logger",
    "tolist_if_not",
    "write_json",
]
