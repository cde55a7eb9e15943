"""Tests of clip/: tokenizer ids, model numerics and hook, loading formats, downloads, errors."""

from __future__ import annotations

import hashlib
import http.client
import importlib.metadata
import importlib.util
import io
import math
import os
import urllib.error
import urllib.request

import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from tiny_clip import TINY_SIZES, save_tiny_clip, tiny_clip, tiny_clip_state_dict
from torchvision.transforms import InterpolationMode

import clip
from clip.clip import _tokenizer
from clip.model import CLIP, LayerNorm, QuickGELU, build_model, compact_state_dict

torch.set_num_threads(1)

SOT, EOT = 49406, 49407


@pytest.fixture(scope="module")
def vit() -> CLIP:
    return tiny_clip(seed=0, vision="vit")


@pytest.fixture(scope="module")
def resnet() -> CLIP:
    return tiny_clip(seed=0, vision="resnet")


def _images(res: int, n: int = 3, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, 3, res, res, generator=torch.Generator().manual_seed(seed))


TEXTS = ["a photo of a cat.", "X X X X X X Annual Crop Land.", "a dog"]


# ----------------------------------------------------------------------------- tokenizer


def test_tokenize_known_ids() -> None:
    tokens = clip.tokenize(TEXTS[:2])
    assert tokens.dtype == torch.long and tokens.shape == (2, 77)
    assert tokens[0, :8].tolist() == [SOT, 320, 1125, 539, 320, 2368, 269, EOT]
    assert tokens[0, 8:].eq(0).all()
    assert tokens[1, :12].tolist() == [SOT] + [343] * 6 + [2906, 9955, 973, 269, EOT]
    assert tokens[1, 12:].eq(0).all()
    # a single string is a batch of one; context_length is honoured
    short = clip.tokenize("a photo of a cat.", context_length=10)[0].tolist()
    assert short == [SOT, 320, 1125, 539, 320, 2368, 269, EOT, 0, 0]


def test_tokenizer_decode_round_trip_and_cleaning() -> None:
    ids = _tokenizer.encode("A  Photo of a CAT.")  # case and whitespace are normalised
    assert ids == [320, 1125, 539, 320, 2368, 269]
    assert _tokenizer.decode(ids) == "a photo of a cat . "
    assert _tokenizer.encode("caf&amp;é") == _tokenizer.encode("caf&é")  # HTML unescaped
    assert _tokenizer.decode(_tokenizer.encode("naïve 42 déjà-vu")) == "naïve 4 2 déjà - vu "
    assert len(_tokenizer.encoder) == 49408


def test_tokenizer_matches_openai_reference() -> None:
    reference = _openai_module("simple_tokenizer").SimpleTokenizer()
    texts = [
        "It's a photo of the 1990s Crème brûlée!! @#$ don't",
        "EuroSAT: Annual-Crop_Land 2024",
        "日本語のテキスト 😀 &amp; naïve",
        "a photo of a Yorkshire_terrier, a type of pet.",
    ]
    for text in texts:
        assert _tokenizer.encode(text) == reference.encode(text), text


def test_tokenize_too_long_and_truncate() -> None:
    text = "cat " * 100
    with pytest.raises(RuntimeError, match=r"Input 'cat cat .* too long for context length 77"):
        clip.tokenize(text)
    tokens = clip.tokenize(text, truncate=True)[0]
    assert tokens.tolist() == [SOT] + [2368] * 75 + [EOT]


# ----------------------------------------------------------------------------- build_model


