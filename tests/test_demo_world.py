"""The demo world (demo/world.py), the Demo dataset and the committed demo CLIP."""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from demo import world

REPO_ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = REPO_ROOT / "demo" / "weights" / "demo_clip.pt"


def tree_digest(root: Path) -> dict[str, str]:
    """SHA-256 of every file under `root`, keyed by relative path."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root holding the generated Demo dataset (`<root>/demo`)."""
    root = tmp_path_factory.mktemp("data")
    world.write_demo_dataset(root / "demo")
    return root


def test_texture_masks_match_hand_drawn_patterns() -> None:
    ys, xs = np.mgrid[0:4, 0:6]
    u, v = xs[None], ys[None]  # (1, 4, 6)
    period = np.array([4])[:, None, None]
    horizontal = np.array([False])[:, None, None]
    plain, striped, checkered, dotted, plaid = world.texture_masks(u, v, period, horizontal)
    assert plain.all()
    # horizontal stripes 2 px high: rows 0-1 colour, rows 2-3 dark
    assert striped[0].astype(int).tolist() == [[1] * 6, [1] * 6, [0] * 6, [0] * 6]
    assert checkered[0, 0].astype(int).tolist() == [1, 1, 0, 0, 1, 1]
    assert checkered[0, 2].astype(int).tolist() == [0, 0, 1, 1, 0, 0]
    # 2x2 dots at the origin of each 4x4 cell
    assert dotted[0].astype(int).tolist() == [
        [1, 1, 0, 0, 1, 1],
        [1, 1, 0, 0, 1, 1],
        [0] * 6,
        [0] * 6,
    ]
    # dark 1-px lines on row 0 and columns 0 and 4
    assert plaid[0].astype(int).tolist() == [[0] * 6] + [[0, 1, 1, 1, 0, 1]] * 3
    vertical = world.texture_masks(u, v, period, ~horizontal)[1]
    assert vertical[0].astype(int).tolist() == [[1, 1, 0, 0, 1, 1]] * 4


def test_render_is_seeded_and_lit() -> None:
    args = (["white"] * 64, ["plain"] * 64)
    neutral = world.render(*args, ["neutral"] * 64, np.random.default_rng(3))
    again = world.render(*args, ["neutral"] * 64, np.random.default_rng(3))
    yellow = world.render(*args, ["yellow"] * 64, np.random.default_rng(3))
    assert neutral.shape == (64, 32, 32, 3) and neutral.dtype == np.uint8
    assert np.array_equal(neutral, again)
    assert not np.array_equal(
        neutral, world.render(*args, ["neutral"] * 64, np.random.default_rng(4))
    )
    # Same draws, different light: the background is the same, and the tile's channels are scaled
    # by the spotlight's gain (0.4 for blue under yellow light), up to the +-5% gain jitter, pixel
    # noise and rounding.
    lit = np.abs(yellow.astype(int) - neutral.astype(int)).max(axis=-1) > 0  # (64, 32, 32)
    assert np.array_equal(yellow[~lit], neutral[~lit])
    assert 18 * 18 <= lit.sum() / 64 <= 28 * 28  # the tile covers 18-28 px squared
    ratio = yellow[lit].astype(float).mean(axis=0) / neutral[lit].astype(float).mean(axis=0)
    np.testing.assert_allclose(ratio, world.LIGHTS["yellow"], atol=0.03)
    with pytest.raises(ValueError, match="unknown colour"):
        world.render(["teal"], ["plain"], ["neutral"], np.random.default_rng(0))


def test_class_names_and_base_new_split() -> None:
    names = world.class_names()
    assert len(names) == len(set(names)) == 40
    assert names[:3] == ["red plain square", "red striped square", "red checkered square"]
    assert names[19:21] == ["cyan plaid square", "blue plain square"]
    base, new = world.class_attributes()[:20], world.class_attributes()[20:]
    # base and new classes have disjoint colours and share every texture
    assert {c for c, _ in base} == {"red", "yellow", "green", "cyan"}
    assert {c for c, _ in new} == {"blue", "purple", "pink", "white"}
    assert {t for _, t in base} == {t for _, t in new} == set(world.TEXTURES)
    # pretraining captions name the demo's light, the demo's prompt does not
    assert any(f"{world.DEMO_LIGHT} light" in c for c in world.all_captions())


def test_captions_name_the_light_except_neutral() -> None:
    rng = np.random.default_rng(0)
    texts = [world.caption("blue", "dotted", "green", rng) for _ in range(50)]
    assert all("blue dotted square" in t and "green light" in t for t in texts)
    plain = [world.caption("blue", "dotted", "neutral", rng) for _ in range(50)]
    assert all("light" not in t for t in plain)
    assert set(texts + plain) <= set(world.all_captions())
    assert len(world.all_captions()) == len(world.CAPTION_TEMPLATES) * 40 * 7


