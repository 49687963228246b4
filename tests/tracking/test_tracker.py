"""The OpenCV tracker wrapper: real clip, synthetic known answers, degenerate boxes, failures."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest

from tests.tracking.scenes import moving_square
from weaktube.boxes import np_iou_paired
from weaktube.tracking import (
    MIL_MIN_SIDE,
    Tracker,
    TrackerKind,
    TrackStatus,
    check_box,
    set_opencv_blas_threads,
)

KINDS = [k.value for k in TrackerKind]


def _track(tracker: Tracker, frames: np.ndarray, box: np.ndarray, start: int,
           steps: int) -> tuple[np.ndarray, np.ndarray, list[TrackStatus]]:
    first = tracker.init(frames[start], box)
    assert first.ok, first
    results = [tracker.update(frames[start + k]) for k in range(1, steps + 1)]
    return (np.stack([r.box for r in results]), np.array([r.ok for r in results]),
            [r.status for r in results])


# ------------------------------------------------------------------------------ real clip
def test_kcf_follows_the_cyclist_on_a_real_clip(biking):
    start, steps = 24, 8
    boxes, ok, status = _track(Tracker("kcf"), biking.frames, biking.tube.box_at(start), start,
                               steps)
    gt = biking.tube.boxes[start + 1 : start + 1 + steps]  # the tube starts at frame 0
    assert ok.dtype == bool and ok.shape == (steps,)
    assert ok.all() and status == [TrackStatus.OK] * steps
    iou = np_iou_paired(boxes, gt)
    assert iou.mean() > 0.5, iou
    h, w = biking.frames.shape[1:3]
    assert (boxes[:, [0, 1]] >= 0).all() and (boxes[:, 2] <= w).all() and (boxes[:, 3] <= h).all()


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_constructs_and_runs_on_a_real_clip(biking, kind):
    tracker = Tracker(kind)
    assert tracker.kind is TrackerKind(kind)
    start = 24
    first = tracker.init(biking.frames[start], biking.tube.box_at(start))
    assert first.ok and first.status is TrackStatus.OK
    for t in range(start + 1, start + 4):
        result = tracker.update(biking.frames[t])
        assert result.box.shape == (4,) and isinstance(result.ok, bool)
        if result.ok:
            assert np.isfinite(result.box).all()
            assert np_iou_paired(result.box, biking.tube.box_at(t))[0] > 0.3
        else:
            assert np.isnan(result.box).all() and result.status is not TrackStatus.OK


def test_kcf_tracks_on_a_network_sized_frame(biking):
    """The network sees 128-416 px inputs: the clip shrunk to 128x96 must still be tracked."""
    h, w = biking.frames.shape[1:3]
    small = np.stack([cv2.resize(f, (128, 96), interpolation=cv2.INTER_AREA)
                      for f in biking.frames])  # [T, 96, 128, 3]
    scale = np.array([128 / w, 96 / h, 128 / w, 96 / h])
    start, steps = 24, 8
    boxes, ok, _ = _track(Tracker("kcf"), small, biking.tube.box_at(start) * scale, start, steps)
    gt = biking.tube.boxes[start + 1 : start + 1 + steps] * scale
    assert ok.all()
    assert np_iou_paired(boxes, gt).mean() > 0.5


# ---------------------------------------------------------------------- synthetic answers
@pytest.mark.parametrize("kind", ["kcf", "csrt"])
def test_synthetic_moving_square_is_followed(kind):
    frames, gt = moving_square(num_frames=11)  # moves (3, 2) px per frame, 24 px wide
    boxes, ok, _ = _track(Tracker(kind), frames, gt[0], 0, 10)
    assert ok.all()
    iou = np_iou_paired(boxes, gt[1:])
    assert iou[-1] > 0.7, iou
    # A tracker that lags one frame behind (OpenCV KCF without its training update on the init
    # frame) would sit at IoU 21*22 / (2*24*24 - 21*22) = 0.67 on every frame.
    assert iou[0] > 0.8, iou


def test_init_box_is_clipped_and_rounded():
    frames, _ = moving_square(num_frames=2)  # 128 x 128
    first = Tracker("kcf").init(frames[0], np.array([-10.0, -5.0, 30.2, 40.5]))
    assert first.ok
    np.testing.assert_array_equal(first.box, [0.0, 0.0, 30.0, 41.0])  # clipped, half up
    legacy = Tracker("mosse").init(frames[0], np.array([10.25, 20.5, 70.75, 90.0]))
    np.testing.assert_array_equal(legacy.box, [10.25, 20.5, 70.75, 90.0])  # floats kept


@pytest.mark.parametrize("box, clipped, status", [
    ([10, 20, 50, 60], [10, 20, 50, 60], TrackStatus.OK),
    ([120, 10, 140, 50], [120, 10, 128, 50], TrackStatus.OK),  # 8 px left inside
    ([125, 10, 140, 50], [125, 10, 128, 50], TrackStatus.TOO_SMALL),  # 3 px left inside
    ([200, 200, 250, 250], [128, 96, 128, 96], TrackStatus.OUTSIDE),
    ([-50, -50, -10, -10], [0, 0, 0, 0], TrackStatus.OUTSIDE),
    ([10, 20, 12, 60], [10, 20, 12, 60], TrackStatus.TOO_SMALL),
    ([50, 20, 10, 60], [50, 20, 10, 60], TrackStatus.INVALID_BOX),  # x2 < x1
    ([np.nan, 20, 50, 60], None, TrackStatus.INVALID_BOX),
    ([10, 20, np.inf, 60], None, TrackStatus.INVALID_BOX),
])
def test_check_box_known_answers(box, clipped, status):
    out, got = check_box(np.array(box, dtype=np.float64), width=128, height=96, min_size=5.0)
    assert got is status
    if clipped is not None:
        np.testing.assert_array_equal(out, clipped)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("box, status", [
    ([500.0, 500.0, 560.0, 560.0], TrackStatus.OUTSIDE),
    ([10.0, 10.0, 12.0, 12.0], TrackStatus.TOO_SMALL),
    ([np.nan, 10.0, 40.0, 40.0], TrackStatus.INVALID_BOX),
])
def test_degenerate_boxes_fail_without_exception(kind, box, status):
    frames, _ = moving_square(num_frames=3)
    tracker = Tracker(kind)
    first = tracker.init(frames[0], np.array(box))
    assert not first.ok and first.status is status and np.isnan(first.box).all()
    assert tracker.failed is status
    later = tracker.update(frames[1])
    assert not later.ok and later.status is TrackStatus.STOPPED and np.isnan(later.box).all()


def test_lost_target_is_reported_and_tracking_stops():
    """The target vanishes (uniform grey from frame 3 on): KCF must say it lost it, and every
    later step is STOPPED with a NaN box, never the last or the initial box."""
    frames, gt = moving_square(num_frames=7)
    frames[3:] = 128
    tracker = Tracker("kcf")
    assert tracker.init(frames[0], gt[0]).ok
    results = [tracker.update(frames[t]) for t in range(1, 7)]
    assert [r.status for r in results] == [TrackStatus.OK, TrackStatus.OK, TrackStatus.LOST]\
        + [TrackStatus.STOPPED] * 3
    assert [r.ok for r in results] == [True, True, False, False, False, False]
    assert np.isnan(np.stack([r.box for r in results[2:]])).all()


def test_mil_never_gets_a_box_it_would_hang_on():
    """OpenCV's MIL loops forever on a box of 4x4 px; the wrapper must refuse it even with
    min_size=0. Run in a subprocess so that a regression fails instead of hanging the suite."""
    code = (
        "import numpy as np\n"
        "from weaktube.tracking import Tracker\n"
        "frame = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)\n"
        "r = Tracker('mil', min_size=0).init(frame, np.array([10.0, 10.0, 14.0, 14.0]))\n"
        "print(r.status.value)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True)
    assert out.stdout.strip() == "too_small"
    assert Tracker("mil", min_size=0).min_size == MIL_MIN_SIDE


# ------------------------------------------------------------------ programming errors
def test_programming_errors_raise():
    frames, gt = moving_square(num_frames=2)
    tracker = Tracker("kcf")
    with pytest.raises(RuntimeError, match="before Tracker.init"):
        tracker.update(frames[0])
    with pytest.raises(ValueError, match="frame must be"):
        tracker.init(frames[0].astype(np.float32), gt[0])
    with pytest.raises(ValueError, match="frame must be"):
        tracker.init(frames[0][..., 0], gt[0])
    assert tracker.init(frames[0], gt[0]).ok
    with pytest.raises(ValueError, match="differs from the init frame"):
        tracker.update(frames[1][:64])
    with pytest.raises(ValueError, match=r"\[x1, y1, x2, y2\]"):
        tracker.init(frames[0], np.zeros(3))


def test_kind_parsing():
    assert TrackerKind.parse("KCF") is TrackerKind.KCF
    assert TrackerKind.parse(TrackerKind.CSRT) is TrackerKind.CSRT
    assert Tracker(" mosse ").kind is TrackerKind.MOSSE
    with pytest.raises(ValueError, match="kcf, mil, csrt, mosse"):
        Tracker("goturn")


def test_opencv_blas_threads_can_be_set_and_read_back():
    previous = set_opencv_blas_threads(1)
    if previous is None:
        pytest.skip("this OpenCV build bundles no OpenBLAS")
    try:
        assert set_opencv_blas_threads(2) == 1
        assert set_opencv_blas_threads(1) == 2
    finally:
        set_opencv_blas_threads(previous)
    with pytest.raises(ValueError):
        set_opencv_blas_threads(0)
