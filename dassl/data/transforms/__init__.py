"""Image transforms: ``build_transform`` and ``INTERPOLATION_MODES``."""

from .transforms import AVAI_CHOICES, INTERPOLATION_MODES, Random2DTranslation, build_transform

__all__ = ["AVAI_CHOICES", "INTERPOLATION_MODES", "Random2DTranslation", "build_transform"]
