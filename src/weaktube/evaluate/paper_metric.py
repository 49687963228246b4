"""The paper's own "AP" for temporal localisation (Zhu et al. 2022, eqs. 23-24), under its name.

The paper writes (eq. 23) ``AP(cls) = sum_k Pred(k) * real(k) / sum_k real(k)`` over the
``L*N`` frames of all test videos, with Pred(k) "the predicted frame localisation" and real(k)
"the ground truth", and (eq. 24) mAP = the mean of AP(cls) over classes. Our reading:

* Pred(k) = 1 when frame k is inside a predicted segment of class cls (score >=
  ``score_threshold``), else 0;
* real(k) = 1 when frame k is inside a non-ambiguous ground-truth segment of class cls, else 0;
* frame f of a video is inside a segment when ``start <= f / fps < end`` (``Segment.frame_range``).

So the quantity is the *frame-level recall* of each class: the fraction of ground-truth frames
that some prediction of the class covers. It is not an average precision: it never counts false
positives (predicting every class over every frame scores 100 %) and ignores scores apart from
the threshold. It is reported beside the standard interpolated AP only so that the paper's
Table 5 can be compared with; never instead of it. Classes without ground-truth frames are left
out of the mean.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from weaktube.evaluate.matching import name_index
from weaktube.evaluate.temporal_map import check_segments
from weaktube.structures import AnnotationSet, Segment, SegmentPredictions


@dataclass
class Eq23Class:
    """One class: ``value`` = covered / ground-truth frames (NaN without ground-truth frames)."""

    label: int
    name: str
    value: float
    gt_frames: int
    covered_frames: int


@dataclass
class Eq23Result:
    classes: list[Eq23Class]
    score_threshold: float

    @property
    def mean(self) -> float:
        """Eq. 24: mean over classes with ground-truth frames; NaN when none has."""
        vals = [c.value for c in self.classes if c.gt_frames > 0]
        return float(np.mean(vals)) if vals else math.nan


def paper_eq23_frame_ap(gt: AnnotationSet, segments: SegmentPredictions,
                        score_threshold: float = 0.0) -> Eq23Result:
    """The paper's eq. 23 per class (a frame-level recall, see the module docstring).

    ``gt``: the videos (their ``num_frames``, ``fps`` and segments). ``segments``: predictions in
    seconds; those of videos outside ``gt`` are ignored.
    """
    k = gt.num_classes
    check_segments(segments, k)
    gt_frames = np.zeros(k, np.int64)
    covered = np.zeros(k, np.int64)
    vid = name_index(segments.videos, {v.name: i for i, v in enumerate(gt.videos)})
    keep = (vid >= 0) & (np.asarray(segments.scores, np.float64) >= score_threshold)
    by_video: dict[int, list[int]] = {}
    for i in np.nonzero(keep)[0]:
        by_video.setdefault(int(vid[i]), []).append(int(i))
    for vi, v in enumerate(gt.videos):
        real = np.zeros((k, v.num_frames), dtype=bool)  # [K, frames] real(k) per class
        for s in v.segments:
            if not s.ambiguous:
                a, b = s.frame_range(v.fps)
                real[s.label, a:b] = True
        pred = np.zeros_like(real)  # [K, frames] Pred(k) per class
        for i in by_video.get(vi, []):
            c = int(segments.labels[i])
            a, b = Segment(c, float(segments.starts[i]), float(segments.ends[i])).frame_range(
                v.fps)
            pred[c, a:b] = True
        gt_frames += real.sum(axis=1)
        covered += (real & pred).sum(axis=1)
    classes = [Eq23Class(c, gt.classes[c],
                         float(covered[c] / gt_frames[c]) if gt_frames[c] else math.nan,
                         int(gt_frames[c]), int(covered[c])) for c in range(k)]
    return Eq23Result(classes, float(score_threshold))
