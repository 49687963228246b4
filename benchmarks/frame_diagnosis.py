"""Why a frame-mAP is low: localisation/actionness vs. classification.

Reads a canonical annotation file (its ``test`` split) and a ``weaktube/detections@1`` file and
prints, with the ACT +1-pixel IoU:

* the class-agnostic frame AP@0.5 (every label set to one class, scored by
  ``weaktube.evaluate.frame_ap`` with the ACT protocol: localisation + actionness only);
* the share of ground-truth boxes with any detection at IoU >= 0.5;
* the confusion matrix: per ground-truth box (rows: its class), the label of the
  highest-scoring detection that overlaps it at IoU >= 0.5 (last column: none does), and the
  accuracy of those labels;
* the median of the best detection score on ground-truth frames and on other frames;
* per class, where the boxes miss: the share of ground-truth boxes whose best-overlapping
  detection (any label, any score) has IoU < 0.3 (wrong place or nothing), 0.3-0.5 (a near
  miss: usually the wrong size) and >= 0.5, and that detection's mean log(width / true width)
  and log(height / true height) (boxes with +1-pixel sizes; over the ground-truth boxes with any
  overlapping detection).

    .venv/bin/python benchmarks/frame_diagnosis.py runs/demo/data/source.json \\
        runs/demo/train/detections.json --out diagnosis.json
"""

from __future__ import annotations

import argparse
import dataclasses
from collections import defaultdict
from pathlib import Path

import numpy as np

from weaktube.boxes import np_iou
from weaktube.evaluate import frame_ap
from weaktube.evaluate.frame_map import GroundTruthBoxes, on_keyframes
from weaktube.fileio import atomic_write_json
from weaktube.structures import AnnotationSet, Detections


def class_agnostic(ann: AnnotationSet, dets: Detections) -> tuple[AnnotationSet, Detections]:
    """The same boxes with every label set to 0 of one class ``"action"``."""
    videos = [dataclasses.replace(v, tubes=[dataclasses.replace(t, label=0) for t in v.tubes])
              for v in ann.videos]
    return (AnnotationSet(["action"], videos),
            dataclasses.replace(dets, labels=np.zeros(len(dets), np.int64)))


