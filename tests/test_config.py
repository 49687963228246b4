import pytest

from weaktube.config import ConfigError, ExperimentConfig, from_dict, load_config, to_dict


def test_yaml_and_set_overrides(tmp_path):
    y = tmp_path / "c.yaml"
    y.write_text("train:\n  epochs: 3\n  lr: 1\nmodel:\n  variant: small\n")
    cfg = load_config(y, ["train.batch_size=4", "data.augment.rotation=5"])
    assert cfg.train.epochs == 3 and cfg.train.lr == 1.0 and isinstance(cfg.train.lr, float)
    assert cfg.model.variant == "small" and cfg.train.batch_size == 4
    assert cfg.data.augment.rotation == 5.0
    assert ExperimentConfig().train.epochs != 3  # defaults untouched


def test_roundtrip():
    cfg = load_config(None, ["train.seed=7"])
    assert from_dict(to_dict(cfg)) == cfg


@pytest.mark.parametrize("sets, msg", [
    (["train.epoch=3"], "unknown config key 'train.epoch'"),
    (["train.epochs=three"], "train.epochs: expected int"),
    (["train.lr"], "expected key=value"),
])
def test_bad_overrides(sets, msg):
    with pytest.raises(ConfigError, match=msg):
        load_config(None, sets)


def test_configs_folder_files_load():
    from pathlib import Path

    for path in sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml")):
        load_config(path)


@pytest.mark.parametrize("sets, msg", [
    (["eval.keyframe_stride=0"], "eval.keyframe_stride=0: expected >= 1"),
    (["eval.keyframe_stride=4", "eval.link.fill_gaps=false"], "needs eval.link.fill_gaps"),
    (["train.checkpoint_every=-1"], "train.checkpoint_every=-1"),
])
def test_settings_that_fail_late_are_refused_when_loaded(sets, msg):
    """Refused with the config, not after a training run, at its final evaluation."""
    with pytest.raises((ConfigError, ValueError), match=msg):
        load_config(None, sets)
