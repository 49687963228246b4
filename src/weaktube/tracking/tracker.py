"""One interface over OpenCV's single-object trackers, with explicit failure reporting.

The paper regularises the network with a classical tracker (KCF by default; MIL and SRDCF also
tried). OpenCV provides KCF, MIL and CSRT (a discriminative correlation filter with channel and
*spatial* reliability, the closest stand-in for SRDCF) in its main API and MOSSE in
``cv2.legacy``.

Conventions:

* frames are ``[H, W, 3]`` uint8 **RGB** (as :func:`weaktube.data.video.read_video` returns them);
  they are converted to BGR before OpenCV sees them, because KCF's colour-names features, CSRT's
  colour histograms / colour names and the BGR->gray conversion of MIL and MOSSE all assume
  OpenCV's channel order;
* boxes are ``[x1, y1, x2, y2]`` float **pixels** of that frame (continuous corners, width =
  x2 - x1). OpenCV's main API takes integer ``(x, y, w, h)``: corners are rounded to the nearest
  pixel on the way in, and the (integer) boxes it returns are converted back to corners.

OpenCV quirks handled here (details and measurements in ``docs/TRACKING.md``):

* KCF's ``init`` only stores the box; its first ``update`` learns the filter from whatever frame it
  gets and does not detect. ``init`` therefore runs that first update on the init frame itself;
  without it every KCF box lags one frame behind (the first update returns the init box).
* MIL hangs on tiny boxes (``MIL_MIN_SIDE``) and raises on boxes without room around them.
* The opencv-python wheel's private OpenBLAS spins one thread per core (see
  :func:`set_opencv_blas_threads`).

Failures are never hidden. Every call returns a :class:`TrackResult` with ``ok`` and a
:class:`TrackStatus` saying why; a failed step's box is NaN (never the previous or the initial
box). A tracker that failed once stays failed: later updates return ``STOPPED`` without running
OpenCV, because a correlation filter that lost its target keeps "tracking" whatever is there.
Degenerate input boxes (NaN, inverted, outside the frame, smaller than ``min_size`` after clipping
to the frame) are rejected with ``ok=False``; exceptions raised by OpenCV become ``OPENCV_ERROR``.
Only programming errors (a frame of the wrong dtype/shape, ``update`` before ``init``) raise.
"""

from __future__ import annotations

import ctypes
import functools
from enum import Enum
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np

# OpenCV's MIL draws random Haar features until one of area >= 9 fits strictly inside the box, and
# loops forever when none can: 4x4 and 6x2 boxes hang (measured, OpenCV 5.0), 5x5 does not. Its
# minimum box side is therefore never below this, whatever ``min_size`` says.
MIL_MIN_SIDE = 5


@functools.lru_cache(maxsize=1)
def _opencv_openblas() -> ctypes.CDLL | None:
    """The OpenBLAS bundled with the opencv-python wheel (``opencv*.libs/libopenblas*.so``), or
    None (another OpenCV build, or another platform)."""
    site = Path(cv2.__file__).resolve().parent.parent
    for path in sorted(site.glob("opencv*.libs/libopenblas*.so*")):
        try:
            lib = ctypes.CDLL(str(path))  # already loaded by cv2: the same instance
            lib.openblas_set_num_threads.argtypes = [ctypes.c_int]
            lib.openblas_get_num_threads.restype = ctypes.c_int
        except (OSError, AttributeError):
            continue
        return lib
    return None


def set_opencv_blas_threads(num_threads: int) -> int | None:
    """Set the thread count of OpenCV's bundled OpenBLAS; return the previous one, or None when
    there is no bundled OpenBLAS (nothing is changed then).

    The opencv-python wheels link a private OpenBLAS (not numpy's, not torch's) that OpenCV uses
    for LAPACK calls, e.g. the SVD KCF runs on every update to compress its colour features. By
    default it starts one busy-waiting thread per core: on 2 cores that made single-threaded KCF
    ~1.2-2x and KCF in 2 Python threads ~3x more expensive in CPU time (``docs/TRACKING.md``).
    One thread is right for trackers, which are parallelised over jobs instead. Process-wide for
    that library only; ``propagate``/``propagate_many`` call it with 1 unless told otherwise.
    """
    if num_threads < 1:
        raise ValueError(f"num_threads must be >= 1, got {num_threads}")
    lib = _opencv_openblas()
    if lib is None:
        return None
    previous = int(lib.openblas_get_num_threads())
    if previous != num_threads:
        lib.openblas_set_num_threads(num_threads)
    return previous


class TrackerKind(str, Enum):
    """The OpenCV trackers weaktube wraps (the value is the name used in configs)."""

    KCF = "kcf"  # kernelized correlation filter (paper default); cv2.TrackerKCF
    MIL = "mil"  # multiple-instance learning, Haar features; cv2.TrackerMIL
    CSRT = "csrt"  # DCF with channel & spatial reliability: the paper's SRDCF; cv2.TrackerCSRT
    MOSSE = "mosse"  # minimum output sum of squared error filter; cv2.legacy.TrackerMOSSE

    @classmethod
    def parse(cls, kind: TrackerKind | str) -> TrackerKind:
        """``"KCF"``, ``"kcf"`` or ``TrackerKind.KCF`` -> ``TrackerKind.KCF``."""
        if isinstance(kind, TrackerKind):
            return kind
        try:
            return cls(str(kind).strip().lower())
        except ValueError:
            choices = ", ".join(k.value for k in cls)
            raise ValueError(f"unknown tracker kind {kind!r}; choose one of {choices}") from None


