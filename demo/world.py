"""The demo world: coloured, textured squares photographed under coloured spotlights.

Every image is 32 x 32 RGB: one square tile (14-28 px, anywhere in the frame) on a grey, noisy
background. The tile has one of 8 colours and one of 5 textures and is lit by a spotlight that
multiplies the tile's pixels by the light's RGB gains; the background is not lit. So the light shows
only in the tile's colour: a yellowish tile may be a yellow tile in neutral light or a white tile
under a yellow light.

- Pretraining (``demo/pretrain.py``) sees every colour x texture under every light (neutral,
  yellow, blue, green), with varied captions that name a coloured light ("a photo of a white
  striped square under yellow light.") and never the neutral one.
- The ``Demo`` dataset (``datasets/demo.py``) has 40 classes, one per colour x texture
  ("red striped square"), all photographed under ``DEMO_LIGHT`` (yellow). The hand-crafted prompt
  "a photo of a white striped square." does not name the light, so zero-shot CLIP often takes a
  white tile under yellow light for a yellow one (or cyan for green): a nuisance that text can
  describe ("... under yellow light." fixes it) and that a prompt context learned from a few shots
  can absorb.

Base/new split: labels follow the colour order of ``COLOURS`` (five textures each), so the base
classes (labels 0-19) are the red, yellow, green and cyan squares and the new classes are the blue,
purple, pink and white ones: as in the benchmarks, new classes are unseen categories (colours a
prompt never saw during base training), described by words CLIP learned in pretraining.

Everything is a pure function of a seed (``numpy.random.default_rng``): the same seed gives the same
pixels and, through ``write_demo_dataset``, the same PNG bytes.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

IMAGE_SIZE = 32

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (215, 35, 35),
    "yellow": (235, 215, 40),
    "green": (45, 165, 60),
    "cyan": (40, 200, 210),
    "blue": (40, 70, 215),
    "purple": (140, 55, 185),
    "pink": (245, 130, 190),
    "white": (235, 235, 235),
}
TEXTURES: tuple[str, ...] = ("plain", "striped", "checkered", "dotted", "plaid")
# RGB gains of each light (jittered by +-5% per image).
LIGHTS: dict[str, tuple[float, float, float]] = {
    "neutral": (1.0, 1.0, 1.0),
    "yellow": (1.0, 0.85, 0.4),
    "blue": (0.45, 0.65, 1.0),
    "green": (0.55, 1.0, 0.55),
}
DEMO_LIGHT = "yellow"
# How captions name a light; neutral light is never mentioned.
LIGHT_PHRASES: dict[str, tuple[str, ...]] = {
    "neutral": ("",),
    "yellow": ("under yellow light", "in yellow light"),
    "blue": ("under blue light", "in blue light"),
    "green": ("under green light", "in green light"),
}

CAPTION_TEMPLATES: tuple[str, ...] = (
    "a photo of a {}.",
    "a picture of a {}.",
    "an image of a {}.",
    "a {}.",
    "a low resolution photo of a {}.",
    "a close-up photo of a {}.",
    "a small photo of a {}.",
    "this is a photo of a {}.",
    "there is a {} in this picture.",
    "a rendering of a {}.",
    "a low resolution photo of a {}, taken with a cheap camera on a grey table.",
    "in this small picture we can see a {} in front of a grey background.",
)

DARK_SHADE = 0.45  # texture "off" pixels are the tile colour times this
SPLIT_FILE = "split_zhou_Demo.json"
DATASET_DIR = "demo"
# Images per class in the Demo dataset and the seed it is generated with.
DEMO_SEED = 0
DEMO_SPLIT_SIZES = {"train": 24, "val": 8, "test": 20}


def class_attributes() -> list[tuple[str, str]]:
    """(colour, texture) of each Demo class in label order: colour-major, in the order of
    `COLOURS` and `TEXTURES` (labels 0-19, the base classes, are the first four colours)."""
    return [(c, t) for c in COLOURS for t in TEXTURES]


def object_name(colour: str, texture: str) -> str:
    """The class name of a tile: "red striped square"."""
    return f"{colour} {texture} square"


def class_names() -> list[str]:
    """The 40 Demo class names in label order (labels 0-19 are the base classes)."""
    return [object_name(c, t) for c, t in class_attributes()]


def caption(colour: str, texture: str, light: str, rng: np.random.Generator) -> str:
    """A random pretraining caption: a template, the object name, the light unless neutral."""
    phrase = LIGHT_PHRASES[light][rng.integers(len(LIGHT_PHRASES[light]))]
    desc = object_name(colour, texture) + (f" {phrase}" if phrase else "")
    return CAPTION_TEMPLATES[rng.integers(len(CAPTION_TEMPLATES))].format(desc)


def all_captions() -> list[str]:
    """Every caption `caption` can produce (the pretraining tokenizes them once)."""
    return [
        template.format(object_name(c, t) + (f" {phrase}" if phrase else ""))
        for template in CAPTION_TEMPLATES
        for c in COLOURS
        for t in TEXTURES
        for phrases in LIGHT_PHRASES.values()
        for phrase in phrases
    ]


def texture_masks(
    u: np.ndarray, v: np.ndarray, period: np.ndarray, vertical: np.ndarray
) -> np.ndarray:
    """Binary masks (True = tile colour, False = dark shade) of every texture.

    u, v: (B, H, W) integer pixel coordinates inside the tile (x, y, already phase-shifted);
    period: (B, 1, 1) integers in [4, 6]; vertical: (B, 1, 1) bools (stripe orientation).
    Returns (len(TEXTURES), B, H, W) bools in the order of `TEXTURES`.
    """
    half = period // 2
    across = np.where(vertical, u, v)  # coordinate across the stripes
    plain = np.ones(u.shape, dtype=bool)
    striped = (across // half) % 2 == 0
    checkered = ((u // half) + (v // half)) % 2 == 0
    dotted = (u % period < 2) & (v % period < 2)  # 2 x 2 dots on a `period` grid
    plaid = (u % period != 0) & (v % period != 0)  # 1-pixel dark lines on a `period` grid
    return np.stack([plain, striped, checkered, dotted, plaid])


def render(
    colours: Sequence[str],
    textures: Sequence[str],
    lights: Sequence[str],
    rng: np.random.Generator,
) -> np.ndarray:
    """Render one image per (colour, texture, light) triple.

    Random per image: tile size and position, colour jitter and brightness, texture period,
    phase and orientation, background grey level, pixel noise, light-gain jitter.
    Returns (B, 32, 32, 3) uint8.
    """
    n = len(colours)
    if not (len(textures) == len(lights) == n):
        raise ValueError(
            f"demo/world.py render: got {n} colours, {len(textures)} textures, {len(lights)} "
            "lights; pass one of each per image."
        )
    for kind, values, known in (
        ("colour", colours, COLOURS),
        ("texture", textures, TEXTURES),
        ("light", lights, LIGHTS),
    ):
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(
                f"demo/world.py render: unknown {kind} {unknown}; known: {list(known)}"
            )
    size = IMAGE_SIZE
    rgb = np.array([COLOURS[c] for c in colours], dtype=np.float64)  # (B, 3)
    gains = np.array([LIGHTS[li] for li in lights], dtype=np.float64)  # (B, 3)
    texture_ids = np.array([TEXTURES.index(t) for t in textures])  # (B,)

    side = rng.integers(14, 29, size=n)  # tile side in pixels
    x0 = rng.integers(0, size - side + 1)
    y0 = rng.integers(0, size - side + 1)
    rgb = rgb * rng.uniform(0.8, 1.15, size=(n, 1)) + rng.normal(0.0, 16.0, size=(n, 3))
    period = rng.integers(4, 7, size=n)[:, None, None]  # (B, 1, 1)
    vertical = rng.integers(0, 2, size=n).astype(bool)[:, None, None]
    phase = rng.integers(0, 6, size=(2, n))[:, :, None, None]
    grey = rng.uniform(70.0, 180.0, size=(n, 1)) + rng.normal(0.0, 8.0, size=(n, 3))  # (B, 3)
    gains = gains * rng.uniform(0.95, 1.05, size=(n, 3))
    noise = rng.normal(0.0, 16.0, size=(n, size, size, 3))

    ys, xs = np.mgrid[0:size, 0:size]  # (H, W)
    u = xs[None] - x0[:, None, None]  # (B, H, W) position inside the tile
    v = ys[None] - y0[:, None, None]
    inside = (u >= 0) & (u < side[:, None, None]) & (v >= 0) & (v < side[:, None, None])
    masks = texture_masks(u + phase[0], v + phase[1], period, vertical)  # (T, B, H, W)
    mask = masks[texture_ids, np.arange(n)]  # (B, H, W)

    tile = np.where(mask[..., None], rgb[:, None, None], DARK_SHADE * rgb[:, None, None])
    tile = tile * gains[:, None, None]  # the spotlight lights the tile only
    image = np.where(inside[..., None], tile, grey[:, None, None]) + noise  # (B, H, W, 3)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def demo_split(split: str, seed: int = DEMO_SEED) -> tuple[np.ndarray, np.ndarray]:
    """The images and labels of one Demo split, exactly as `write_demo_dataset` stores them.

    Returns (n_classes * DEMO_SPLIT_SIZES[split], 32, 32, 3) uint8 images (class-major order) and
    the matching (N,) int64 labels.
    """
    if split not in DEMO_SPLIT_SIZES:
        raise ValueError(f"demo/world.py: unknown split {split!r}; use {list(DEMO_SPLIT_SIZES)}")
    per_class = DEMO_SPLIT_SIZES[split]
    split_index = list(DEMO_SPLIT_SIZES).index(split)
    rng = np.random.default_rng([seed, split_index])
    attrs = class_attributes()
    colours = [c for c, _ in attrs for _ in range(per_class)]
    textures = [t for _, t in attrs for _ in range(per_class)]
    images = render(colours, textures, [DEMO_LIGHT] * len(colours), rng)
    labels = np.repeat(np.arange(len(attrs), dtype=np.int64), per_class)
    return images, labels


def write_demo_dataset(dataset_dir: str | os.PathLike, seed: int = DEMO_SEED) -> Path:
    """Write the Demo dataset in CoOp's on-disk form under `dataset_dir`, atomically.

    Layout: `images/<class_name_with_underscores>/<split>_<k>.png` and `split_zhou_Demo.json`
    (`{"train"|"val"|"test": [[relpath, label, classname], ...]}`, relpaths under `images/`).
    Everything is written into a temporary sibling folder that is renamed to `dataset_dir` at the
    end, so an interrupted run never leaves a half-written dataset. If `dataset_dir` appears
    meanwhile (another process generated it), that one is kept. Returns `dataset_dir`.
    """
    target = Path(dataset_dir)
    if target.is_dir() and any(target.iterdir()) and not (target / SPLIT_FILE).is_file():
        raise FileExistsError(
            f"demo/world.py: {target} exists but holds no {SPLIT_FILE}, so it is not a complete "
            "Demo dataset; delete that folder and rerun to generate the dataset again."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}-tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()  # permissions from the umask, like any folder the user creates
    try:
        names = class_names()
        split = {}
        for name in DEMO_SPLIT_SIZES:
            images, labels = demo_split(name, seed)
            items = []
            counts = dict.fromkeys(range(len(names)), 0)
            for image, label in zip(images, labels.tolist()):
                folder = names[label].replace(" ", "_")
                relpath = f"{folder}/{name}_{counts[label]:03d}.png"
                counts[label] += 1
                (tmp / "images" / folder).mkdir(parents=True, exist_ok=True)
                Image.fromarray(image).save(tmp / "images" / relpath, compress_level=6)
                items.append([relpath, label, names[label]])
            split[name] = items
        with open(tmp / SPLIT_FILE, "w") as f:
            json.dump(split, f, indent=1)
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / SPLIT_FILE).is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return target


def check_demo_dataset(dataset_dir: str | os.PathLike, seed: int = DEMO_SEED) -> None:
    """Raise if the Demo dataset in `dataset_dir` is not what this `demo/world.py` generates.

    A data root may hold a Demo dataset written by an older version of the world (other classes,
    other images), which the demo CLIP was not checked on. Compares the class names of the split
    file with `class_names()` and the first test image with its rendering; takes ~0.1 s.
    """
    target = Path(dataset_dir)
    with open(target / SPLIT_FILE) as f:
        split = json.load(f)
    names = class_names()
    found = {label: name for _, label, name in split["test"]}
    images, _ = demo_split("test", seed)
    relpath = split["test"][0][0] if split["test"] else None
    stale = found != dict(enumerate(names)) or relpath is None
    if not stale:
        with Image.open(target / "images" / relpath) as image:
            stale = not np.array_equal(np.asarray(image.convert("RGB")), images[0])
    if stale:
        raise RuntimeError(
            f"The Demo dataset in {target} was generated by another version of demo/world.py "
            "(its classes or images differ from the current world). Delete that folder; it is "
            "generated again on the next run."
        )
