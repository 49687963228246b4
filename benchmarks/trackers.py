"""How well, and how fast, do OpenCV's trackers follow people on real UCF101-24 clips?

For every ground-truth tube of the six clips in ``../shared/data/ucf24/videos`` (corrected
annotations ``pyannot_with_class_names.pkl``, boxes rescaled from 320x240 to the clips' 340x256),
and every ``--stride``-th start frame of the tube that leaves room for the longest horizon, each
tracker is initialised on the ground-truth box and run ``max(--horizons)`` frames forward (and/or
backward, ``--directions``). Reported per tracker and horizon h:

* ``iou``: mean IoU with the ground truth h frames later, a failed step counting as 0;
* ``ok``: fraction of jobs still tracking at h; ``iou_ok``: mean IoU over those only;

two baselines on the same start frames and horizons:

* ``copy``: the start box copied unchanged (what a tracker must beat);
* ``gt-consecutive``: IoU of ground-truth boxes of frames t and t+1 over every pair of every tube
  (how much consecutive annotations agree: the ceiling of a 1-frame IoU);

and speed: updates per wall second and per CPU second (all threads of the process) of
``propagate_many`` with one worker (the calling thread) and with ``--workers`` threads, the
wall-clock speed-up between the two, and whether both gave identical results. Tracker init and
the RGB->BGR conversion are included, video decoding is not. OpenCV's bundled OpenBLAS runs on
``--blas-threads`` threads (default 1, as ``propagate_many`` sets it; 0 keeps OpenBLAS's own
default of one busy-waiting thread per core, to measure what that costs). The machine may be
shared: the load average is printed and stored with the timings.

    .venv/bin/python benchmarks/trackers.py --out results/trackers.json
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from weaktube.boxes import np_iou_paired
from weaktube.data.readers import read_ucf24_pyannot, rescale_to_video_sizes
from weaktube.data.video import read_video
from weaktube.fileio import atomic_write_json
from weaktube.structures import AnnotationError, Tube
from weaktube.tracking import (
    PropagationJob,
    PropagationResult,
    TrackerKind,
    TrackStatus,
    propagate_many,
)

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO / ".." / "shared" / "data"


@dataclass
class Clip:
    name: str  # annotation key, "Class/v_Class_gXX_cYY"
    frames: np.ndarray  # [T, H, W, 3] uint8 RGB
    tubes: list[Tube]  # boxes in pixels of these frames


@dataclass
class JobSet:
    """Jobs with their ground truth."""

    jobs: list[PropagationJob]
    gt: np.ndarray  # [J, S, 4] ground truth in each frame of each job's path
    start_gt: np.ndarray  # [J, 4] ground truth in each job's start frame
    clip: list[str]  # [J] clip of each job


def load_clips(data: Path) -> list[Clip]:
    """Decode every clip of ``data/ucf24/videos`` and its tubes, rescaled to the decoded size."""
    videos = sorted((data / "ucf24" / "videos").glob("*.mp4"))
    if not videos:
        raise SystemExit(f"no UCF101-24 clips under {data / 'ucf24' / 'videos'}")
    ann = read_ucf24_pyannot(data / "ucf24" / "annotations" / "pyannot_with_class_names.pkl")
    by_stem = {v.name.split("/")[-1]: v.name for v in ann.videos}
    frames, sizes = {}, {}
    for path in videos:
        if path.stem not in by_stem:
            raise AnnotationError("clip has no entry in the annotation", file=path)
        name = by_stem[path.stem]
        frames[name] = read_video(path)  # [T, H, W, 3]
        sizes[name] = (frames[name].shape[2], frames[name].shape[1])  # (width, height)
    ann = rescale_to_video_sizes(ann.subset(frames), sizes)
    clips = []
    for name, f in frames.items():
        record = ann[name]
        if len(f) != record.num_frames:
            raise AnnotationError(f"annotation says {record.num_frames} frames, the clip decodes "
                                  f"to {len(f)}", video=name, field="numf")
        clips.append(Clip(name, f, list(record.tubes)))
    return clips


def make_jobs(clips: list[Clip], stride: int, steps: int, direction: int) -> JobSet:
    """Start frames every ``stride`` frames along each tube, with ``steps`` frames of tube ahead
    (``direction=+1``) or behind (``-1``) them."""
    jobs, gt, start_gt, names = [], [], [], []
    for clip in clips:
        for tube in clip.tubes:
            first, last = tube.start_frame, tube.end_frame - 1
            if direction > 0:
                starts = range(first, last - steps + 1, stride)
            else:
                starts = range(last, first + steps - 1, -stride)
            for s in starts:
                path = [s + direction * k for k in range(1, steps + 1)]
                jobs.append(PropagationJob.from_steps(clip.frames, s, tube.box_at(s), steps,
                                                      direction))
                gt.append(np.stack([tube.box_at(t) for t in path]))  # [S, 4]
                start_gt.append(tube.box_at(s))
                names.append(clip.name)
    return JobSet(jobs, np.asarray(gt, np.float64), np.asarray(start_gt, np.float64), names)


def horizon_scores(boxes: np.ndarray, ok: np.ndarray, gt: np.ndarray,
                   horizons: list[int]) -> dict:
    """``boxes [J, S, 4]`` (NaN where failed), ``ok [J, S]``, ``gt [J, S, 4]`` -> per-horizon
    ``iou`` (failures = 0), ``ok`` fraction and ``iou_ok`` (mean over ok jobs)."""
    out = {}
    for h in horizons:
        iou = np_iou_paired(np.nan_to_num(boxes[:, h - 1]), gt[:, h - 1])  # [J]
        iou = np.where(ok[:, h - 1], iou, 0.0)
        n_ok = int(ok[:, h - 1].sum())
        out[str(h)] = {"iou": float(iou.mean()), "ok": float(ok[:, h - 1].mean()),
                       "iou_ok": float(iou[ok[:, h - 1]].mean()) if n_ok else float("nan")}
    return out


def gt_consecutive(clips: list[Clip]) -> dict:
    """IoU between the ground-truth boxes of frames t and t + 1, over every tube."""
    ious = np.concatenate([np_iou_paired(t.boxes[:-1], t.boxes[1:]) for c in clips
                           for t in c.tubes])
    return {"pairs": int(len(ious)), "iou": float(ious.mean()),
            "identical": float((ious == 1.0).mean()),
            "iou_changed": float(ious[ious < 1.0].mean())}


def stack_results(results: list[PropagationResult]) -> tuple[np.ndarray, np.ndarray]:
    boxes = np.stack([r.boxes for r in results])  # [J, S, 4]
    ok = np.stack([r.ok for r in results])  # [J, S]
    return boxes, ok


def first_failure(result: PropagationResult) -> TrackStatus | None:
    """Why a job stopped tracking (its init or first failed step), or None if it never did."""
    if result.init_status is not TrackStatus.OK:
        return result.init_status
    return next((s for s in result.status if s is not TrackStatus.OK), None)


def _timed(jobs: list[PropagationJob], kind: TrackerKind, workers: int,
           blas_threads: int | None) -> tuple[list[PropagationResult], float, float]:
    """Results, wall seconds and CPU seconds (all threads of this process)."""
    wall, cpu = time.perf_counter(), time.process_time()
    results = propagate_many(jobs, kind, workers=workers, blas_threads=blas_threads)
    return results, time.perf_counter() - wall, time.process_time() - cpu


def run_tracker(kind: TrackerKind, jobset: JobSet, horizons: list[int], workers: int,
                blas_threads: int | None) -> dict:
    updates = sum(len(j.path) for j in jobset.jobs)
    single, wall_1, cpu_1 = _timed(jobset.jobs, kind, 1, blas_threads)
    pooled, wall_n, cpu_n = _timed(jobset.jobs, kind, workers, blas_threads)
    boxes, ok = stack_results(single)
    failures: dict[str, int] = {}
    for r in single:
        first = first_failure(r)
        if first is not None:
            failures[first.value] = failures.get(first.value, 0) + 1
    clip_names = np.array(jobset.clip)
    per_clip = {}
    for name in sorted(set(jobset.clip)):
        sel = clip_names == name
        per_clip[name] = horizon_scores(boxes[sel], ok[sel], jobset.gt[sel], horizons)
    return {
        "horizons": horizon_scores(boxes, ok, jobset.gt, horizons),
        "per_clip": per_clip,
        "first_failures": failures,
        "updates": updates,
        "speed": {
            "wall_s_1_worker": wall_1, "cpu_s_1_worker": cpu_1,
            "wall_s_pool": wall_n, "cpu_s_pool": cpu_n,
            "updates_per_s_1_worker": updates / wall_1,
            "updates_per_cpu_s_1_worker": updates / cpu_1,
            "updates_per_s_pool": updates / wall_n,
            "updates_per_cpu_s_pool": updates / cpu_n,
            "speedup": wall_1 / wall_n,
        },
        "pool_identical": all(a.equals(b) for a, b in zip(single, pooled)),
    }


def copy_baseline(jobset: JobSet, horizons: list[int]) -> dict:
    boxes = np.repeat(jobset.start_gt[:, None], jobset.gt.shape[1], axis=1)  # [J, 4] -> [J, S, 4]
    ok = np.ones(boxes.shape[:2], dtype=bool)
    return {"horizons": horizon_scores(boxes, ok, jobset.gt, horizons)}


def format_tables(direction: str, jobset: JobSet, rows: dict, horizons: list[int],
                  workers: int) -> str:
    last = horizons[-1]
    head = (f"{'method':<8}" + "".join(f"  IoU@{h:<3}" for h in horizons)
            + f"  ok@{last:<3}  IoU_ok@{last:<3}  first failures")
    lines = [f"{direction}: {len(jobset.jobs)} jobs x {jobset.gt.shape[1]} frames; mean IoU with "
             "the ground truth (a failed step counts 0); ok = still tracking; IoU_ok = mean over "
             "those", head, "-" * len(head)]
    for name, r in rows.items():
        hs = r["horizons"]
        cells = "".join(f"  {hs[str(h)]['iou']:7.3f}" for h in horizons)
        fails = ", ".join(f"{k} {v}" for k, v in sorted(r.get("first_failures", {}).items()))
        cells += f"  {hs[str(last)]['ok']:6.3f}  {hs[str(last)]['iou_ok']:9.3f}  {fails}"
        lines.append(f"{name:<8}{cells}")
    head = (f"{'method':<8}  {'upd/s':>8}  {'upd/cpu-s':>9}  {'upd/s':>8}  {'upd/cpu-s':>9}"
            f"  {'speed-up':>8}  identical")
    lines += ["", f"speed ({direction}): 1 worker | {workers} workers (thread pool); upd/s = "
              "updates per wall second, upd/cpu-s = per CPU second of all threads",
              head, "-" * len(head)]
    for name, r in rows.items():
        if "speed" not in r:
            continue
        sp = r["speed"]
        lines.append(f"{name:<8}  {sp['updates_per_s_1_worker']:8.1f}  "
                     f"{sp['updates_per_cpu_s_1_worker']:9.1f}  {sp['updates_per_s_pool']:8.1f}  "
                     f"{sp['updates_per_cpu_s_pool']:9.1f}  {sp['speedup']:8.2f}  "
                     f"{'yes' if r['pool_identical'] else 'NO'}")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared data folder")
    p.add_argument("--trackers", nargs="+", default=[k.value for k in TrackerKind],
                   choices=[k.value for k in TrackerKind])
    p.add_argument("--horizons", nargs="+", type=int, default=[1, 4, 8, 15])
    p.add_argument("--stride", type=int, default=4, help="start a job every N frames of a tube")
    p.add_argument("--directions", nargs="+", default=["forward"],
                   choices=["forward", "backward"])
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="threads for the thread-pool run (default: the number of CPUs)")
    p.add_argument("--cv-threads", type=int, default=None,
                   help="cv2.setNumThreads for OpenCV's own parallel loops (default: untouched)")
    p.add_argument("--blas-threads", type=int, default=1,
                   help="threads of OpenCV's bundled OpenBLAS (0: leave its default, one per core)")
    p.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    args = p.parse_args()
    horizons = sorted(set(args.horizons))
    if horizons[0] < 1:
        p.error("horizons must be >= 1")
    if args.cv_threads is not None:
        cv2.setNumThreads(args.cv_threads)

    clips = load_clips(args.data.resolve())
    consecutive = gt_consecutive(clips)
    load_before = os.getloadavg()
    report: dict = {
        "clips": [c.name for c in clips],
        "tubes": sum(len(c.tubes) for c in clips),
        "stride": args.stride,
        "horizons": horizons,
        "workers": args.workers,
        "opencv": cv2.__version__,
        "opencv_threads": cv2.getNumThreads(),
        "opencv_blas_threads": args.blas_threads or "default",
        "cpus": os.cpu_count(),
        "machine": platform.platform(),
        "gt_consecutive": consecutive,
        "directions": {},
    }
    blas = args.blas_threads or "default"
    print(f"{len(clips)} clips, {report['tubes']} tubes, start every {args.stride} frames; "
          f"OpenCV {cv2.__version__} ({cv2.getNumThreads()} OpenCV threads, OpenBLAS threads: "
          f"{blas}), {os.cpu_count()} CPUs, load average before {load_before[0]:.2f}")
    for direction in args.directions:
        jobset = make_jobs(clips, args.stride, horizons[-1], 1 if direction == "forward" else -1)
        rows = {kind: run_tracker(TrackerKind(kind), jobset, horizons, args.workers,
                                  args.blas_threads or None)
                for kind in args.trackers}
        rows["copy"] = copy_baseline(jobset, horizons)
        report["directions"][direction] = {"jobs": len(jobset.jobs), "methods": rows}
        print()
        print(format_tables(direction, jobset, rows, horizons, args.workers))
    load_after = os.getloadavg()
    report["load_average_before_after"] = [load_before[0], load_after[0]]
    print(f"\ngt-consecutive (t -> t+1): mean IoU {consecutive['iou']:.3f} over "
          f"{consecutive['pairs']} pairs; {consecutive['identical']:.0%} identical, mean IoU of "
          f"the others {consecutive['iou_changed']:.3f}")
    print(f"load average after {load_after[0]:.2f} (2 busy cores = 2.0: timings are only "
          "comparable on an idle machine)")
    if args.out is not None:
        atomic_write_json(args.out, report, indent=1)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
