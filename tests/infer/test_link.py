"""Linking per-frame detections into tubes: hand-built scenes with known answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from weaktube.boxes import np_iou_paired
from weaktube.evaluate import temporal_ap, video_ap
from weaktube.infer.link import (
    LinkConfig,
    greedy_assign,
    link_candidates,
    link_tubes,
)
from weaktube.infer.temporal import segments_from_tubes
from weaktube.structures import (
    AnnotationError,
    AnnotationSet,
    Detections,
    Segment,
    Tube,
    TubePredictions,
    VideoRecord,
)

METHODS = ("greedy", "viterbi")


# --------------------------------------------------------------------------------- builders
def moving(x0: float, y0: float, dx: float, dy: float, n: int, w: float = 40.0,
           h: float = 80.0) -> np.ndarray:
    """``[n, 4]`` boxes of a ``w x h`` person whose corner moves by (dx, dy) per frame."""
    t = np.arange(n, dtype=np.float64)[:, None]
    corner = np.array([x0, y0]) + t * np.array([dx, dy])  # [n, 2]
    return np.concatenate([corner, corner + [w, h]], axis=1)


def dets_of(rows: list[tuple[str, int, int, float, np.ndarray]]) -> Detections:
    """rows: (video, frame, label, score, box [4])"""
    if not rows:
        return Detections.empty()
    v, f, c, s, b = zip(*rows, strict=True)
    return Detections(np.array(v, object), np.array(f, np.int64), np.array(c, np.int64),
                      np.array(s, np.float32), np.array(b, np.float32))


def track(video: str, label: int, start: int, boxes: np.ndarray, scores,
          skip: tuple[int, ...] = ()) -> list:
    """Detection rows of one actor: ``boxes[i]`` in frame ``start + i`` (frames in ``skip``
    left out)."""
    scores = np.broadcast_to(np.asarray(scores, np.float64), (len(boxes),))
    return [(video, start + i, label, float(scores[i]), boxes[i]) for i in range(len(boxes))
            if start + i not in skip]


def as_list(tubes: TubePredictions) -> list[tuple[str, int, int, int]]:
    """(video, label, start_frame, length) of every tube, sorted."""
    return sorted((str(v), int(c), int(f), len(b)) for v, c, f, b in
                  zip(tubes.videos, tubes.labels, tubes.start_frames, tubes.boxes))


def find(tubes: TubePredictions, label: int, start: int) -> int:
    hits = [i for i in range(len(tubes)) if tubes.labels[i] == label
            and tubes.start_frames[i] == start]
    assert len(hits) == 1, as_list(tubes)
    return hits[0]


# ------------------------------------------------------------------------- greedy_assign
def sequential_assign(gain: np.ndarray) -> np.ndarray:
    """Reference: row by row, the best still-free finite column (lowest index on ties)."""
    free = np.ones(gain.shape[1], dtype=bool)
    out = np.full(gain.shape[0], -1)
    for r in range(gain.shape[0]):
        best, col = -np.inf, -1
        for c in range(gain.shape[1]):
            if free[c] and gain[r, c] > best:
                best, col = gain[r, c], c
        if col >= 0:
            out[r], free[col] = col, False
    return out


def test_greedy_assign_known_answer():
    inf = np.inf
    gain = np.array([[0.9, 0.8, -inf],   # row 0 first: takes column 0
                     [1.0, 0.5, 0.1],    # wants 0 (taken) -> 1
                     [0.2, 0.3, -inf],   # wants 1 (taken), 0 taken, 2 forbidden -> none
                     [-inf, -inf, 0.0]])  # only column 2
    assert greedy_assign(gain).tolist() == [0, 1, -1, 2]


def test_greedy_assign_equals_sequential_reference():
    rng = np.random.default_rng(0)
    for _ in range(300):
        a, m = rng.integers(0, 7, size=2)
        gain = rng.integers(0, 4, size=(a, m)).astype(np.float64)  # many ties
        gain[rng.random((a, m)) < 0.3] = -np.inf
        assert greedy_assign(gain).tolist() == sequential_assign(gain).tolist()


# ---------------------------------------------------------------------- link candidates
def test_link_candidates_known_pairs():
    frames = np.array([0, 1, 1, 2, 6])
    labels = np.array([0, 0, 1, 0, 0])
    boxes = np.array([[0, 0, 10, 10],  # 0
                      [0, 0, 10, 10],  # 1: IoU 1 with row 0
                      [0, 0, 10, 10],  # 2: other class, never linked to class 0
                      [5, 0, 15, 10],  # 3: IoU 50 / 150 = 1/3 with rows 0 and 1
                      [0, 0, 10, 10]],  # 4: 4 frames after row 3 > max_gap + 1 = 3
                     np.float64)
    src, dst, iou = link_candidates(frames, labels, boxes, LinkConfig(max_gap=2))
    assert list(zip(src.tolist(), dst.tolist())) == [(0, 1), (0, 3), (1, 3)]
    np.testing.assert_allclose(iou, [1.0, 1 / 3, 1 / 3])
    # IoU 1/3 fails a 0.34 gate; max_gap 0 drops the frame-0 -> frame-2 pair.
    src, dst, _ = link_candidates(frames, labels, boxes, LinkConfig(iou_threshold=0.34))
    assert list(zip(src.tolist(), dst.tolist())) == [(0, 1)]
    src, dst, _ = link_candidates(frames, labels, boxes, LinkConfig(max_gap=0))
    assert list(zip(src.tolist(), dst.tolist())) == [(0, 1), (1, 3)]


# --------------------------------------------------------------------------------- scenes
@pytest.mark.parametrize("method", METHODS)
def test_two_people_of_different_classes_crossing(method):
    # A (class 0) walks right, B (class 1) walks left; at frame 10 their boxes coincide.
    a = moving(0, 50, 10, 0, 21)
    b = moving(200, 50, -10, 0, 21)
    dets = dets_of(track("v", 0, 0, a, 0.9) + track("v", 1, 0, b, 0.8))
    tubes = link_tubes(dets, LinkConfig(method=method), num_classes=2)
    assert as_list(tubes) == [("v", 0, 0, 21), ("v", 1, 0, 21)]
    np.testing.assert_allclose(tubes.boxes[find(tubes, 0, 0)], a)
    np.testing.assert_allclose(tubes.boxes[find(tubes, 1, 0)], b)
    np.testing.assert_allclose(tubes.scores[find(tubes, 0, 0)], 0.9, rtol=1e-6)


def side_by_side() -> tuple[np.ndarray, np.ndarray, Detections]:
    """Two 40 x 80 people of class 0, 16 px apart (IoU 24 / 56 = 0.43 in every frame), walking
    right by 2 px a frame; scores alternate so that on even frames A scores higher and on odd
    frames B does."""
    n = 20
    a = moving(0, 0, 2, 0, n)
    b = moving(16, 0, 2, 0, n)
    even = np.arange(n) % 2 == 0
    sa = np.where(even, 0.9, 0.6)
    sb = np.where(even, 0.6, 0.8)
    return a, b, dets_of(track("v", 0, 0, a, sa) + track("v", 0, 0, b, sb))


@pytest.mark.parametrize("method", METHODS)
def test_overlapping_same_class_tubes_kept_apart(method):
    a, b, dets = side_by_side()
    np.testing.assert_allclose(np_iou_paired(a, b), 24 / 56)
    # Own box in the next frame: IoU 38 / 42 = 0.905; the other person's: 22 / 58 or 26 / 54,
    # both above the 0.3 gate. Score + IoU keeps each tube on its person (a 0.3 score lead is
    # less than the >= 0.42 IoU lead); the Viterbi path does the same over the whole video.
    tubes = link_tubes(dets, LinkConfig(method=method))
    assert as_list(tubes) == [("v", 0, 0, 20), ("v", 0, 0, 20)]
    got = sorted((tb[0, 0], i) for i, tb in enumerate(tubes.boxes))
    np.testing.assert_allclose(tubes.boxes[got[0][1]], a)
    np.testing.assert_allclose(tubes.boxes[got[1][1]], b)
    # Each keeps its own person's scores: A = (0.9 + 0.6) / 2, B = (0.6 + 0.8) / 2.
    np.testing.assert_allclose(tubes.scores[got[0][1]], 0.75, rtol=1e-6)
    np.testing.assert_allclose(tubes.scores[got[1][1]], 0.70, rtol=1e-6)


def test_score_only_greedy_swaps_identities():
    # Without the IoU term (iou_weight 0) the best tube jumps to whichever box scores higher:
    # the gate (IoU 0.43 >= 0.3) lets it, so neither tube follows one person.
    a, b, dets = side_by_side()
    tubes = link_tubes(dets, LinkConfig(iou_weight=0.0))
    for tb in tubes.boxes:
        assert not (np.allclose(tb, a[: len(tb)]) or np.allclose(tb, b[: len(tb)]))


def test_greedy_best_tube_chooses_first():
    # Frame 0: A (0.9) and B (0.4) overlap (IoU 30 / 50 = 0.6); frame 1 has one box, identical
    # to B's. Gains: A -> 0.8 + 0.6 = 1.4, B -> 0.8 + 1.0 = 1.8, but A scores higher and
    # chooses first (ACT's order), so A takes it and B ends after one frame.
    a0, b0 = np.array([0.0, 0, 40, 80]), np.array([10.0, 0, 50, 80])
    dets = dets_of([("v", 0, 0, 0.9, a0), ("v", 0, 0, 0.4, b0), ("v", 1, 0, 0.8, b0)])
    tubes = link_tubes(dets, LinkConfig(trim=False, min_length=1))
    assert as_list(tubes) == [("v", 0, 0, 1), ("v", 0, 0, 2)]
    two = int(np.argmax(tubes.lengths))
    np.testing.assert_allclose(tubes.boxes[two], [a0, b0])
    assert tubes.scores[two] == pytest.approx(0.85)
    assert tubes.scores[1 - two] == pytest.approx(0.4)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("max_gap", [0, 1])
def test_one_frame_miss(method, max_gap):
    boxes = moving(10, 20, 4, 2, 20)
    dets = dets_of(track("v", 0, 0, boxes, 0.9, skip=(10,)))
    # Without filling, the hole splits the tube (max_gap 0 also ends it there).
    split = link_tubes(dets, LinkConfig(method=method, max_gap=max_gap, min_length=1))
    assert as_list(split) == [("v", 0, 0, 10), ("v", 0, 11, 9)]
    np.testing.assert_allclose(split.boxes[find(split, 0, 11)], boxes[11:])
    filled = link_tubes(dets, LinkConfig(method=method, max_gap=max_gap, fill_gaps=True,
                                         min_length=1))
    if max_gap == 0:  # the tube ended: nothing to fill
        assert as_list(filled) == as_list(split)
        return
    assert as_list(filled) == [("v", 0, 0, 20)]
    # Frame 10 is the mean of frames 9 and 11: corner (10 + 4 * 10, 20 + 2 * 10) = (50, 40).
    np.testing.assert_allclose(filled.boxes[0][10], [50, 40, 90, 120])
    np.testing.assert_allclose(filled.boxes[0], boxes)
    assert filled.scores[0] == pytest.approx(0.9)  # the filled frame has no score of its own


@pytest.mark.parametrize("method", METHODS)
def test_keyframe_stride_with_interpolation(method):
    # Detections only every 4th frame (detect --keyframe-stride 4): max_gap 3 + fill_gaps
    # gives one tube with interpolated boxes in between.
    boxes = moving(0, 0, 1, 1, 17)
    rows = [r for r in track("v", 0, 0, boxes, 0.8) if r[1] % 4 == 0]
    tubes = link_tubes(dets_of(rows), LinkConfig(method=method, max_gap=3, fill_gaps=True))
    assert as_list(tubes) == [("v", 0, 0, 17)]
    np.testing.assert_allclose(tubes.boxes[0], boxes)
    # Without filling every keyframe is its own 1-frame piece, all shorter than min_length.
    assert len(link_tubes(dets_of(rows), LinkConfig(method=method, max_gap=3))) == 0


@pytest.mark.parametrize("method", METHODS)
def test_trimming_tube_that_starts_late_and_ends_early(method):
    # The person is detected for 40 frames but the class score is high only on 10..29.
    boxes = moving(0, 0, 1, 0, 40)
    scores = np.full(40, 0.05)
    scores[10:30] = 0.8
    dets = dets_of(track("v", 0, 0, boxes, scores))
    cfg = LinkConfig(method=method, start_threshold=0.01)  # let the weak frames start a tube
    # trim_threshold 0.2, penalty 1: each weak end costs 10 * 0.15 = 1.5 > 1 -> cut off.
    tubes = link_tubes(dets, cfg)
    assert as_list(tubes) == [("v", 0, 10, 20)]
    np.testing.assert_allclose(tubes.boxes[0], boxes[10:30])
    assert tubes.scores[0] == pytest.approx(0.8)
    untrimmed = link_tubes(dets, LinkConfig(method=method, start_threshold=0.01, trim=False))
    assert as_list(untrimmed) == [("v", 0, 0, 40)]
    assert untrimmed.scores[0] == pytest.approx((20 * 0.8 + 20 * 0.05) / 40)
    # A short dip inside (3 frames: 3 * 0.15 = 0.45 < 2 switches = 2) is not cut.
    scores[18:21] = 0.05
    tubes = link_tubes(dets_of(track("v", 0, 0, boxes, scores)), cfg)
    assert as_list(tubes) == [("v", 0, 10, 20)]
    # A 10-frame pause inside (10 * 0.15 = 1.5 < 2 switches) is kept; a 14-frame one
    # (2.1 > 2) is cut and both sides become tubes.
    for pause, expected in ((10, [("v", 0, 10, 35)]),
                            (14, [("v", 0, 10, 15), ("v", 0, 39, 10)])):
        n = 25 + pause + 20
        scores = np.full(n, 0.05)
        scores[10:25] = 0.8
        scores[25 + pause : n - 10] = 0.8
        tubes = link_tubes(dets_of(track("v", 0, 0, moving(0, 0, 1, 0, n), scores)), cfg)
        assert as_list(tubes) == expected


def clutter(rng: np.random.Generator, video: str, n_frames: int, per_frame: int,
            num_classes: int) -> list:
    """Low-score (< 0.15) random boxes: below start_threshold and trim_threshold."""
    rows = []
    for f in range(n_frames):
        for _ in range(per_frame):
            xy = rng.uniform(0, 300, 2)
            wh = rng.uniform(10, 100, 2)
            rows.append((video, f, int(rng.integers(num_classes)), float(rng.uniform(0.01, 0.15)),
                         np.concatenate([xy, xy + wh])))
    return rows


@pytest.mark.parametrize("method", METHODS)
def test_both_linkers_recover_the_obvious_tubes(method):
    rng = np.random.default_rng(1)
    people = [(0, 0, moving(10, 10, 3, 0, 30)), (0, 12, moving(200, 150, -2, -1, 25)),
              (2, 5, moving(120, 40, 0, 2, 20))]
    rows = clutter(rng, "v", 40, 6, 3)
    for label, start, boxes in people:
        rows += track("v", label, start, boxes, rng.uniform(0.6, 0.95, len(boxes)))
    rows += track("w", 1, 3, moving(50, 50, 1, 1, 12), 0.7)  # another video, same place
    tubes = link_tubes(dets_of(rows), LinkConfig(method=method), num_classes=3)
    assert as_list(tubes) == [("v", 0, 0, 30), ("v", 0, 12, 25), ("v", 2, 5, 20),
                              ("w", 1, 3, 12)]
    for label, start, boxes in people:
        np.testing.assert_allclose(tubes.boxes[find(tubes, label, start)], boxes, rtol=1e-6)
    # Sorted by video, label, descending score.
    assert [str(v) for v in tubes.videos] == ["v", "v", "v", "w"]


def test_linkers_agree_on_a_busy_scene():
    rng = np.random.default_rng(2)
    rows = clutter(rng, "v", 50, 10, 2)
    for k in range(4):
        start = int(rng.integers(0, 20))
        n = int(rng.integers(15, 30))
        rows += track("v", k % 2, start, moving(k * 70, 20, 1, 1, n), rng.uniform(0.5, 1, n))
    dets = dets_of(rows)
    greedy = link_tubes(dets, LinkConfig(method="greedy"))
    viterbi = link_tubes(dets, LinkConfig(method="viterbi"))
    assert len(greedy) == 4
    assert as_list(greedy) == as_list(viterbi)


@pytest.mark.parametrize("method", METHODS)
def test_perfect_detections_give_video_map_100(method):
    fps = 25.0
    gt_tubes = {"a": [Tube(0, 0, moving(0, 0, 2, 1, 30)), Tube(1, 5, moving(150, 0, -2, 0, 20))],
                "b": [Tube(0, 10, moving(20, 20, 0, 0, 40)), Tube(0, 12, moving(90, 20, 0, 0, 30))]}
    videos = [VideoRecord(name, 60, 320, 240, fps, "test", tubes) for name, tubes in
              gt_tubes.items()]
    gt = AnnotationSet(["run", "jump"], videos)
    rows = []
    for name, tubes in gt_tubes.items():
        for t in tubes:
            rows += track(name, t.label, t.start_frame, t.boxes, 0.9)
    tubes = link_tubes(dets_of(rows), LinkConfig(method=method), num_classes=2)
    for res in video_ap(gt, tubes, thresholds=(0.5, 0.95)).values():
        assert res.mean_ap == pytest.approx(1.0)
        assert sum(c.num_tp for c in res.classes) == 4
    # As segments, against ground-truth segments covering the tubes' frames: 100 % as well.
    for v in videos:
        v.segments = [Segment(t.label, t.start_frame / fps, t.end_frame / fps) for t in v.tubes]
    segs = segments_from_tubes(tubes, fps)
    assert temporal_ap(gt, segs, thresholds=(0.9,))[0.9].mean_ap == pytest.approx(1.0)


# -------------------------------------------------------------------- parameters, scores
def test_top_k_and_min_score_filter_detections():
    a = moving(0, 0, 1, 0, 10)
    b = moving(100, 0, 1, 0, 10)
    dets = dets_of(track("v", 0, 0, a, 0.9) + track("v", 0, 0, b, 0.5))
    assert len(link_tubes(dets, LinkConfig())) == 2
    only_best = link_tubes(dets, LinkConfig(top_k=1))
    assert len(only_best) == 1
    np.testing.assert_allclose(only_best.boxes[0], a)
    high = link_tubes(dets, LinkConfig(min_score=0.6))
    assert len(high) == 1 and high.scores[0] == pytest.approx(0.9)


def test_tube_score_mean_or_top_k_mean():
    scores = np.array([0.3, 0.9, 0.5, 0.7, 0.6])
    dets = dets_of(track("v", 0, 0, moving(0, 0, 1, 0, 5), scores))
    assert link_tubes(dets, LinkConfig(trim=False)).scores[0] == pytest.approx(0.6)
    top2 = link_tubes(dets, LinkConfig(trim=False, score_top_k=2))
    assert top2.scores[0] == pytest.approx(0.8)


def test_min_length_drops_short_tubes():
    dets = dets_of(track("v", 0, 0, moving(0, 0, 1, 0, 4), 0.9))
    assert len(link_tubes(dets, LinkConfig(min_length=5))) == 0
    assert len(link_tubes(dets, LinkConfig(min_length=4))) == 1


def test_viterbi_max_paths_and_start_threshold():
    rows = []
    for k in range(3):
        rows += track("v", 0, 0, moving(k * 100, 0, 1, 0, 10), 0.9 - 0.1 * k)
    dets = dets_of(rows)
    assert len(link_tubes(dets, LinkConfig(method="viterbi"))) == 3
    one = link_tubes(dets, LinkConfig(method="viterbi", max_paths=1))
    assert len(one) == 1 and one.scores[0] == pytest.approx(0.9)  # the best path first
    # Paths stop once no unused detection reaches start_threshold (0.75: only 0.9 and 0.8).
    assert len(link_tubes(dets, LinkConfig(method="viterbi", start_threshold=0.75))) == 2


def test_greedy_start_threshold():
    dets = dets_of(track("v", 0, 0, moving(0, 0, 1, 0, 10), 0.25))
    assert len(link_tubes(dets, LinkConfig(trim_threshold=0.1))) == 0  # 0.25 < 0.3 start
    assert len(link_tubes(dets, LinkConfig(trim_threshold=0.1, start_threshold=0.2))) == 1


def test_tubes_save_and_load(tmp_path: Path):
    dets = dets_of(track("v", 0, 3, moving(0, 0, 1.5, 0, 8), 0.7))
    tubes = link_tubes(dets, LinkConfig(fill_gaps=True))
    tubes.save(tmp_path / "tubes.json")
    back = TubePredictions.load(tmp_path / "tubes.json")
    assert as_list(back) == as_list(tubes) == [("v", 0, 3, 8)]
    np.testing.assert_allclose(back.boxes[0], tubes.boxes[0], atol=0.01)


# ---------------------------------------------------------------------- empty, bad input
@pytest.mark.parametrize("method", METHODS)
def test_empty_detections_give_empty_tubes(method):
    assert len(link_tubes(Detections.empty(), LinkConfig(method=method))) == 0
    weak = dets_of(track("v", 0, 0, moving(0, 0, 1, 0, 10), 0.005))  # all below min_score
    out = link_tubes(weak, LinkConfig(method=method))
    assert len(out) == 0 and out.boxes == []


def test_bad_detections_name_video_frame_and_field():
    good = track("v", 0, 0, moving(0, 0, 1, 0, 5), 0.9)
    bad_label = dets_of(good + [("w", 7, 3, 0.9, np.array([0, 0, 5, 5]))])
    with pytest.raises(AnnotationError, match=r"video 'w', frame 7, field 'label'.*0\.\.1"):
        link_tubes(bad_label, num_classes=2)
    nan = dets_of(good + [("w", 2, 0, float("nan"), np.array([0, 0, 5, 5]))])
    with pytest.raises(AnnotationError, match=r"video 'w', frame 2, field 'score'"):
        link_tubes(nan)
    flipped = dets_of(good + [("w", 4, 0, 0.5, np.array([9, 0, 5, 5]))])
    with pytest.raises(AnnotationError, match=r"frame 4, field 'boxes'.*x1 <= x2"):
        link_tubes(flipped)
    short = Detections(np.array(["v"], object), np.zeros(2, np.int64), np.zeros(1, np.int64),
                       np.ones(1), np.zeros((1, 4)))
    with pytest.raises(AnnotationError, match="field 'frames'"):
        link_tubes(short)


def test_link_config_rejects_bad_values():
    with pytest.raises(ValueError, match="method"):
        LinkConfig(method="hungarian")
    with pytest.raises(ValueError, match="max_gap"):
        LinkConfig(max_gap=-1)
    with pytest.raises(ValueError, match="iou_threshold"):
        LinkConfig(iou_threshold=1.5)


# ---------------------------------------------------------------------------- real data
def clean_single_tube_videos(ann: AnnotationSet, count: int) -> list[VideoRecord]:
    """The first ``count`` test videos with one tube whose consecutive boxes overlap by IoU
    >= 0.5 (a few UCF101-24 tubes jump; no linker can follow those)."""
    out = []
    for v in ann.split("test").videos:
        if len(v.tubes) == 1 and len(v.tubes[0].boxes) > 1:
            b = v.tubes[0].boxes
            if np_iou_paired(b[:-1], b[1:]).min() >= 0.5:
                out.append(v)
        if len(out) == count:
            break
    return out


@pytest.mark.parametrize("method", METHODS)
def test_real_ucf24_ground_truth_boxes_link_back_exactly(shared_data: Path, method):
    from weaktube.data.readers import read_ucf24_pyannot

    ann = read_ucf24_pyannot(shared_data / "ucf24" / "annotations"
                             / "pyannot_with_class_names.pkl")
    # Fencing g01 c06: two fencers (same class) through all 174 frames.
    videos = clean_single_tube_videos(ann, 30) + [ann["Fencing/v_Fencing_g01_c06"]]
    rng = np.random.default_rng(0)
    rows = []
    for v in videos:
        for t in v.tubes:
            rows += track(v.name, t.label, t.start_frame, t.boxes, rng.uniform(0.5, 0.95,
                                                                                 len(t.boxes)))
        rows += clutter(rng, v.name, v.num_frames, 3, ann.num_classes)
    tubes = link_tubes(dets_of(rows), LinkConfig(method=method), num_classes=ann.num_classes)
    gt = ann.subset(v.name for v in videos)
    assert len(tubes) == sum(len(v.tubes) for v in videos) == 32
    for res in video_ap(gt, tubes, thresholds=(0.5, 0.95)).values():
        assert res.mean_ap == pytest.approx(1.0)


@pytest.mark.parametrize("stride", [4, 5, 8])
def test_keyframe_stride_links_one_tube_across_the_gaps(stride):
    """Detections on every n-th frame only (``--keyframe-stride n``) link into one tube over
    the whole action, in training's evaluation as in ``weaktube detect`` (the stride sets the
    gap; with the stride-1 gap of 3 frames, stride 8 gave no tube at all); a tube survives 3
    missed keyframes, not 4."""
    from weaktube.infer.pipeline import tubes_and_segments
    from weaktube.structures import keyframe_indices

    keys = keyframe_indices(120, stride)
    rows = [("v", int(f), 0, 0.9, [10, 10, 40, 60]) for f in keys if 16 <= f < 112]
    det = Detections(np.array([r[0] for r in rows], object), np.array([r[1] for r in rows]),
                     np.array([r[2] for r in rows]), np.array([r[3] for r in rows], np.float32),
                     np.array([r[4] for r in rows], np.float32))
    tubes, segments = tubes_and_segments(det, 2, 25.0, LinkConfig(fill_gaps=True),
                                         keyframe_stride=stride)
    assert len(tubes) == 1 and tubes.start_frames[0] == rows[0][1]
    assert len(tubes.boxes[0]) == rows[-1][1] - rows[0][1] + 1
    assert len(segments) == 1
    # three missed keyframes in a row keep the tube whole, four split it (both parts longer
    # than the link's min_length)
    for missed, parts in ((3, 1), (4, 2)):
        cut = set(range(40, 40 + missed * stride))
        keep = np.array([f not in cut for f in det.frames])
        assert len(tubes_and_segments(det.select(keep), 2, 25.0, LinkConfig(fill_gaps=True),
                                      keyframe_stride=stride)[0]) == parts
    with pytest.raises(ValueError, match="needs the link's fill_gaps"):
        tubes_and_segments(det, 2, 25.0, LinkConfig(fill_gaps=False), keyframe_stride=stride)
