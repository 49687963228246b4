import warnings

import pytest
import torch

from weaktube.config import ConfigError, ExperimentConfig, apply_overrides, load_config
from weaktube.demo import demo_config
from weaktube.train.precision import cpu_has_fast_bf16, resolve_amp


def _cpu_bf16(monkeypatch, fast: bool) -> None:
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: fast)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)


def test_auto_is_fp32_on_a_cpu_without_native_bf16(monkeypatch):
    _cpu_bf16(monkeypatch, False)
    assert not cpu_has_fast_bf16()
    assert resolve_amp("auto", torch.device("cpu")) is False
    assert resolve_amp("auto", torch.device("cuda")) is True  # fp16 autocast on a GPU


def test_auto_is_bf16_on_a_cpu_with_native_bf16(monkeypatch):
    _cpu_bf16(monkeypatch, True)
    assert resolve_amp("auto", torch.device("cpu")) is True
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_amp(True, torch.device("cpu")) is True


def test_explicit_amp_is_honoured_with_a_warning_where_it_is_slow(monkeypatch):
    _cpu_bf16(monkeypatch, False)
    with pytest.warns(UserWarning, match="AVX-512 BF16 or AMX"):
        assert resolve_amp(True, torch.device("cpu")) is True
    assert resolve_amp(False, torch.device("cpu")) is False
    with pytest.raises(ValueError, match="train.amp='fast'"):
        resolve_amp("fast", torch.device("cpu"))


def test_config_accepts_auto_and_booleans_only(tmp_path):
    assert apply_overrides(ExperimentConfig(), {"train": {"amp": "auto"}}).train.amp == "auto"
    assert load_config(sets=["train.amp=true"]).train.amp is True
    assert load_config(sets=["train.amp=auto"]).train.amp == "auto"
    with pytest.raises(ConfigError, match="train.amp='fast'"):
        load_config(sets=["train.amp=fast"])
    with pytest.raises(ConfigError, match="train.amp=1"):
        apply_overrides(ExperimentConfig(), {"train": {"amp": 1}})


def test_demo_recipe_picks_its_precision_from_the_hardware(tmp_path):
    assert demo_config(tmp_path).train.amp == "auto"
