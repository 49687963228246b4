"""Classical single-object trackers (OpenCV KCF, MIL, CSRT, MOSSE) over weaktube's boxes, and
batch propagation of boxes through clips for the tracking-regularisation loss (L_TRB).

See ``docs/TRACKING.md``.
"""

from weaktube.tracking.propagate import (
    PropagationJob,
    PropagationResult,
    propagate,
    propagate_many,
    run_job,
)
from weaktube.tracking.tracker import (
    MIL_MIN_SIDE,
    Tracker,
    TrackerKind,
    TrackResult,
    TrackStatus,
    check_box,
    clip_box,
    set_opencv_blas_threads,
)

__all__ = [
    "MIL_MIN_SIDE", "PropagationJob", "PropagationResult", "TrackResult", "TrackStatus",
    "Tracker", "TrackerKind", "check_box", "clip_box", "propagate", "propagate_many", "run_job",
    "set_opencv_blas_threads",
]