def diagnose(ann: AnnotationSet, dets: Detections, keyframe_stride: int = 1) -> dict:
    """``ann``: the evaluated videos (one split); ``dets``: their detections (pixels, 0-based
    frames), made at ``keyframe_stride`` (only those keyframes are scored, as frame-mAP does).
    Every ground-truth box is one row of the confusion matrix."""
    classes = list(ann.classes)
    k = len(classes)
    agnostic_ap = frame_ap(*class_agnostic(ann, dets),  # ACT protocol, one class
                           keyframe_stride=keyframe_stride).mean_ap

    g = GroundTruthBoxes.from_annotations(ann)
    if keyframe_stride > 1:
        g, dets, _ = on_keyframes(ann, g, dets, keyframe_stride)
    names = [v.name for v in ann.videos]
    rows: dict[tuple[str, int], list[int]] = defaultdict(list)  # (video, frame) -> det rows
    for i, (v, f) in enumerate(zip(dets.videos.tolist(), dets.frames.tolist())):
        rows[(v, f)].append(i)
    confusion = np.zeros((k, k + 1), np.int64)
    best_iou = np.zeros(len(g.frames))  # [G] best IoU of any detection per ground-truth box
    log_wh = np.full((len(g.frames), 2), np.nan)  # [G, 2] log size ratios of that detection
    all_boxes = np.asarray(dets.boxes, np.float64)  # [D, 4] pixels
    for gi, (vi, f, label, box) in enumerate(zip(g.videos.tolist(), g.frames.tolist(),
                                                 g.labels.tolist(), g.boxes)):
        idx = np.asarray(rows.get((names[vi], f), []), np.int64)
        cand = all_boxes[idx]  # [M, 4] this frame's detections
        iou = np_iou(box[None], cand, plus_one=True)[0]  # [1, 4] x [M, 4] -> [M]
        if len(idx) and iou.max() > 0:
            best = cand[np.argmax(iou)]  # [4]
            best_iou[gi] = iou.max()
            log_wh[gi] = np.log((best[2:] - best[:2] + 1) / (box[2:] - box[:2] + 1))  # w, h
        hit = idx[iou >= 0.5]  # [M] -> the overlapping detections
        col = int(dets.labels[hit[np.argmax(dets.scores[hit])]]) if len(hit) else k
        confusion[label, col] += 1

    gt_keys = set(zip((names[v] for v in g.videos.tolist()), g.frames.tolist()))
    best_gt = [dets.scores[r].max() for key, r in rows.items() if key in gt_keys]
    best_other = [dets.scores[r].max() for key, r in rows.items() if key not in gt_keys]
    localised = int(confusion[:, :k].sum())
    per_class = {}
    for c, name in enumerate(classes):
        sel = g.labels == c
        near = log_wh[sel & (best_iou > 0)]
        band = np.digitize(best_iou[sel], [0.3, 0.5])  # 0: < 0.3, 1: 0.3-0.5, 2: >= 0.5
        share = [float(np.mean(band == k)) if sel.any() else None for k in range(3)]
        per_class[name] = {
            "gt_boxes": int(sel.sum()),
            "best_iou_below_0.3": share[0], "best_iou_0.3_to_0.5": share[1],
            "best_iou_at_least_0.5": share[2],
            "log_w_ratio": float(near[:, 0].mean()) if len(near) else None,
            "log_h_ratio": float(near[:, 1].mean()) if len(near) else None}
    return {
        "classes": classes, "gt_boxes": len(g.frames),
        "class_agnostic_frame_AP@0.5": 100 * agnostic_ap,
        "gt_boxes_localised": localised / max(1, len(g.frames)),
        "class_accuracy_on_localised": float(np.trace(confusion[:, :k])) / max(1, localised),
        "confusion": confusion.tolist(),
        "median_best_score_gt_frames": float(np.median(best_gt)) if best_gt else None,
        "median_best_score_other_frames": float(np.median(best_other)) if best_other else None,
        "localisation_per_class": per_class,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("annotations", type=Path)
    p.add_argument("detections", type=Path)
    p.add_argument("--split", default="test")
    p.add_argument("--out", type=Path)
    a = p.parse_args()
    ann = AnnotationSet.load(a.annotations).split(a.split)
    r = diagnose(ann, Detections.load(a.detections))
    print(f"class-agnostic frame AP@0.5 {r['class_agnostic_frame_AP@0.5']:.1f} "
          f"({r['gt_boxes']} GT boxes); localised {r['gt_boxes_localised']:.3f}; "
          f"class accuracy on localised {r['class_accuracy_on_localised']:.3f}")
    names = [c[:8] for c in r["classes"]] + ["none"]
    print(" " * 13 + " ".join(f"{n:>8}" for n in names))
    for c, row in zip(r["classes"], r["confusion"]):
        print(f"{c[:12]:>12} " + " ".join(f"{x:8d}" for x in row))
    def fmt(x: float | None) -> str:
        return "n/a (no detections)" if x is None else f"{x:.3f}"

    print(f"median best score: GT frames {fmt(r['median_best_score_gt_frames'])}, "
          f"other frames {fmt(r['median_best_score_other_frames'])}")
    print("best-overlapping detection per GT box: IoU <0.3 / 0.3-0.5 / >=0.5, log(w/true w), "
          "log(h/true h)")
    for c, loc in r["localisation_per_class"].items():
        if not loc["gt_boxes"]:
            continue
        sizes = ("  n/a" if loc["log_w_ratio"] is None else
                 f"{loc['log_w_ratio']:+.2f} {loc['log_h_ratio']:+.2f}")
        print(f"{c[:12]:>12} {loc['best_iou_below_0.3']:.2f} {loc['best_iou_0.3_to_0.5']:.2f} "
              f"{loc['best_iou_at_least_0.5']:.2f}  {sizes}  ({loc['gt_boxes']} boxes)")
    if a.out:
        atomic_write_json(a.out, r, indent=2)


if __name__ == "__main__":
    main()
