"""Evaluation: frame-mAP, video-mAP, temporal mAP and the paper's eq. 23, numpy only.

This package never imports torch or ``weaktube.model``; protocol choices and how they differ from
ACT/MOC, YOWO, MMAction2 and ActivityNet are in ``docs/EVALUATION.md``.
"""

from weaktube.evaluate.ap import (
    APResult,
    ClassAP,
    ap_interpolated,
    ap_raw_trapezoid,
    precision_recall,
)
from weaktube.evaluate.frame_map import (
    ACT_PROTOCOL,
    YOWO_PROTOCOL,
    FrameProtocol,
    frame_ap,
    frame_protocol,
)
from weaktube.evaluate.geometry import paired_box_iou, segment_iou, tube_iou
from weaktube.evaluate.paper_metric import Eq23Result, paper_eq23_frame_ap
from weaktube.evaluate.report import (
    EvaluationReport,
    evaluate_all,
    format_per_class_table,
    per_class_rows,
    save_pr_curves,
)
from weaktube.evaluate.temporal_map import (
    ACTIVITYNET_THRESHOLDS,
    TEMPORAL_THRESHOLDS,
    THUMOS14_THRESHOLDS,
    temporal_ap,
)
from weaktube.evaluate.video_map import VIDEO_THRESHOLDS, nms_3d, video_ap

__all__ = [
    "ACTIVITYNET_THRESHOLDS", "ACT_PROTOCOL", "APResult", "ClassAP", "Eq23Result",
    "EvaluationReport", "FrameProtocol", "TEMPORAL_THRESHOLDS", "THUMOS14_THRESHOLDS",
    "VIDEO_THRESHOLDS", "YOWO_PROTOCOL", "ap_interpolated", "ap_raw_trapezoid", "evaluate_all",
    "format_per_class_table", "frame_ap", "frame_protocol", "nms_3d", "paired_box_iou",
    "paper_eq23_frame_ap", "per_class_rows", "precision_recall", "save_pr_curves",
    "segment_iou", "temporal_ap", "tube_iou", "video_ap",
]
