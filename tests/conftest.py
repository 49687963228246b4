"""Shared fixtures. Real data lives in ``../shared/data`` next to the repository."""

from __future__ import annotations

from pathlib import Path

import pytest

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
