"""Loading OpenAI CLIP models: names, checksum-verified downloads, preprocessing, tokenization."""

from __future__ import annotations

import hashlib
import http.client
import os
import pickle
import tempfile
import urllib.request
import warnings
import zipfile
from collections.abc import Callable
from typing import Any

import torch
from PIL import Image
from torchvision.transforms import (
    CenterCrop,
    Compose,
    InterpolationMode,
    Normalize,
    Resize,
    ToTensor,
)
from tqdm import tqdm

from .model import CLIP, build_model
from .simple_tokenizer import EOT_TEXT, SOT_TEXT, SimpleTokenizer

__all__ = ["available_models", "load", "tokenize", "_MODELS", "_download"]

_BASE_URL = "https://openaipublic.azureedge.net/clip/models"
_CHECKPOINTS = {  # name: (SHA-256 of the file, file name)
    "RN50": ("afeb0e10f9e5a86da6080e35cf09123aca3b358a0c3e3b6c78a7b63bc04b6762", "RN50.pt"),
    "RN101": ("8fa8567bab74a42d41c5915025a8e4538c3bdbe8804a470a72f30b0d94fab599", "RN101.pt"),
    "RN50x4": ("7e526bd135e493cef0776de27d5f42653e6b4c8bf9e0f653bb11773263205fdd", "RN50x4.pt"),
    "RN50x16": ("52378b407f34354e150460fe41077663dd5b39c54cd0bfd2b27167a4a06ec9aa", "RN50x16.pt"),
    "RN50x64": ("be1cfb55d75a9666199fb2206c106743da0f6468c9d327f3e0d0a543a9919d9c", "RN50x64.pt"),
    "ViT-B/32": ("40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af", "ViT-B-32.pt"),
    "ViT-B/16": ("5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f", "ViT-B-16.pt"),
    "ViT-L/14": ("b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836", "ViT-L-14.pt"),
    "ViT-L/14@336px": (
        "3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02",
        "ViT-L-14-336px.pt",
    ),
}
_MODELS = {name: f"{_BASE_URL}/{sha}/{fname}" for name, (sha, fname) in _CHECKPOINTS.items()}

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

_tokenizer = SimpleTokenizer()


def available_models() -> list[str]:
    """Names of OpenAI's CLIP models that `load` can download."""
    return list(_MODELS)


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _download(url: str, root: str | None = None) -> str:
    """Path of the file at `url` in `root` (default `~/.cache/clip`), downloading it if needed.

    The expected SHA-256 is the second-to-last part of the URL path. A cached file with that
    checksum is returned without network access; a cached file with another checksum is
    re-downloaded with a warning. Downloads go to a temporary file in `root`, are verified, then
    renamed, so an interrupted download never leaves a file under the final name.
    """
    root = root if root is not None else os.path.expanduser("~/.cache/clip")
    os.makedirs(root, exist_ok=True)
    filename = os.path.basename(url)
    expected_sha256 = url.split("/")[-2]
    target = os.path.join(root, filename)

    if os.path.exists(target) and not os.path.isfile(target):
        raise RuntimeError(f"{target} exists and is not a regular file; move it away and retry.")
    if os.path.isfile(target):
        if _sha256(target) == expected_sha256:
            return target
        warnings.warn(
            f"{target} exists, but its SHA-256 does not match {expected_sha256}; re-downloading.",
            stacklevel=2,
        )

    fd, tmp_path = tempfile.mkstemp(prefix=f".{filename}.", suffix=".part", dir=root)
    try:
        with os.fdopen(fd, "wb") as output:
            try:
                with urllib.request.urlopen(url) as source:
                    total = source.info().get("Content-Length")
                    with tqdm(
                        total=int(total) if total else None,
                        ncols=80,
                        unit="iB",
                        unit_scale=True,
                        unit_divisor=1024,
                        desc=filename,
                    ) as bar:
                        while buffer := source.read(1 << 16):
                            output.write(buffer)
                            bar.update(len(buffer))
            except (OSError, ValueError, http.client.HTTPException) as err:  # URLError is OSError
                raise RuntimeError(
                    f"Could not download CLIP weights {filename} ({err}). To run offline, place "
                    f"the file {filename} in the folder {root} (SHA-256 {expected_sha256}); "
                    f"it is available at {url}"
                ) from err
        actual = _sha256(tmp_path)
        if actual != expected_sha256:
            raise RuntimeError(
                f"Downloaded {filename} from {url} but its SHA-256 is {actual}, expected "
                f"{expected_sha256}; the download is corrupt or the server changed. Retry, or "
                f"place a verified copy in {root}."
            )
        os.replace(tmp_path, target)
    finally:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
    return target


