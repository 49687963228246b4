"""One call for the CLI: every metric computable from the inputs, in percent, plus tables/plots.

Metric keys (``EvaluationReport.metrics``, percent, only those computable from the inputs):
``frame_mAP@0.5``; ``video_mAP@0.2``, ``video_mAP@0.5``, ``video_mAP@0.75``,
``video_mAP@0.5:0.95``; ``temporal_mAP@<t>`` for t in 0.1 .. 0.7 (THUMOS14) and 0.5 .. 0.95 step
0.05 (ActivityNet), ``temporal_mAP@avg0.3:0.7``, ``temporal_mAP@avg0.5:0.95``. A metric whose
ground truth is empty (e.g. no tube in the given videos) is left out rather than reported NaN.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from weaktube.evaluate.ap import APResult
from weaktube.evaluate.frame_map import check_detections, frame_ap, frame_protocol
from weaktube.evaluate.paper_metric import Eq23Result, paper_eq23_frame_ap
from weaktube.evaluate.temporal_map import (
    ACTIVITYNET_THRESHOLDS,
    TEMPORAL_THRESHOLDS,
    THUMOS14_AVERAGE,
    check_segments,
    temporal_ap,
)
from weaktube.evaluate.video_map import (
    VIDEO_THRESHOLDS,
    VIDEO_THRESHOLDS_COCO,
    check_tubes,
    video_ap,
)
from weaktube.fileio import atomic_path, atomic_write_json
from weaktube.structures import AnnotationSet, Detections, SegmentPredictions, TubePredictions

FRAME_IOU = 0.5


def _pct(x: float) -> float | None:
    """Fraction -> percent; NaN -> None (JSON has no NaN)."""
    return None if math.isnan(x) else 100.0 * x


def _key(t: float) -> str:
    return f"{round(t, 2):g}"


@dataclass
class EvaluationReport:
    """What :func:`evaluate_all` found.

    ``metrics``: headline numbers in percent (keys in the module docstring).
    ``per_class``: ``{"frame_AP@0.5" | "video_AP@<t>" | "temporal_AP@<t>": {class: percent or
    None}}`` (None = the class has no ground truth). ``class_counts``: ground-truth instances per
    class (``gt_boxes``, ``gt_tubes``, ``gt_segments``). ``counts``: predictions and ground truth
    in total, and predictions ignored (with the reason). ``paper_eq23_frame_ap``: the paper's eq.
    23 quantity in percent (a frame-level recall, not an AP; None without segments).
    The ``frame`` / ``video`` / ``temporal`` fields keep the full results (PR curves) for plots.
    """

    protocol: str
    classes: list[str]
    metrics: dict[str, float] = field(default_factory=dict)
    per_class: dict[str, dict[str, float | None]] = field(default_factory=dict)
    class_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    paper_eq23_frame_ap: float | None = None
    paper_eq23_per_class: dict[str, float | None] = field(default_factory=dict)
    frame: APResult | None = field(default=None, repr=False)
    video: dict[float, APResult] = field(default_factory=dict, repr=False)
    temporal: dict[float, APResult] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no PR curves)."""
        return {"protocol": self.protocol, "metrics": dict(self.metrics),
                "per_class": {k: dict(v) for k, v in self.per_class.items()},
                "class_counts": {k: dict(v) for k, v in self.class_counts.items()},
                "counts": dict(self.counts),
                "paper_eq23_frame_ap": self.paper_eq23_frame_ap,
                "paper_eq23_per_class": dict(self.paper_eq23_per_class)}

    def save(self, path: str | os.PathLike) -> None:
        """Write :meth:`to_dict` as JSON, atomically."""
        atomic_write_json(path, self.to_dict(), indent=2)


def _per_class(result: APResult) -> dict[str, float | None]:
    return {c.name: _pct(c.ap) for c in result.classes}


def _add_ignored(counts: dict[str, int], prefix: str, result: APResult) -> None:
    for reason, n in result.ignored.items():
        counts[f"{prefix}_ignored_{reason}"] = n