class TrackStatus(str, Enum):
    """Outcome of one :meth:`Tracker.init` or :meth:`Tracker.update`."""

    OK = "ok"
    INVALID_BOX = "invalid_box"  # init box not finite, or x2 <= x1 / y2 <= y1
    OUTSIDE = "outside"  # the box does not overlap the frame
    TOO_SMALL = "too_small"  # after clipping to the frame a side is below min_size pixels
    LOST = "lost"  # OpenCV's update reported that it lost the target
    OPENCV_ERROR = "opencv_error"  # OpenCV raised (message in TrackResult.message)
    STOPPED = "stopped"  # an earlier init/update of this tracker failed; not tracked further


class TrackResult(NamedTuple):
    """``box``: ``[4]`` float64 xyxy pixels, clipped to the frame; all NaN when not ``ok``."""

    box: np.ndarray
    ok: bool
    status: TrackStatus
    message: str = ""


_NAN_BOX = np.full(4, np.nan)


def _failure(status: TrackStatus, message: str = "") -> TrackResult:
    return TrackResult(_NAN_BOX.copy(), False, status, message)


def _create_opencv_tracker(kind: TrackerKind) -> tuple[cv2.Tracker, bool]:
    """A fresh OpenCV tracker with its default parameters, and whether it is a legacy one
    (legacy trackers take and return float ``(x, y, w, h)``; the main API takes ints)."""
    if kind is TrackerKind.KCF:
        return cv2.TrackerKCF_create(), False
    if kind is TrackerKind.MIL:
        return cv2.TrackerMIL_create(), False
    if kind is TrackerKind.CSRT:
        return cv2.TrackerCSRT_create(), False
    if kind is TrackerKind.MOSSE:
        return cv2.legacy.TrackerMOSSE_create(), True
    raise AssertionError(kind)  # unreachable: TrackerKind.parse validated it


def check_frame(frame: np.ndarray, name: str = "frame") -> None:
    """Raise ``ValueError`` naming ``name`` unless ``frame`` is an ``[H, W, 3]`` uint8 array."""
    if not isinstance(frame, np.ndarray):
        raise ValueError(f"{name} must be a numpy array [H, W, 3] uint8 RGB, got "
                         f"{type(frame).__name__}")
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"{name} must be [H, W, 3] uint8 RGB, got shape {frame.shape} "
                         f"dtype {frame.dtype}")
    if frame.shape[0] < 1 or frame.shape[1] < 1:
        raise ValueError(f"{name} is empty: shape {frame.shape}")


def _to_bgr(frame: np.ndarray) -> np.ndarray:
    """``[H, W, 3]`` RGB -> a new contiguous ``[H, W, 3]`` BGR array (the input is not written)."""
    return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2BGR)


def clip_box(box: np.ndarray, width: int, height: int) -> np.ndarray:
    """``[4]`` xyxy -> ``[4]`` float64 xyxy clipped to ``[0, width] x [0, height]``."""
    out = np.asarray(box, dtype=np.float64).copy()
    out[[0, 2]] = np.clip(out[[0, 2]], 0.0, width)
    out[[1, 3]] = np.clip(out[[1, 3]], 0.0, height)
    return out


def check_box(box: np.ndarray, width: int, height: int,
              min_size: float) -> tuple[np.ndarray, TrackStatus]:
    """Validate an xyxy box against a ``width x height`` frame.

    Returns the box clipped to the frame and ``OK``, or the clipped box and the reason it is
    unusable (``INVALID_BOX``, ``OUTSIDE``, ``TOO_SMALL``).
    """
    box = np.asarray(box, dtype=np.float64)
    if box.shape != (4,):
        raise ValueError(f"a box must be [x1, y1, x2, y2], got shape {box.shape}")
    if not np.all(np.isfinite(box)) or box[2] <= box[0] or box[3] <= box[1]:
        return box.copy(), TrackStatus.INVALID_BOX
    clipped = clip_box(box, width, height)
    w, h = clipped[2] - clipped[0], clipped[3] - clipped[1]
    if w <= 0 or h <= 0:
        return clipped, TrackStatus.OUTSIDE
    if w < min_size or h < min_size:
        return clipped, TrackStatus.TOO_SMALL
    return clipped, TrackStatus.OK


def _xyxy_to_int_xywh(box: np.ndarray) -> tuple[int, int, int, int]:
    """Corners rounded to the nearest pixel (half up) -> integer ``(x, y, w, h)``."""
    x1, y1, x2, y2 = (int(np.floor(v + 0.5)) for v in box)
    return x1, y1, x2 - x1, y2 - y1


