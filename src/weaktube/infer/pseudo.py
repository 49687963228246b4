"""Pseudo-tubes: a trained detector's boxes turned into box labels inside known action segments.

A second round of weak supervision, not in the paper (docs/WEAK.md, "Pseudo-tube round"): after
the target stage, the detector runs over the weakly labelled training videos, and inside every
action segment (whose class and extent the weak labels give) the best-scoring chain of its
boxes becomes a tube with the segment's class. The result is a canonical annotation file with
tubes, which the fully supervised (source) stage trains on like any boxed dataset.

Per segment ``[a, b)`` (frames ``a <= f < b``, :meth:`Segment.frame_range`):

1. the detections of frames ``a .. b-1``, any label, the ``top_k`` best per frame;
2. one path through them, the best by ``sum score + iou_weight * sum IoU(consecutive boxes)``
   (:func:`weaktube.infer.link.link_viterbi`, class-agnostic, every link allowed up to
   ``max_gap`` missed frames, no IoU minimum);
3. a box for every frame: linear interpolation between the path's boxes, the first / last box
   held before / after them; optionally (``tighten``) each box shrunk to the foreground that
   GrabCut finds inside it (:func:`tighten_box`); then a centred moving average of ``smooth``
   frames per coordinate, clipped to the frame ``[0, W] x [0, H]`` (continuous corners).

A video keeps its segments and gains one tube per segment that covers a frame (a segment
between two frames, or after the last, labels nothing and is skipped); a video with a segment
that has no detection, whose path's mean score is below ``min_score``, or whose path leaves
the frame (a box of no area once clipped), is left out of the output (a fully supervised stage
would take its action frames for background). Ambiguous segments are never labels: a video
with one is left out too. Videos of other splits are copied unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from weaktube.boxes import np_clip, np_iou_paired
from weaktube.data.dataset import FrameStore
from weaktube.infer.link import LinkConfig, link_viterbi
from weaktube.infer.temporal import moving_average, video_index
from weaktube.structures import AnnotationSet, Detections, Segment, Tube, VideoRecord


@dataclass
class PseudoConfig:
    """Parameters of :func:`pseudo_tubes` (module docstring)."""

    split: str = "train"  # the split whose segments get tubes; other splits are copied
    top_k: int = 10  # detections per frame that may lie on a path (highest scores)
    iou_weight: float = 1.0  # a link's gain: the new box's score + this * IoU with the last
    max_gap: int = 8  # a path may skip up to this many frames without a detection
    smooth: int = 5  # centred moving average of the boxes over this many frames (1: none)
    min_score: float = 0.0  # a segment whose path's mean box score is lower drops its video
    # GrabCut tightening of every box to the foreground inside it (needs the frames): off by
    # default; margin: the box is first grown by this share of its width / height per side
    tighten: bool = False
    tighten_margin: float = 0.1
    tighten_iters: int = 3  # GrabCut iterations per box

    def __post_init__(self) -> None:
        for name in ("top_k", "smooth", "tighten_iters"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_gap < 0 or self.iou_weight < 0 or self.tighten_margin < 0:
            raise ValueError("max_gap, iou_weight and tighten_margin must be >= 0")


@dataclass
class PseudoReport:
    """What :func:`pseudo_tubes` did: counts, and the videos it left out with the reason."""

    videos_in: int = 0
    videos_out: int = 0
    tubes: int = 0
    mean_path_score: float | None = None  # over the output tubes; None without any
    dropped: dict[str, str] = field(default_factory=dict)  # video name -> why


def tighten_box(image: np.ndarray, box: np.ndarray, margin: float = 0.1, iters: int = 3
                ) -> np.ndarray:
    """``box [4]`` (pixels, continuous corners) shrunk to the foreground GrabCut separates in it.

    ``image [H, W, 3]`` uint8 RGB. The box, grown by ``margin`` of its width / height per side,
    is GrabCut's "probably foreground" rectangle (``GC_INIT_WITH_RECT``, ``iters`` iterations)
    on a crop of the image that adds ``max(0.5, margin + 0.25)`` of the box's size of context
    per side; the result is the bounding box of the foreground pixels. The box is returned
    unchanged when it is under 4 pixels wide or high, when the rectangle leaves no background
    in the crop (a box filling the frame), when GrabCut fails, or when the foreground covers
    less than a tenth of the rectangle (nothing to separate). Weakly supervised segmentation's
    box-to-mask step (Khoreva et al., "Simple Does It", 2017), used here for boxes only.
    """
    h, w = image.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box)
    bw, bh = x2 - x1, y2 - y1
    unchanged = np.asarray(box, np.float64)
    if bw < 4 or bh < 4:
        return unchanged
    # pixel columns / rows [r1, r2) of the grown box, and of the crop around it
    rx1, ry1 = max(0, int(np.floor(x1 - margin * bw))), max(0, int(np.floor(y1 - margin * bh)))
    rx2, ry2 = min(w, int(np.ceil(x2 + margin * bw))), min(h, int(np.ceil(y2 + margin * bh)))
    context = max(0.5, margin + 0.25)
    cx1, cy1 = max(0, int(np.floor(x1 - context * bw))), max(0, int(np.floor(y1 - context * bh)))
    cx2, cy2 = min(w, int(np.ceil(x2 + context * bw))), min(h, int(np.ceil(y2 + context * bh)))
    if (rx1, ry1, rx2, ry2) == (cx1, cy1, cx2, cy2):
        return unchanged  # no background pixel for GrabCut's colour model
    crop = np.ascontiguousarray(image[cy1:cy2, cx1:cx2, ::-1])  # RGB -> BGR, [h', w', 3]
    mask = np.zeros(crop.shape[:2], np.uint8)
    bgd, fgd = np.zeros((1, 65)), np.zeros((1, 65))
    rect = (rx1 - cx1, ry1 - cy1, rx2 - rx1, ry2 - ry1)
    try:
        cv2.grabCut(crop, mask, rect, bgd, fgd, iters, cv2.GC_INIT_WITH_RECT)
    except cv2.error:
        return unchanged  # e.g. too few background samples for its mixture model
    ys, xs = np.nonzero((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD))
    if len(xs) < 0.1 * rect[2] * rect[3]:
        return unchanged
    return np.array([xs.min() + cx1, ys.min() + cy1, xs.max() + 1 + cx1, ys.max() + 1 + cy1],
                    np.float64)


def segment_tube(frames: np.ndarray, scores: np.ndarray, boxes: np.ndarray,
                 first: int, end: int, width: int, height: int, cfg: PseudoConfig,
                 images: np.ndarray | None = None) -> tuple[np.ndarray, float] | None:
    """One segment's pseudo-tube from the detections inside it.

    ``frames [M]`` 0-based in ``[first, end)``, ``scores [M]``, ``boxes [M, 4]`` pixels;
    ``images [end - first, H, W, 3]`` uint8 RGB, the segment's frames (``cfg.tighten`` only).
    Returns ``(boxes [end - first, 4] float64 pixels, mean score of the path's detections)``,
    or None when there is no detection.
    """
    if len(frames) == 0 or end <= first:
        return None
    # the top_k per frame, sorted by frame then descending score: [M] -> [M']
    order = np.lexsort((-scores, frames))
    f_sorted = frames[order]
    start = np.searchsorted(f_sorted, f_sorted, side="left")
    keep = order[np.arange(len(order)) - start < cfg.top_k]
    frames, scores, boxes = frames[keep], scores[keep], boxes[keep]
    link = LinkConfig(method="viterbi", iou_threshold=0.0, iou_weight=cfg.iou_weight,
                      max_gap=cfg.max_gap, start_threshold=0.0, max_paths=1, min_score=0.0)
    path = link_viterbi(frames, np.zeros(len(frames), np.int64), scores, boxes, link)[0]
    t = np.arange(first, end)
    dense = np.stack([np.interp(t, frames[path], boxes[path, c]) for c in range(4)],
                     axis=1)  # 4 x [T] -> [T, 4]; np.interp holds the end values outside
    if cfg.tighten:
        if images is None or len(images) != len(dense):
            raise ValueError(f"tighten needs the segment's {len(dense)} frames")
        dense = np.stack([tighten_box(im, b, cfg.tighten_margin, cfg.tighten_iters)
                          for im, b in zip(images, dense, strict=True)])
    dense = np_clip(moving_average(dense, cfg.smooth), width, height)  # [T, 4] in [0, W] x [0, H]
    return dense, float(scores[path].mean())


def pseudo_tubes(ann: AnnotationSet, dets: Detections, cfg: PseudoConfig | None = None,
                 store: FrameStore | None = None) -> tuple[AnnotationSet, PseudoReport]:
    """Weak annotations + detections on their ``cfg.split`` videos -> the same file with a
    pseudo-tube per segment there (module docstring). Existing tubes of those videos are
    replaced. ``store``: the videos' frames, needed with ``cfg.tighten``."""
    cfg = cfg or PseudoConfig()
    if cfg.tighten and store is None:
        raise ValueError("PseudoConfig.tighten needs the videos (store)")
    names, vid = video_index(np.asarray(dets.videos, dtype=object)) if len(dets) else ([], None)
    rows_of = {n: np.flatnonzero(vid == i) for i, n in enumerate(names)}
    report = PseudoReport()
    out: list[VideoRecord] = []
    path_scores: list[float] = []
    for v in ann.videos:
        if v.split != cfg.split:
            out.append(v)
            continue
        report.videos_in += 1
        tubes, why = _video_tubes(v, dets, rows_of.get(v.name), cfg, path_scores, store)
        if why:
            report.dropped[v.name] = why
            continue
        out.append(replace(v, tubes=tubes))
        report.videos_out += 1
        report.tubes += len(tubes)
    if path_scores:
        report.mean_path_score = float(np.mean(path_scores))
    return AnnotationSet(classes=list(ann.classes), videos=out), report


def _video_tubes(v: VideoRecord, dets: Detections, rows: np.ndarray | None,
                 cfg: PseudoConfig, path_scores: list[float], store: FrameStore | None
                 ) -> tuple[list[Tube], str]:
    """The pseudo-tubes of one video, or ``([], reason)`` when it is left out."""
    if not v.segments:
        return [], "no segment"
    if any(s.ambiguous for s in v.segments):
        return [], "an ambiguous segment"
    rows = np.zeros(0, np.int64) if rows is None else rows
    # this video's detections, converted once: [R], [R], [R, 4]
    frames = np.asarray(dets.frames[rows], np.int64)
    det_scores = np.asarray(dets.scores[rows], np.float64)
    det_boxes = np.asarray(dets.boxes[rows], np.float64)
    tubes, scores = [], []
    # [T, H, W, 3]; FrameStore checks the frame count and size against the record
    video = store.video(v) if cfg.tighten and store is not None else None
    for k, s in enumerate(v.segments):
        first, end = _clamped_range(s, v)
        if end <= first:
            continue  # a segment between two frames, or after the last one: labels no frame
        inside = (frames >= first) & (frames < end)
        got = segment_tube(frames[inside], det_scores[inside], det_boxes[inside],
                           first, end, v.width, v.height, cfg,
                           None if video is None else video[first:end])
        if got is None:
            return [], f"segment {k} (frames {first}-{end - 1}): no detection"
        boxes, score = got
        if np.any((boxes[:, 2] <= boxes[:, 0]) | (boxes[:, 3] <= boxes[:, 1])):
            return [], f"segment {k}: a box of no area (the detections lie outside the frame)"
        if score < cfg.min_score:
            return [], f"segment {k}: path score {score:.3f} < min_score {cfg.min_score}"
        tubes.append(Tube(label=s.label, start_frame=first, boxes=boxes.astype(np.float32)))
        scores.append(score)
    path_scores.extend(scores)
    return tubes, ""


def _clamped_range(s: Segment, v: VideoRecord) -> tuple[int, int]:
    first, end = s.frame_range(v.fps)
    return min(first, v.num_frames), min(end, v.num_frames)


def tube_agreement(pseudo: AnnotationSet, truth: AnnotationSet, split: str = "train") -> dict:
    """How well pseudo-tubes match true ones, over the frames of ``split`` where both have a box
    (the best-matching true box of each pseudo box): mean IoU, share with IoU >= 0.5, and the
    mean log size ratios (pseudo / true width and height; > 0: too large); None where there is
    no box to compare. Over the videos both files have: a true box in a frame without a pseudo
    box counts in ``missed_true_boxes``; videos left out of ``pseudo`` are not counted."""
    ious, lw, lh, missed, total = [], [], [], 0, 0
    for v in pseudo.split(split).videos:
        if v.name not in truth:
            continue
        t = truth[v.name]
        for f in range(v.num_frames):
            gt, _ = t.boxes_at(f)
            pb, _ = v.boxes_at(f)
            total += len(gt)
            if not len(gt):
                continue
            if not len(pb):
                missed += len(gt)
                continue
            for b in pb:
                iou = np_iou_paired(np.repeat(b[None], len(gt), 0), gt)
                g = gt[int(np.argmax(iou))]
                ious.append(float(iou.max()))
                lw.append(float(np.log((b[2] - b[0]) / (g[2] - g[0]))))
                lh.append(float(np.log((b[3] - b[1]) / (g[3] - g[1]))))
    ious_a = np.asarray(ious)
    some = len(ious_a) > 0
    return {
        "boxes": len(ious), "true_boxes": total, "missed_true_boxes": missed,
        "mean_iou": float(ious_a.mean()) if some else None,
        "iou_ge_0.5": float((ious_a >= 0.5).mean()) if some else None,
        "mean_log_w": float(np.mean(lw)) if some else None,
        "mean_log_h": float(np.mean(lh)) if some else None,
    }
