"""Batch propagation: job validation, forward/backward, job order, determinism across workers."""

from __future__ import annotations

import numpy as np
import pytest

from tests.tracking.scenes import moving_square
from weaktube.boxes import np_iou_paired
from weaktube.tracking import (
    PropagationJob,
    TrackStatus,
    propagate,
    propagate_many,
    run_job,
)


def test_forward_and_backward_on_the_synthetic_square():
    frames, gt = moving_square(num_frames=11)
    fwd = propagate(frames, gt[0], start=0, steps=10, direction=1, kind="kcf")
    np.testing.assert_array_equal(fwd.frames, np.arange(1, 11))
    assert fwd.boxes.shape == (10, 4) and fwd.ok.shape == (10,) and fwd.ok.all()
    assert np_iou_paired(fwd.boxes, gt[1:]).min() > 0.7

    back = propagate(frames, gt[10], start=10, steps=10, direction=-1, kind="kcf")
    np.testing.assert_array_equal(back.frames, np.arange(9, -1, -1))
    assert back.ok.all() and back.init_status is TrackStatus.OK
    assert np_iou_paired(back.boxes, gt[9::-1]).min() > 0.7


def test_backward_on_a_real_clip(biking):
    start, steps = 40, 8
    result = propagate(biking.frames, biking.tube.box_at(start), start, steps, -1, "csrt")
    np.testing.assert_array_equal(result.frames, np.arange(39, 31, -1))
    gt = biking.tube.boxes[39:31:-1]  # the tube starts at frame 0
    assert result.ok.all()
    assert np_iou_paired(result.boxes, gt).mean() > 0.5


def test_failed_init_gives_stopped_steps_not_an_exception():
    frames, _ = moving_square(num_frames=4)
    result = propagate(frames, np.array([300.0, 300.0, 340.0, 340.0]), 0, 3)
    assert result.init_status is TrackStatus.OUTSIDE
    assert result.status == (TrackStatus.STOPPED,) * 3
    assert not result.ok.any() and np.isnan(result.boxes).all() and np.isnan(result.init_box).all()


def _real_jobs(biking) -> list[PropagationJob]:
    """Jobs of different lengths, directions and start frames, so a mix-up shows."""
    f, tube = biking.frames, biking.tube
    jobs = []
    for i, start in enumerate(range(10, 38, 3)):
        steps, direction = 1 + i % 4, (1 if i % 2 == 0 else -1)
        jobs.append(PropagationJob.from_steps(f, start, tube.box_at(start), steps, direction))
    jobs.append(PropagationJob(f, 20, tube.box_at(20), path=(22, 24, 26)))  # skipping frames
    jobs.append(PropagationJob(f, 20, np.array([900.0, 900.0, 950.0, 950.0]), path=(21,)))
    return jobs


@pytest.mark.parametrize("kind", ["kcf", "csrt", "mosse"])
def test_propagate_many_is_ordered_and_independent_of_workers(biking, kind):
    jobs = _real_jobs(biking)
    one = propagate_many(jobs, kind, workers=1)
    two = propagate_many(jobs, kind, workers=2)
    alone = [run_job(job, kind) for job in jobs]
    assert len(one) == len(two) == len(jobs)
    for job, a, b, c in zip(jobs, one, two, alone):
        np.testing.assert_array_equal(a.frames, job.path)
        assert a.equals(b) and a.equals(c)
    assert one[-1].init_status is TrackStatus.OUTSIDE  # the bad job fails alone
    assert all(r.init_status is TrackStatus.OK for r in one[:-1])


def test_propagate_many_runs_mil_in_threads(biking):
    """MIL runs (its random features come from libc rand(): no bitwise determinism claimed)."""
    jobs = _real_jobs(biking)[:4]
    results = propagate_many(jobs, "mil", workers=2)
    for job, r in zip(jobs, results):
        assert r.boxes.shape == (len(job.path), 4) and r.init_status is TrackStatus.OK


def test_propagate_many_edge_cases(biking):
    assert propagate_many([], "kcf") == []
    with pytest.raises(ValueError, match="workers"):
        propagate_many(_real_jobs(biking)[:1], "kcf", workers=0)
    with pytest.raises(ValueError, match="unknown tracker kind"):
        propagate_many(_real_jobs(biking)[:1], "siamese")


def test_job_validation_names_the_field(biking):
    f, box = biking.frames, biking.tube.box_at(0)
    with pytest.raises(ValueError, match="PropagationJob.path holds frame 48"):
        PropagationJob.from_steps(f, 45, box, steps=3)  # 46, 47, 48: the clip has 48 frames
    with pytest.raises(ValueError, match="PropagationJob.path holds frame -1"):
        PropagationJob.from_steps(f, 0, box, steps=1, direction=-1)
    with pytest.raises(ValueError, match="PropagationJob.start"):
        PropagationJob(f, 48, box, path=())
    with pytest.raises(ValueError, match="PropagationJob.frames"):
        PropagationJob(f.astype(np.float32), 0, box, path=(1,))
    with pytest.raises(ValueError, match="PropagationJob.box"):
        PropagationJob(f, 0, box[:3], path=(1,))
    with pytest.raises(ValueError, match="direction"):
        PropagationJob.from_steps(f, 5, box, steps=1, direction=0)
    job = PropagationJob.from_steps(f, 5, box, steps=0)
    assert job.path == () and len(run_job(job)) == 0
