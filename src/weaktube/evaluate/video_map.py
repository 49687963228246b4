"""Video-mAP: predicted action tubes against the ground-truth tubes (ACT / MOC protocol).

tube IoU = temporal IoU (frames counted inclusively) x mean per-frame box IoU over the common
frames (+1-pixel areas by default). Per class, predicted tubes in descending score (stable sort)
take the best still-unmatched ground-truth tube of that class in the same video with tube IoU
>= threshold, else they are false positives; AP = raw precision/recall curve integrated with
trapezoids from (r=0, p=1) (ACT's ``pr_to_ap``). Optionally ACT's 3D-NMS (tube IoU > 0.3
suppresses, per video and class) runs on the predictions first. Classes without ground-truth
tubes get AP NaN and are left out of the mean. Tubes of videos outside the ground truth are
ignored and counted.
"""

from __future__ import annotations

import numpy as np

from weaktube.evaluate.ap import APResult, class_aps
from weaktube.evaluate.geometry import TubeSet, tube_iou_pairs
from weaktube.evaluate.matching import (
    check_columns,
    evaluation_order,
    greedy_match,
    name_index,
    pairs_by_key,
)
from weaktube.structures import AnnotationError, AnnotationSet, TubePredictions

# 0.2, 0.5, 0.75 and the ten thresholds 0.5:0.05:0.95 whose mean is "video_mAP@0.5:0.95".
VIDEO_THRESHOLDS_COCO = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))
VIDEO_THRESHOLDS = (0.2, *VIDEO_THRESHOLDS_COCO)


def check_tubes(tubes: TubePredictions, num_classes: int) -> None:
    """Raise :class:`AnnotationError` naming the first predicted tube with a bad field."""
    check_columns(tubes, ("videos", "labels", "start_frames", "boxes"))
    labels = np.asarray(tubes.labels, np.int64)
    bad = np.nonzero((labels < 0) | (labels >= num_classes))[0]
    if len(bad):
        i = int(bad[0])
        raise AnnotationError(f"label {labels[i]} is not a class index 0..{num_classes - 1}",
                              video=str(tubes.videos[i]), tube=i, field="label")
    bad = np.nonzero(~np.isfinite(np.asarray(tubes.scores, np.float64)))[0]
    if len(bad):
        raise AnnotationError("score is not finite", video=str(tubes.videos[bad[0]]),
                              tube=int(bad[0]), field="score")
    starts = np.asarray(tubes.start_frames, np.int64)
    bad = np.nonzero(starts < 0)[0]
    if len(bad):
        raise AnnotationError(f"start frame {starts[bad[0]]} is negative (frames are 0-based)",
                              video=str(tubes.videos[bad[0]]), tube=int(bad[0]),
                              field="start_frame")
    for i, b in enumerate(tubes.boxes):
        if np.ndim(b) != 2 or np.shape(b)[1] != 4 or len(b) == 0:
            raise AnnotationError(f"boxes must be [T, 4] with T >= 1, got {np.shape(b)}",
                                  video=str(tubes.videos[i]), tube=i, field="boxes")
        finite = np.isfinite(np.asarray(b, np.float64)).all(axis=1)
        if not finite.all():  # a NaN box overlaps nothing: a silent false positive
            j = int(np.argmin(finite))
            raise AnnotationError("box is not finite", video=str(tubes.videos[i]), tube=i,
                                  frame=int(starts[i]) + j, field="boxes")


