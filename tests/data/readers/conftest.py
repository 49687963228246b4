"""Fixtures for the reader tests: the real files, each read once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from weaktube.data.readers import read_ucf24_pyannot, read_yowo_txt
from weaktube.structures import AnnotationSet


@pytest.fixture(scope="session")
def ucf24_pkl(shared_data: Path) -> Path:
    return shared_data / "ucf24" / "annotations" / "pyannot_with_class_names.pkl"


@pytest.fixture(scope="session")
def ucf24(ucf24_pkl: Path) -> AnnotationSet:
    return read_ucf24_pyannot(ucf24_pkl)


@pytest.fixture(scope="session")
def jhmdb_zip(shared_data: Path) -> Path:
    return shared_data / "jhmdb21" / "groundtruths_jhmdb.zip"


@pytest.fixture(scope="session")
def jhmdb(jhmdb_zip: Path) -> AnnotationSet:
    return read_yowo_txt(jhmdb_zip)
