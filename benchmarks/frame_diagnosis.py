"""Why a frame-mAP is low: localisation/actionness vs. classification.

Reads a canonical annotation file (its ``test`` split) and a ``weaktube/detections@1`` file and
prints, with the ACT +1-pixel IoU:

* the class-agnostic frame AP@0.5 (labels ignored: localisation + actionness only; ACT's
  trapezoidal AP);
* the share of ground-truth frames with any detection at IoU >= 0.5;
* the confusion matrix: per ground-truth class, the label of the highest-scoring detection that
  overlaps the ground truth at IoU >= 0.5 (last column: none overlaps), and its accuracy;
* the median of the best detection score on ground-truth frames and on other frames.

    .venv/bin/python benchmarks/frame_diagnosis.py runs/demo/data/source.json \\
        runs/demo/train/detections.json --out diagnosis.json
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from weaktube.evaluate.ap import ap_raw_trapezoid, precision_recall
from weaktube.evaluate.geometry import paired_box_iou
from weaktube.structures import AnnotationSet


def iou_plus_one(a: list[float], b: np.ndarray) -> float:
    """IoU of two ``[x1, y1, x2, y2]`` pixel boxes with the +1-pixel area convention."""
    return float(paired_box_iou(np.asarray([a], float), b[None], plus_one=True)[0])


def diagnose(ann: AnnotationSet, detections: list[dict], split: str = "test") -> dict:
    classes = list(ann.classes)
    num_classes = len(classes)
    gt: dict[tuple[str, int], tuple[int, np.ndarray]] = {}  # (video, frame) -> (label, box)
    for video in ann.split(split).videos:
        for tube in video.tubes:
            for i, box in enumerate(tube.boxes):
                gt[(video.name, tube.start_frame + i)] = (int(tube.label), np.asarray(box, float))
    by_frame: dict[tuple[str, int], list[dict]] = defaultdict(list)
    for d in detections:
        by_frame[(d["video"], int(d["frame"]))].append(d)

    scores, tps = [], []
    for key, dets in by_frame.items():
        truth, used = gt.get(key), False
        for d in sorted(dets, key=lambda d: -d["score"]):
            ok = truth is not None and not used and iou_plus_one(d["box"], truth[1]) >= 0.5
            used |= ok
            scores.append(d["score"])
            tps.append(ok)
    order = np.argsort(-np.asarray(scores), kind="stable")
    tp = np.asarray(tps, bool)[order]
    agnostic_ap = ap_raw_trapezoid(*precision_recall(tp, len(gt)))  # ACT's AP

    confusion = np.zeros((num_classes, num_classes + 1), int)
    for key, (label, box) in gt.items():
        overlapping = [d for d in by_frame.get(key, []) if iou_plus_one(d["box"], box) >= 0.5]
        col = max(overlapping, key=lambda d: d["score"])["label"] if overlapping else num_classes
        confusion[label, col] += 1
    localised = confusion[:, :num_classes].sum()
    best_gt = [max(d["score"] for d in v) for k, v in by_frame.items() if k in gt]
    best_other = [max(d["score"] for d in v) for k, v in by_frame.items() if k not in gt]
    return {
        "classes": classes, "gt_frames": len(gt),
        "class_agnostic_frame_AP@0.5": 100 * agnostic_ap,
        "gt_frames_localised": float(localised / max(1, len(gt))),
        "class_accuracy_on_localised": float(np.trace(confusion[:, :num_classes])
                                             / max(1, localised)),
        "confusion": confusion.tolist(),
        "median_best_score_gt_frames": float(np.median(best_gt)) if best_gt else None,
        "median_best_score_other_frames": float(np.median(best_other)) if best_other else None,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("annotations", type=Path)
    p.add_argument("detections", type=Path)
    p.add_argument("--split", default="test")
    p.add_argument("--out", type=Path)
    a = p.parse_args()
    ann = AnnotationSet.load(a.annotations)
    dets = json.loads(a.detections.read_text(encoding="utf-8"))["detections"]
    r = diagnose(ann, dets, a.split)
    print(f"class-agnostic frame AP@0.5 {r['class_agnostic_frame_AP@0.5']:.1f} "
          f"({r['gt_frames']} GT frames); localised {r['gt_frames_localised']:.3f}; "
          f"class accuracy on localised {r['class_accuracy_on_localised']:.3f}")
    names = [c[:8] for c in r["classes"]] + ["none"]
    print(" " * 13 + " ".join(f"{n:>8}" for n in names))
    for c, row in zip(r["classes"], r["confusion"]):
        print(f"{c[:12]:>12} " + " ".join(f"{x:8d}" for x in row))
    print(f"median best score: GT frames {r['median_best_score_gt_frames']:.3f}, "
          f"other frames {r['median_best_score_other_frames']:.3f}")
    if a.out:
        from weaktube.fileio import atomic_write_json
        atomic_write_json(a.out, r, indent=2)


if __name__ == "__main__":
    main()