def evaluate_all(gt: AnnotationSet, detections: Detections | None = None,
                 tubes: TubePredictions | None = None,
                 segments: SegmentPredictions | None = None, protocol: str = "act", *,
                 video_nms_threshold: float | None = 0.3, ignore_ambiguous: bool = True,
                 paper_score_threshold: float = 0.0,
                 keyframe_stride: int = 1) -> EvaluationReport:
    """Evaluate whatever predictions are given against ``gt``.

    ``gt``: the videos of the split being evaluated (the caller restricts it, e.g.
    ``ann.split("test")``). ``detections`` -> frame-mAP (``protocol`` ``"act"`` or ``"yowo"``);
    ``tubes`` -> video-mAP (ACT protocol; 3D-NMS at ``video_nms_threshold`` first, None = off);
    ``segments`` -> temporal mAP (ActivityNet protocol; ``ignore_ambiguous``: THUMOS14 rule) and
    the paper's eq. 23 quantity (predicted segments with score >= ``paper_score_threshold``).
    ``keyframe_stride``: the stride the detections were made with; frame-mAP is scored on those
    keyframes only (:func:`~weaktube.evaluate.frame_map.frame_ap`).
    """
    proto = frame_protocol(protocol)
    k = gt.num_classes
    # Validate every input before the (possibly long) computations.
    if detections is not None:
        check_detections(detections, k)
    if tubes is not None:
        check_tubes(tubes, k)
    if segments is not None:
        check_segments(segments, k)
    rep = EvaluationReport(proto.name, list(gt.classes))
    m, pc, counts = rep.metrics, rep.per_class, rep.counts

    if detections is not None:
        r = frame_ap(gt, detections, FRAME_IOU, proto, keyframe_stride)
        rep.frame = r
        counts["frame_detections"] = len(detections)
        counts["frame_gt_boxes"] = int(sum(c.num_gt for c in r.classes))
        _add_ignored(counts, "frame", r)
        rep.class_counts["gt_boxes"] = {c.name: c.num_gt for c in r.classes}
        if not math.isnan(r.mean_ap):
            m[f"frame_mAP@{_key(FRAME_IOU)}"] = 100.0 * r.mean_ap
        pc[f"frame_AP@{_key(FRAME_IOU)}"] = _per_class(r)

    if tubes is not None:
        res = video_ap(gt, tubes, VIDEO_THRESHOLDS, plus_one=proto.plus_one,
                       nms_threshold=video_nms_threshold)
        rep.video = res
        first = res[VIDEO_THRESHOLDS[0]]
        counts["video_tubes"] = len(tubes)
        counts["video_gt_tubes"] = int(sum(c.num_gt for c in first.classes))
        counts["video_tubes_scored"] = int(sum(c.num_scored for c in first.classes))
        _add_ignored(counts, "video", first)
        rep.class_counts["gt_tubes"] = {c.name: c.num_gt for c in first.classes}
        if counts["video_gt_tubes"] > 0:
            for t in (0.2, 0.5, 0.75):
                m[f"video_mAP@{_key(t)}"] = 100.0 * res[t].mean_ap
            m["video_mAP@0.5:0.95"] = 100.0 * float(
                np.mean([res[t].mean_ap for t in VIDEO_THRESHOLDS_COCO]))
        for t in VIDEO_THRESHOLDS:
            pc[f"video_AP@{_key(t)}"] = _per_class(res[t])

    if segments is not None:
        res = temporal_ap(gt, segments, TEMPORAL_THRESHOLDS, ignore_ambiguous)
        rep.temporal = res
        first = res[TEMPORAL_THRESHOLDS[0]]
        counts["temporal_segments"] = len(segments)
        counts["temporal_gt_segments"] = int(sum(c.num_gt for c in first.classes))
        counts["temporal_gt_ambiguous"] = sum(s.ambiguous for v in gt.videos for s in v.segments)
        counts["temporal_ignored_unknown_video"] = first.ignored["unknown_video"]
        if ignore_ambiguous:
            counts["temporal_ignored_ambiguous_overlap@0.5"] = res[0.5].ignored[
                "ambiguous_overlap"]
        rep.class_counts["gt_segments"] = {c.name: c.num_gt for c in first.classes}
        if counts["temporal_gt_segments"] > 0:
            for t in TEMPORAL_THRESHOLDS:
                m[f"temporal_mAP@{_key(t)}"] = 100.0 * res[t].mean_ap
            m["temporal_mAP@avg0.3:0.7"] = 100.0 * float(
                np.mean([res[t].mean_ap for t in THUMOS14_AVERAGE]))
            m["temporal_mAP@avg0.5:0.95"] = 100.0 * float(
                np.mean([res[t].mean_ap for t in ACTIVITYNET_THRESHOLDS]))
        for t in TEMPORAL_THRESHOLDS:
            pc[f"temporal_AP@{_key(t)}"] = _per_class(res[t])
        eq: Eq23Result = paper_eq23_frame_ap(gt, segments, paper_score_threshold)
        rep.paper_eq23_frame_ap = _pct(eq.mean)
        rep.paper_eq23_per_class = {c.name: _pct(c.value) for c in eq.classes}
    return rep


