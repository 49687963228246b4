"""Temporal action segments from linked tubes or from per-frame class scores.

Time is in seconds; frame ``f`` (0-based) covers ``[f / fps, (f + 1) / fps)``, so frames
``a .. b - 1`` become the segment ``[a / fps, b / fps)``.

* :func:`segments_from_tubes`: one segment per tube, optionally merging overlapping or touching
  segments of the same video and class.
* :func:`frame_class_scores` + :func:`segments_from_frame_scores` (or
  :func:`segments_from_detections` for a whole detection file): per class, the score curve
  ``[T]`` is smoothed, then cut into action / background by a 2-state Viterbi with a switching
  penalty (default) or by thresholding with hysteresis.

:func:`two_state_viterbi` and :func:`mask_runs` are also what :mod:`weaktube.infer.link` trims
tubes with. Algorithms, parameters and defaults: ``docs/LINKING.md``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from weaktube.structures import (
    AnnotationError,
    Detections,
    SegmentPredictions,
    TubePredictions,
    VideoRecord,
    merge_runs,
)

SEGMENT_METHODS = ("viterbi", "hysteresis")


# ------------------------------------------------------------------------------ primitives
def two_state_viterbi(reward: np.ndarray, penalty: float,
                      lengths: np.ndarray | None = None) -> np.ndarray:
    """Best action / background labelling of each row: ``[N, T]`` rewards -> ``[N, T]`` bool.

    Row ``i`` gets the labelling ``x`` (True = action) of its first ``lengths[i]`` frames that
    maximises ``sum_t x_t * reward[i, t] - penalty * #{t : x_t != x_(t-1)}``; the first frame's
    state is free (no switch is charged for starting in either state). Ties keep the current
    state, and at the end prefer background. Frames at or past ``lengths[i]`` are False.
    ``reward``: ``[T]`` or ``[N, T]`` (a ``[T]`` input gives a ``[T]`` output); ``lengths``:
    ``[N]`` ints, default ``T`` for every row. O(N * T) time, one numpy step per frame.
    """
    r = np.asarray(reward, dtype=np.float64)
    one_row = r.ndim == 1
    r = np.atleast_2d(r)  # [T] -> [1, T]
    n, t = r.shape
    if r.ndim != 2:
        raise ValueError(f"reward must be [T] or [N, T], got shape {np.shape(reward)}")
    if not np.isfinite(r).all():
        raise ValueError("reward must be finite")
    if penalty < 0:
        raise ValueError(f"penalty must be >= 0, got {penalty}")
    lengths = np.full(n, t, np.int64) if lengths is None else np.asarray(lengths, np.int64)
    if lengths.shape != (n,) or (lengths < 0).any() or (lengths > t).any():
        raise ValueError(f"lengths must be [N] ints in 0..{t}")
    out = np.zeros((n, t), dtype=bool)
    if n == 0 or t == 0:
        return out[0] if one_row else out
    bg = np.zeros(n)  # [N] best objective of a labelling ending in background at frame i
    act = r[:, 0].copy()  # [N] ... ending in action
    act_from_bg = np.zeros((n, t), dtype=bool)  # back pointers: action at i came from bg at i-1
    bg_from_act = np.zeros((n, t), dtype=bool)  # background at i came from action at i-1
    for i in range(1, t):
        inside = i < lengths  # [N]; past a row's end both states are carried unchanged
        to_bg = act - penalty > bg
        to_act = bg - penalty > act
        new_bg = np.where(to_bg, act - penalty, bg)
        new_act = np.where(to_act, bg - penalty, act) + r[:, i]
        act_from_bg[:, i] = to_act & inside
        bg_from_act[:, i] = to_bg & inside
        bg = np.where(inside, new_bg, bg)
        act = np.where(inside, new_act, act)
    state = act > bg  # [N] state of each row's last frame (ties: background)
    for i in range(t - 1, -1, -1):
        out[:, i] = state
        state = np.where(state, ~act_from_bg[:, i], bg_from_act[:, i])
    out &= np.arange(t)[None, :] < lengths[:, None]
    return out[0] if one_row else out


def mask_runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Maximal runs of True in a ``[T]`` bool mask: ``(starts [R], ends [R])``, ends exclusive."""
    m = np.asarray(mask, dtype=bool).ravel()
    edges = np.diff(np.concatenate([[False], m, [False]]).astype(np.int8))  # [T + 1]
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def hysteresis_mask(scores: np.ndarray, high: float, low: float) -> np.ndarray:
    """``[T]`` scores -> ``[T]`` bool: the runs of ``scores >= low`` that reach ``high``."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    weak = s >= low
    starts, ends = mask_runs(weak)
    out = np.zeros(len(s), dtype=bool)
    if len(starts):
        strong = np.maximum.reduceat(s, starts) >= high  # [R]; reduceat over [start, next start)
        # reduceat runs to the next start, i.e. also over the gap after a run; those gap frames
        # are < low <= high, so they never raise a run's maximum to high.
        for a, b in zip(starts[strong], ends[strong]):
            out[a:b] = True
    return out


def video_index(videos: np.ndarray) -> tuple[list[str], np.ndarray]:
    """``[D]`` video names -> (sorted distinct names [V], each row's index into them [D]).

    One dict pass instead of ``np.unique`` on strings, which sorts all ``D`` names (slow for
    the millions of detections of a whole test split)."""
    code: dict[str, int] = {}
    idx = np.fromiter((code.setdefault(str(v), len(code)) for v in videos), np.int64,
                      count=len(videos))
    names = sorted(code)
    rank = np.empty(len(names), np.int64)
    rank[[code[n] for n in names]] = np.arange(len(names))  # first-seen code -> sorted rank
    return names, rank[idx]


def moving_average(scores: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average along axis 0 of ``[T]`` or ``[T, K]`` scores.

    Near the ends the window is cut to the frames that exist (no zero padding), so a constant
    curve stays constant. ``window <= 1`` returns the input unchanged (as float64).
    """
    s = np.asarray(scores, dtype=np.float64)
    if window <= 1 or len(s) == 0:
        return s.copy()
    t = len(s)
    csum = np.concatenate([np.zeros((1, *s.shape[1:])), np.cumsum(s, axis=0)])  # [T + 1, ...]
    first = np.arange(t) - (window - 1) // 2  # [T] first frame of each uncut window
    lo = np.clip(first, 0, t)
    hi = np.clip(first + window, 0, t)  # [T] exclusive ends
    count = (hi - lo).reshape(-1, *([1] * (s.ndim - 1)))  # [T] -> [T, 1...] for broadcasting
    return (csum[hi] - csum[lo]) / count


# ------------------------------------------------------------------------- tubes -> segments
def _fps_of(fps: dict[str, float] | float, video: str) -> float:
    if isinstance(fps, dict):
        if video not in fps:
            raise AnnotationError("no frame rate given for this video", video=video,
                                  field="fps")
        value = fps[video]
    else:
        value = fps
    if value is None:
        raise AnnotationError("the frame rate is unknown (a frame folder or a container "
                              "without one): give it (--fps, or the annotation's fps)",
                              video=video, field="fps")
    value = float(value)
    if not (np.isfinite(value) and value > 0):
        raise AnnotationError(f"frame rate must be a positive number, got {value}", video=video,
                              field="fps")
    return value


def segments_from_tubes(tubes: TubePredictions, fps: dict[str, float] | float, *,
                        merge: bool = False, merge_gap: float = 0.0) -> SegmentPredictions:
    """Each tube -> the segment ``[start_frame / fps, (end_frame + 1) / fps)`` seconds, where
    ``end_frame`` is its last frame, with the tube's score.

    ``fps``: one frame rate for every video, or ``{video: fps}``. ``merge``: segments of the
    same video and class that overlap, touch or lie at most ``merge_gap`` seconds apart
    (``next.start <= current.end + merge_gap``, :func:`~weaktube.structures.merge_runs`) become
    their union, scored with the highest score among them: the rule by which the readers'
    ground-truth segments are made from tubes too. Rows come out sorted by video, label,
    start.
    """
    n = len(tubes)
    if n == 0:
        return SegmentPredictions.empty()
    videos = np.asarray(tubes.videos).astype(str)
    labels = np.asarray(tubes.labels, np.int64)
    scores = np.asarray(tubes.scores, np.float64)
    first = np.asarray(tubes.start_frames, np.int64)
    rate = np.array([_fps_of(fps, str(v)) for v in videos])  # [N]
    starts = first / rate
    ends = (first + tubes.lengths) / rate
    order = np.lexsort((ends, starts, labels, videos))
    videos, labels, scores, starts, ends = (a[order] for a in (videos, labels, scores, starts,
                                                                ends))
    if merge:
        head = merge_runs(list(zip(videos, labels)), starts, ends, merge_gap)  # [N]
        np.maximum.at(ends, head, ends)  # each run's first row takes the run's union ...
        np.maximum.at(scores, head, scores)  # ... and its best score
        keep = head == np.arange(n)
        videos, labels, scores, starts, ends = (a[keep] for a in (videos, labels, scores, starts,
                                                                   ends))
    return SegmentPredictions(videos.astype(object), labels, scores, starts, ends)


# ------------------------------------------------------------------ frame scores -> segments
@dataclass
class SegmentConfig:
    """How a per-frame class-score curve becomes action segments."""

    # "viterbi": 2-state (action / background) Viterbi; a frame's action reward is
    # score - threshold and every switch costs `penalty`. "hysteresis": runs of
    # score >= low_threshold that contain a frame >= threshold.
    method: str = "viterbi"
    smooth: int = 5  # centred moving-average window in frames applied first (1 = none)
    threshold: float = 0.3  # viterbi: action/background break-even score; hysteresis: high
    low_threshold: float = 0.15  # hysteresis only: a segment extends while score >= this
    penalty: float = 1.0  # viterbi only: cost of each switch, in score x frames
    min_frames: int = 3  # segments shorter than this many frames are dropped

    def __post_init__(self) -> None:
        if self.method not in SEGMENT_METHODS:
            raise ValueError(f"method must be one of {SEGMENT_METHODS}, got {self.method!r}")
        if self.smooth < 1 or self.min_frames < 1:
            raise ValueError("smooth and min_frames must be >= 1")
        if self.penalty < 0:
            raise ValueError(f"penalty must be >= 0, got {self.penalty}")
        if self.method == "hysteresis" and self.low_threshold > self.threshold:
            raise ValueError("low_threshold must be <= threshold")


def segments_from_frame_scores(scores: np.ndarray, fps: float,
                               cfg: SegmentConfig | None = None
                               ) -> list[tuple[int, float, float, float]]:
    """Per-frame class scores ``[T, K]`` -> action segments ``(label, start, end, score)``.

    Per class: smooth (``cfg.smooth``), label frames action / background (``cfg.method``),
    keep runs of at least ``cfg.min_frames`` frames. A run of frames ``a .. b - 1`` gives
    ``start = a / fps``, ``end = b / fps`` seconds, scored with the mean *unsmoothed* score of
    its frames. Sorted by label, then start.
    """
    cfg = cfg or SegmentConfig()
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2:
        raise ValueError(f"scores must be [T, K], got shape {s.shape}")
    if not np.isfinite(s).all():
        raise ValueError("scores must be finite")
    if fps is None or not (np.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps}")
    t, k = s.shape
    if t == 0 or k == 0:
        return []
    smooth = moving_average(s, cfg.smooth)  # [T, K]
    if cfg.method == "viterbi":
        action = two_state_viterbi(smooth.T - cfg.threshold, cfg.penalty)  # [K, T]
    else:
        action = np.stack([hysteresis_mask(smooth[:, c], cfg.threshold, cfg.low_threshold)
                           for c in range(k)])  # [K, T]
    out = []
    for c in range(k):
        for a, b in zip(*mask_runs(action[c])):
            if b - a >= cfg.min_frames:
                out.append((c, a / fps, b / fps, float(s[a:b, c].mean())))
    return out


def frame_class_scores(dets: Detections, video: str, num_frames: int,
                       num_classes: int) -> np.ndarray:
    """``[T, K]`` per-frame class scores of one video: the highest detection score of each
    class in each frame, 0 where a frame has no detection of the class.

    Frames are 0-based and must be ``< num_frames``; labels must be ``< num_classes``.
    """
    if len(dets) == 0:
        return np.zeros((num_frames, num_classes), dtype=np.float64)
    rows = np.flatnonzero(np.asarray(dets.videos).astype(str) == video)
    return _class_curve(dets, rows, video, num_frames, num_classes)


def _class_curve(dets: Detections, rows: np.ndarray, video: str, num_frames: int,
                 num_classes: int) -> np.ndarray:
    """:func:`frame_class_scores` of the detection rows ``rows`` (all of ``video``)."""
    out = np.zeros((num_frames, num_classes), dtype=np.float64)
    frames = np.asarray(dets.frames, np.int64)[rows]
    labels = np.asarray(dets.labels, np.int64)[rows]
    scores = np.asarray(dets.scores, np.float64)[rows]
    checks = (("frame", (frames < 0) | (frames >= num_frames),
               f"is outside the video's {num_frames} frames"),
              ("label", (labels < 0) | (labels >= num_classes),
               f"is not a class index 0..{num_classes - 1}"),
              ("score", ~np.isfinite(scores), "is not finite"))
    for name, bad, msg in checks:
        if bad.any():
            i = int(np.argmax(bad))
            raise AnnotationError(f"detection {int(rows[i])}: {name} {msg}", video=video,
                                  frame=int(frames[i]), field=name)
    np.maximum.at(out, (frames, labels), scores)
    return out


def segments_from_detections(dets: Detections, videos: Iterable[VideoRecord], num_classes: int,
                             cfg: SegmentConfig | None = None) -> SegmentPredictions:
    """Segments of every video in ``videos`` (their ``num_frames`` and ``fps`` are used) from
    its per-frame class scores (:func:`frame_class_scores`, :func:`segments_from_frame_scores`).
    Detections of videos not listed are ignored."""
    names, idx = video_index(dets.videos)
    position = {n: i for i, n in enumerate(names)}
    order = np.argsort(idx, kind="stable")  # [D] rows grouped by video
    bounds = np.searchsorted(idx[order], np.arange(len(names) + 1))  # [V + 1]
    rows = []
    for v in videos:
        i = position.get(v.name)
        mine = order[bounds[i] : bounds[i + 1]] if i is not None else np.zeros(0, np.int64)
        curve = _class_curve(dets, mine, v.name, v.num_frames, num_classes)  # [T, K]
        rows += [(v.name, *seg) for seg in segments_from_frame_scores(curve, v.fps, cfg)]
    if not rows:
        return SegmentPredictions.empty()
    vids, labels, starts, ends, scores = zip(*rows, strict=True)
    return SegmentPredictions(np.array(vids, object), np.array(labels, np.int64),
                              np.array(scores, np.float64), np.array(starts, np.float64),
                              np.array(ends, np.float64))
