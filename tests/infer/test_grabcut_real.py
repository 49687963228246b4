"""benchmarks/grabcut_real.py: the perturbations' geometry, and a small run on the real clips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.benchmark_scripts import load_benchmark

gc = load_benchmark("grabcut_real")


def test_perturbations_rescale_about_the_centre_and_clip():
    gt = np.array([[100.0, 50.0, 140.0, 150.0],   # 40 x 100, centre (120, 100)
                   [0.0, 0.0, 40.0, 100.0]])      # at the corner: clipped when grown
    rng = np.random.default_rng(0)
    assert np.array_equal(gc.perturb(gt, "exact", rng, 340, 256), gt)
    wide = gc.perturb(gt, "wide", rng, 340, 256)
    np.testing.assert_allclose(wide[0], [90.0, 40.0, 150.0, 160.0])  # 60 x 120
    np.testing.assert_allclose(wide[1], [0.0, 0.0, 50.0, 110.0])  # clipped at 0
    per_box = gc.perturb(gt, "wide", rng, np.array([145.0, 340.0]), np.array([256.0, 105.0]))
    np.testing.assert_allclose(per_box, [[90.0, 40.0, 145.0, 160.0], [0.0, 0.0, 50.0, 105.0]])
    small = gc.perturb(gt, "small", rng, 340, 256)
    np.testing.assert_allclose(small[0], [103.0, 57.5, 137.0, 142.5])
    loose = gc.perturb(gt, "loose", np.random.default_rng(1), 340, 256)
    w, h = loose[0, 2] - loose[0, 0], loose[0, 3] - loose[0, 1]
    assert w == pytest.approx(52.0) and h == pytest.approx(130.0)
    cx, cy = (loose[0, 0] + loose[0, 2]) / 2, (loose[0, 1] + loose[0, 3]) / 2
    assert abs(cx - 120.0) <= 4.0 and abs(cy - 100.0) <= 10.0 and (cx, cy) != (120.0, 100.0)


def test_size_error_is_zero_for_the_truth_and_log_of_the_ratio_otherwise():
    gt = np.array([[0.0, 0.0, 10.0, 20.0]])
    assert gc.size_error(gt, gt) == {"log_w": 0.0, "log_h": 0.0}
    err = gc.size_error(np.array([[0.0, 0.0, 20.0, 10.0]]), gt)
    assert err["log_w"] == pytest.approx(np.log(2)) and err["log_h"] == pytest.approx(-np.log(2))


def test_a_small_run_on_the_real_clips(shared_data: Path):
    clips = gc.load_clips(shared_data)
    where, gt = gc.sample_boxes(clips, stride=60)
    assert len(where) == len(gt) >= 7  # every tube contributes its first frame at least
    assert {clips[ci].name for ci, _ in where} == {c.name for c in clips}
    row = gc.run(clips, where, gt, "wide", margin=0.0, iters=1, seed=0)
    assert row["before"]["iou"] == pytest.approx(np.mean(
        gc.np_iou_paired(gc.perturb(gt, "wide", np.random.default_rng(0), 340, 256), gt)))
    assert row["before"]["log_w"] > 0.3  # x1.5 wide, a little less where clipped
    assert 0.0 < row["after"]["iou"] <= 1.0 and 0.0 <= row["unchanged"] <= 1.0
    assert set(row["per_clip"]) == {c.name for c in clips}
    assert sum(r["boxes"] for r in row["per_clip"].values()) == len(gt)
    table = gc.format_table({"wide@0": row})
    assert f"{row['before']['iou']:.3f}->{row['after']['iou']:.3f}" in table