def _convert_image_to_rgb(image: Image.Image) -> Image.Image:
    return image.convert("RGB")


def _transform(n_px: int) -> Compose:
    """PIL image -> (3, n_px, n_px) normalised tensor, as CLIP was trained."""
    return Compose(
        [
            Resize(n_px, interpolation=InterpolationMode.BICUBIC),
            CenterCrop(n_px),
            _convert_image_to_rgb,
            ToTensor(),
            Normalize(CLIP_MEAN, CLIP_STD),
        ]
    )


def _read_state_dict(path: str) -> dict[str, torch.Tensor]:
    """State dict of an OpenAI TorchScript archive, a plain state dict or the compact form."""
    is_torchscript = False
    if zipfile.is_zipfile(path):  # current torch.save and TorchScript files are zip archives
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
        is_torchscript = any(n.endswith("constants.pkl") or "/code/" in n for n in names)
    if is_torchscript:  # OpenAI's .pt files are TorchScript archives; we only take their weights
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*torch.jit.load.*deprecated")
            try:
                archive = torch.jit.load(path, map_location="cpu")
            except RuntimeError as err:
                raise RuntimeError(
                    f"Could not read the TorchScript archive {path}: {err}. The file is corrupt "
                    "or from an incompatible PyTorch; delete it and download or copy it again."
                ) from err
        return dict(archive.state_dict())
    try:
        obj: Any = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, zipfile.BadZipFile) as err:
        if isinstance(err, pickle.UnpicklingError):
            reason = "torch.load(weights_only=True) refused it: not a plain tensor state dict"
        else:
            reason = str(err).split("\n")[0]
        raise RuntimeError(
            f"Could not read CLIP weights from {path} ({reason}). Expected an OpenAI CLIP .pt "
            "archive or a state dict saved with torch.save(model.state_dict(), path); a "
            "truncated or corrupt file must be replaced."
        ) from err
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise RuntimeError(
            f"{path} does not hold a CLIP state dict (found {type(obj).__name__}); save one with "
            "torch.save(model.state_dict(), path)."
        )
    return obj


def load(
    name_or_path: str,
    device: str | torch.device = "cpu",
    jit: bool = False,
    download_root: str | None = None,
) -> tuple[CLIP, Callable[[Image.Image], torch.Tensor]]:
    """Load a CLIP model and its image preprocessing.

    Args:
        name_or_path: a name of `available_models()` (downloaded and cached) or a path to an OpenAI
            TorchScript archive, a plain state dict or a compact state dict (a dict holding the
            state dict under "state_dict" is unwrapped).
        device: where to put the model. On CPU the weights are fp32; elsewhere fp16 (OpenAI's).
        jit: not supported (the TorchScript model has no hook for prompt methods).
        download_root: cache folder for named models (default `~/.cache/clip`).

    Returns:
        (model in eval mode, preprocess: PIL image -> (3, R, R) tensor at the model's resolution).
    """
    if jit:
        raise RuntimeError(
            "clip.load(jit=True) is not supported: prompt-learning methods need the Python model. "
            "Use jit=False (the default)."
        )
    if name_or_path in _MODELS:
        model_path = _download(_MODELS[name_or_path], download_root)
    elif os.path.isfile(name_or_path):
        model_path = name_or_path
    else:
        raise RuntimeError(
            f"CLIP model {name_or_path!r} not found: it is neither a file nor one of "
            f"available_models() = {available_models()}."
        )

    model = build_model(_read_state_dict(model_path)).to(device)
    if torch.device(device).type == "cpu":
        model.float()
    return model, _transform(model.visual.input_resolution)


def tokenize(
    texts: str | list[str], context_length: int = 77, truncate: bool = False
) -> torch.LongTensor:
    """Token ids of `texts` as a (N, context_length) LongTensor: SOT, BPE ids, EOT, zero padding.

    A text longer than `context_length` raises unless `truncate`, which cuts it and ends it with
    EOT.
    """
    if isinstance(texts, str):
        texts = [texts]
    sot = _tokenizer.encoder[SOT_TEXT]
    eot = _tokenizer.encoder[EOT_TEXT]
    result = torch.zeros(len(texts), context_length, dtype=torch.long)
    for i, text in enumerate(texts):
        tokens = [sot] + _tokenizer.encode(text) + [eot]
        if len(tokens) > context_length:
            if not truncate:
                raise RuntimeError(
                    f"Input {text!r} is too long for context length {context_length} "
                    f"({len(tokens)} tokens); shorten it or pass truncate=True."
                )
            tokens = tokens[:context_length]
            tokens[-1] = eot
        result[i, : len(tokens)] = torch.tensor(tokens)
    return result
