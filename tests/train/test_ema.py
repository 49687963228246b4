"""``ModelEma``: the warm-up ramp, the update rule, integer buffers, and a run that keeps one
(checkpointed, resumed to the same numbers, and what ``detect`` / ``--init`` load)."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from weaktube.config import apply_overrides
from weaktube.train.checkpoint import inference_weights, load_checkpoint
from weaktube.train.ema import ModelEma


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))


def test_decay_ramps_up_to_its_ceiling():
    ema = ModelEma(_net(), 0.99)
    seen = []
    for _ in range(2000):
        seen.append(ema.current_decay())
        ema.updates += 1
    assert seen[0] == pytest.approx(0.1)  # (1 + 0) / (10 + 0): the first step mostly copies
    assert all(b >= a for a, b in zip(seen, seen[1:]))
    assert seen[-1] == 0.99


def test_update_moves_each_float_tensor_by_one_minus_decay_and_copies_integers():
    net = _net()
    ema = ModelEma(net, 0.9)
    ema.updates = 10_000  # past the ramp: d = 0.9
    old = {k: v.clone() for k, v in ema.state.items()}
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
    net.train()
    net(torch.randn(5, 3))  # batch-norm statistics and num_batches_tracked change
    ema.update(net)
    new = net.state_dict()
    for k, v in ema.state.items():
        if v.is_floating_point():
            torch.testing.assert_close(v, 0.9 * old[k] + 0.1 * new[k])
        else:
            assert torch.equal(v, new[k])
    assert int(ema.state["1.num_batches_tracked"]) == 1
    same = ModelEma(net, 0.9)
    same.update(net)  # averaging a model with itself leaves it as it is
    for k, v in same.state.items():
        assert torch.equal(v, new[k])


def test_average_into_a_module_keeps_a_subset_in_its_own_tensors():
    """``into=``: the average lives in that module's tensors (updated in place, no private copy),
    over its keys only; ``warmup=False`` applies ``decay`` from the first update."""
    net, shadow = _net(), _net()[1:]  # shadow: the batch norm alone, keys "0.*" of another net
    shadow = nn.Sequential(nn.Identity(), shadow[0])  # -> keys "1.*", a subset of net's
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
    net.train()
    net(torch.randn(5, 3))  # batch-norm statistics and num_batches_tracked change too
    old = {k: v.clone() for k, v in shadow.state_dict().items()}
    ema = ModelEma(net, 0.75, into=shadow, warmup=False)
    ema.update(net)
    new = net.state_dict()
    for k, v in shadow.state_dict().items():  # the module itself moved, buffers included
        if v.is_floating_point():
            torch.testing.assert_close(v, 0.75 * old[k] + 0.25 * new[k])
        else:
            assert torch.equal(v, new[k])
    assert int(shadow.state_dict()["1.num_batches_tracked"]) == 1
    assert not torch.equal(shadow.state_dict()["1.running_mean"], old["1.running_mean"])
    assert set(ema.state) == set(shadow.state_dict()) < set(new)
    with pytest.raises(ValueError, match="has no"):
        ModelEma(shadow, 0.75, into=net)  # net has keys the model to average lacks
    with pytest.raises(ValueError, match="has no"):
        ModelEma(net, 0.75, into=net).update(shadow)  # checked again when it averages


@pytest.mark.parametrize("decay", [0.0, 1.0, -0.5])
def test_bad_decay_is_refused(decay):
    with pytest.raises(ValueError, match="decay"):
        ModelEma(_net(), decay)


@pytest.mark.parametrize("decay", [1.0, -0.1])
def test_bad_decay_in_the_config_is_a_config_error(decay):
    from weaktube.config import ConfigError, ExperimentConfig

    with pytest.raises(ConfigError, match="train.ema_decay"):
        apply_overrides(ExperimentConfig(), {"train": {"ema_decay": decay}})


def test_inference_weights_prefer_the_average():
    assert inference_weights({"model": {"w": 1}}) == {"w": 1}
    assert inference_weights({"model": {"w": 1}, "ema": {"state": {"w": 2}}}) == {"w": 2}


def test_fit_keeps_checkpoints_and_resumes_the_average(tmp_path, monkeypatch):
    """Two epochs in one go and one + one (a killed run resumed) give the same average; the
    checkpoint keeps the trained weights for resuming next to it."""
    from tests.train.test_engine import RECIPE, TINY
    from weaktube.data.synthetic import SynthConfig, generate
    from weaktube.demo import demo_config
    from weaktube.train.engine import fit

    data = tmp_path / "data"
    generate(SynthConfig(**TINY), seed=5, out_dir=data, progress=False)
    cfg = apply_overrides(demo_config(data), RECIPE)
    cfg = apply_overrides(cfg, {"train": {"ema_decay": 0.9, "epochs": 2}})
    fit(cfg, tmp_path / "whole", progress=False, evaluate_at_end=False)
    import weaktube.train.engine as engine

    save = engine.save_checkpoint

    def save_then_die(path, state):  # the run is killed right after its first checkpoint
        save(path, state)
        raise KeyboardInterrupt

    monkeypatch.setattr(engine, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        fit(cfg, tmp_path / "split", progress=False, evaluate_at_end=False)
    killed = load_checkpoint(tmp_path / "split" / "last.pt")
    assert killed["ema"]["updates"] == 4
    first_epoch_seconds = killed["train_seconds"]
    monkeypatch.setattr(engine, "save_checkpoint", save)
    # what a kill inside epoch 1 leaves: its first log lines (one cut short), and the partial
    # file of a checkpoint save that never finished
    log = tmp_path / "split" / "metrics.jsonl"
    with open(log, "a", encoding="utf-8") as f:
        f.write(json.dumps({"epoch": 1, "iteration": 5, "loss": 1.0}) + "\n")
        f.write('{"epoch": 1, "itera')
    stale = tmp_path / "split" / ".last.abc123.tmp.pt"
    stale.write_bytes(b"partial")
    fit(cfg, tmp_path / "split", progress=False, evaluate_at_end=False)  # resumes epoch 1
    assert not stale.exists()

    def iterations(run):
        lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        return [(x["epoch"], x["iteration"]) for x in lines if "iteration" in x]

    assert iterations(tmp_path / "split") == iterations(tmp_path / "whole")  # no epoch twice
    assert not (tmp_path / "split" / "resumes.jsonl").exists()  # same config: nothing to note
    whole = load_checkpoint(tmp_path / "whole" / "last.pt")
    split = load_checkpoint(tmp_path / "split" / "last.pt")
    # the record of the whole run survives the kill: both epochs, their time added up
    assert [h["epoch"] for h in split["history"]] == [h["epoch"] for h in whole["history"]]
    assert split["train_seconds"] > first_epoch_seconds > 0  # added to, not restarted
    assert whole["ema"]["updates"] == split["ema"]["updates"] == whole["iteration"] == 8
    for k, v in whole["ema"]["state"].items():
        torch.testing.assert_close(split["ema"]["state"][k], v)
    assert inference_weights(whole) is whole["ema"]["state"]
    differs = [k for k, v in whole["model"].items()
               if v.is_floating_point() and not torch.equal(v, whole["ema"]["state"][k])]
    assert differs  # the average is not the last weights


def test_a_run_killed_inside_an_epoch_resumes_there(tmp_path, monkeypatch):
    """``train.checkpoint_every``: killed after a checkpoint in the middle of epoch 1, the run
    resumes at that batch and ends exactly as an uninterrupted run (weights, average, log)."""
    from tests.train.test_engine import RECIPE, TINY
    from weaktube.data.synthetic import SynthConfig, generate
    from weaktube.demo import demo_config
    from weaktube.train.engine import fit

    data = tmp_path / "data"
    generate(SynthConfig(**TINY), seed=5, out_dir=data, progress=False)
    cfg = apply_overrides(demo_config(data), RECIPE)  # 4 batches per epoch
    cfg = apply_overrides(cfg, {"train": {"ema_decay": 0.9, "epochs": 2}})
    fit(cfg, tmp_path / "whole", progress=False, evaluate_at_end=False)
    import weaktube.train.engine as engine

    save, saved = engine.save_checkpoint, []

    def save_then_die(path, state):  # killed right after the checkpoint at iteration 6
        save(path, state)
        saved.append((state["epoch"], state["batches_done"], state["iteration"]))
        if state["iteration"] == 6:
            raise KeyboardInterrupt

    monkeypatch.setattr(engine, "save_checkpoint", save_then_die)
    every3 = apply_overrides(cfg, {"train": {"checkpoint_every": 3}})
    with pytest.raises(KeyboardInterrupt):
        fit(every3, tmp_path / "split", progress=False, evaluate_at_end=False)
    # iteration 3 inside epoch 0, epoch 0's end (4), iteration 6 = batch 2 of epoch 1
    assert saved == [(-1, 3, 3), (0, 0, 4), (0, 2, 6)]
    monkeypatch.setattr(engine, "save_checkpoint", save)
    fit(every3, tmp_path / "split", progress=False, evaluate_at_end=False)
    whole = load_checkpoint(tmp_path / "whole" / "last.pt")
    split = load_checkpoint(tmp_path / "split" / "last.pt")
    assert split["iteration"] == whole["iteration"] == 8 and split["batches_done"] == 0
    for k, v in whole["model"].items():
        torch.testing.assert_close(split["model"][k], v, rtol=0, atol=0)
    for k, v in whole["ema"]["state"].items():
        torch.testing.assert_close(split["ema"]["state"][k], v, rtol=0, atol=0)

    def logged(run):
        lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        return [(x["iteration"], x["loss"]) for x in lines if "iteration" in x]

    assert logged(tmp_path / "split") == logged(tmp_path / "whole")
    # checkpoint_every changes nothing that is trained: no configuration change to note
    assert not (tmp_path / "split" / "resumes.jsonl").exists()
