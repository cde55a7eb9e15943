"""Image transforms built from ``cfg.INPUT`` (Dassl's ``build_transform``).

Training: the transforms named in ``INPUT.TRANSFORMS``, in Dassl's fixed order: a resize to
``INPUT.SIZE`` (unless a random crop or center_crop sets the size), random_translation,
random_crop, random_resized_crop, random_flip, colorjitter, randomgrayscale, gaussian_blur,
to-tensor, normalize. With center_crop, the smaller edge is resized to ``max(INPUT.SIZE)`` and
the center is cropped, as at test time.

Test: resize the smaller edge to ``max(INPUT.SIZE)``, center crop ``INPUT.SIZE``, to-tensor,
normalize (when listed).
"""

import random

import torchvision.transforms.functional as F
from PIL import Image
from torchvision.transforms import (
    CenterCrop,
    ColorJitter,
    Compose,
    GaussianBlur,
    InterpolationMode,
    Normalize,
    RandomApply,
    RandomCrop,
    RandomGrayscale,
    RandomHorizontalFlip,
    RandomResizedCrop,
    Resize,
    ToTensor,
)
from yacs.config import CfgNode

from dassl.utils import get_most_similar_str_to_a_from_b

__all__ = ["AVAI_CHOICES", "INTERPOLATION_MODES", "Random2DTranslation", "build_transform"]

AVAI_CHOICES = [
    "random_flip",
    "random_resized_crop",
    "normalize",
    "random_crop",
    "random_translation",
    "center_crop",
    "colorjitter",
    "randomgrayscale",
    "gaussian_blur",
]

INTERPOLATION_MODES = {
    "bilinear": InterpolationMode.BILINEAR,
    "bicubic": InterpolationMode.BICUBIC,
    "nearest": InterpolationMode.NEAREST,
}


class Random2DTranslation:
    """With probability ``p``, resize to 1.125 x (height, width) and randomly crop
    (height, width); otherwise resize to (height, width). Uses Python's ``random``."""

    def __init__(
        self,
        height: int,
        width: int,
        p: float = 0.5,
        interpolation: InterpolationMode = InterpolationMode.BILINEAR,
    ) -> None:
        self.height = height
        self.width = width
        self.p = p
        self.interpolation = interpolation

    def __call__(self, img: Image.Image) -> Image.Image:
        if random.uniform(0, 1) > self.p:
            return F.resize(img, [self.height, self.width], interpolation=self.interpolation)
        new_width = int(round(self.width * 1.125))
        new_height = int(round(self.height * 1.125))
        resized_img = F.resize(img, [new_height, new_width], interpolation=self.interpolation)
        x1 = int(round(random.uniform(0, new_width - self.width)))
        y1 = int(round(random.uniform(0, new_height - self.height)))
        return F.crop(resized_img, top=y1, left=x1, height=self.height, width=self.width)


def _check_input_cfg(cfg: CfgNode, choices: list[str]) -> None:
    for choice in choices:
        if choice not in AVAI_CHOICES:
            guess = get_most_similar_str_to_a_from_b(choice, AVAI_CHOICES)
            raise ValueError(
                f'INPUT.TRANSFORMS: unknown transform "{choice}" (did you mean "{guess}"?). '
                f"Available: {AVAI_CHOICES}"
            )
    if cfg.INPUT.INTERPOLATION not in INTERPOLATION_MODES:
        raise ValueError(
            f'INPUT.INTERPOLATION: unknown mode "{cfg.INPUT.INTERPOLATION}"; use one of '
            f"{list(INTERPOLATION_MODES)}"
        )


