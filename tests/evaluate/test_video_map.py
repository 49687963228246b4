"""Video-mAP and 3D-NMS on hand-computed cases and against a loop reference."""

from __future__ import annotations

import math

import numpy as np
import pytest

from weaktube.evaluate import VIDEO_THRESHOLDS, nms_3d, video_ap
from weaktube.structures import AnnotationError

from .helpers import annotations, tube, tube_preds, video
from .reference import video_aps

BOX = [0, 0, 9, 9]
FAR = [50, 50, 59, 59]


def test_one_frame_temporal_overlap():
    gt = annotations(video("a", [tube(0, 0, BOX, 10)]))  # frames 0..9
    preds = tube_preds([("a", 0, 0.9, 9, BOX, 10)])  # frames 9..18: tube IoU 1/19 = 0.0526
    res = video_ap(gt, preds, thresholds=(0.05, 0.2))
    assert res[0.05].classes[0].ap == pytest.approx(1.0)  # TP, recall 1 at precision 1
    assert res[0.2].classes[0].ap == 0.0


def test_several_tubes_in_a_video():
    # Video 'a' has two 'run' tubes (A at BOX, B at FAR, frames 0..9); 'b' has none.
    gt = annotations(video("a", [tube(0, 0, BOX, 10), tube(0, 0, FAR, 10)]), video("b"))
    preds = tube_preds([
        ("a", 0, 0.9, 0, FAR, 10),  # takes B
        ("a", 0, 0.8, 0, BOX, 10),  # takes A
        ("a", 0, 0.7, 0, BOX, 10),  # duplicate of A -> FP
    ])
    r = video_ap(gt, preds, thresholds=(0.5,))[0.5]
    # T, T, F with 2 GT: 0.5 * (1 + 1) / 2 + 0.5 * (1 + 1) / 2 + 0 (recall unchanged) = 1.0
    assert r.classes[0].num_tp == 2
    assert r.classes[0].ap == pytest.approx(1.0)
    # A false positive first (tube in 'b') changes the curve: F, T, T, F:
    # (0,1)->(0,0): 0; ->(0.5, 0.5): 0.5 * 0.5 / 2 = 0.125; ->(1, 2/3): 0.5 * (0.5 + 2/3) / 2
    preds2 = tube_preds([("b", 0, 0.95, 0, BOX, 10), ("a", 0, 0.9, 0, FAR, 10),
                         ("a", 0, 0.8, 0, BOX, 10), ("a", 0, 0.7, 0, BOX, 10)])
    r2 = video_ap(gt, preds2, thresholds=(0.5,))[0.5]
    assert r2.classes[0].ap == pytest.approx(0.125 + 0.5 * (0.5 + 2 / 3) / 2)


def test_temporal_and_spatial_parts_and_thresholds():
    gt = annotations(video("a", [tube(0, 0, BOX, 10)]))
    # frames 5..14 with box [0,0,9,4]: temporal 5/15, spatial 0.5 (+1 pixel) -> 1/6 = 0.1667
    preds = tube_preds([("a", 0, 0.9, 5, [0, 0, 9, 4], 10)])
    res = video_ap(gt, preds, thresholds=(0.15, 0.2))
    assert res[0.15].classes[0].ap == pytest.approx(1.0)
    assert res[0.2].classes[0].ap == 0.0


def test_wrong_class_and_unknown_video():
    gt = annotations(video("a", [tube(0, 0, BOX, 10), tube(1, 0, FAR, 10)]))
    preds = tube_preds([("a", 1, 0.9, 0, BOX, 10), ("x", 0, 0.9, 0, BOX, 10),
                        ("a", 0, 0.5, 0, BOX, 10)])
    r = video_ap(gt, preds, thresholds=(0.5,))[0.5]
    assert r.classes[0].ap == pytest.approx(1.0)  # the 'x' tube is ignored, not a FP
    assert r.classes[1].ap == 0.0  # a 'jump' tube at the 'run' place: FP, jump never found
    assert math.isnan(r.classes[2].ap)
    assert r.mean_ap == pytest.approx(0.5)
    assert r.ignored == {"unknown_video": 1}


def test_empty_predictions():
    gt = annotations(video("a", [tube(0, 0, BOX, 10)]))
    res = video_ap(gt, tube_preds([]))
    assert set(res) == set(VIDEO_THRESHOLDS)
    assert all(r.mean_ap == 0.0 for r in res.values())


