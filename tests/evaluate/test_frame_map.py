"""Frame-mAP on hand-computed cases (ACT and YOWO profiles) and against a loop reference."""

from __future__ import annotations

import math

import numpy as np
import pytest

from weaktube.evaluate import ACT_PROTOCOL, frame_ap
from weaktube.evaluate.frame_map import FrameProtocol
from weaktube.structures import AnnotationError

from .helpers import annotations, detections, tube, video
from .reference import frame_aps

BOX = [0, 0, 9, 9]
FAR = [50, 50, 59, 59]


def gt_two_frames():
    """Video 'a': one 'run' tube (label 0) on frames 0 and 1; frames 2.. have no ground truth."""
    return annotations(video("a", [tube(0, 0, BOX, 2)]))


def aps(result):
    return [c.ap for c in result.classes]


def test_duplicate_is_false_positive():
    gt = gt_two_frames()
    det = detections([("a", 0, 0, 0.9, BOX), ("a", 0, 0, 0.8, BOX), ("a", 1, 0, 0.7, BOX)])
    act = frame_ap(gt, det, 0.5, "act")
    # flags T, F, T with 2 GT: trapezoid 0.5 + 0.5 * (0.5 + 2/3) / 2 = 0.791666...
    assert act.classes[0].num_tp == 2
    assert act.classes[0].ap == pytest.approx(0.5 + 0.5 * (0.5 + 2 / 3) / 2)
    # interpolated: 0.5 * 1 + 0.5 * 2/3 = 0.8333...
    assert frame_ap(gt, det, 0.5, "yowo").classes[0].ap == pytest.approx(0.5 + 0.5 * 2 / 3)


def test_classes_without_gt_are_nan_and_excluded_from_mean():
    gt = gt_two_frames()
    det = detections([("a", 0, 0, 0.9, BOX), ("a", 1, 0, 0.8, BOX), ("a", 0, 2, 0.9, BOX)])
    r = frame_ap(gt, det, 0.5, "act")
    # run: both frames found -> 1.0; jump, wave: no GT -> NaN, not averaged
    assert r.classes[0].ap == pytest.approx(1.0)
    assert math.isnan(r.classes[1].ap) and math.isnan(r.classes[2].ap)
    assert r.classes[2].num_scored == 1  # the 'wave' detection is scored, but has no GT
    assert r.mean_ap == pytest.approx(1.0)


def test_class_without_detections_counts_zero():
    gt = annotations(video("a", [tube(0, 0, BOX, 2)]), video("b", [tube(1, 0, BOX, 3)]))
    det = detections([("a", 0, 0, 0.9, BOX), ("a", 1, 0, 0.8, BOX)])
    r = frame_ap(gt, det, 0.5, "act")
    assert aps(r)[:2] == [pytest.approx(1.0), 0.0]
    assert r.mean_ap == pytest.approx(0.5)  # (1 + 0) / 2; 'wave' has no GT


def test_ties_keep_input_order():
    gt = gt_two_frames()
    miss, hit = ("a", 0, 0, 0.5, FAR), ("a", 0, 0, 0.5, BOX)
    # FP then TP: curve (0, 1) -> (0, 0) -> (0.5, 0.5): 0.5 * 0.5 / 2 = 0.125
    assert frame_ap(gt, detections([miss, hit]), 0.5, "act").classes[0].ap == pytest.approx(0.125)
    # TP then FP: (0, 1) -> (0.5, 1) -> (0.5, 0.5): 0.5 * (1 + 1) / 2 = 0.5
    assert frame_ap(gt, detections([hit, miss]), 0.5, "act").classes[0].ap == pytest.approx(0.5)


def test_detection_on_frame_without_gt_act_fp_yowo_ignored():
    gt = gt_two_frames()
    det = detections([("a", 3, 0, 0.9, BOX), ("a", 0, 0, 0.8, BOX)])
    act = frame_ap(gt, det, 0.5, "act")
    # ACT: FP then TP with 2 GT -> 0.125 (as in the tie test)
    assert act.classes[0].ap == pytest.approx(0.125)
    assert act.classes[0].num_scored == 2
    yowo = frame_ap(gt, det, 0.5, "yowo")
    # YOWO: frame 3 is not annotated -> ignored; one TP, recall 0.5 at precision 1 -> 0.5
    assert yowo.classes[0].ap == pytest.approx(0.5)
    assert yowo.classes[0].num_scored == 1
    assert yowo.ignored == {"unknown_video": 0, "unannotated_frame": 1}


