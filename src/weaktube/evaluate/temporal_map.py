"""Temporal action localisation mAP with the ActivityNet protocol.

Per class, predicted segments in descending score (stable sort) take the best still-unmatched
ground-truth segment of the same video and class with tIoU >= threshold (a tIoU equal to the
threshold matches), else they are false positives; tIoU uses continuous seconds (no +1).
AP = ActivityNet's ``interpolated_prec_rec`` (monotone precision envelope, summed where recall
changes); mAP = mean over the classes that have ground truth.

Ground truth = the ``VideoRecord.segments`` with ``ambiguous=False``. Ambiguous segments
(THUMOS14's "Ambiguous" class) follow the official THUMOS14 kit (``TH14eventdetpr.m``): a
prediction that is *not* matched and overlaps an ambiguous segment of its video (any class,
positive intersection) is removed from the false positives, i.e. ignored. Predictions of videos
outside the ground truth are ignored and counted.
"""

from __future__ import annotations

import numpy as np

from weaktube.evaluate.ap import APResult, class_aps
from weaktube.evaluate.geometry import segment_iou
from weaktube.evaluate.matching import (
    check_columns,
    evaluation_order,
    greedy_match,
    name_index,
    pairs_by_key,
)
from weaktube.structures import AnnotationError, AnnotationSet, SegmentPredictions

THUMOS14_THRESHOLDS = tuple(round(0.1 * i, 2) for i in range(1, 8))  # 0.1 .. 0.7
THUMOS14_AVERAGE = tuple(round(0.1 * i, 2) for i in range(3, 8))  # 0.3 .. 0.7
ACTIVITYNET_THRESHOLDS = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))  # 0.5 .. 0.95
TEMPORAL_THRESHOLDS = tuple(sorted(set(THUMOS14_THRESHOLDS) | set(ACTIVITYNET_THRESHOLDS)))


def check_segments(segments: SegmentPredictions, num_classes: int) -> None:
    """Raise :class:`AnnotationError` naming the first predicted segment with a bad field."""
    check_columns(segments, ("videos", "labels", "starts", "ends"))
    labels = np.asarray(segments.labels, np.int64)
    starts = np.asarray(segments.starts, np.float64)
    ends = np.asarray(segments.ends, np.float64)
    checks = (
        ("label", (labels < 0) | (labels >= num_classes),
         f"is not a class index 0..{num_classes - 1}"),
        ("score", ~np.isfinite(np.asarray(segments.scores, np.float64)), "is not finite"),
        ("end", ~(np.isfinite(starts) & np.isfinite(ends) & (ends > starts)),
         "needs finite start < end"),
    )
    for fname, bad, msg in checks:
        if np.any(bad):
            i = int(np.argmax(bad))
            raise AnnotationError(f"{fname} {msg}", video=str(segments.videos[i]), segment=i,
                                  field=fname)


def _ground_truth(gt: AnnotationSet) -> tuple[np.ndarray, ...]:
    """Non-ambiguous segments as (video [S], label [S], start [S], end [S]) and the ambiguous
    ones as (video [A], start [A], end [A])."""
    rows, amb = [], []
    for vi, v in enumerate(gt.videos):
        for s in v.segments:
            if s.ambiguous:
                amb.append((vi, s.start, s.end))
            else:
                rows.append((vi, s.label, s.start, s.end))
    r = np.asarray(rows, np.float64).reshape(-1, 4)
    a = np.asarray(amb, np.float64).reshape(-1, 3)
    return (r[:, 0].astype(np.int64), r[:, 1].astype(np.int64), r[:, 2], r[:, 3],
            a[:, 0].astype(np.int64), a[:, 1], a[:, 2])


def temporal_ap(gt: AnnotationSet, segments: SegmentPredictions,
                thresholds: tuple[float, ...] = TEMPORAL_THRESHOLDS,
                ignore_ambiguous: bool = True) -> dict[float, APResult]:
    """Temporal AP of every class at each tIoU threshold.

    ``gt``: the videos to evaluate (their ``segments``, seconds). ``segments``: predictions
    (seconds). ``ignore_ambiguous``: THUMOS14 rule above; False = such predictions stay false
    positives. Returns ``{threshold: APResult}``.
    """
    k = gt.num_classes
    check_segments(segments, k)
    g_vid, g_lab, g_start, g_end, a_vid, a_start, a_end = _ground_truth(gt)

    vid = name_index(segments.videos, {v.name: i for i, v in enumerate(gt.videos)})
    known = vid >= 0
    idx = np.nonzero(known)[0]  # [P] predictions that can be on the PR curves
    labels = np.asarray(segments.labels, np.int64)[idx]
    starts = np.asarray(segments.starts, np.float64)[idx]
    ends = np.asarray(segments.ends, np.float64)[idx]
    pvid = vid[idx]

    pair_pred, pair_gt, group = pairs_by_key(pvid * k + labels, g_vid * k + g_lab)
    iou = segment_iou(starts[pair_pred], ends[pair_pred], g_start[pair_gt], g_end[pair_gt])
    # Predictions overlapping an ambiguous segment of their video (intersection > 0).
    on_ambiguous = np.zeros(len(idx), dtype=bool)
    if ignore_ambiguous and len(a_vid):
        ap_pred, ap_amb, _ = pairs_by_key(pvid, a_vid)
        inter = np.minimum(ends[ap_pred], a_end[ap_amb]) - np.maximum(starts[ap_pred],
                                                                      a_start[ap_amb])
        on_ambiguous[ap_pred[inter > 0]] = True

    order = evaluation_order(labels, np.asarray(segments.scores, np.float64)[idx])
    rank = np.empty(len(idx), np.int64)
    rank[order] = np.arange(len(idx))
    num_gt = np.bincount(g_lab, minlength=k)
    out = {}
    for t in thresholds:
        is_tp, _ = greedy_match(pair_pred, pair_gt, iou, group, rank, len(g_lab), t,
                                best_unmatched=True)
        scored = order[~(on_ambiguous & ~is_tp)[order]]  # evaluation order, ignored ones out
        classes = class_aps(labels[scored], is_tp[scored], num_gt, gt.classes,
                            interpolated=True)
        ignored = {"unknown_video": int((~known).sum())}
        if ignore_ambiguous:
            ignored["ambiguous_overlap"] = int((on_ambiguous & ~is_tp).sum())
        out[float(t)] = APResult("temporal", float(t), classes, ignored)
    return out
