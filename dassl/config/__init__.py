"""Configuration: ``get_cfg_default()`` returns a fresh copy of Dassl's default yacs tree."""

from yacs.config import CfgNode

from .defaults import _C as cfg_default

__all__ = ["get_cfg_default"]


def get_cfg_default() -> CfgNode:
    """Return a mutable clone of the default configuration tree."""
    return cfg_default.clone()
