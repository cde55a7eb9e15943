"""Shared trainer pieces: the text encoder's shortened pass, precision, templates."""

import pytest
import torch
from tiny_clip import tiny_clip

import clip
from trainers.common import TextEncoder, resolve_precision
from trainers.templates import COOP_TEMPLATES, KG_TEMPLATES, SEP_TEMPLATES


def test_text_encoder_runs_only_up_to_the_last_eot_with_identical_features():
    torch.manual_seed(0)
    model = tiny_clip()
    tokens = clip.tokenize(["a photo of a cat.", "a photo of a very long spotted dog breed."])
    with torch.no_grad():
        reference = model.encode_text(tokens)  # the full 77-token pass
        seen = []

        def hook(i, x):
            seen.append(x.shape[0])
            return x

        encoder = TextEncoder(model)
        features = encoder(model.token_embedding(tokens), tokens, before_block=hook)
        longer = encoder(model.token_embedding(tokens), tokens, min_length=20)
    torch.testing.assert_close(features, reference, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(longer, reference, rtol=1e-5, atol=1e-6)
    last_eot = int(tokens.argmax(dim=-1).max())
    assert seen == [last_eot + 1] * len(model.transformer.resblocks)


def test_fp16_falls_back_to_fp32_on_cpu():
    with pytest.warns(UserWarning, match="fp32"):
        assert resolve_precision("fp16", torch.device("cpu")) == "fp32"
    assert resolve_precision("amp", torch.device("cpu")) == "amp"
    with pytest.raises(ValueError, match="fp64"):
        resolve_precision("fp64", torch.device("cpu"))


def test_template_tables_differ_where_the_releases_differ():
    differ = {k for k in COOP_TEMPLATES if COOP_TEMPLATES[k] != KG_TEMPLATES[k]}
    assert differ == {"FGVCAircraft", "DescribableTextures", "StanfordCars", "Food101"}
    assert SEP_TEMPLATES["FGVCAircraft"] == "a photo of an aircraft {}."
    assert SEP_TEMPLATES["UCF101"] == "a photo of a person doing {}."
    assert COOP_TEMPLATES["DescribableTextures"] == "{} texture."


def test_context_options_are_checked_with_the_key_named():
    import train
    from dassl.config import get_cfg_default
    from trainers.common import check_context_options

    cfg = get_cfg_default()
    train.extend_cfg(cfg)
    for node in ("COOP", "COCOOP", "KGCOOP"):
        check_context_options(cfg, node)  # the defaults are valid
    cfg.TRAINER.COOP.CLASS_TOKEN_POSITION = "middle-ish"
    with pytest.raises(ValueError, match="TRAINER.COOP.CLASS_TOKEN_POSITION 'middle-ish'"):
        check_context_options(cfg, "COOP")
    cfg.TRAINER.COCOOP.N_CTX, cfg.TRAINER.COCOOP.CTX_INIT = 0, ""
    with pytest.raises(ValueError, match="TRAINER.COCOOP.N_CTX"):
        check_context_options(cfg, "COCOOP")
    cfg.TRAINER.COCOOP.CTX_INIT = "a photo of a"  # words set the context length
    check_context_options(cfg, "COCOOP")