def test_yowo_scores_other_class_on_annotated_frame():
    gt = annotations(video("a", [tube(0, 0, BOX, 2)]), video("b", [tube(1, 0, BOX, 1)]))
    # 'jump' detected on an annotated frame of 'a' (which only has 'run'): a FP under YOWO too.
    det = detections([("a", 0, 1, 0.9, BOX), ("b", 0, 1, 0.8, BOX)])
    r = frame_ap(gt, det, 0.5, "yowo")
    # jump: FP, TP with 1 GT -> precision [0, 0.5], recall [0, 1]; interpolated = 1 * 0.5
    assert r.classes[1].ap == pytest.approx(0.5)


def test_plus_one_changes_match_across_half():
    gt = gt_two_frames()
    det = detections([("a", 0, 0, 0.9, [0, 0, 9, 4])])  # IoU 0.5 (+1) / 0.444 (continuous)
    # +1 pixel: TP, recall 0.5 at precision 1 -> 0.5
    assert frame_ap(gt, det, 0.5, "act").classes[0].ap == pytest.approx(0.5)
    continuous = FrameProtocol("continuous", plus_one=False)
    assert frame_ap(gt, det, 0.5, continuous).classes[0].ap == 0.0


def test_act_takes_best_unmatched_voc_takes_best_overall():
    # Two 'run' boxes in frame 0: G1 = BOX, G2 = [0, 0, 9, 7] (IoU with BOX = 80/100 = 0.8).
    gt = annotations(video("a", [tube(0, 0, BOX, 1), tube(0, 0, [0, 0, 9, 7], 1)]))
    det = detections([("a", 0, 0, 0.9, BOX), ("a", 0, 0, 0.8, BOX)])
    # ACT: first takes G1, second takes the still-free G2 (0.8 >= 0.5): T, T -> AP 1
    assert frame_ap(gt, det, 0.5, "act").classes[0].ap == pytest.approx(1.0)
    # VOC/YOWO: second's best overall is G1, already taken -> FP: T, F -> 0.5
    assert frame_ap(gt, det, 0.5, "yowo").classes[0].ap == pytest.approx(0.5)


def test_empty_detections():
    gt = gt_two_frames()
    r = frame_ap(gt, detections([]), 0.5, "act")
    assert r.classes[0].ap == 0.0 and r.mean_ap == 0.0
    assert frame_ap(gt, detections([]), 0.5, "yowo").mean_ap == 0.0


def test_unknown_video_is_ignored_and_counted():
    gt = gt_two_frames()
    det = detections([("zzz", 0, 0, 0.99, BOX), ("a", 0, 0, 0.9, BOX), ("a", 1, 0, 0.8, BOX)])
    r = frame_ap(gt, det, 0.5, "act")
    assert r.classes[0].ap == pytest.approx(1.0)
    assert r.ignored["unknown_video"] == 1


def test_bad_label_names_detection():
    gt = gt_two_frames()
    with pytest.raises(AnnotationError, match=r"detection 1 label .*class index") as e:
        frame_ap(gt, detections([("a", 0, 0, 0.9, BOX), ("a", 0, 7, 0.9, BOX)]))
    assert e.value.field == "label" and e.value.video == "a"
    with pytest.raises(ValueError, match="unknown evaluation protocol"):
        frame_ap(gt, detections([]), 0.5, "voc")