# ------------------------------------------------------------------------------ presentation
def per_class_rows(report: EvaluationReport,
                   columns: list[str] | None = None) -> list[dict[str, Any]]:
    """One row per class: ``{"label", "class", <count columns>, <AP columns>}``.

    ``columns``: which ``report.per_class`` keys to include (default: frame_AP@0.5,
    video_AP@0.5, temporal_AP@0.5 — those present). APs in percent, None without ground truth.
    """
    if columns is None:
        columns = [c for c in ("frame_AP@0.5", "video_AP@0.5", "temporal_AP@0.5")
                   if c in report.per_class]
    rows = []
    for label, name in enumerate(report.classes):
        row: dict[str, Any] = {"label": label, "class": name}
        for kind, per in report.class_counts.items():
            row[kind] = per.get(name, 0)
        for col in columns:
            row[col] = report.per_class[col].get(name)
        rows.append(row)
    return rows


def format_per_class_table(rows: list[dict[str, Any]]) -> str:
    """Rows of :func:`per_class_rows` as an aligned text table (floats with 2 decimals)."""
    if not rows:
        return ""
    cols = list(rows[0].keys())

    def cell(v: Any) -> str:
        if v is None:
            return "-"
        return f"{v:.2f}" if isinstance(v, float) else str(v)

    body = [[cell(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(c), *(len(b[i]) for b in body)) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) if i == 1 else c.rjust(w)
                       for i, (c, w) in enumerate(zip(cols, widths, strict=True)))]
    for b in body:
        lines.append("  ".join(v.ljust(w) if i == 1 else v.rjust(w)
                               for i, (v, w) in enumerate(zip(b, widths, strict=True))))
    return "\n".join(lines)


def save_pr_curves(result: APResult, path: str | os.PathLike, title: str | None = None) -> None:
    """Plot every class's precision/recall curve of ``result`` into one PNG, atomically.

    matplotlib is imported here (Agg canvas, no pyplot, no global backend switch).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.0, 6.0), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    shown = [c for c in result.classes if c.num_gt > 0]
    for c in shown:
        r = np.concatenate([[0.0], c.recall])
        p = np.concatenate([[1.0], c.precision])
        ax.plot(r, p, linewidth=1.0, label=f"{c.name} ({100 * c.ap:.1f})")
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    mean = result.mean_ap
    head = title or f"{result.metric} AP @ {result.threshold:g}"
    ax.set_title(f"{head} — mAP {100 * mean:.2f}" if not math.isnan(mean) else head)
    ax.grid(True, alpha=0.3)
    if 0 < len(shown) <= 30:
        ax.legend(fontsize=6, loc="lower left", ncol=2 if len(shown) > 12 else 1)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
