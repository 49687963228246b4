"""benchmarks/frame_diagnosis.py on hand-built cases: confusion, localisation, agnostic AP."""

from __future__ import annotations

import numpy as np
import pytest

from tests.benchmark_scripts import load_benchmark

from .helpers import annotations, detections, tube, video

BOX = [0, 0, 9, 9]
FAR = [50, 50, 59, 59]


def load_diagnose():
    return load_benchmark("frame_diagnosis").diagnose


def test_confusion_counts_best_overlapping_label_and_misses():
    ann = annotations(video("a", [tube(0, 0, BOX, 3)]))  # label 0 on frames 0, 1, 2
    dets = detections([("a", 0, 0, 0.9, BOX),  # right class
                       ("a", 1, 1, 0.8, BOX), ("a", 1, 0, 0.3, BOX),  # best overlapping: 1
                       ("a", 2, 0, 0.7, FAR),  # frame 2: nothing overlaps
                       ("a", 5, 1, 0.95, BOX)])  # frame without ground truth: false positive
    r = load_diagnose()(ann, dets)
    assert r["gt_boxes"] == 3
    assert r["confusion"][0] == [1, 1, 0, 1]
    assert r["gt_boxes_localised"] == pytest.approx(2 / 3)
    assert r["class_accuracy_on_localised"] == pytest.approx(0.5)
    # class-agnostic, score order: FP (0.95), TP (0.9), TP (0.8), FP (0.7), dup FP (0.3);
    # ACT trapezoids from (r 0, p 1) through (0, 0), (1/3, 1/2), (2/3, 2/3):
    # 0 + (1/3)(0 + 1/2)/2 + (1/3)(1/2 + 2/3)/2
    assert r["class_agnostic_frame_AP@0.5"] == pytest.approx(100 * (1 / 12 + 7 / 36))
    assert r["median_best_score_other_frames"] == pytest.approx(0.95)


def test_localisation_per_class_separates_near_misses_and_sizes():
    """Per class, the best-overlapping detection of any label: IoU bands and log size ratios
    (+1-pixel sizes: BOX is 10 x 10 px)."""
    tall = [0, 0, 9, 19]  # 10 x 20 px over BOX: IoU 100 / 200 = 0.5, log h ratio log 2
    taller = [0, 0, 9, 29]  # 10 x 30: IoU 1/3, a near miss
    ann = annotations(video("a", [tube(0, 0, BOX, 3)]), video("b", [tube(1, 0, BOX, 2)]))
    dets = detections([("a", 0, 1, 0.9, tall), ("a", 0, 0, 0.2, FAR),  # best overlap: tall
                       ("a", 1, 0, 0.9, taller),
                       ("b", 0, 1, 0.9, BOX)])  # a frame 2 of a and b frame 1: nothing
    loc = load_diagnose()(ann, dets)["localisation_per_class"]
    a, b = loc["run"], loc["jump"]
    assert a["gt_boxes"] == 3 and b["gt_boxes"] == 2
    assert (a["best_iou_below_0.3"], a["best_iou_0.3_to_0.5"], a["best_iou_at_least_0.5"]) == \
        pytest.approx((1 / 3, 1 / 3, 1 / 3))
    assert a["log_w_ratio"] == pytest.approx(0.0)
    assert a["log_h_ratio"] == pytest.approx((np.log(2) + np.log(3)) / 2)  # frames 0 and 1
    assert b["best_iou_at_least_0.5"] == pytest.approx(0.5) and b["log_h_ratio"] == 0.0
    assert loc["wave"]["gt_boxes"] == 0 and loc["wave"]["log_w_ratio"] is None


def test_two_actors_on_one_frame_are_two_rows():
    ann = annotations(video("a", [tube(0, 0, BOX, 1), tube(2, 0, FAR, 1)]))
    dets = detections([("a", 0, 0, 0.9, BOX), ("a", 0, 1, 0.8, FAR)])
    r = load_diagnose()(ann, dets)
    assert r["gt_boxes"] == 2
    assert r["confusion"][0] == [1, 0, 0, 0] and r["confusion"][2] == [0, 1, 0, 0]
    assert r["class_agnostic_frame_AP@0.5"] == pytest.approx(100.0)


def test_no_detections_at_all(tmp_path, capsys, monkeypatch):
    """A run that detected nothing (it happens: a collapsed target stage) is reported, not a
    crash: every ground-truth box is missed and the medians are absent."""
    ann = annotations(video("a", [tube(0, 0, BOX, 2)]))
    r = load_diagnose()(ann, detections([]))
    assert r["confusion"][0][-1] == 2 and r["gt_boxes_localised"] == 0
    assert r["median_best_score_gt_frames"] is None
    ann_path, det_path = tmp_path / "ann.json", tmp_path / "dets.json"
    ann.save(ann_path)
    detections([]).save(det_path)
    module = load_benchmark("frame_diagnosis")
    monkeypatch.setattr("sys.argv", ["frame_diagnosis.py", str(ann_path), str(det_path)])
    module.main()
    assert "n/a (no detections)" in capsys.readouterr().out


def test_weak_targets_geometry_known_answer():
    """benchmarks/weak_targets.py's box geometry: a box twice as wide, as tall, shifted by half
    the true width gives log 2, 0 and 0.5."""
    import torch

    module = load_benchmark("weak_targets")
    gt = torch.tensor([[0.2, 0.2, 0.4, 0.6]])
    own = torch.tensor([[0.2, 0.2, 0.6, 0.6]])  # width 0.4 vs 0.2; centre x 0.4 vs 0.3
    g = module._geometry(own, gt)
    assert g["log_w_ratio"] == pytest.approx(np.log(2.0), abs=1e-6)
    assert g["log_h_ratio"] == pytest.approx(0.0, abs=1e-6)
    assert g["abs_dx_in_widths"] == pytest.approx(0.5, abs=1e-6)
    assert g["abs_dy_in_heights"] == pytest.approx(0.0, abs=1e-6)