def random_case(seed: int):
    """Jittered integer copies of crowded ground truth, few distinct scores: many ties,
    duplicates, competing ground truth and IoUs near the threshold."""
    rng = np.random.default_rng(seed)
    vids, gt_rows = [], []
    for v in range(3):
        tubes = []
        for _ in range(int(rng.integers(1, 5))):
            start, n = int(rng.integers(0, 4)), int(rng.integers(1, 5))
            xy = rng.integers(0, 6, (n, 2))
            t = tube(int(rng.integers(3)), start, [0, 0, 1, 1], n)
            t.boxes[:] = np.concatenate([xy, xy + rng.integers(6, 11, (n, 2))], 1)
            tubes.append(t)
            gt_rows += [(f"v{v}", start + i, t.label, t.boxes[i]) for i in range(n)]
        vids.append(video(f"v{v}", tubes, num_frames=10))
    rows = []
    for _ in range(60):
        name, frame, label, box = gt_rows[int(rng.integers(len(gt_rows)))]
        if rng.random() < 0.15:
            name = "v9"  # not in the ground truth
        if rng.random() < 0.2:
            frame = int(rng.integers(0, 9))  # often a frame without ground truth
        if rng.random() < 0.3:
            label = int(rng.integers(3))
        rows.append((name, frame, label, float(rng.integers(1, 6)) / 10,
                     np.asarray(box) + rng.integers(-2, 3, 4)))
    return annotations(*vids), detections(rows)


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("proto", ["act", "yowo"])
@pytest.mark.parametrize("thr", [0.3, 0.5])
def test_matches_loop_reference(seed, proto, thr):
    gt, det = random_case(seed)
    got = aps(frame_ap(gt, det, thr, proto))
    want = frame_aps(gt, det, thr, act=proto == "act")
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_act_protocol_fields():
    assert ACT_PROTOCOL.plus_one and ACT_PROTOCOL.score_unannotated_frames
    assert ACT_PROTOCOL.best_unmatched and not ACT_PROTOCOL.interpolated_ap


@pytest.mark.parametrize("stride", [2, 4, 8])
def test_detections_at_a_keyframe_stride_are_scored_on_the_keyframes(stride):
    """A perfect detector run on every n-th frame (and the last) scores 100 % once only the
    keyframes count; scored on every frame it got ~1/n (the frames it never ran on missed)."""
    from weaktube.structures import keyframe_indices

    gt = annotations(video("a", [tube(0, 0, BOX, 23)], num_frames=23),
                     video("b", [tube(1, 3, FAR, 10)], num_frames=30))
    rows = [("a", int(f), 0, 0.9, BOX) for f in keyframe_indices(23, stride)]
    rows += [("b", int(f), 1, 0.8, FAR) for f in keyframe_indices(30, stride) if 3 <= f < 13]
    rows += [("b", 5, 1, 0.7, FAR)] if stride > 1 and 5 % stride else []  # not a keyframe
    det = detections(rows)
    on_keys = frame_ap(gt, det, 0.5, "act", keyframe_stride=stride)
    assert aps(on_keys)[:2] == [pytest.approx(1.0), pytest.approx(1.0)]
    assert on_keys.ignored["not_a_keyframe"] == (1 if stride > 1 and 5 % stride else 0)
    every = frame_ap(gt, det, 0.5, "act")
    assert every.classes[0].ap < 0.6 and every.classes[0].num_gt == 23
    assert on_keys.classes[0].num_gt == len(keyframe_indices(23, stride))


def test_a_detection_past_the_last_frame_is_named():
    """Frames are 0-based: a detection on frame ``num_frames`` (a 1-based writer's last frame)
    is an error naming it, not a silent false positive."""
    gt = annotations(video("a", [tube(0, 0, BOX, 2)], num_frames=20))
    with pytest.raises(AnnotationError, match=r"video 'a', frame 20.*past the video's last "
                                              r"frame 19"):
        frame_ap(gt, detections([("a", 1, 0, 0.9, BOX), ("a", 20, 0, 0.8, BOX)]))
    frame_ap(gt, detections([("a", 19, 0, 0.8, BOX), ("zz", 99, 0, 0.8, BOX)]))  # unknown: ok
    # at a keyframe stride too (the off-keyframe filter must not drop it silently first)
    with pytest.raises(AnnotationError, match="past the video's last frame 19"):
        frame_ap(gt, detections([("a", 20, 0, 0.8, BOX)]), keyframe_stride=4)
    with pytest.raises(ValueError, match="keyframe_stride must be >= 1"):
        frame_ap(gt, detections([("a", 1, 0, 0.8, BOX)]), keyframe_stride=0)
