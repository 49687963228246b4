"""Temporal mAP (ActivityNet protocol, THUMOS14 ambiguous rule) and the paper's eq. 23."""

from __future__ import annotations

import math

import numpy as np
import pytest

from weaktube.evaluate import (
    ACTIVITYNET_THRESHOLDS,
    TEMPORAL_THRESHOLDS,
    THUMOS14_THRESHOLDS,
    paper_eq23_frame_ap,
    temporal_ap,
)
from weaktube.structures import AnnotationError

from .helpers import annotations, seg, segment_preds, video
from .reference import temporal_aps


def test_threshold_lists():
    assert THUMOS14_THRESHOLDS == (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
    assert ACTIVITYNET_THRESHOLDS == (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)
    assert len(TEMPORAL_THRESHOLDS) == 14


def test_tiou_exactly_on_threshold_matches():
    gt = annotations(video("a", segments=[seg(0, 10.0, 20.0)], num_frames=300))
    preds = segment_preds([("a", 0, 0.9, 10.0, 15.0)])  # tIoU 5 / 10 = 0.5 exactly
    res = temporal_ap(gt, preds, thresholds=(0.5, 0.55))
    assert res[0.5].classes[0].ap == 1.0
    assert res[0.55].classes[0].ap == 0.0


def test_tiou_equal_to_threshold_up_to_float_rounding_matches():
    # [3.6, 4.3] in [3.3, 4.3]: tIoU 0.7 exactly, computed as 0.6999999999999997 in floats.
    gt = annotations(video("a", segments=[seg(0, 3.3, 4.3)]))
    res = temporal_ap(gt, segment_preds([("a", 0, 0.9, 3.6, 4.3)]), thresholds=(0.7,))
    assert res[0.7].classes[0].ap == 1.0


def test_interpolated_ap_duplicates_and_no_gt_classes():
    gt = annotations(video("a", segments=[seg(0, 0.0, 1.0), seg(0, 5.0, 6.0)], num_frames=100),
                     video("b", segments=[seg(1, 0.0, 1.0)], num_frames=100))
    preds = segment_preds([
        ("a", 0, 0.9, 0.0, 1.0),   # TP
        ("a", 0, 0.8, 0.0, 1.0),   # duplicate: FP
        ("a", 0, 0.7, 5.0, 6.0),   # TP
        ("b", 2, 0.9, 0.0, 1.0),   # class 2 has no GT: NaN, excluded
    ])
    r = temporal_ap(gt, preds, thresholds=(0.5,))[0.5]
    # class 0: T, F, T of 2 -> envelope 0.5 * 1 + 0.5 * 2/3 = 0.8333; class 1: no predictions, 0
    assert r.classes[0].ap == pytest.approx(0.5 + 0.5 * 2 / 3)
    assert r.classes[1].ap == 0.0
    assert math.isnan(r.classes[2].ap)
    assert r.mean_ap == pytest.approx((0.5 + 0.5 * 2 / 3) / 2)


def test_best_unmatched_segment_is_taken():
    # Two GT of class 0 in 'a': [0, 10] and [2, 10]. P1 [0, 10] takes the first (tIoU 1);
    # P2 [0, 10] has tIoU 0.8 with the still-free second: TP (ActivityNet's rule).
    gt = annotations(video("a", segments=[seg(0, 0.0, 10.0), seg(0, 2.0, 10.0)],
                           num_frames=200))
    preds = segment_preds([("a", 0, 0.9, 0.0, 10.0), ("a", 0, 0.8, 0.0, 10.0)])
    assert temporal_ap(gt, preds, (0.5,))[0.5].classes[0].ap == 1.0


def test_ambiguous_overlap_ignored_or_false_positive():
    gt = annotations(video("a", segments=[seg(0, 10.0, 20.0), seg(1, 30.0, 40.0, True)],
                           num_frames=500))
    preds = segment_preds([
        ("a", 0, 0.9, 31.0, 35.0),  # unmatched, overlaps the ambiguous segment
        ("a", 0, 0.8, 10.0, 20.0),  # TP
    ])
    r = temporal_ap(gt, preds, thresholds=(0.5,))[0.5]
    # ignored: only the TP is left -> AP 1
    assert r.classes[0].ap == 1.0
    assert r.ignored["ambiguous_overlap"] == 1
    assert r.classes[1].num_gt == 0  # ambiguous segments are not ground truth
    # kept as FP: F, T of 1 -> precision [0, 0.5] at recall [0, 1] -> 0.5
    r2 = temporal_ap(gt, preds, thresholds=(0.5,), ignore_ambiguous=False)[0.5]
    assert r2.classes[0].ap == 0.5


def test_matched_prediction_overlapping_ambiguous_stays_tp():
    gt = annotations(video("a", segments=[seg(0, 10.0, 20.0), seg(0, 15.0, 25.0, True)],
                           num_frames=500))
    r = temporal_ap(gt, segment_preds([("a", 0, 0.9, 10.0, 20.0)]), (0.5,))[0.5]
    assert r.classes[0].num_tp == 1 and r.ignored["ambiguous_overlap"] == 0


def test_prediction_touching_ambiguous_is_not_overlap():
    gt = annotations(video("a", segments=[seg(0, 10.0, 20.0), seg(0, 30.0, 40.0, True)],
                           num_frames=500))
    r = temporal_ap(gt, segment_preds([("a", 0, 0.9, 25.0, 30.0)]), (0.5,))[0.5]
    assert r.ignored["ambiguous_overlap"] == 0 and r.classes[0].num_scored == 1


def test_empty_and_unknown_video():
    gt = annotations(video("a", segments=[seg(0, 0.0, 1.0)]))
    assert temporal_ap(gt, segment_preds([]))[0.5].mean_ap == 0.0
    r = temporal_ap(gt, segment_preds([("zz", 0, 0.9, 0.0, 1.0)]), (0.5,))[0.5]
    assert r.ignored["unknown_video"] == 1 and r.classes[0].num_scored == 0


def test_bad_segment_prediction():
    gt = annotations(video("a", segments=[seg(0, 0.0, 1.0)]))
    with pytest.raises(AnnotationError, match="start < end") as e:
        temporal_ap(gt, segment_preds([("a", 0, 0.9, 0.0, 1.0), ("a", 0, 0.9, 2.0, 2.0)]))
    assert e.value.field == "end" and "segment 1" in str(e.value)


def random_case(seed: int):
    rng = np.random.default_rng(seed)
    vids, gt_rows = [], []
    for v in range(4):
        segs = []
        for _ in range(int(rng.integers(1, 5))):
            a = float(rng.integers(0, 40))
            segs.append(seg(int(rng.integers(3)), a, a + float(rng.integers(2, 10)),
                            ambiguous=bool(rng.random() < 0.15)))
            gt_rows.append((f"v{v}", segs[-1]))
        vids.append(video(f"v{v}", segments=segs, num_frames=600))
    rows = []
    for _ in range(50):
        name, s = gt_rows[int(rng.integers(len(gt_rows)))]
        a = s.start + float(rng.integers(-4, 5)) / 2
        b = max(a + 0.5, s.end + float(rng.integers(-4, 5)) / 2)
        label = s.label if rng.random() < 0.7 else int(rng.integers(3))
        rows.append((name if rng.random() < 0.9 else "v9", label,
                     float(rng.integers(1, 6)) / 10, a, b))
    return annotations(*vids), segment_preds(rows)


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("ignore_ambiguous", [True, False])
def test_matches_loop_reference(seed, ignore_ambiguous):
    gt, preds = random_case(seed)
    res = temporal_ap(gt, preds, (0.3, 0.5, 0.7), ignore_ambiguous)
    for t in (0.3, 0.5, 0.7):
        np.testing.assert_allclose([c.ap for c in res[t].classes],
                                   temporal_aps(gt, preds, t, ignore_ambiguous),
                                   rtol=0, atol=1e-12)


# ------------------------------------------------------------------------- paper's eq. 23
def test_paper_eq23_is_frame_recall():
    # 10 fps, 20 frames. GT run [0.5, 1.5) s -> frames 5..14 (10 frames); an ambiguous segment
    # and a wave segment do not count for run.
    gt = annotations(video("a", segments=[seg(0, 0.5, 1.5), seg(0, 1.6, 1.9, True),
                                          seg(2, 0.0, 0.4)], num_frames=20, fps=10.0))
    preds = segment_preds([
        ("a", 0, 0.9, 1.0, 2.0),  # run frames 10..19: covers 10..14 -> 5 of 10
        ("a", 0, 0.1, 0.0, 1.0),  # below the threshold used below
        ("a", 1, 0.9, 0.0, 2.0),  # jump has no GT frames: excluded
    ])
    r = paper_eq23_frame_ap(gt, preds, score_threshold=0.5)
    assert (r.classes[0].gt_frames, r.classes[0].covered_frames) == (10, 5)
    assert r.classes[0].value == 0.5
    assert math.isnan(r.classes[1].value)
    assert r.classes[2].value == 0.0  # wave: frames 0..3, never predicted
    assert r.mean == pytest.approx(0.25)  # (0.5 + 0) / 2
    # Threshold 0: the low-score run [0, 1) adds frames 5..9 -> 10 of 10
    assert paper_eq23_frame_ap(gt, preds).classes[0].value == 1.0


def test_paper_eq23_ignores_false_positives():
    # Predicting every class over the whole video scores 100 %: it is a recall, not an AP.
    gt = annotations(video("a", segments=[seg(0, 0.5, 1.5), seg(2, 0.0, 0.4)], num_frames=20))
    preds = segment_preds([("a", c, 0.5, 0.0, 2.0) for c in range(3)])
    assert paper_eq23_frame_ap(gt, preds).mean == 1.0
    assert temporal_ap(gt, preds, (0.5,))[0.5].mean_ap < 1.0
