"""Temporal segments from tubes and from per-frame class scores: known answers."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from weaktube.evaluate import temporal_ap
from weaktube.infer.temporal import (
    SegmentConfig,
    frame_class_scores,
    hysteresis_mask,
    mask_runs,
    moving_average,
    segments_from_detections,
    segments_from_frame_scores,
    segments_from_tubes,
    two_state_viterbi,
    video_index,
)
from weaktube.structures import (
    AnnotationError,
    AnnotationSet,
    Detections,
    Segment,
    SegmentPredictions,
    TubePredictions,
    VideoRecord,
)


def tubes_of(rows) -> TubePredictions:
    """rows: (video, label, score, start_frame, length)"""
    if not rows:
        return TubePredictions.empty()
    v, c, s, f, n = zip(*rows, strict=True)
    return TubePredictions(np.array(v, object), np.array(c, np.int64), np.array(s, np.float64),
                           np.array(f, np.int64), [np.zeros((k, 4)) for k in n])


def rows_of(segs: SegmentPredictions) -> list[tuple]:
    return [(str(v), int(c), round(float(s), 6), round(float(a), 6), round(float(b), 6))
            for v, c, s, a, b in zip(segs.videos, segs.labels, segs.scores, segs.starts,
                                     segs.ends)]


# ------------------------------------------------------------------------------ primitives
def objective(x: np.ndarray, r: np.ndarray, penalty: float) -> float:
    return float((x * r).sum() - penalty * np.count_nonzero(np.diff(x.astype(int))))


def test_two_state_viterbi_equals_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(60):
        t = int(rng.integers(1, 9))
        r = rng.normal(0, 1, t).round(1)  # rounding makes ties
        penalty = float(rng.choice([0.0, 0.5, 1.0, 3.0]))
        best = max(objective(np.array(x), r, penalty)
                   for x in itertools.product([0, 1], repeat=t))
        got = two_state_viterbi(r, penalty)
        assert got.shape == (t,) and got.dtype == bool
        assert objective(got, r, penalty) == pytest.approx(best)


def test_two_state_viterbi_known_answers_and_lengths():
    r = np.array([-1.5, 2, 2, -0.5, 2, -3, -3, 0.8])
    # Penalty 1: starting in action costs 1.5 > one switch; bridging the -0.5 dip beats two
    # switches; the final 0.8 is worth less than the switch into it (ending needs none).
    assert two_state_viterbi(r, 1.0).astype(int).tolist() == [0, 1, 1, 1, 1, 0, 0, 0]
    assert two_state_viterbi(r, 0.0).astype(int).tolist() == [0, 1, 1, 0, 1, 0, 0, 1]
    # Rows of a batch stop at their own length; later frames are False.
    batch = np.stack([r, r])
    out = two_state_viterbi(batch, 1.0, lengths=np.array([8, 3]))
    assert out[0].astype(int).tolist() == [0, 1, 1, 1, 1, 0, 0, 0]
    assert out[1].astype(int).tolist() == [0, 1, 1, 0, 0, 0, 0, 0]  # [-1.5, 2, 2] only
    assert two_state_viterbi(np.zeros((0, 5)), 1.0).shape == (0, 5)
    with pytest.raises(ValueError, match="lengths"):
        two_state_viterbi(batch, 1.0, lengths=np.array([9, 3]))


def test_mask_runs_and_hysteresis():
    starts, ends = mask_runs(np.array([1, 1, 0, 0, 1, 0, 1], bool))
    assert starts.tolist() == [0, 4, 6] and ends.tolist() == [2, 5, 7]
    assert [len(a) for a in mask_runs(np.zeros(0, bool))] == [0, 0]
    s = np.array([0.1, 0.4, 0.8, 0.5, 0.2, 0.45, 0.45, 0.1, 0.9])
    # Runs of >= 0.3: [1, 4) reaches 0.7 (kept), [5, 7) does not, [8, 9) does.
    assert hysteresis_mask(s, 0.7, 0.3).astype(int).tolist() == [0, 1, 1, 1, 0, 0, 0, 0, 1]


def test_video_index():
    names, idx = video_index(np.array(["b", "a", "b", "c", "a"], object))
    assert names == ["a", "b", "c"]
    assert idx.tolist() == [1, 0, 1, 2, 0]
    names, idx = video_index(np.zeros(0, object))
    assert names == [] and idx.shape == (0,)


def test_moving_average():
    np.testing.assert_allclose(moving_average(np.array([0, 0, 3, 0, 0.0]), 3), [0, 1, 1, 1, 0])
    # Cut windows at the ends: frame 0 averages frames 0..1, the last frame its last two.
    np.testing.assert_allclose(moving_average(np.array([3, 0, 0, 6.0]), 3), [1.5, 1, 2, 3])
    const = np.full((7, 2), 0.4)
    np.testing.assert_allclose(moving_average(const, 4), const)
    np.testing.assert_allclose(moving_average(np.array([1, 2.0]), 1), [1, 2])


# -------------------------------------------------------------------- frame score curves
def curve() -> np.ndarray:
    """[32, 2]: class 0 at 0.9 on frames 6..15, class 1 at 0.8 on 20..24, 0.1 elsewhere.

    With threshold 0.3 every 0.1 frame costs 0.2, so the 6 frames before class 0 (1.2) and
    the 7 after class 1 (1.4) cost more than the switch (1) that cuts them off."""
    s = np.full((32, 2), 0.1)
    s[6:16, 0] = 0.9
    s[20:25, 1] = 0.8
    return s


@pytest.mark.parametrize("method", ["viterbi", "hysteresis"])
def test_segments_of_a_known_score_curve(method):
    segs = segments_from_frame_scores(curve(), fps=10.0, cfg=SegmentConfig(method=method,
                                                                           smooth=1))
    assert [(c, round(a, 6), round(b, 6), round(s, 6)) for c, a, b, s in segs] == [
        (0, 0.6, 1.6, 0.9), (1, 2.0, 2.5, 0.8)]


def test_smoothing_and_min_frames():
    s = np.zeros((20, 1))
    s[10, 0] = 0.9  # a one-frame spike: reward 0.6 > 2 switches of 0.2; 0.3 after smoothing
    cfg = SegmentConfig(smooth=1, min_frames=1, penalty=0.2)
    assert [seg[:3] for seg in segments_from_frame_scores(s, 10.0, cfg)] == [(0, 1.0, 1.1)]
    cfg = SegmentConfig(smooth=3, min_frames=1, penalty=0.2)
    assert segments_from_frame_scores(s, 10.0, cfg) == []
    cfg = SegmentConfig(smooth=1, min_frames=2, penalty=0.2)
    assert segments_from_frame_scores(s, 10.0, cfg) == []
    # 5-frame smoothing keeps the edges of the steps where they are when the threshold is
    # half the step (0.5): the averaged step crosses it half-way.
    cfg = SegmentConfig(smooth=5, threshold=0.5, penalty=0.2)
    segs = segments_from_frame_scores(curve(), 10.0, cfg)
    assert [(c, round(a, 6), round(b, 6)) for c, a, b, _ in segs] == [(0, 0.6, 1.6),
                                                                       (1, 2.0, 2.5)]


def test_viterbi_bridges_a_short_dip_hysteresis_splits_it():
    s = np.full((40, 1), 0.05)
    s[5:35, 0] = 0.9
    s[19:21, 0] = 0.1  # two weak frames inside
    vit = segments_from_frame_scores(s, 1.0, SegmentConfig(smooth=1, threshold=0.3))
    assert [seg[:3] for seg in vit] == [(0, 5.0, 35.0)]
    hys = segments_from_frame_scores(s, 1.0, SegmentConfig(method="hysteresis", smooth=1,
                                                           threshold=0.5, low_threshold=0.2))
    assert [seg[:3] for seg in hys] == [(0, 5.0, 19.0), (0, 21.0, 35.0)]


def test_segment_config_rejects_bad_values():
    with pytest.raises(ValueError, match="method"):
        SegmentConfig(method="watershed")
    with pytest.raises(ValueError, match="low_threshold"):
        SegmentConfig(method="hysteresis", threshold=0.3, low_threshold=0.5)
    with pytest.raises(ValueError, match=r"\[T, K\]"):
        segments_from_frame_scores(np.zeros(5), 10.0)


def dets_of(rows) -> Detections:
    """rows: (video, frame, label, score)"""
    if not rows:
        return Detections.empty()
    v, f, c, s = zip(*rows, strict=True)
    return Detections(np.array(v, object), np.array(f, np.int64), np.array(c, np.int64),
                      np.array(s, np.float32), np.tile(np.float32([0, 0, 10, 10]), (len(v), 1)))


def test_frame_class_scores_take_the_max_per_class_and_frame():
    dets = dets_of([("a", 2, 1, 0.5), ("a", 2, 1, 0.7), ("a", 0, 0, 0.25), ("b", 2, 1, 0.9)])
    s = frame_class_scores(dets, "a", 4, 2)
    expected = np.zeros((4, 2))
    expected[2, 1], expected[0, 0] = 0.7, 0.25
    np.testing.assert_allclose(s, expected, rtol=1e-6)
    assert frame_class_scores(Detections.empty(), "a", 3, 2).shape == (3, 2)
    with pytest.raises(AnnotationError, match=r"video 'b', frame 2, field 'frame'.*2 frames"):
        frame_class_scores(dets, "b", 2, 2)
    with pytest.raises(AnnotationError, match=r"video 'a', frame 2, field 'label'"):
        frame_class_scores(dets, "a", 4, 1)


def test_segments_from_detections_score_100_against_their_ground_truth():
    fps = 5.0
    videos = [VideoRecord("a", 50, 0, 0, fps, "test", segments=[Segment(0, 1.0, 4.0)]),
              VideoRecord("b", 30, 0, 0, fps, "test", segments=[Segment(1, 2.0, 5.0),
                                                               Segment(0, 0.0, 1.0)])]
    rows = []
    for v in videos:
        for seg in v.segments:
            a, b = seg.frame_range(fps)
            rows += [(v.name, f, seg.label, 0.6) for f in range(a, b)]
    rows += [("a", 30, 1, 0.2), ("b", 29, 0, 0.1)]  # isolated weak detections
    gt = AnnotationSet(["run", "jump"], videos)
    # Default config: 5-frame smoothing, threshold 0.3 = half the 0.6 plateau, so the
    # smoothed edges cross it exactly at the true edges.
    segs = segments_from_detections(dets_of(rows), gt.videos, 2)
    assert sorted(rows_of(segs)) == [("a", 0, 0.6, 1.0, 4.0), ("b", 0, 0.6, 0.0, 1.0),
                                     ("b", 1, 0.6, 2.0, 5.0)]
    assert temporal_ap(gt, segs, thresholds=(0.95,))[0.95].mean_ap == pytest.approx(1.0)
    assert len(segments_from_detections(Detections.empty(), gt.videos, 2)) == 0


# ------------------------------------------------------------------------- from tubes
def test_segments_from_tubes_times_and_fps():
    tubes = tubes_of([("a", 0, 0.9, 10, 20), ("b", 1, 0.5, 0, 1)])
    segs = segments_from_tubes(tubes, {"a": 10.0, "b": 25.0})
    # a: frames 10..29 -> [1.0, 3.0); b: frame 0 -> [0, 0.04).
    assert rows_of(segs) == [("a", 0, 0.9, 1.0, 3.0), ("b", 1, 0.5, 0.0, 0.04)]
    assert rows_of(segments_from_tubes(tubes, 10.0))[1] == ("b", 1, 0.5, 0.0, 0.1)
    with pytest.raises(AnnotationError, match=r"video 'b', field 'fps'"):
        segments_from_tubes(tubes, {"a": 10.0})
    with pytest.raises(AnnotationError, match="positive"):
        segments_from_tubes(tubes, 0.0)


def test_segments_from_tubes_merge():
    tubes = tubes_of([
        ("a", 0, 0.6, 0, 10),   # [0, 1)
        ("a", 0, 0.9, 5, 10),   # [0.5, 1.5): overlaps -> merged, score 0.9
        ("a", 0, 0.4, 15, 5),   # [1.5, 2): touches -> merged
        ("a", 0, 0.7, 30, 5),   # [3, 3.5): apart
        ("a", 1, 0.8, 0, 10),   # other class: never merged with class 0
        ("b", 0, 0.5, 0, 10),   # other video
    ])
    merged = segments_from_tubes(tubes, 10.0, merge=True)
    assert rows_of(merged) == [("a", 0, 0.9, 0.0, 2.0), ("a", 0, 0.7, 3.0, 3.5),
                               ("a", 1, 0.8, 0.0, 1.0), ("b", 0, 0.5, 0.0, 1.0)]
    assert len(segments_from_tubes(tubes, 10.0)) == 6
    # merge_gap 1 s bridges [2, 3) too; 0.99 s does not.
    bridged = segments_from_tubes(tubes, 10.0, merge=True, merge_gap=1.0)
    assert rows_of(bridged)[0] == ("a", 0, 0.9, 0.0, 3.5)
    assert len(segments_from_tubes(tubes, 10.0, merge=True, merge_gap=0.99)) == 4


def test_empty_inputs_give_empty_outputs(tmp_path: Path):
    segs = segments_from_tubes(TubePredictions.empty(), 25.0, merge=True)
    assert len(segs) == 0
    segs.save(tmp_path / "segments.json")
    assert len(SegmentPredictions.load(tmp_path / "segments.json")) == 0
    assert segments_from_frame_scores(np.zeros((0, 3)), 25.0) == []
    assert segments_from_frame_scores(np.zeros((50, 3)), 25.0) == []


def test_segments_save_and_load(tmp_path: Path):
    segs = segments_from_tubes(tubes_of([("a", 2, 0.75, 3, 7)]), 30.0)
    segs.save(tmp_path / "s.json")
    back = SegmentPredictions.load(tmp_path / "s.json")
    assert rows_of(back) == [("a", 2, 0.75, 0.1, round(10 / 30, 6))]  # not cut to 4 decimals
    assert back.ends[0] == 10 / 30  # the value itself


def test_unknown_frame_rate_is_named():
    """A frame folder has no frame rate: turning its tubes into seconds says so, naming the
    video, instead of a TypeError."""
    tubes = tubes_of([("a", 0, 0.5, 3, 7)])
    with pytest.raises(AnnotationError, match=r"video 'a', field 'fps'.*unknown"):
        segments_from_tubes(tubes, {"a": None})
    with pytest.raises(AnnotationError, match="unknown"):
        segments_from_tubes(tubes, None)
    with pytest.raises(ValueError, match="fps must be a positive number, got None"):
        segments_from_frame_scores(np.zeros((5, 2)), None)


def test_merge_gap_of_g_frames_merges_pieces_g_frames_apart_at_any_rate():
    """``merge_gap = g / fps`` merges two pieces of a tube ``g`` frames apart, whatever the
    frame rate: the seconds are compared with a tolerance (exactly, 591 of these 4485 cases
    stayed apart by one rounding step)."""
    apart = []
    for fps in (24.0, 25.0, 29.97, 30.0, 23.976):
        for f in range(1, 300):
            for g in (1, 2, 3):
                tubes = TubePredictions(np.array(["v", "v"], object), np.array([0, 0]),
                                        np.array([0.5, 0.9]), np.array([0, f + g]),
                                        [np.ones((f, 4)), np.ones((5, 4))])
                seg = segments_from_tubes(tubes, fps, merge=True, merge_gap=g / fps)
                if len(seg) != 1:
                    apart.append((fps, f, g))
    assert not apart, apart[:5]