def test_nms_3d_suppresses_above_threshold_only():
    preds = tube_preds([
        ("a", 0, 0.5, 0, BOX, 10),  # 0: frames 0..9
        ("a", 0, 0.9, 0, BOX, 10),  # 1: identical, higher score -> kept, suppresses 0
        ("a", 0, 0.8, 7, BOX, 3),   # 2: frames 7..9, tube IoU with 1 = 3/10 = 0.3: not > 0.3
        ("a", 1, 0.7, 0, BOX, 10),  # 3: other class: never suppressed by class 0
        ("b", 0, 0.6, 0, BOX, 10),  # 4: other video
        ("a", 0, 0.85, 6, BOX, 4),  # 5: frames 6..9: IoU 0.4 with 1 -> suppressed
    ])
    np.testing.assert_array_equal(nms_3d(preds, 0.3), [1, 2, 3, 4])


def test_nms_option_changes_ap():
    gt = annotations(video("a", [tube(0, 0, BOX, 10), tube(0, 0, [2, 0, 11, 9], 10)]))
    # Two predictions on the two (overlapping: IoU 0.667) ground-truth tubes.
    preds = tube_preds([("a", 0, 0.9, 0, BOX, 10), ("a", 0, 0.8, 0, [2, 0, 11, 9], 10)])
    assert video_ap(gt, preds, (0.5,))[0.5].classes[0].ap == pytest.approx(1.0)
    # NMS at 0.3 removes the second (tube IoU 0.667 > 0.3): recall 0.5 -> AP 0.5
    assert video_ap(gt, preds, (0.5,), nms_threshold=0.3)[0.5].classes[0].ap == pytest.approx(0.5)


def test_bad_tube_label():
    gt = annotations(video("a", [tube(0, 0, BOX, 10)]))
    with pytest.raises(AnnotationError, match="label 5") as e:
        video_ap(gt, tube_preds([("a", 5, 0.9, 0, BOX, 3)]))
    assert e.value.tube == 0 and e.value.field == "label"


def test_nan_box_and_negative_start_are_named():
    """A tube with a NaN box would overlap nothing and 3D-NMS would never suppress it: a silent
    false positive. It is named, as is a negative start frame."""
    gt = annotations(video("a", [tube(0, 0, BOX, 10)]))
    boxes = np.tile(np.asarray(BOX, np.float64), (3, 1))
    boxes[1, 2] = np.nan
    with pytest.raises(AnnotationError, match=r"tube 1, frame 5, field 'boxes'.*not finite"):
        video_ap(gt, tube_preds([("a", 0, 0.9, 0, BOX, 3), ("a", 0, 0.8, 4, boxes, 3)]))
    with pytest.raises(AnnotationError, match="start_frame.*negative"):
        video_ap(gt, tube_preds([("a", 0, 0.9, -1, BOX, 3)]))


def random_case(seed: int):
    rng = np.random.default_rng(seed)
    vids, gt_rows = [], []
    for v in range(4):
        tubes = []
        for _ in range(int(rng.integers(1, 4))):
            start, n = int(rng.integers(0, 8)), int(rng.integers(3, 10))
            t = tube(int(rng.integers(3)), start, [0, 0, 1, 1], n)
            xy = rng.integers(0, 8, (n, 2))
            t.boxes[:] = np.concatenate([xy, xy + rng.integers(6, 11, (n, 2))], 1)
            tubes.append(t)
            gt_rows.append((f"v{v}", t))
        vids.append(video(f"v{v}", tubes, num_frames=20))
    rows = []
    for _ in range(40):
        name, t = gt_rows[int(rng.integers(len(gt_rows)))]
        start = max(0, t.start_frame + int(rng.integers(-3, 4)))
        n = int(rng.integers(2, 12))
        ref = t.boxes[np.clip(np.arange(start, start + n) - t.start_frame, 0, len(t.boxes) - 1)]
        label = t.label if rng.random() < 0.7 else int(rng.integers(3))
        rows.append((name if rng.random() < 0.9 else "v9", label,
                     float(rng.integers(1, 6)) / 10, start,
                     ref + rng.integers(-2, 3, ref.shape), n))
    return annotations(*vids), tube_preds(rows)


@pytest.mark.parametrize("seed", range(10))
def test_matches_loop_reference(seed):
    gt, preds = random_case(seed)
    res = video_ap(gt, preds, thresholds=(0.2, 0.5))
    for t in (0.2, 0.5):
        np.testing.assert_allclose([c.ap for c in res[t].classes], video_aps(gt, preds, t),
                                   rtol=0, atol=1e-12)
