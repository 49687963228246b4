"""Propagate boxes through the frames of a clip with a classical tracker, many jobs at once.

A :class:`PropagationJob` is one box in one frame of a clip and the frames to track it through;
:func:`propagate_many` runs a list of jobs on a thread pool and returns one
:class:`PropagationResult` per job, in job order. This is what the tracking-regularisation loss
(L_TRB, paper eq. 13) uses inside a training step: the network's detached per-frame boxes are
tracked into the neighbouring frames of the same clip, e.g. for clips ``[B, T, H, W, 3]``::

    jobs = [PropagationJob.from_steps(clips[b], t, boxes[b, t], steps=1, direction=+1)
            for b in range(B) for t in range(T - 1)]
    results = propagate_many(jobs, "kcf")
    # results[i].boxes[0] is job i's box in frame t + 1, NaN where results[i].ok[0] is False

Threads give real parallelism: OpenCV releases the GIL inside ``init``/``update``. Every job gets
its own tracker, created in the thread that runs it, so results do not depend on the number of
workers for KCF, CSRT and MOSSE (see ``docs/TRACKING.md`` for MIL, which draws random features
from the C library's process-wide ``rand()``). Both functions first put OpenCV's bundled OpenBLAS
on one thread (``blas_threads``), whose default busy-waiting threads otherwise cost KCF up to 3x
the CPU time in a thread pool.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from weaktube.tracking.tracker import Tracker, TrackerKind, TrackStatus, set_opencv_blas_threads


@dataclass(frozen=True, eq=False)
class PropagationJob:
    """Track ``box`` from ``frames[start]`` through ``frames[path[0]], frames[path[1]], ...``.

    Attributes:
        frames: ``[T, H, W, 3]`` uint8 RGB frames of one clip (a view is fine: it is neither
            copied nor written). Frame indices below are 0-based indices into this array.
        start: the frame in which ``box`` is given.
        box: ``[4]`` float xyxy pixels in ``frames[start]``.
        path: the frames fed to the tracker, in order; the result has one box per entry. For
            tracking ``k`` frames forward it is ``start + 1, ..., start + k`` (``from_steps``).
    """

    frames: np.ndarray
    start: int
    box: np.ndarray
    path: tuple[int, ...]

    def __post_init__(self) -> None:
        f = self.frames
        if not isinstance(f, np.ndarray) or f.dtype != np.uint8 or f.ndim != 4 or f.shape[3] != 3:
            desc = (f"shape {f.shape} dtype {f.dtype}" if isinstance(f, np.ndarray)
                    else type(f).__name__)
            raise ValueError(f"PropagationJob.frames must be [T, H, W, 3] uint8 RGB, got {desc}")
        num = f.shape[0]
        if not 0 <= int(self.start) < num:
            raise ValueError(f"PropagationJob.start = {self.start} is outside the clip's "
                             f"{num} frames")
        box = np.asarray(self.box, dtype=np.float64)
        if box.shape != (4,):
            raise ValueError(f"PropagationJob.box must be [x1, y1, x2, y2], got shape {box.shape}")
        path = tuple(int(i) for i in self.path)
        bad = [i for i in path if not 0 <= i < num]
        if bad:
            raise ValueError(f"PropagationJob.path holds frame {bad[0]}, outside the clip's "
                             f"{num} frames")
        object.__setattr__(self, "start", int(self.start))
        object.__setattr__(self, "box", box)
        object.__setattr__(self, "path", path)

    @classmethod
    def from_steps(cls, frames: np.ndarray, start: int, box: np.ndarray, steps: int,
                   direction: int = 1) -> PropagationJob:
        """Track ``steps`` consecutive frames forward (``direction=+1``: ``start + 1 ...
        start + steps``) or backward (``-1``: ``start - 1 ... start - steps``)."""
        if direction not in (1, -1):
            raise ValueError(f"direction must be +1 or -1, got {direction}")
        if steps < 0:
            raise ValueError(f"steps must be >= 0, got {steps}")
        path = tuple(int(start) + direction * k for k in range(1, steps + 1))
        return cls(frames, start, box, path)


@dataclass(frozen=True, eq=False)
class PropagationResult:
    """The tracker's output along a job's path.

    Attributes:
        frames: ``[S]`` int64, the job's path (0-based frame indices into the job's frames).
        boxes: ``[S, 4]`` float64 xyxy pixels, clipped to the frame; NaN rows where not ok.
        ok: ``[S]`` bool.
        status: ``S`` :class:`TrackStatus` values; after the first failure every later step is
            ``STOPPED`` (and every step is when the init failed).
        init_box: ``[4]`` the box the tracker actually started from (clipped to the frame and,
            for the main-API trackers, rounded to whole pixels); NaN when the init failed.
        init_status: ``OK`` or why the initial box was rejected.
        message: OpenCV's message for an ``OPENCV_ERROR``, else ``""``.
    """

    frames: np.ndarray
    boxes: np.ndarray
    ok: np.ndarray
    status: tuple[TrackStatus, ...]
    init_box: np.ndarray
    init_status: TrackStatus
    message: str = ""

    def __len__(self) -> int:
        return len(self.frames)

    def equals(self, other: PropagationResult) -> bool:
        """Exactly the same boxes (NaN equal to NaN), flags and statuses."""
        return (np.array_equal(self.frames, other.frames)
                and np.array_equal(self.boxes, other.boxes, equal_nan=True)
                and np.array_equal(self.ok, other.ok)
                and self.status == other.status
                and np.array_equal(self.init_box, other.init_box, equal_nan=True)
                and self.init_status == other.init_status)


def run_job(job: PropagationJob, kind: TrackerKind | str = TrackerKind.KCF,
            min_size: float = 5.0) -> PropagationResult:
    """Run one job with a fresh :class:`Tracker` (see :class:`PropagationJob`)."""
    tracker = Tracker(kind, min_size=min_size)
    first = tracker.init(job.frames[job.start], job.box)
    message = first.message
    n = len(job.path)
    boxes = np.full((n, 4), np.nan)  # [S, 4]
    ok = np.zeros(n, dtype=bool)
    status = []
    for i, t in enumerate(job.path):
        step = tracker.update(job.frames[t])
        boxes[i], ok[i] = step.box, step.ok
        status.append(step.status)
        if step.message and not message and step.status is not TrackStatus.STOPPED:
            message = step.message
    return PropagationResult(np.asarray(job.path, dtype=np.int64), boxes, ok, tuple(status),
                             first.box, first.status, message)


def propagate(frames: np.ndarray, box: np.ndarray, start: int, steps: int, direction: int = 1,
              kind: TrackerKind | str = TrackerKind.KCF, *, min_size: float = 5.0,
              blas_threads: int | None = 1) -> PropagationResult:
    """Track one box ``steps`` frames forward (``direction=+1``) or backward (``-1``).

    Args:
        frames: ``[T, H, W, 3]`` uint8 RGB.
        box: ``[4]`` xyxy pixels in ``frames[start]`` (0-based).
        start, steps, direction: the result's frames are ``start + direction * (1 ... steps)``;
            they must lie inside the clip.
        kind, min_size: see :class:`~weaktube.tracking.tracker.Tracker`.
        blas_threads: see :func:`propagate_many`.

    Returns: a :class:`PropagationResult` with ``boxes [steps, 4]`` and ``ok [steps]``.
    """
    job = PropagationJob.from_steps(frames, start, box, steps, direction)
    if blas_threads is not None:
        set_opencv_blas_threads(blas_threads)
    return run_job(job, kind, min_size)


def propagate_many(jobs: Sequence[PropagationJob], kind: TrackerKind | str = TrackerKind.KCF,
                   workers: int | None = None, *, min_size: float = 5.0,
                   blas_threads: int | None = 1) -> list[PropagationResult]:
    """Run many jobs on a thread pool; results in job order.

    Args:
        jobs: the jobs; they may share (views of) the same frames.
        kind: the tracker for every job.
        workers: threads; ``None`` = the number of CPUs, ``1`` (or a single job) = run in the
            calling thread without a pool. Results do not depend on it (MIL aside, see the
            module docstring).
        min_size: smallest accepted box side in pixels (see :class:`Tracker`).
        blas_threads: first set the threads of OpenCV's bundled OpenBLAS to this (process-wide
            for that library; see :func:`~weaktube.tracking.tracker.set_opencv_blas_threads`);
            ``None`` leaves it alone. Its default of one spinning thread per core wastes CPU
            and makes KCF in several threads slower than in one.
    """
    kind = TrackerKind.parse(kind)
    if blas_threads is not None:
        set_opencv_blas_threads(blas_threads)
    if workers is None:
        workers = os.cpu_count() or 1
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    workers = min(workers, len(jobs))
    if workers <= 1:
        return [run_job(job, kind, min_size) for job in jobs]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="weaktube-track") as pool:
        return list(pool.map(lambda job: run_job(job, kind, min_size), jobs))