def test_dataset_layout_and_split_file(demo_root: Path) -> None:
    dataset_dir = demo_root / "demo"
    split = json.loads((dataset_dir / world.SPLIT_FILE).read_text())
    names = world.class_names()
    assert set(split) == {"train", "val", "test"}
    for key, per_class in world.DEMO_SPLIT_SIZES.items():
        items = split[key]
        assert len(items) == 40 * per_class
        for relpath, label, classname in items:
            assert classname == names[label]
            assert relpath.split("/")[0] == classname.replace(" ", "_")
            assert (dataset_dir / "images" / relpath).is_file()
    # the PNG files hold exactly the pixels of world.demo_split
    from PIL import Image

    images, labels = world.demo_split("test")
    relpath, label, _ = split["test"][57]
    assert label == labels[57]
    assert np.array_equal(np.asarray(Image.open(dataset_dir / "images" / relpath)), images[57])
    # no temporary folder is left behind
    assert sorted(os.listdir(demo_root)) == ["demo"]


def test_generation_is_deterministic_and_atomic(demo_root: Path, tmp_path: Path) -> None:
    again = world.write_demo_dataset(tmp_path / "demo")
    assert tree_digest(again) == tree_digest(demo_root / "demo")
    other = world.write_demo_dataset(tmp_path / "other", seed=1)
    assert tree_digest(other).keys() == tree_digest(again).keys()
    assert tree_digest(other) != tree_digest(again)
    # a partial folder (no split file) is reported, never mistaken for a dataset
    partial = tmp_path / "partial"
    (partial / "images").mkdir(parents=True)
    with pytest.raises(FileExistsError, match="no split_zhou_Demo.json"):
        world.write_demo_dataset(partial)


def test_stale_dataset_is_refused(tmp_path: Path) -> None:
    from PIL import Image

    dataset_dir = world.write_demo_dataset(tmp_path / "demo")
    world.check_demo_dataset(dataset_dir)
    split = json.loads((dataset_dir / world.SPLIT_FILE).read_text())
    first = dataset_dir / "images" / split["test"][0][0]
    pixels = np.asarray(Image.open(first)).copy()
    pixels[0, 0] ^= 1  # one pixel of another world
    Image.fromarray(pixels).save(first)
    with pytest.raises(RuntimeError, match="another version of demo/world.py"):
        world.check_demo_dataset(dataset_dir)
    fresh = world.write_demo_dataset(tmp_path / "fresh")
    split = json.loads((fresh / world.SPLIT_FILE).read_text())
    split["test"][-1][2] = "red striped circle"  # a class the world does not have
    (fresh / world.SPLIT_FILE).write_text(json.dumps(split))
    with pytest.raises(RuntimeError, match="Delete that folder"):
        world.check_demo_dataset(fresh)


def test_demo_dataset_base_and_new(demo_root: Path) -> None:
    import datasets  # noqa: F401  (registers Demo)
    from dassl.config import get_cfg_default
    from dassl.data.datasets import build_dataset
    from dassl.utils import set_random_seed

    names = world.class_names()
    for subsample, expected in (("base", names[:20]), ("new", names[20:])):
        cfg = get_cfg_default()
        cfg.DATASET.NAME = "Demo"
        cfg.DATASET.ROOT = str(demo_root)
        cfg.DATASET.NUM_SHOTS = 16
        cfg.DATASET.SUBSAMPLE_CLASSES = subsample
        cfg.SEED = 1
        set_random_seed(1)
        dataset = build_dataset(cfg)
        assert dataset.classnames == expected
        assert len(dataset.train_x) == 20 * 16
        assert len(dataset.val) == 20 * 4
        assert len(dataset.test) == 20 * world.DEMO_SPLIT_SIZES["test"]
        assert {d.label for d in dataset.test} == set(range(20))
        assert all(d.classname == expected[d.label] for d in dataset.test)


def test_committed_demo_clip_zero_shot(demo_root: Path) -> None:
    """Zero-shot CLIP with the committed weights, read through clip.load and the PNG files."""
    from PIL import Image

    import clip
    from trainers.templates import COOP_TEMPLATES, KG_TEMPLATES

    torch.set_num_threads(1)
    model, preprocess = clip.load(str(WEIGHTS), device="cpu")
    assert model.context_length == 77 and model.vocab_size == 49408
    split = json.loads((demo_root / "demo" / world.SPLIT_FILE).read_text())["test"]
    images = torch.stack(
        [preprocess(Image.open(demo_root / "demo" / "images" / p)) for p, _, _ in split]
    )  # (800, 3, 32, 32)
    labels = torch.tensor([label for _, label, _ in split])
    names = world.class_names()
    assert COOP_TEMPLATES["Demo"] == KG_TEMPLATES["Demo"] == "a photo of a {}."
    with torch.no_grad():
        image_features = model.encode_image(images).float()
        text_features = model.encode_text(clip.tokenize([f"a photo of a {n}." for n in names]))
    image_features = image_features / image_features.norm(dim=-1, keepdim=True)
    text_features = text_features.float() / text_features.float().norm(dim=-1, keepdim=True)
    n_base = math.ceil(len(names) / 2)
    accuracy = {}
    for part, (lo, hi) in {"base": (0, n_base), "new": (n_base, len(names))}.items():
        keep = (labels >= lo) & (labels < hi)
        pred = (image_features[keep] @ text_features[lo:hi].t()).argmax(dim=1) + lo
        accuracy[part] = 100.0 * (pred == labels[keep]).float().mean().item()
    assert accuracy["base"] >= 40.0, accuracy
    assert accuracy["new"] >= 30.0, accuracy
