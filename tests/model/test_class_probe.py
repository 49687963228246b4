"""benchmarks/class_probe.py: the linear probe on known data, and the whole script on a tiny run."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from tests.benchmark_scripts import BENCHMARKS, load_benchmark

SCRIPT = BENCHMARKS / "class_probe.py"


def test_linear_probe_separates_clusters_and_not_random_labels():
    probe = load_benchmark("class_probe").linear_probe
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


def test_script_on_a_tiny_run(tiny_run, tmp_path):
    data, run = tiny_run
    out = tmp_path / "probe.json"
    subprocess.run([sys.executable, str(SCRIPT), str(run / "last.pt"),
                    str(data / "source.json"), str(data / "videos"), "--train-clips", "40",
                    "--test-clips", "20", "--out", str(out)], check=True, capture_output=True)
    r = json.loads(out.read_text())
    assert 0 < r["clips"]["test"] <= r["clips"]["train"] <= 40
    for name in ("head", "responsible", "top_is_responsible", "probe_f11", "probe_fc"):
        assert 0.0 <= r[name]["test"] <= 1.0 and 0.0 <= r[name]["train"] <= 1.0
    assert r["probe_f11"]["dim"] > 0 and r["probe_fc"]["dim"] == 64
