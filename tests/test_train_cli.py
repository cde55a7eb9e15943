"""train.py: CoOp's command line and config set-up."""

import pytest

import train


def cfg_from(*argv):
    return train.setup_cfg(train.build_parser().parse_args(list(argv)))


def test_seed_zero_is_a_seed():  # upstream's `if args.seed:` silently ignored 0
    assert cfg_from("--seed", "0").SEED == 0
    assert cfg_from("--seed", "3").SEED == 3
    assert cfg_from().SEED == -1


def test_cli_flags_and_trailing_overrides_reach_the_config(tmp_path):
    cfg = cfg_from(
        "--root", "/data", "--output-dir", str(tmp_path), "--trainer", "SEP",
        "--backbone", "ViT-B/32",
        "--dataset-config-file", "configs/datasets/eurosat.yaml",
        "--config-file", "configs/trainers/SEP/vit_b16_b32_ep50.yaml",
        "TRAINER.SEP.ATTN_AXIS", "tokens", "DATASET.NUM_SHOTS", "4",
    )  # fmt: skip
    assert (cfg.DATASET.ROOT, cfg.OUTPUT_DIR, cfg.TRAINER.NAME) == ("/data", str(tmp_path), "SEP")
    assert cfg.MODEL.BACKBONE.NAME == "ViT-B/32"  # --backbone wins over the config file
    assert cfg.DATASET.NAME == "EuroSAT"
    assert cfg.OPTIM.NAME == "adam" and cfg.OPTIM.EPS == pytest.approx(1e-3)
    assert cfg.TRAINER.SEP.ATTN_AXIS == "tokens" and cfg.DATASET.NUM_SHOTS == 4
    # every method's node is there
    assert {"COOP", "COCOOP", "KGCOOP", "SEP"} <= set(cfg.TRAINER.keys())


def test_bad_input_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="--config-file 'configs/nope.yaml'"):
        cfg_from("--config-file", "configs/nope.yaml")
    with pytest.raises(ValueError, match="Non-existent key: TRAINER.SEP.NOPE"):
        cfg_from("TRAINER.SEP.NOPE", "1")
    with pytest.raises(ValueError, match="KEY VALUE pairs"):
        cfg_from("OPTIM.LR")
    with pytest.raises(ValueError, match="Type mismatch"):
        cfg_from("OPTIM.MAX_EPOCH", "ten")
    bad = tmp_path / "bad.yaml"
    bad.write_text("OPTIM:\n  NOPE: 1\n")
    with pytest.raises(ValueError, match=f"--config-file '{bad}'.*OPTIM.NOPE"):
        cfg_from("--config-file", str(bad))
