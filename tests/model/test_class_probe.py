"""benchmarks/class_probe.py: the linear probe on known data, and the whole script on a tiny run."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "class_probe.py"


def _module():
    spec = importlib.util.spec_from_file_location("class_probe", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_linear_probe_separates_clusters_and_not_random_labels():
    probe = _module().linear_probe
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 4, size=(3, 8))
    y_tr, y_te = rng.integers(0, 3, 300), rng.integers(0, 3, 300)
    x_tr = centres[y_tr] + rng.normal(size=(300, 8))
    x_te = centres[y_te] + rng.normal(size=(300, 8))
    train, test = probe(x_tr, y_tr, x_te, y_te, 3)
    assert train > 0.95 and test > 0.9
    noise_tr, noise_te = rng.normal(size=(300, 8)), rng.normal(size=(300, 8))
    _, chance = probe(noise_tr, y_tr, noise_te, y_te, 3)
    assert chance < 0.5  # labels unrelated to the features: no better than ~1/3 on new data


def test_script_on_a_tiny_run(tmp_path):
    from weaktube.config import apply_overrides
    from weaktube.data.synthetic import SynthConfig, generate
    from weaktube.demo import demo_config
    from weaktube.train.engine import fit

    data = tmp_path / "data"
    generate(SynthConfig(num_train=3, num_test=2, num_frames=(30, 36), instance_frames=(12, 16),
                         min_idle_frames=4, min_gap_frames=4, two_instance_prob=0.0,
                         distractor_actors=(0, 0), objects=(0, 0)),
             seed=5, out_dir=data, progress=False)
    cfg = apply_overrides(demo_config(data), {
        "model": {"clip_len": 4, "img_size": 64},
        "train": {"epochs": 1, "clips_per_epoch": 8, "batch_size": 4, "warmup_iters": 1,
                  "device": "cpu", "threads": 1, "amp": False}})
    fit(cfg, tmp_path / "run", progress=False, evaluate_at_end=False)
    out = tmp_path / "probe.json"
    subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "run" / "last.pt"),
                    str(data / "source.json"), str(data / "videos"), "--train-clips", "40",
                    "--test-clips", "20", "--out", str(out)], check=True, capture_output=True)
    r = json.loads(out.read_text())
    assert 0 < r["clips"]["test"] <= r["clips"]["train"] <= 40
    for name in ("head", "responsible", "top_is_responsible", "probe_f11", "probe_fc"):
        assert 0.0 <= r[name]["test"] <= 1.0 and 0.0 <= r[name]["train"] <= 1.0
    assert r["probe_f11"]["dim"] > 0 and r["probe_fc"]["dim"] == 64