def test_build_model_infers_sizes_vit(vit: CLIP) -> None:
    s = TINY_SIZES["vit"]
    assert isinstance(vit.visual, clip.model.VisionTransformer)
    assert vit.visual.input_resolution == 32
    assert vit.visual.conv1.kernel_size == (8, 8)
    assert vit.visual.positional_embedding.shape == (17, 128)
    assert len(vit.visual.transformer.resblocks) == 2
    assert vit.visual.transformer.resblocks[0].attn.num_heads == s["vision_heads"] == 2
    assert vit.visual.output_dim == 32
    assert vit.context_length == 77 and vit.vocab_size == 49408
    assert vit.transformer.width == 128 and vit.transformer.layers == 2
    assert vit.transformer.resblocks[0].attn.num_heads == 2
    assert vit.text_projection.shape == (128, 32)
    assert not vit.training
    assert math.isclose(vit.logit_scale.exp().item(), 100.0, rel_tol=1e-6)


def test_build_model_infers_sizes_resnet(resnet: CLIP) -> None:
    visual = resnet.visual
    assert isinstance(visual, clip.model.ModifiedResNet)
    assert visual.input_resolution == 64
    assert [len(getattr(visual, f"layer{i}")) for i in (1, 2, 3, 4)] == [1, 1, 1, 1]
    assert visual.conv3.out_channels == 8  # stem width
    assert visual.layer4[0].conv3.out_channels == 256  # width * 32
    assert visual.attnpool.num_heads == TINY_SIZES["resnet"]["vision_heads"] == 4
    assert visual.attnpool.c_proj.out_features == 32
    out = resnet.encode_image(_images(64, n=2))
    assert out.shape == (2, 32) and torch.isfinite(out).all()
    assert not torch.allclose(out[0], out[1])  # different images, different features


def test_build_model_fp16_like_openai_and_keeps_input() -> None:
    sd = tiny_clip_state_dict()
    sd["input_resolution"] = torch.tensor(32)  # archive metadata is dropped, not loaded
    keys = set(sd)
    model = build_model(sd)
    assert set(sd) == keys  # the caller's dict is not modified
    assert model.dtype == torch.float16
    assert model.visual.proj.dtype == torch.float16
    assert model.transformer.resblocks[0].attn.in_proj_weight.dtype == torch.float16
    assert model.transformer.resblocks[0].mlp.c_fc.bias.dtype == torch.float16
    assert model.ln_final.weight.dtype == torch.float32
    assert model.token_embedding.weight.dtype == torch.float32
    assert model.visual.class_embedding.dtype == torch.float32
    expected = sd["text_projection"].half()
    assert torch.equal(model.text_projection, expected)


def test_build_model_rejects_non_clip_state_dict() -> None:
    with pytest.raises(KeyError, match="not a CLIP state dict"):
        build_model({"fc.weight": torch.zeros(2, 2)})