def _group_keys(vid: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """``[N]`` key of (video, class); -1 where the video is unknown."""
    return np.where(vid >= 0, vid * num_classes + labels, -1)


def nms_3d(tubes: TubePredictions, threshold: float = 0.3, plus_one: bool = True) -> np.ndarray:
    """ACT's 3D-NMS per (video, class): indices of the kept tubes, ascending.

    In descending score (stable), a tube is kept unless its tube IoU with an already kept tube
    of the same video and class is > ``threshold``.
    """
    n = len(tubes)
    if n == 0:
        return np.zeros(0, np.int64)
    _, vid = np.unique(np.asarray(tubes.videos, dtype=str), return_inverse=True)
    labels = np.asarray(tubes.labels, np.int64)
    key = vid.astype(np.int64) * (int(labels.max()) + 1) + labels
    order = np.lexsort((-np.asarray(tubes.scores, np.float64), key))  # by group, then score
    key_sorted = key[order]
    ends = np.searchsorted(key_sorted, key_sorted, side="right")  # [n] end of each one's group
    # Pairs (i, j) of the same group with i before j in score order, as positions in `order`.
    pos = np.arange(n)
    later = ends - pos - 1  # [n] members after each tube in its group
    pi = np.repeat(pos, later)
    pj = np.arange(len(pi)) - np.repeat(np.cumsum(later) - later, later) + np.repeat(pos + 1,
                                                                                     later)
    ts = TubeSet(tubes.start_frames, list(tubes.boxes))
    iou = tube_iou_pairs(ts, order[pi], ts, order[pj], plus_one)
    over = iou > threshold
    pi, pj = pi[over], pj[over]
    suppressed = np.zeros(n, dtype=bool)
    # Sequential per group, but only over tubes that overlap something (pi sorted ascending).
    bounds = np.searchsorted(pi, np.arange(n + 1))
    for i in np.unique(pi):
        if not suppressed[i]:
            suppressed[pj[bounds[i]:bounds[i + 1]]] = True
    return np.sort(order[~suppressed])


def select_tubes(tubes: TubePredictions, keep: np.ndarray) -> TubePredictions:
    """The tubes at indices ``keep``."""
    return TubePredictions(np.asarray(tubes.videos)[keep], np.asarray(tubes.labels)[keep],
                           np.asarray(tubes.scores)[keep],
                           np.asarray(tubes.start_frames)[keep],
                           [tubes.boxes[i] for i in keep])


def video_ap(gt: AnnotationSet, tubes: TubePredictions,
             thresholds: tuple[float, ...] = VIDEO_THRESHOLDS, plus_one: bool = True,
             nms_threshold: float | None = None) -> dict[float, APResult]:
    """Video AP of every class at each tube-IoU threshold.

    ``gt``: the videos to evaluate; their :class:`Tube` s are the ground truth. ``tubes``:
    predicted tubes (0-based frames, pixels). ``nms_threshold``: run :func:`nms_3d` at this
    threshold first (ACT uses 0.3); None = no NMS. Returns ``{threshold: APResult}``.
    """
    k = gt.num_classes
    check_tubes(tubes, k)
    if nms_threshold is not None:
        tubes = select_tubes(tubes, nms_3d(tubes, nms_threshold, plus_one))
    gt_vid, gt_lab, gt_start, gt_boxes = [], [], [], []
    for vi, v in enumerate(gt.videos):
        for t in v.tubes:
            gt_vid.append(vi)
            gt_lab.append(t.label)
            gt_start.append(t.start_frame)
            gt_boxes.append(t.boxes)
    gt_vid_a = np.asarray(gt_vid, np.int64)
    gt_lab_a = np.asarray(gt_lab, np.int64)
    gts = TubeSet(np.asarray(gt_start, np.int64), gt_boxes)

    vid = name_index(tubes.videos, {v.name: i for i, v in enumerate(gt.videos)})
    known = vid >= 0
    idx = np.nonzero(known)[0]  # [P] tubes on the PR curves
    labels = np.asarray(tubes.labels, np.int64)[idx]
    scores = np.asarray(tubes.scores, np.float64)[idx]
    preds = TubeSet(np.asarray(tubes.start_frames, np.int64)[idx], [tubes.boxes[i] for i in idx])

    pair_pred, pair_gt, group = pairs_by_key(_group_keys(vid[idx], labels, k),
                                             _group_keys(gt_vid_a, gt_lab_a, k))
    iou = tube_iou_pairs(preds, pair_pred, gts, pair_gt, plus_one)
    order = evaluation_order(labels, scores)
    rank = np.empty(len(idx), np.int64)
    rank[order] = np.arange(len(idx))
    num_gt = np.bincount(gt_lab_a, minlength=k)
    out = {}
    for t in thresholds:
        is_tp, _ = greedy_match(pair_pred, pair_gt, iou, group, rank, len(gt_lab_a), t,
                                best_unmatched=True)
        classes = class_aps(labels[order], is_tp[order], num_gt, gt.classes, interpolated=False)
        out[float(t)] = APResult("video", float(t), classes,
                                 {"unknown_video": int((~known).sum())})
    return out
