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
