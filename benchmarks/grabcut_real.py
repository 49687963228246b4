"""Does GrabCut tightening (``weaktube pseudo-label --tighten``) help on real video?

The pseudo-tube round's tightening (:func:`weaktube.infer.pseudo.tighten_box`) was measured on
synthetic actors only, GrabCut's best case (flat-coloured figures on textured ground). This
benchmark measures it on the six real UCF101-24 clips in ``../shared/data/ucf24/videos``
(corrected annotations, boxes rescaled from 320x240 to the clips' 340x256): every
``--stride``-th frame of every ground-truth tube gives one person box, which is perturbed the
way pseudo-labels go wrong and then tightened. Perturbations (about the box centre, clipped to
the frame; the random ones seeded by ``--seed``):

* ``exact``: the ground-truth box itself (does tightening damage a right box?);
* ``wide``: width x 1.5, height x 1.2 (the synthetic A->B labels were 37-60 % too wide);
* ``loose``: width and height x 1.3, centre shifted by up to 10 % of the box per axis;
* ``small``: width and height x 0.85 (tightening may grow a box by ``margin`` per side).

Reported per perturbation and ``--margins`` value: mean IoU with the ground truth before and
after tightening, the share of boxes at IoU >= 0.5 and >= 0.7 before and after, the mean
log(width ratio) and log(height ratio) to the ground truth after, how often GrabCut gave up
(the box came back unchanged), milliseconds per box, and the same IoU figures per clip.

    .venv/bin/python benchmarks/grabcut_real.py --out results/grabcut_real.json
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from weaktube.boxes import np_clip, np_iou_paired
from weaktube.fileio import atomic_write_json
from weaktube.infer.pseudo import tighten_box

sys.path.insert(0, str(Path(__file__).resolve().parent))
from trackers import DEFAULT_DATA, Clip, load_clips  # noqa: E402  (a sibling script)

PERTURBATIONS = ("exact", "wide", "loose", "small")


def sample_boxes(clips: list[Clip], stride: int) -> tuple[list[tuple[int, int]], np.ndarray]:
    """``([(clip index, frame)] * N, gt [N, 4] pixels)``: every ``stride``-th frame of each
    tube."""
    where, gt = [], []
    for ci, clip in enumerate(clips):
        for tube in clip.tubes:
            for f in range(tube.start_frame, tube.end_frame, stride):
                where.append((ci, f))
                gt.append(tube.box_at(f))
    return where, np.asarray(gt, np.float64)


def perturb(gt: np.ndarray, kind: str, rng: np.random.Generator, width: int | np.ndarray,
            height: int | np.ndarray) -> np.ndarray:
    """``gt [N, 4]`` pixels -> ``[N, 4]`` pixels, rescaled about the centre as ``kind`` says and
    clipped to ``[0, width] x [0, height]`` (scalars, or ``[N]`` per box)."""
    cx, cy = (gt[:, 0] + gt[:, 2]) / 2, (gt[:, 1] + gt[:, 3]) / 2  # [N]
    w, h = gt[:, 2] - gt[:, 0], gt[:, 3] - gt[:, 1]
    sx, sy = {"exact": (1.0, 1.0), "wide": (1.5, 1.2), "loose": (1.3, 1.3),
              "small": (0.85, 0.85)}[kind]
    if kind == "loose":
        cx = cx + rng.uniform(-0.1, 0.1, len(gt)) * w
        cy = cy + rng.uniform(-0.1, 0.1, len(gt)) * h
    out = np.stack([cx - sx * w / 2, cy - sy * h / 2, cx + sx * w / 2, cy + sy * h / 2], axis=1)
    return np_clip(out, np.reshape(width, (-1, 1)), np.reshape(height, (-1, 1)))  # [N|1, 1]


def iou_summary(boxes: np.ndarray, gt: np.ndarray) -> dict:
    iou = np_iou_paired(boxes, gt)  # [N]
    return {"iou": float(iou.mean()), "iou>=0.5": float((iou >= 0.5).mean()),
            "iou>=0.7": float((iou >= 0.7).mean())}


def size_error(boxes: np.ndarray, gt: np.ndarray) -> dict:
    """Mean log(width ratio) and log(height ratio) of ``boxes`` to ``gt`` (0: right size)."""
    w = np.log((boxes[:, 2] - boxes[:, 0]) / (gt[:, 2] - gt[:, 0]))
    h = np.log((boxes[:, 3] - boxes[:, 1]) / (gt[:, 3] - gt[:, 1]))
    return {"log_w": float(w.mean()), "log_h": float(h.mean())}


def run(clips: list[Clip], where: list[tuple[int, int]], gt: np.ndarray, kind: str,
        margin: float, iters: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    size = np.array([clips[ci].frames.shape[1:3] for ci, _ in where])  # [N, 2] (height, width)
    before = perturb(gt, kind, rng, size[:, 1], size[:, 0])
    t0 = time.perf_counter()
    after = np.stack([tighten_box(clips[ci].frames[f], b, margin, iters)
                      for (ci, f), b in zip(where, before)])  # [N, 4]
    ms = 1000 * (time.perf_counter() - t0) / len(gt)
    names = np.array([clips[ci].name for ci, _ in where])
    per_clip = {n: {"boxes": int((names == n).sum()),
                    "before": iou_summary(before[names == n], gt[names == n]),
                    "after": iou_summary(after[names == n], gt[names == n])}
                for n in sorted(set(names))}
    return {"before": iou_summary(before, gt) | size_error(before, gt),
            "after": iou_summary(after, gt) | size_error(after, gt),
            "unchanged": float(np.all(after == before, axis=1).mean()),
            "ms_per_box": ms, "per_clip": per_clip}


def format_table(rows: dict) -> str:
    head = (f"{'boxes':<7} {'margin':>6}  {'IoU':>11}  {'>=0.5':>11}  {'>=0.7':>11}  "
            f"{'log w':>5} {'log h':>5}  {'gave up':>7}  {'ms/box':>6}")
    lines = ["mean over boxes, before -> after tightening", head, "-" * len(head)]
    for key, r in rows.items():
        kind, margin = key.split("@")
        b, a = r["before"], r["after"]
        lines.append(f"{kind:<7} {float(margin):6.2f}  {b['iou']:.3f}->{a['iou']:.3f}  "
                     f"{b['iou>=0.5']:.3f}->{a['iou>=0.5']:.3f}  "
                     f"{b['iou>=0.7']:.3f}->{a['iou>=0.7']:.3f}  {a['log_w']:+5.2f} "
                     f"{a['log_h']:+5.2f}  {r['unchanged']:7.3f}  {r['ms_per_box']:6.1f}")
    lines += ["", "per clip, mean IoU before -> after (" + ", ".join(rows) + ")"]
    for name in next(iter(rows.values()))["per_clip"]:
        cells = "  ".join(f"{r['per_clip'][name]['before']['iou']:.2f}->"
                          f"{r['per_clip'][name]['after']['iou']:.2f}" for r in rows.values())
        lines.append(f"{name:<40} {cells}")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared data folder")
    p.add_argument("--stride", type=int, default=2, help="every N-th frame of each tube")
    p.add_argument("--perturbations", nargs="+", default=list(PERTURBATIONS),
                   choices=PERTURBATIONS)
    p.add_argument("--margins", nargs="+", type=float, default=[0.1],
                   help="tighten_box margin (the pseudo-label default is 0.1)")
    p.add_argument("--iters", type=int, default=3, help="GrabCut iterations per box")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    args = p.parse_args()
    if args.stride < 1:
        p.error("--stride must be >= 1")
    cv2.setNumThreads(1)
    clips = load_clips(args.data.resolve())
    where, gt = sample_boxes(clips, args.stride)
    print(f"{len(clips)} clips, {sum(len(c.tubes) for c in clips)} tubes, {len(gt)} boxes "
          f"(every {args.stride} frames); OpenCV {cv2.__version__}, one OpenCV thread, "
          f"load average {os.getloadavg()[0]:.2f}")
    rows = {f"{kind}@{m:g}": run(clips, where, gt, kind, m, args.iters, args.seed)
            for kind in args.perturbations for m in args.margins}
    print(format_table(rows))
    if args.out is not None:
        report = {"clips": [c.name for c in clips], "boxes": len(gt), "stride": args.stride,
                  "iters": args.iters, "seed": args.seed, "opencv": cv2.__version__,
                  "machine": platform.platform(), "processor": platform.processor(),
                  "rows": rows}
        atomic_write_json(args.out, report, indent=1)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
