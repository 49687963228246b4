"""Frame-mAP: per-frame box detections against the per-frame boxes of the ground-truth tubes.

Two profiles (``docs/EVALUATION.md`` compares them with the original code):

* ``"act"`` (ACT / MOC, the paper's protocol): every frame of the ground-truth videos counts, so
  a detection on a frame without ground truth of its class is a false positive; +1-pixel box
  areas; a detection takes the best *still unmatched* ground truth with IoU >= threshold; AP =
  raw precision/recall curve integrated with trapezoids from (r=0, p=1).
* ``"yowo"`` (YOWO / YOWOv2 frame-mAP, a PASCAL VOC evaluator): only frames that have ground
  truth (of any class) are scored, detections on other frames are ignored; +1-pixel areas; a
  detection looks at its best-IoU ground truth overall and is a false positive if that one is
  taken (VOC rule); AP = VOC all-point interpolated.

Both: detections sorted by descending score with a stable sort (ties keep their input order),
classes without ground truth get AP NaN and are left out of the mean, detections whose video is
not in the ground truth are ignored and counted in ``APResult.ignored``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from weaktube.evaluate.ap import APResult, class_aps
from weaktube.evaluate.geometry import paired_box_iou
from weaktube.evaluate.matching import (
    check_columns,
    evaluation_order,
    greedy_match,
    name_index,
    pairs_by_key,
)
from weaktube.structures import AnnotationError, AnnotationSet, Detections, keyframe_indices


@dataclass(frozen=True)
class FrameProtocol:
    """How frame-mAP is computed. Use :data:`ACT_PROTOCOL` or :data:`YOWO_PROTOCOL`."""

    name: str
    # +1-pixel box widths/heights (VOC / ACT / YOWO code); False = continuous areas.
    plus_one: bool = True
    # True: detections on frames without any ground truth are false positives (ACT);
    # False: they are ignored (YOWO only evaluates annotated frames).
    score_unannotated_frames: bool = True
    # True: best still-unmatched ground truth (ACT); False: best overall, FP if taken (VOC).
    best_unmatched: bool = True
    # True: VOC all-point interpolated AP; False: raw-curve trapezoid AP (ACT's pr_to_ap).
    interpolated_ap: bool = False


ACT_PROTOCOL = FrameProtocol("act", plus_one=True, score_unannotated_frames=True,
                             best_unmatched=True, interpolated_ap=False)
YOWO_PROTOCOL = FrameProtocol("yowo", plus_one=True, score_unannotated_frames=False,
                              best_unmatched=False, interpolated_ap=True)
PROTOCOLS = ("act", "yowo")


def frame_protocol(name: str) -> FrameProtocol:
    """The profile called ``name`` (``"act"`` or ``"yowo"``)."""
    if name == "act":
        return ACT_PROTOCOL
    if name == "yowo":
        return YOWO_PROTOCOL
    raise ValueError(f"unknown evaluation protocol {name!r}; expected one of {PROTOCOLS}")


@dataclass
class GroundTruthBoxes:
    """Every ground-truth box of an :class:`AnnotationSet`, one row each. ``G`` rows.

    ``videos [G]`` video index (order of ``gt.videos``), ``frames [G]`` 0-based, ``labels [G]``,
    ``boxes [G, 4]`` float64 pixels. Rows follow the videos, tubes and frames in file order.
    """

    videos: np.ndarray
    frames: np.ndarray
    labels: np.ndarray
    boxes: np.ndarray

    @classmethod
    def from_annotations(cls, gt: AnnotationSet) -> GroundTruthBoxes:
        vids, frames, labels, boxes = [], [], [], []
        for vi, v in enumerate(gt.videos):
            for t in v.tubes:
                n = len(t.boxes)
                vids.append(np.full(n, vi, np.int64))
                frames.append(np.arange(t.start_frame, t.start_frame + n, dtype=np.int64))
                labels.append(np.full(n, t.label, np.int64))
                boxes.append(np.asarray(t.boxes, np.float64).reshape(n, 4))
        if not vids:
            return cls(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64),
                       np.zeros((0, 4), np.float64))
        return cls(np.concatenate(vids), np.concatenate(frames), np.concatenate(labels),
                   np.concatenate(boxes))


def check_within_videos(gt: AnnotationSet, detections: Detections) -> None:
    """Raise :class:`AnnotationError` naming the first detection on a frame past the end of
    its (known) video: frames are 0-based, and a 1-based writer's last frame is one too far."""
    vid = name_index(detections.videos, {v.name: i for i, v in enumerate(gt.videos)})
    frames = np.asarray(detections.frames, np.int64)
    known = vid >= 0
    lengths = np.asarray([v.num_frames for v in gt.videos] + [0], np.int64)  # [V + 1]
    past = known & (frames >= lengths[vid])
    if past.any():
        i = int(np.argmax(past))
        raise AnnotationError(f"detection {i} is past the video's last frame "
                              f"{lengths[vid[i]] - 1} (frames are 0-based)",
                              video=str(detections.videos[i]), frame=int(frames[i]),
                              field="frame")


