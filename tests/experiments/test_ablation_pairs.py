"""benchmarks/ablation_pairs.py: pairing and summary on hand-built rows, and its argument check."""

from __future__ import annotations

import argparse

import pytest

from tests.benchmark_scripts import load_benchmark


def test_report_pairs_trbl_ncbl_with_scel_per_arm_and_seed():
    m = load_benchmark("ablation_pairs")
    row = lambda fm: (fm, 50.0, 0.9, 0.8)  # noqa: E731  (frame-mAP, agnostic AP, localised, class)
    rows = {("baseline_scel", "a"): {0: row(30.0), 1: row(40.0)},
            ("trbl_ncbl", "a"): {0: row(36.0), 1: row(42.0)},
            ("oracle", "a"): {0: row(60.0), 1: row(70.0)},
            ("baseline_scel", "b"): {0: row(20.0)},
            ("trbl_ncbl", "b"): {0: row(30.0), 1: row(10.0)}}  # seed 1 of arm b has no SCEL
    lines = m.report("B->A", rows)
    assert "| trbl_ncbl (a) | 36.0 / 42.0 | 39.0 |" in lines[3]
    # differences +6 (a, 0), +2 (a, 1), +10 (b, 0): sd 4, se 4 / sqrt(3) = 2.3;
    # TRBL+NCBL 36, 42, 30, 10: mean 29.5, sd sqrt(579 / 3) = 13.9
    pooled = lines.index("trbl_ncbl - scel, paired: +6.0, +2.0, +10.0; mean +6.0 ± 2.3 (se)")
    assert lines[pooled + 1:pooled + 3] == [
        "trbl_ncbl 29.5 ± 13.9 (n=4), scel 30.0 (n=3), oracle 65.0 (n=2)",
        "ratio trbl_ncbl / oracle: 0.45"]
    # then each arm alone: a has its own oracle; b has none and takes every arm's (here a's)
    assert lines[pooled + 3:] == [
        "[a] trbl_ncbl - scel, paired: +6.0, +2.0; mean +4.0 ± 2.0 (se)",
        "[a] trbl_ncbl 39.0 ± 4.2 (n=2), scel 35.0 (n=2), oracle 65.0 (n=2)",
        "[a] ratio trbl_ncbl / oracle: 0.60",
        "[b] trbl_ncbl - scel, paired: +10.0; mean +10.0 ± nan (se)",
        "[b] trbl_ncbl 20.0 ± 14.1 (n=2), scel 20.0 (n=1), oracle 65.0 (n=2)",
        "[b] ratio trbl_ncbl / oracle: 0.31"]


def test_one_arm_prints_no_per_arm_lines():
    m = load_benchmark("ablation_pairs")
    row = lambda fm: (fm, 50.0, 0.9, 0.8)  # noqa: E731
    rows = {("baseline_scel", "a"): {0: row(30.0)}, ("trbl_ncbl", "a"): {0: row(36.0)},
            ("oracle", "a"): {0: row(40.0)}}
    lines = m.report("A->B", rows)
    assert lines[-1] == "ratio trbl_ncbl / oracle: 0.90"
    assert not any(line.startswith("[") for line in lines)


def test_suite_argument_needs_arm_and_folder():
    m = load_benchmark("ablation_pairs")
    assert m.parse_suite("t100=/tmp/x") == ("t100", m.Path("/tmp/x"))
    with pytest.raises(argparse.ArgumentTypeError, match="ARM=DIR"):
        m.parse_suite("/tmp/x")