class Tracker:
    """A single-object tracker: ``init`` on a box in one frame, then ``update`` frame by frame.

    Args:
        kind: which OpenCV tracker (``TrackerKind`` or its name, case-insensitive).
        min_size: smallest accepted box side in pixels, after clipping to the frame, for the
            initial box and for every tracked box. MIL never goes below ``MIL_MIN_SIDE``.

    Example::

        tracker = Tracker("kcf")
        tracker.init(frames[10], box)          # box: [4] xyxy pixels in frames[10]
        box, ok, status, _ = tracker.update(frames[11])

    Not thread-safe: use one instance per thread (``propagate_many`` does).
    """

    def __init__(self, kind: TrackerKind | str = TrackerKind.KCF, min_size: float = 5.0) -> None:
        self.kind = TrackerKind.parse(kind)
        if not (min_size >= 0 and np.isfinite(min_size)):
            raise ValueError(f"min_size must be a finite number >= 0, got {min_size}")
        self.min_size = max(float(min_size), MIL_MIN_SIDE if self.kind is TrackerKind.MIL else 0)
        self._impl: cv2.Tracker | None = None
        self._legacy = False
        self._frame_shape: tuple[int, ...] | None = None
        self._failed: TrackStatus | None = None  # first failure, if any

    @property
    def failed(self) -> TrackStatus | None:
        """The first failure of this tracker (init or update), or None while it is tracking."""
        return self._failed

    def init(self, frame: np.ndarray, box: np.ndarray) -> TrackResult:
        """Start tracking ``box`` (``[4]`` xyxy pixels) in ``frame`` (``[H, W, 3]`` uint8 RGB).

        Returns the box actually used (clipped to the frame, rounded to whole pixels for the
        main-API trackers) and ``ok``, or ``ok=False`` with the reason; after a failed init every
        ``update`` returns ``STOPPED``. Calling ``init`` again restarts from scratch.
        """
        check_frame(frame)
        h, w = frame.shape[:2]
        self._frame_shape = frame.shape
        self._failed = None
        self._impl = None
        clipped, status = check_box(box, w, h, self.min_size)
        if status is not TrackStatus.OK:
            return self._fail(status)
        impl, legacy = _create_opencv_tracker(self.kind)
        if legacy:
            rect = tuple(float(v) for v in (clipped[0], clipped[1], clipped[2] - clipped[0],
                                            clipped[3] - clipped[1]))
        else:
            rect = _xyxy_to_int_xywh(clipped)
            if min(rect[2], rect[3]) < max(self.min_size, 1):  # rounding shrank it
                return self._fail(TrackStatus.TOO_SMALL)
        bgr = _to_bgr(frame)
        try:
            started = impl.init(bgr, rect)
            if started is not False and self.kind is TrackerKind.KCF:
                # OpenCV's KCF init only stores the box: its first update learns the filter from
                # the frame it is given and skips detection. Give it the init frame, or every
                # later box lags one frame behind (the first update would return the init box).
                started, _ = impl.update(bgr)
        except cv2.error as e:
            return self._fail(TrackStatus.OPENCV_ERROR, _cv_message(e))
        if started is False:  # legacy trackers return a bool; the main API returns None
            return self._fail(TrackStatus.OPENCV_ERROR, "OpenCV could not start on this box")
        self._impl, self._legacy = impl, legacy
        used = np.array([rect[0], rect[1], rect[0] + rect[2], rect[1] + rect[3]], np.float64)
        return TrackResult(used, True, TrackStatus.OK)

    def update(self, frame: np.ndarray) -> TrackResult:
        """Track into the next ``frame`` (``[H, W, 3]`` uint8 RGB, the size of the init frame)."""
        if self._frame_shape is None:
            raise RuntimeError("Tracker.update called before Tracker.init")
        check_frame(frame)
        if frame.shape != self._frame_shape:
            raise ValueError(f"frame shape {frame.shape} differs from the init frame's "
                             f"{self._frame_shape}")
        if self._failed is not None or self._impl is None:
            first = self._failed.value if self._failed is not None else "none"
            return _failure(TrackStatus.STOPPED, f"after an earlier failure ({first})")
        try:
            found, rect = self._impl.update(_to_bgr(frame))
        except cv2.error as e:
            return self._fail(TrackStatus.OPENCV_ERROR, _cv_message(e))
        if not found:
            return self._fail(TrackStatus.LOST)
        x, y, bw, bh = (float(v) for v in rect)
        h, w = frame.shape[:2]
        clipped, status = check_box(np.array([x, y, x + bw, y + bh]), w, h, self.min_size)
        if status is not TrackStatus.OK:
            return self._fail(status)
        return TrackResult(clipped, True, TrackStatus.OK)

    def _fail(self, status: TrackStatus, message: str = "") -> TrackResult:
        self._failed = status
        self._impl = None  # release OpenCV's state; nothing is tracked after a failure
        return _failure(status, message)


def _cv_message(e: cv2.error) -> str:
    """The last line of an OpenCV error (the assertion), without the build path noise."""
    lines = [ln.strip() for ln in str(e).strip().splitlines() if ln.strip()]
    return lines[-1] if lines else type(e).__name__
