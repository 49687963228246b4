"""evaluate_all: exact metric keys, percent values, tables, PR-curve PNGs, JSON; no torch."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from weaktube.evaluate import (
    evaluate_all,
    format_per_class_table,
    frame_ap,
    per_class_rows,
    save_pr_curves,
    temporal_ap,
    video_ap,
)
from weaktube.evaluate.video_map import nms_3d, select_tubes

from .helpers import annotations, detections, seg, segment_preds, tube, tube_preds, video

BOX = [0, 0, 9, 9]
FAR = [50, 50, 59, 59]

VIDEO_KEYS = {"video_mAP@0.2", "video_mAP@0.5", "video_mAP@0.75", "video_mAP@0.5:0.95"}
TEMPORAL_KEYS = {f"temporal_mAP@{t}" for t in
                 ("0.1", "0.2", "0.3", "0.4", "0.5", "0.55", "0.6", "0.65", "0.7", "0.75", "0.8",
                  "0.85", "0.9", "0.95")} | {"temporal_mAP@avg0.3:0.7",
                                             "temporal_mAP@avg0.5:0.95"}


def case():
    gt = annotations(
        video("a", [tube(0, 0, BOX, 10)], [seg(0, 0.0, 1.0), seg(1, 1.2, 1.8, True)]),
        video("b", [tube(1, 2, FAR, 6)], [seg(1, 0.2, 0.8)]),
    )
    det = detections([("a", 0, 0, 0.9, BOX), ("a", 5, 0, 0.8, [0, 0, 9, 4]),
                      ("a", 15, 0, 0.7, BOX), ("b", 3, 1, 0.6, FAR), ("x", 0, 0, 1.0, BOX)])
    tubes = tube_preds([("a", 0, 0.9, 0, BOX, 10), ("a", 0, 0.8, 2, BOX, 5),
                        ("b", 1, 0.7, 2, [50, 50, 59, 55], 6)])
    segs = segment_preds([("a", 0, 0.9, 0.0, 0.6), ("b", 1, 0.8, 0.2, 0.8),
                          ("a", 1, 0.7, 1.3, 1.5)])
    return gt, det, tubes, segs


def test_metric_keys_and_values():
    gt, det, tubes, segs = case()
    rep = evaluate_all(gt, det, tubes, segs, "act")
    assert set(rep.metrics) == {"frame_mAP@0.5"} | VIDEO_KEYS | TEMPORAL_KEYS
    assert rep.metrics["frame_mAP@0.5"] == pytest.approx(100 * frame_ap(gt, det).mean_ap)
    v = video_ap(gt, select_tubes(tubes, nms_3d(tubes, 0.3)))
    assert rep.metrics["video_mAP@0.75"] == pytest.approx(100 * v[0.75].mean_ap)
    assert rep.metrics["video_mAP@0.5:0.95"] == pytest.approx(
        100 * np.mean([v[round(0.5 + 0.05 * i, 2)].mean_ap for i in range(10)]))
    t = temporal_ap(gt, segs)
    assert rep.metrics["temporal_mAP@0.55"] == pytest.approx(100 * t[0.55].mean_ap)
    assert rep.metrics["temporal_mAP@avg0.3:0.7"] == pytest.approx(
        100 * np.mean([t[x].mean_ap for x in (0.3, 0.4, 0.5, 0.6, 0.7)]))
    # Hand values: temporal @0.5: run [0, 0.6] vs [0, 1] tIoU 0.6 -> TP, AP 1; jump: TP, AP 1
    # (the jump prediction inside the ambiguous segment is ignored) -> 100.
    assert rep.metrics["temporal_mAP@0.5"] == pytest.approx(100.0)
    assert rep.metrics["temporal_mAP@0.65"] == pytest.approx(50.0)  # run misses at 0.65
    assert rep.counts["temporal_ignored_ambiguous_overlap@0.5"] == 1
    assert rep.counts["frame_ignored_unknown_video"] == 1
    assert rep.class_counts["gt_boxes"] == {"run": 10, "jump": 6, "wave": 0}
    assert rep.per_class["frame_AP@0.5"]["wave"] is None
    # eq. 23: run frames 0..9 covered 0..5 of 0..9 -> 60 %; jump frames 2..7 all -> 100 %
    assert rep.paper_eq23_frame_ap == pytest.approx(80.0)


def test_only_computable_metrics_and_protocols():
    gt, det, tubes, segs = case()
    assert set(evaluate_all(gt, detections=det).metrics) == {"frame_mAP@0.5"}
    assert set(evaluate_all(gt, tubes=tubes).metrics) == VIDEO_KEYS
    assert set(evaluate_all(gt, segments=segs).metrics) == TEMPORAL_KEYS
    no_tubes = annotations(video("a", segments=[seg(0, 0.0, 1.0)]))
    rep = evaluate_all(no_tubes, detections=detections([]), segments=segs)
    assert set(rep.metrics) == TEMPORAL_KEYS  # no ground-truth boxes: no frame-mAP
    yowo = evaluate_all(gt, detections=det, protocol="yowo")
    # only ("a", frame 15) lies outside every tube; "x" is an unknown video, counted apart
    assert yowo.protocol == "yowo" and yowo.counts["frame_ignored_unannotated_frame"] == 1
    assert yowo.counts["frame_ignored_unknown_video"] == 1
    with pytest.raises(ValueError, match="unknown evaluation protocol"):
        evaluate_all(gt, detections=det, protocol="ucf")


def test_table_json_and_png(tmp_path):
    gt, det, tubes, segs = case()
    rep = evaluate_all(gt, det, tubes, segs)
    rows = per_class_rows(rep)
    assert [r["class"] for r in rows] == ["run", "jump", "wave"]
    assert set(rows[0]) == {"label", "class", "gt_boxes", "gt_tubes", "gt_segments",
                            "frame_AP@0.5", "video_AP@0.5", "temporal_AP@0.5"}
    text = format_per_class_table(rows)
    lines = text.splitlines()
    assert len(lines) == 4 and lines[0].split()[:2] == ["label", "class"]
    assert len({len(line) for line in lines}) == 1  # aligned
    assert lines[3].split()[-1] == "-"  # 'wave' has no ground truth
    out = tmp_path / "report.json"
    rep.save(out)
    data = json.loads(out.read_text())  # strict JSON: NaN would be written as a bare token
    assert "NaN" not in out.read_text()
    assert data["metrics"]["frame_mAP@0.5"] == pytest.approx(rep.metrics["frame_mAP@0.5"])
    png = tmp_path / "curves" / "frame.png"
    save_pr_curves(rep.frame, png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in png.parent.iterdir()] == ["frame.png"]
    assert not math.isnan(rep.frame.mean_ap)


def test_evaluate_imports_neither_torch_nor_model():
    code = ("import sys, weaktube.evaluate, weaktube.evaluate.report; "
            "bad = [m for m in ('torch', 'weaktube.model', 'matplotlib') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
