"""Shared fixtures. Real data lives in ``../shared/data`` next to the repository."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads (see weaktube/cli.py)

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``: the real UCF101-24, J-HMDB-21, THUMOS14 and ActivityNet files."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"real test data not found at {SHARED_DATA} (expected ../shared/data)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def ucf24_videos(shared_data: Path) -> Path:
    return shared_data / "ucf24" / "videos"


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> tuple[Path, Path]:
    """``(data, run)``: a tiny synthetic benchmark and a one-epoch ``make demo``-recipe run on
    its source domain (``run/last.pt``; no evaluation). For scripts that read a checkpoint."""
    from weaktube.config import apply_overrides
    from weaktube.data.synthetic import SynthConfig, generate
    from weaktube.demo import demo_config
    from weaktube.train.engine import fit

    root = tmp_path_factory.mktemp("tiny_run")
    data = root / "data"
    generate(SynthConfig(num_train=3, num_test=2, num_frames=(30, 36), instance_frames=(12, 16),
                         min_idle_frames=4, min_gap_frames=4, two_instance_prob=0.0,
                         distractor_actors=(0, 0), objects=(0, 0)),
             seed=5, out_dir=data, progress=False)
    cfg = apply_overrides(demo_config(data), {
        "model": {"clip_len": 4, "img_size": 64},
        "train": {"epochs": 1, "clips_per_epoch": 8, "batch_size": 4, "warmup_iters": 1,
                  "device": "cpu", "threads": 1, "amp": False}})
    fit(cfg, root / "run", progress=False, evaluate_at_end=False)
    return data, root / "run"
