"""Speed of the evaluator on synthetic, seeded data of the sizes the issue targets.

* frame-mAP: 1,000,000 detections against 100,000 ground-truth boxes (500 videos x 200 frames,
  one tube each, 24 classes), ACT and YOWO profiles;
* video-mAP: 10,000 predicted tubes against 1,500 ground-truth tubes in 1,000 videos, all 11
  thresholds, with and without ACT's 3D-NMS;
* temporal mAP: 200,000 predicted segments against 10,000 ground-truth segments, 14 thresholds.

Each timing is the median of ``--repeats`` runs (building the inputs is not timed).

    .venv/bin/python benchmarks/eval_speed.py --out results/eval_speed.json
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np

from weaktube.evaluate import frame_ap, temporal_ap, video_ap
from weaktube.fileio import atomic_write_json
from weaktube.structures import (
    AnnotationSet,
    Detections,
    Segment,
    SegmentPredictions,
    Tube,
    TubePredictions,
    VideoRecord,
)

NUM_CLASSES = 24
W, H = 320, 240


def _random_boxes(rng: np.random.Generator, n: int) -> np.ndarray:
    """``[n, 4]`` random boxes inside a W x H frame."""
    xy = rng.uniform(0, [W - 40, H - 40], size=(n, 2))
    wh = rng.uniform(20, 120, size=(n, 2))
    return np.concatenate([xy, np.minimum(xy + wh, [W - 1, H - 1])], axis=1)


def _jitter(rng: np.random.Generator, boxes: np.ndarray, amp: float) -> np.ndarray:
    """Boxes moved by up to ``amp`` pixels per coordinate, kept valid."""
    out = boxes + rng.uniform(-amp, amp, size=boxes.shape)
    out[:, 2:] = np.maximum(out[:, 2:], out[:, :2] + 1.0)
    return out


def frame_case(rng: np.random.Generator, num_dets: int = 1_000_000, videos: int = 500,
               frames: int = 200) -> tuple[AnnotationSet, Detections]:
    classes = [f"c{i}" for i in range(NUM_CLASSES)]
    recs = []
    for v in range(videos):
        centre = _random_boxes(rng, 1)
        boxes = _jitter(rng, np.repeat(centre, frames, axis=0), 6.0).astype(np.float32)
        recs.append(VideoRecord(f"v{v:04d}", frames, W, H, 25.0, "test",
                                [Tube(int(rng.integers(NUM_CLASSES)), 0, boxes)]))
    gt = AnnotationSet(classes, recs)
    names = np.array([r.name for r in recs], dtype=object)
    gt_boxes = np.stack([r.tubes[0].boxes for r in recs])  # [V, F, 4]
    gt_labels = np.array([r.tubes[0].label for r in recs])
    # Half the detections near a ground-truth box (5 per box), half anywhere.
    n_near = videos * frames * 5
    n_far = num_dets - n_near
    v_near = np.repeat(np.arange(videos), frames * 5)
    f_near = np.tile(np.repeat(np.arange(frames), 5), videos)
    near = _jitter(rng, gt_boxes[v_near, f_near].astype(np.float64), 15.0)
    lab_near = np.where(rng.random(n_near) < 0.5, gt_labels[v_near],
                        rng.integers(NUM_CLASSES, size=n_near))
    v_far = rng.integers(videos, size=n_far)
    det = Detections(
        np.concatenate([names[v_near], names[v_far]]),
        np.concatenate([f_near, rng.integers(frames, size=n_far)]).astype(np.int64),
        np.concatenate([lab_near, rng.integers(NUM_CLASSES, size=n_far)]).astype(np.int64),
        rng.random(num_dets).astype(np.float32),
        np.concatenate([near, _random_boxes(rng, n_far)]).astype(np.float32),
    )
    return gt, det


def video_case(rng: np.random.Generator, num_tubes: int = 10_000,
               videos: int = 1000) -> tuple[AnnotationSet, TubePredictions]:
    classes = [f"c{i}" for i in range(NUM_CLASSES)]
    recs = []
    for v in range(videos):
        n_frames = int(rng.integers(120, 300))
        tubes = []
        for _ in range(1 + int(rng.random() < 0.5)):
            length = int(rng.integers(40, n_frames))
            start = int(rng.integers(0, n_frames - length + 1))
            boxes = _jitter(rng, np.repeat(_random_boxes(rng, 1), length, axis=0), 6.0)
            tubes.append(Tube(int(rng.integers(NUM_CLASSES)), start, boxes.astype(np.float32)))
        recs.append(VideoRecord(f"v{v:04d}", n_frames, W, H, 25.0, "test", tubes))
    gt = AnnotationSet(classes, recs)
    vids, labels, starts, boxes = [], [], [], []
    for i in range(num_tubes):
        rec = recs[i % videos]
        t = rec.tubes[int(rng.integers(len(rec.tubes)))]
        s = int(np.clip(t.start_frame + rng.integers(-20, 21), 0, rec.num_frames - 10))
        e = int(np.clip(t.end_frame + rng.integers(-20, 21), s + 10, rec.num_frames))
        ref = np.asarray(t.boxes, np.float64)
        idx = np.clip(np.arange(s, e) - t.start_frame, 0, len(ref) - 1)
        vids.append(rec.name)
        labels.append(t.label if rng.random() < 0.6 else int(rng.integers(NUM_CLASSES)))
        starts.append(s)
        boxes.append(_jitter(rng, ref[idx], 10.0))
    tubes = TubePredictions(np.array(vids, dtype=object), np.array(labels, np.int64),
                            rng.random(num_tubes), np.array(starts, np.int64), boxes)
    return gt, tubes


def temporal_case(rng: np.random.Generator, num_preds: int = 200_000, videos: int = 1000,
                  per_video: int = 10) -> tuple[AnnotationSet, SegmentPredictions]:
    classes = [f"c{i}" for i in range(NUM_CLASSES)]
    recs = []
    for v in range(videos):
        dur = 300.0
        st = np.sort(rng.uniform(0, dur - 20, per_video))
        segs = [Segment(int(rng.integers(NUM_CLASSES)), float(s), float(s + rng.uniform(2, 20)))
                for s in st]
        recs.append(VideoRecord(f"v{v:04d}", int(dur * 25), 0, 0, 25.0, "test", [], segs))
    gt = AnnotationSet(classes, recs)
    ref_v = rng.integers(videos, size=num_preds)
    ref_s = rng.integers(per_video, size=num_preds)
    g_start = np.array([[s.start for s in r.segments] for r in recs])
    g_end = np.array([[s.end for s in r.segments] for r in recs])
    g_lab = np.array([[s.label for s in r.segments] for r in recs])
    starts = g_start[ref_v, ref_s] + rng.uniform(-3, 3, num_preds)
    ends = np.maximum(g_end[ref_v, ref_s] + rng.uniform(-3, 3, num_preds), starts + 0.5)
    labels = np.where(rng.random(num_preds) < 0.5, g_lab[ref_v, ref_s],
                      rng.integers(NUM_CLASSES, size=num_preds))
    names = np.array([r.name for r in recs], dtype=object)
    return gt, SegmentPredictions(names[ref_v], labels.astype(np.int64), rng.random(num_preds),
                                  starts, ends)


def median_seconds(fn: Callable[[], object], repeats: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", help="write the timings as JSON here (atomic)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    rng = np.random.default_rng(args.seed)

    gt_f, det = frame_case(rng)
    gt_v, tubes = video_case(rng)
    gt_t, segs = temporal_case(rng)
    n_gt_boxes = sum(len(t.boxes) for v in gt_f.videos for t in v.tubes)
    n_gt_tubes = sum(len(v.tubes) for v in gt_v.videos)
    n_gt_segs = sum(len(v.segments) for v in gt_t.videos)
    cases = {
        "frame_mAP_act": (lambda: frame_ap(gt_f, det, 0.5, "act"),
                          {"detections": len(det), "gt_boxes": n_gt_boxes}),
        "frame_mAP_yowo": (lambda: frame_ap(gt_f, det, 0.5, "yowo"),
                           {"detections": len(det), "gt_boxes": n_gt_boxes}),
        "video_mAP_11_thresholds": (lambda: video_ap(gt_v, tubes),
                                    {"tubes": len(tubes), "gt_tubes": n_gt_tubes}),
        "video_mAP_11_thresholds_nms3d": (lambda: video_ap(gt_v, tubes, nms_threshold=0.3),
                                          {"tubes": len(tubes), "gt_tubes": n_gt_tubes}),
        "temporal_mAP_14_thresholds": (lambda: temporal_ap(gt_t, segs),
                                       {"segments": len(segs), "gt_segments": n_gt_segs}),
    }
    results = {}
    for name, (fn, sizes) in cases.items():
        med, times = median_seconds(fn, args.repeats)
        results[name] = {"median_s": round(med, 3), "runs_s": [round(t, 3) for t in times],
                         **sizes}
        print(f"{name:32s} median {med:7.3f} s   runs {', '.join(f'{t:.3f}' for t in times)}"
              f"   {sizes}")
    # A sanity number, so a broken evaluator cannot look fast.
    results["frame_mAP_act_value"] = round(100 * frame_ap(gt_f, det, 0.5, "act").mean_ap, 3)
    print(f"frame_mAP_act on this case: {results['frame_mAP_act_value']:.3f} %")
    out = {"seed": args.seed, "repeats": args.repeats, "python": platform.python_version(),
           "numpy": np.__version__, "machine": platform.machine(), "results": results}
    if args.out:
        atomic_write_json(args.out, out, indent=2)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