def _openai_module(name: str):
    """OpenAI's own clip/<name>.py (installed openai-clip distribution) as a reference.

    Loaded by file path: importing the distribution's package fails on current setuptools.
    """
    try:
        path = importlib.metadata.distribution("openai-clip").locate_file(f"clip/{name}.py")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("openai-clip is not installed (reference implementation)")
    if not os.path.isfile(path):
        pytest.skip(f"openai-clip's clip/{name}.py not found")
    spec = importlib.util.spec_from_file_location(f"openai_clip_{name}_reference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("vision", ["vit", "resnet"])
def test_matches_openai_reference_implementation(vision: str) -> None:
    reference = _openai_module("model")
    sd = tiny_clip_state_dict(seed=3, vision=vision)
    theirs = reference.build_model(dict(sd)).float()
    ours = build_model(sd).float()
    assert set(theirs.state_dict()) == set(ours.state_dict())
    res = TINY_SIZES[vision]["image_resolution"]
    images, text = _images(res), clip.tokenize(TEXTS)
    with torch.no_grad():
        torch.testing.assert_close(
            ours.encode_image(images), theirs.encode_image(images), rtol=1e-5, atol=1e-5
        )
        torch.testing.assert_close(
            ours.encode_text(text), theirs.encode_text(text), rtol=1e-5, atol=1e-5
        )


# ----------------------------------------------------------------------------- numerics


def test_layer_norm_fp16_and_quick_gelu() -> None:
    ln = LayerNorm(4)
    x = torch.tensor([[1.0, 2.0, 3.0, 4.0]], dtype=torch.float16)
    y = ln(x)
    assert y.dtype == torch.float16
    expected = (torch.tensor([1.0, 2.0, 3.0, 4.0]) - 2.5) / math.sqrt(1.25 + 1e-5)
    torch.testing.assert_close(y[0].float(), expected, rtol=1e-3, atol=1e-3)
    gelu = QuickGELU()(torch.tensor([1.0, -2.0]))
    torch.testing.assert_close(
        gelu, torch.tensor([1 / (1 + math.exp(-1.702)), -2 / (1 + math.exp(3.404))])
    )


def test_forward_logits_are_scaled_cosines(vit: CLIP) -> None:
    images, text = _images(32), clip.tokenize(TEXTS)
    with torch.no_grad():
        per_image, per_text = vit(images, text)
        f_img = vit.encode_image(images)
        f_txt = vit.encode_text(text)
    cos = torch.tensor([[F.cosine_similarity(a, b, dim=0).item() for b in f_txt] for a in f_img])
    torch.testing.assert_close(per_image, 100.0 * cos, rtol=1e-4, atol=1e-4)
    assert torch.equal(per_text, per_image.t())


def test_text_encoder_is_causal_and_reads_eot(vit: CLIP) -> None:
    text = clip.tokenize(["a photo of a cat."])
    changed = text.clone()
    # after EOT (position 7): invisible to the EOT token under the causal mask
    changed[0, 10] = 1234
    with torch.no_grad():
        base = vit.encode_text(text)
        assert torch.equal(vit.encode_text(changed), base)
        before = text.clone()
        before[0, 2] = 1234  # before EOT: changes the feature
        assert not torch.allclose(vit.encode_text(before), base)


# ----------------------------------------------------------------------------- hook


def test_identity_hook_is_bit_identical(vit: CLIP) -> None:
    images, text = _images(32), clip.tokenize(TEXTS)
    seen: list[tuple[int, tuple[int, ...]]] = []

    def identity(i: int, x: torch.Tensor) -> torch.Tensor:
        seen.append((i, tuple(x.shape)))
        return x

    with torch.no_grad():
        plain = vit.visual(images.float())
        hooked = vit.visual(images.float(), before_block=identity)
        assert torch.equal(plain, hooked)
        assert seen == [(0, (17, 3, 128)), (1, (17, 3, 128))]
        x = vit.token_embedding(text) + vit.positional_embedding  # (N, 77, D)
        x = x.permute(1, 0, 2)  # (77, N, D)
        assert torch.equal(vit.transformer(x), vit.transformer(x, before_block=lambda i, t: t))


@pytest.mark.parametrize("block", [0, 1])
def test_hook_adding_constant_matches_unrolled_forward(vit: CLIP, block: int) -> None:
    images = _images(32)
    visual = vit.visual
    # a constant that varies over channels (a uniform shift would vanish in the LayerNorms)
    delta = torch.linspace(-1.0, 1.0, 128)  # (D,)

    def add_constant(i: int, x: torch.Tensor) -> torch.Tensor:
        return x + delta if i == block else x

    with torch.no_grad():
        hooked = visual(images, before_block=add_constant)
        x = visual.ln_pre(visual.embed(images)).permute(1, 0, 2)  # (L, B, D)
        for i, resblock in enumerate(visual.transformer.resblocks):
            x = resblock(x + delta if i == block else x)
        expected = visual.ln_post(x.permute(1, 0, 2)[:, 0, :]) @ visual.proj
        assert torch.equal(hooked, expected)
        assert not torch.allclose(hooked, visual(images), atol=1e-3)


def test_hook_must_keep_shape(vit: CLIP) -> None:
    with pytest.raises(ValueError, match=r"before_block\(0, x\) returned shape"):
        vit.visual(_images(32), before_block=lambda i, x: x[:-1])


def _hand_vit_forward(visual, images: torch.Tensor, extra: torch.Tensor | None) -> torch.Tensor:
    """ViT forward written from the paper's equations, with patches cut by unfold (no conv)."""
    p = visual.conv1.kernel_size[0]
    b = images.shape[0]
    patches = F.unfold(images, kernel_size=p, stride=p).transpose(1, 2)  # (B, N, 3 * p * p)
    tokens = patches @ visual.conv1.weight.reshape(visual.conv1.out_channels, -1).t()  # (B, N, D)
    cls = visual.class_embedding.expand(b, 1, -1)  # (B, 1, D)
    x = torch.cat([cls, tokens], dim=1) + visual.positional_embedding  # (B, 1 + N, D)
    if extra is not None:
        x = torch.cat([x, extra], dim=1)  # (B, 1 + N + n, D)
    x = F.layer_norm(x, (x.shape[-1],), visual.ln_pre.weight, visual.ln_pre.bias, 1e-5)
    x = visual.transformer(x.permute(1, 0, 2)).permute(1, 0, 2)
    cls_out = x[:, 0, :]
    cls_out = F.layer_norm(cls_out, (x.shape[-1],), visual.ln_post.weight, visual.ln_post.bias)
    return cls_out @ visual.proj


def test_embed_and_extra_tokens_match_hand_written_forward(vit: CLIP) -> None:
    visual = vit.visual
    images = _images(32)
    extra = torch.randn(3, 4, 128, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        p = 8
        patches = F.unfold(images, kernel_size=p, stride=p).transpose(1, 2)  # (3, 16, 192)
        w = visual.conv1.weight.reshape(128, -1)
        torch.testing.assert_close(
            visual.embed(images)[:, 1:],
            patches @ w.t() + visual.positional_embedding[1:],
            rtol=1e-5,
            atol=1e-5,
        )
        torch.testing.assert_close(
            visual(images), _hand_vit_forward(visual, images, None), rtol=1e-4, atol=1e-4
        )
        prompted = visual(images, extra_tokens=extra)
        torch.testing.assert_close(
            prompted, _hand_vit_forward(visual, images, extra), rtol=1e-4, atol=1e-4
        )
        assert not torch.allclose(prompted, visual(images), atol=1e-3)
        # the hook sees the appended tokens at the end of the sequence
        seen = []
        visual(images, before_block=lambda i, x: seen.append(x.shape) or x, extra_tokens=extra)
        assert seen[0] == (17 + 4, 3, 128)
    with pytest.raises(ValueError, match=r"extra_tokens must be \(B=3, n, width=128\)"):
        visual(images, extra_tokens=extra[:1])


# ----------------------------------------------------------------------------- clip.load


def test_load_formats_give_equal_outputs(tmp_path, tiny_clip_path: str) -> None:
    images, text = _images(32), clip.tokenize(TEXTS)
    outputs = {}
    paths = {
        "state_dict": tiny_clip_path,
        "torchscript": save_tiny_clip(tmp_path / "ts.pt", fmt="torchscript"),
        "compact": save_tiny_clip(tmp_path / "compact.pt", fmt="compact"),
    }
    for fmt, path in paths.items():
        model, preprocess = clip.load(path, device="cpu")
        assert model.dtype == torch.float32 and not model.training
        with torch.no_grad():
            outputs[fmt] = (model.encode_image(images), model.encode_text(text))
    for fmt in ("torchscript", "compact"):
        assert torch.equal(outputs[fmt][0], outputs["state_dict"][0]), fmt
        assert torch.equal(outputs[fmt][1], outputs["state_dict"][1]), fmt
    with torch.no_grad():
        direct = tiny_clip()
        assert torch.equal(outputs["state_dict"][1], direct.encode_text(text))


def test_load_legacy_non_zip_state_dict(tmp_path) -> None:
    path = tmp_path / "legacy.pt"
    torch.save(tiny_clip_state_dict(), path, _use_new_zipfile_serialization=False)
    model, _ = clip.load(str(path))
    text = clip.tokenize(TEXTS)
    with torch.no_grad():
        assert torch.equal(model.encode_text(text), tiny_clip().encode_text(text))


def test_compact_form_keeps_only_listed_rows(tmp_path) -> None:
    used = clip.tokenize(TEXTS[0])[0]
    rows = sorted(set(used.tolist()))  # ids of "a photo of a cat." incl. 0 (padding)
    sd = tiny_clip_state_dict()
    compact = compact_state_dict(sd, rows)
    assert compact["token_embedding.weight"].shape == (len(rows), 128)
    assert compact["token_embedding.rows"].tolist() == rows
    assert compact["token_embedding.num_embeddings"].item() == 49408
    model = build_model(compact).float()
    table = model.token_embedding.weight
    assert torch.equal(table[rows], sd["token_embedding.weight"][rows])
    assert table[1125 + 1].abs().sum() == 0 and table[5000].abs().sum() == 0
    full = tiny_clip()
    with torch.no_grad():
        assert torch.equal(model.encode_text(used[None]), full.encode_text(used[None]))
        other = clip.tokenize("a dog")
        assert not torch.allclose(model.encode_text(other), full.encode_text(other))
    broken = dict(compact)
    del broken["token_embedding.num_embeddings"]
    with pytest.raises(KeyError, match="token_embedding.num_embeddings"):
        build_model(broken)


def test_preprocess_resizes_bicubic_and_normalises(tiny_clip_path: str) -> None:
    _, preprocess = clip.load(tiny_clip_path)
    assert preprocess.transforms[0].interpolation == InterpolationMode.BICUBIC
    image = Image.new("L", (50, 40), color=200)  # grey-scale, not square: converted to RGB, cropped
    out = preprocess(image)
    assert out.shape == (3, 32, 32)
    mean = torch.tensor([0.48145466, 0.4578275, 0.40821073])
    std = torch.tensor([0.26862954, 0.26130258, 0.27577711])
    expected = (200 / 255 - mean) / std  # a uniform image stays uniform through bicubic resizing
    torch.testing.assert_close(out[:, 16, 16], expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out[:, 0, 0], expected, rtol=1e-5, atol=1e-5)


def test_resnet_loads_through_clip_load(tmp_path) -> None:
    path = save_tiny_clip(tmp_path / "rn.pt", vision="resnet")
    model, preprocess = clip.load(path)
    assert isinstance(model.visual, clip.model.ModifiedResNet)
    assert preprocess(Image.new("RGB", (70, 90))).shape == (3, 64, 64)
    images = _images(64, n=2)
    with torch.no_grad():
        assert torch.equal(
            model.encode_image(images), tiny_clip(vision="resnet").encode_image(images)
        )


def test_load_errors(tmp_path) -> None:
    with pytest.raises(RuntimeError, match=r"'ViT-X/99' not found.*'RN50'.*'ViT-L/14@336px'"):
        clip.load("ViT-X/99")
    with pytest.raises(RuntimeError, match="jit=True.*not supported"):
        clip.load("ViT-B/16", jit=True)

    good = save_tiny_clip(tmp_path / "good.pt")
    data = open(good, "rb").read()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(RuntimeError, match=f"(?s){truncated}.*truncated or corrupt"):
        clip.load(str(truncated))

    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint" * 10)
    with pytest.raises(RuntimeError, match=f"(?s){garbage}.*truncated or corrupt"):
        clip.load(str(garbage))

    not_a_dict = tmp_path / "list.pt"
    torch.save([torch.zeros(2)], not_a_dict)
    with pytest.raises(RuntimeError, match=f"{not_a_dict} does not hold a CLIP state dict"):
        clip.load(str(not_a_dict))

    pickled_object = tmp_path / "object.pt"
    torch.save({"model": io.BytesIO(b"x")}, pickled_object)  # refused by weights_only loading
    with pytest.raises(RuntimeError, match=f"Could not read CLIP weights from {pickled_object}"):
        clip.load(str(pickled_object))


def test_models_table() -> None:
    assert clip.available_models() == [
        "RN50",
        "RN101",
        "RN50x4",
        "RN50x16",
        "RN50x64",
        "ViT-B/32",
        "ViT-B/16",
        "ViT-L/14",
        "ViT-L/14@336px",
    ]
    url = clip._MODELS["ViT-B/16"]
    assert url == (
        "https://openaipublic.azureedge.net/clip/models/"
        "5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f/ViT-B-16.pt"
    )
    for name, url in clip._MODELS.items():
        assert len(url.split("/")[-2]) == 64, name


# ----------------------------------------------------------------------------- _download

PAYLOAD = b"tiny clip weights" * 100
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()
URL = f"https://example.invalid/clip/models/{PAYLOAD_SHA}/Tiny-B-8.pt"


class _FakeResponse(io.BytesIO):
    def info(self) -> dict[str, str]:
        return {"Content-Length": str(len(self.getvalue()))}


def _no_network(*args, **kwargs):
    raise AssertionError("the network must not be used")


def test_download_returns_cached_file_without_network(tmp_path, monkeypatch) -> None:
    (tmp_path / "Tiny-B-8.pt").write_bytes(PAYLOAD)
    monkeypatch.setattr(urllib.request, "urlopen", _no_network)
    assert clip._download(URL, str(tmp_path)) == str(tmp_path / "Tiny-B-8.pt")


def test_download_default_root_is_home_cache(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # expanduser is evaluated at call time
    cache = tmp_path / ".cache" / "clip"
    cache.mkdir(parents=True)
    (cache / "Tiny-B-8.pt").write_bytes(PAYLOAD)
    monkeypatch.setattr(urllib.request, "urlopen", _no_network)
    assert clip._download(URL) == str(cache / "Tiny-B-8.pt")


def test_download_replaces_file_with_wrong_checksum(tmp_path, monkeypatch) -> None:
    target = tmp_path / "Tiny-B-8.pt"
    target.write_bytes(b"stale partial file")
    requested = []

    def fake_urlopen(url):
        requested.append(url)
        return _FakeResponse(PAYLOAD)

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    with pytest.warns(UserWarning, match="SHA-256 does not match"):
        path = clip._download(URL, str(tmp_path))
    assert requested == [URL]
    assert path == str(target) and target.read_bytes() == PAYLOAD
    assert os.listdir(tmp_path) == ["Tiny-B-8.pt"]  # no temporary file left


def test_download_with_bad_content_keeps_nothing(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(urllib.request, "urlopen", lambda url: _FakeResponse(b"tampered"))
    with pytest.raises(RuntimeError, match=f"SHA-256 is .* expected {PAYLOAD_SHA}"):
        clip._download(URL, str(tmp_path))
    assert os.listdir(tmp_path) == []


def test_download_interrupted_midway_keeps_nothing(tmp_path, monkeypatch) -> None:
    class _Dropped(_FakeResponse):
        def read(self, size: int = -1) -> bytes:
            raise http.client.IncompleteRead(b"partial")

    monkeypatch.setattr(urllib.request, "urlopen", lambda url: _Dropped(PAYLOAD))
    with pytest.raises(RuntimeError, match="Could not download CLIP weights Tiny-B-8.pt"):
        clip._download(URL, str(tmp_path))
    assert os.listdir(tmp_path) == []


def test_download_offline_message(tmp_path, monkeypatch) -> None:
    def offline(url):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    root = tmp_path / "cache"
    with pytest.raises(RuntimeError) as info:
        clip._download(URL, str(root))
    message = str(info.value)
    for needed in ("Tiny-B-8.pt", str(root), PAYLOAD_SHA, URL, "name resolution"):
        assert needed in message
    assert os.listdir(root) == []