def on_keyframes(gt: AnnotationSet, g: GroundTruthBoxes, detections: Detections,
                 keyframe_stride: int) -> tuple[GroundTruthBoxes, Detections, int]:
    """The ground-truth rows and detections on each video's keyframes
    (:func:`~weaktube.structures.keyframe_indices`), and how many detections were dropped."""
    f_span = max(int(g.frames.max(initial=0)),
                 int(np.max(detections.frames, initial=0)), max(
                     (v.num_frames for v in gt.videos), default=0)) + 1
    keys = np.concatenate([vi * f_span + keyframe_indices(v.num_frames, keyframe_stride)
                           for vi, v in enumerate(gt.videos)] or [np.zeros(0, np.int64)])
    g_keep = np.isin(g.videos * f_span + g.frames, keys)
    vid = name_index(detections.videos, {v.name: i for i, v in enumerate(gt.videos)})
    frames = np.asarray(detections.frames, np.int64)
    d_keep = (vid < 0) | np.isin(vid * f_span + frames, keys)  # unknown videos: counted later
    g = GroundTruthBoxes(g.videos[g_keep], g.frames[g_keep], g.labels[g_keep], g.boxes[g_keep])
    return g, detections.select(np.nonzero(d_keep)[0]), int((~d_keep).sum())


def check_detections(det: Detections, num_classes: int) -> None:
    """Raise :class:`AnnotationError` naming the first detection with a bad field."""
    check_columns(det, ("videos", "frames", "labels", "boxes"))
    checks = (
        ("label", (det.labels < 0) | (det.labels >= num_classes),
         f"is not a class index 0..{num_classes - 1}"),
        ("frame", det.frames < 0, "is negative"),
        ("score", ~np.isfinite(det.scores), "is not finite"),
        ("box", ~np.isfinite(np.asarray(det.boxes, np.float64)).all(axis=1), "is not finite"),
    )
    for fname, bad, msg in checks:
        if np.any(bad):
            i = int(np.argmax(bad))
            raise AnnotationError(f"detection {i} {fname} {msg}", video=str(det.videos[i]),
                                  frame=int(det.frames[i]), field=fname)


def frame_ap(gt: AnnotationSet, detections: Detections, iou_threshold: float = 0.5,
             protocol: str | FrameProtocol = "act", keyframe_stride: int = 1) -> APResult:
    """Frame AP of every class at one IoU threshold.

    ``gt``: the videos to evaluate (already restricted to the split); their tubes give the
    ground-truth boxes. ``detections``: per-frame boxes (pixels of each video's frame, 0-based
    frames). ``keyframe_stride`` > 1: the detections were made on the keyframes of
    :func:`~weaktube.structures.keyframe_indices` only (``weaktube detect --keyframe-stride``),
    and only those frames are scored — every other frame's ground truth would otherwise count
    as missed (a perfect detector at stride 4 scored ~26 %). Returns an :class:`APResult` (APs
    as fractions; ``mean_ap`` over classes with ground truth).
    """
    proto = frame_protocol(protocol) if isinstance(protocol, str) else protocol
    k = gt.num_classes
    check_detections(detections, k)
    if keyframe_stride < 1:
        raise ValueError(f"keyframe_stride must be >= 1, got {keyframe_stride}")
    check_within_videos(gt, detections)
    g = GroundTruthBoxes.from_annotations(gt)
    if keyframe_stride > 1:
        g, detections, off_key = on_keyframes(gt, g, detections, keyframe_stride)

    vid = name_index(detections.videos, {v.name: i for i, v in enumerate(gt.videos)})
    frames = np.asarray(detections.frames, np.int64)
    labels = np.asarray(detections.labels, np.int64)
    known = vid >= 0
    # Keys: frame key = video * F + frame; class-frame key = frame key * K + label.
    f_span = int(max(frames.max(initial=0), g.frames.max(initial=0))) + 1
    det_fkey = np.where(known, vid * f_span + frames, -1)
    gt_fkey = g.videos * f_span + g.frames
    scored = known
    if not proto.score_unannotated_frames:
        annotated = np.unique(gt_fkey)
        pos = np.minimum(np.searchsorted(annotated, det_fkey), max(len(annotated) - 1, 0))
        on_gt_frame = (annotated[pos] == det_fkey) if len(annotated) else np.zeros_like(known)
        scored = known & on_gt_frame
    idx = np.nonzero(scored)[0]  # [P] detections on the PR curves

    pkey = det_fkey[idx] * k + labels[idx]
    gkey = gt_fkey * k + g.labels
    pair_pred, pair_gt, group = pairs_by_key(pkey, gkey)
    iou = paired_box_iou(np.asarray(detections.boxes, np.float64)[idx[pair_pred]],
                         g.boxes[pair_gt], proto.plus_one)
    order = evaluation_order(labels[idx], detections.scores[idx])
    rank = np.empty(len(idx), np.int64)
    rank[order] = np.arange(len(idx))
    is_tp, _ = greedy_match(pair_pred, pair_gt, iou, group, rank, len(g.labels), iou_threshold,
                            proto.best_unmatched)
    num_gt = np.bincount(g.labels, minlength=k)
    classes = class_aps(labels[idx][order], is_tp[order], num_gt, gt.classes,
                        proto.interpolated_ap)
    ignored = {"unknown_video": int((~known).sum())}
    if keyframe_stride > 1:
        ignored["not_a_keyframe"] = off_key
    if not proto.score_unannotated_frames:
        ignored["unannotated_frame"] = int((known & ~scored).sum())
    return APResult("frame", float(iou_threshold), classes, ignored)
