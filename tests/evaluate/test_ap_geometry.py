"""AP integrals and overlap measures, against hand computations and weaktube.boxes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from weaktube.boxes import np_iou_paired
from weaktube.evaluate import (
    ap_interpolated,
    ap_raw_trapezoid,
    paired_box_iou,
    precision_recall,
    segment_iou,
    tube_iou,
)


def test_precision_recall_tp_fp_tp():
    p, r = precision_recall(np.array([True, False, True]), num_gt=2)
    np.testing.assert_allclose(p, [1.0, 0.5, 2 / 3])
    np.testing.assert_allclose(r, [0.5, 0.5, 1.0])


def test_raw_trapezoid_hand_value():
    # Curve (r, p): (0, 1) start, (0.5, 1), (0.5, 0.5), (1, 2/3).
    # Trapezoids: 0.5 * (1 + 1) / 2 = 0.5; 0; 0.5 * (0.5 + 2/3) / 2 = 0.291666...
    p, r = precision_recall(np.array([True, False, True]), num_gt=2)
    assert ap_raw_trapezoid(p, r) == pytest.approx(0.5 + 0.5 * (0.5 + 2 / 3) / 2)


def test_raw_trapezoid_starts_at_precision_one():
    # A first FP: (0, 1) -> (0, 0) adds nothing, then (0.5, 0.5): 0.5 * (0.5 + 0) / 2 = 0.125.
    p, r = precision_recall(np.array([False, True]), num_gt=2)
    assert ap_raw_trapezoid(p, r) == pytest.approx(0.125)


def test_interpolated_hand_value():
    # Envelope of precisions [1, 0.5, 2/3] is [1, 2/3, 2/3]; recall steps 0->0.5 and 0.5->1:
    # 0.5 * 1 + 0.5 * 2/3 = 0.8333...
    p, r = precision_recall(np.array([True, False, True]), num_gt=2)
    assert ap_interpolated(p, r) == pytest.approx(0.5 + 0.5 * 2 / 3)


def test_empty_curves_give_zero():
    p, r = precision_recall(np.zeros(0, bool), num_gt=3)
    assert ap_raw_trapezoid(p, r) == 0.0
    assert ap_interpolated(p, r) == 0.0


def test_all_false_positives_give_zero():
    p, r = precision_recall(np.zeros(4, bool), num_gt=3)
    assert ap_raw_trapezoid(p, r) == 0.0
    assert ap_interpolated(p, r) == 0.0


@pytest.mark.parametrize("plus_one", [False, True])
def test_paired_box_iou_matches_weaktube_boxes(plus_one):
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 50, (200, 2))
    a = np.concatenate([a, a + rng.uniform(0, 30, (200, 2))], axis=1)
    b = a + rng.uniform(-10, 10, a.shape)
    np.testing.assert_allclose(paired_box_iou(a, b, plus_one), np_iou_paired(a, b, plus_one),
                               rtol=0, atol=1e-12)


def test_plus_one_moves_iou_across_half():
    gt = np.array([[0, 0, 9, 9]], float)
    det = np.array([[0, 0, 9, 4]], float)
    # continuous: 9*4 / 9*9 = 0.444...; +1 pixel: 10*5 / 10*10 = 0.5
    assert paired_box_iou(det, gt, plus_one=False)[0] == pytest.approx(4 / 9)
    assert paired_box_iou(det, gt, plus_one=True)[0] == 0.5


def test_tube_iou_one_common_frame():
    box = [0, 0, 9, 9]
    # frames 0..9 and 9..18: one common frame, hull 0..18 = 19 frames -> 1/19
    assert tube_iou(0, np.tile(box, (10, 1)), 9, np.tile(box, (10, 1))) == pytest.approx(1 / 19)
    # frames 0..9 and 10..19: none in common
    assert tube_iou(0, np.tile(box, (10, 1)), 10, np.tile(box, (10, 1))) == 0.0


def test_tube_iou_temporal_times_mean_spatial():
    gt = np.tile([0, 0, 9, 9], (10, 1))  # frames 0..9
    pred = np.tile([0, 0, 9, 4], (10, 1)).astype(float)  # frames 5..14
    pred[0] = [0, 0, 9, 9]  # frame 5: IoU 1; frames 6..9: IoU 0.5 (+1 pixel)
    # temporal 5/15; spatial mean over frames 5..9 = (1 + 4 * 0.5) / 5 = 0.6
    assert tube_iou(0, gt, 5, pred) == pytest.approx(5 / 15 * 0.6)
    assert tube_iou(0, gt, 5, pred, plus_one=False) == pytest.approx(5 / 15 * (1 + 4 * 4 / 9) / 5)


def test_segment_iou_continuous_seconds():
    v = segment_iou(np.array([10.0, 0.0, 5.0]), np.array([15.0, 1.0, 6.0]),
                    np.array([10.0, 2.0, 0.0]), np.array([20.0, 3.0, 10.0]))
    np.testing.assert_allclose(v, [0.5, 0.0, 0.1])
    assert not math.isnan(segment_iou(np.array([1.0]), np.array([1.0]), np.array([1.0]),
                                      np.array([1.0]))[0])