def build_transform(
    cfg: CfgNode, is_train: bool = True, choices: list[str] | None = None
) -> Compose | None:
    """Build the training or test transform of ``cfg.INPUT`` (None when ``INPUT.NO_TRANSFORM``).

    The output maps a PIL image to a float tensor ``(3, H, W)`` with ``(H, W) = INPUT.SIZE``.

    Args:
        cfg: the config.
        is_train: training (augmenting) or test transform.
        choices: transform names; default ``cfg.INPUT.TRANSFORMS``.
    """
    if cfg.INPUT.NO_TRANSFORM:
        print("Note: no transform is applied!")
        return None
    choices = list(cfg.INPUT.TRANSFORMS if choices is None else choices)
    _check_input_cfg(cfg, choices)
    normalize = Normalize(mean=cfg.INPUT.PIXEL_MEAN, std=cfg.INPUT.PIXEL_STD)
    if is_train:
        return _build_transform_train(cfg, choices, normalize)
    return _build_transform_test(cfg, choices, normalize)


def _resize_and_center_crop(cfg: CfgNode) -> list:
    interp_mode = INTERPOLATION_MODES[cfg.INPUT.INTERPOLATION]
    input_size = list(cfg.INPUT.SIZE)
    print(f"+ resize the smaller edge to {max(input_size)}")
    print(f"+ {input_size[0]}x{input_size[1]} center crop")
    return [Resize(max(input_size), interpolation=interp_mode), CenterCrop(input_size)]


def _build_transform_train(cfg: CfgNode, choices: list[str], normalize: Normalize) -> Compose:
    print("Building transform_train")
    interp_mode = INTERPOLATION_MODES[cfg.INPUT.INTERPOLATION]
    input_size = list(cfg.INPUT.SIZE)
    tfm_train = []

    if "center_crop" in choices and "random_crop" not in choices:
        tfm_train += _resize_and_center_crop(cfg)
    elif "random_crop" not in choices and "random_resized_crop" not in choices:
        print(f"+ resize to {input_size[0]}x{input_size[1]}")
        tfm_train += [Resize(input_size, interpolation=interp_mode)]

    if "random_translation" in choices:
        print("+ random translation")
        tfm_train += [Random2DTranslation(input_size[0], input_size[1], interpolation=interp_mode)]

    if "random_crop" in choices:
        crop_padding = cfg.INPUT.CROP_PADDING
        print(f"+ random crop (padding = {crop_padding})")
        tfm_train += [RandomCrop(input_size, padding=crop_padding)]

    if "random_resized_crop" in choices:
        scale = tuple(cfg.INPUT.RRCROP_SCALE)
        print(f"+ random resized crop (size={tuple(input_size)}, scale={scale})")
        tfm_train += [RandomResizedCrop(input_size, scale=scale, interpolation=interp_mode)]

    if "random_flip" in choices:
        print("+ random flip")
        tfm_train += [RandomHorizontalFlip()]

    if "colorjitter" in choices:
        print("+ color jitter")
        tfm_train += [
            ColorJitter(
                brightness=cfg.INPUT.COLORJITTER_B,
                contrast=cfg.INPUT.COLORJITTER_C,
                saturation=cfg.INPUT.COLORJITTER_S,
                hue=cfg.INPUT.COLORJITTER_H,
            )
        ]

    if "randomgrayscale" in choices:
        print("+ random gray scale")
        tfm_train += [RandomGrayscale(p=cfg.INPUT.RGS_P)]

    if "gaussian_blur" in choices:
        print(f"+ gaussian blur (kernel={cfg.INPUT.GB_K})")
        tfm_train += [RandomApply([GaussianBlur(cfg.INPUT.GB_K)], p=cfg.INPUT.GB_P)]

    print("+ to torch tensor of range [0, 1]")
    tfm_train += [ToTensor()]

    if "normalize" in choices:
        print(f"+ normalization (mean={cfg.INPUT.PIXEL_MEAN}, std={cfg.INPUT.PIXEL_STD})")
        tfm_train += [normalize]

    return Compose(tfm_train)


def _build_transform_test(cfg: CfgNode, choices: list[str], normalize: Normalize) -> Compose:
    print("Building transform_test")
    tfm_test = _resize_and_center_crop(cfg)
    print("+ to torch tensor of range [0, 1]")
    tfm_test += [ToTensor()]
    if "normalize" in choices:
        print(f"+ normalization (mean={cfg.INPUT.PIXEL_MEAN}, std={cfg.INPUT.PIXEL_STD})")
        tfm_test += [normalize]
    return Compose(tfm_test)
