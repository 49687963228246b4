"""Draw ground truth, detections or tubes on frames and write a video (MP4) atomically."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Sequence

import cv2
import numpy as np

from weaktube.data.video import VideoError
from weaktube.fileio import atomic_path
from weaktube.structures import Detections, TubePredictions, VideoRecord

GT_COLOUR = (0, 220, 0)  # RGB


def class_colour(label: int) -> tuple[int, int, int]:
    """A distinct, stable RGB colour per class."""
    hue = int((label * 47) % 180)
    hsv = np.uint8([[[hue, 200, 255]]])
    r, g, b = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0]
    return int(r), int(g), int(b)


def draw_frame(frame: np.ndarray, gt_boxes: np.ndarray, det_boxes: np.ndarray,
               det_labels: np.ndarray, det_scores: np.ndarray,
               classes: Sequence[str], scale: int = 2,
               tags: Sequence[str] | None = None) -> np.ndarray:
    """``[H, W, 3]`` uint8 RGB -> ``[H*scale, W*scale, 3]`` with boxes (pixels of the input).

    Each predicted box ``[x1, y1, x2, y2]`` is captioned "class score", prefixed by its
    ``tags`` entry when given (e.g. a tube's number)."""
    img = cv2.resize(frame, (frame.shape[1] * scale, frame.shape[0] * scale),
                     interpolation=cv2.INTER_NEAREST)
    for b in gt_boxes:
        p = (b * scale).round().astype(int)
        cv2.rectangle(img, (p[0], p[1]), (p[2], p[3]), GT_COLOUR, 1)
    for i, (b, c, s) in enumerate(zip(det_boxes, det_labels, det_scores)):
        p = (b * scale).round().astype(int)
        col = class_colour(int(c))
        cv2.rectangle(img, (p[0], p[1]), (p[2], p[3]), col, 2)
        name = classes[int(c)] if int(c) < len(classes) else str(int(c))
        text = f"{tags[i]} {name} {s:.2f}" if tags is not None else f"{name} {s:.2f}"
        # readable at any size: 0.45 at 240 output rows (a 120-row video at 2x), ~1.2 at 1080p
        font_scale = max(0.45, img.shape[0] / 900)
        thick = 1 if font_scale < 0.8 else 2
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thick)
        # above the box, kept inside the image (a box at the top or left edge)
        org = (max(p[0] + 2, 1), max(p[1] - 3, th + 2))
        # a dark plate under the caption keeps it legible on any background
        cv2.rectangle(img, (org[0] - 1, org[1] - th - 1), (org[0] + tw + 1, org[1] + base),
                      (0, 0, 0), -1)
        cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, font_scale, col, thick,
                    cv2.LINE_AA)
    return img


def write_video(path: str | os.PathLike, images: Iterable[np.ndarray], size: tuple[int, int],
                fps: float) -> None:
    """Write RGB ``images`` (each ``[H, W, 3]`` uint8, ``size`` = (W, H)) as an MP4, atomically."""
    with atomic_path(path) as tmp:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
        if not writer.isOpened():
            raise VideoError(f"{str(path)!r}: cannot open an MP4 writer there")
        try:
            for img in images:
                writer.write(cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        finally:
            writer.release()


def render_video(path: str | os.PathLike, frames: np.ndarray, video: VideoRecord | None,
                 detections: Detections, classes: Sequence[str], fps: float = 25.0,
                 min_score: float = 0.3, max_per_frame: int = 3, scale: int = 2) -> None:
    """Write ``frames [T, H, W, 3]`` with ground truth (green, thin) and the top detections of
    each frame (class colour, with name and score) as an MP4 video, atomically."""
    name = video.name if video is not None else None
    sel = detections.videos == name if name is not None else np.ones(len(detections), bool)
    d_frames, d_scores = detections.frames[sel], detections.scores[sel]
    d_boxes, d_labels = detections.boxes[sel], detections.labels[sel]

    def images():
        for f, frame in enumerate(frames):
            gt = video.boxes_at(f)[0] if video is not None else np.zeros((0, 4))
            m = np.nonzero((d_frames == f) & (d_scores >= min_score))[0]
            m = m[np.argsort(-d_scores[m])][:max_per_frame]
            yield draw_frame(frame, gt, d_boxes[m], d_labels[m], d_scores[m], classes, scale)

    write_video(path, images(), (frames.shape[2] * scale, frames.shape[1] * scale), fps)


def render_scale(size: tuple[int, int], small: int = 480) -> int:
    """2 for frames of ``size`` = (W, H) whose longer side is under ``small`` pixels (the
    synthetic 160x120), else 1."""
    return 2 if max(size) < small else 1


def render_tubes(path: str | os.PathLike, frames: Iterable[np.ndarray], video_name: str,
                 tubes: TubePredictions, classes: Sequence[str], fps: float = 25.0,
                 min_score: float = 0.0, max_tubes: int = 10, scale: int | None = None) -> int:
    """Write ``frames`` (``[T, H, W, 3]`` uint8 RGB, or an iterable of ``[H, W, 3]`` frames such
    as :func:`weaktube.data.video.iter_video`: drawn as they come) with the action tubes of
    ``video_name`` drawn on them: the
    ``max_tubes`` (>= 1) best non-empty tubes scoring at least ``min_score``, each captioned
    "#k class score" (k = its rank, 1 = best) in its class colour, in every frame it covers,
    at ``scale`` times the frame size (default :func:`render_scale`). Returns how many tubes
    were drawn."""
    if max_tubes < 1:
        raise ValueError(f"render_tubes: max_tubes must be >= 1, got {max_tubes}")
    frames = iter(frames)
    first = next(frames, None)
    if first is None:
        raise ValueError(f"render_tubes: video {video_name!r} has no frame to draw")
    size = (first.shape[1], first.shape[0])  # (W, H)
    frames = itertools.chain([first], frames)
    scale = render_scale(size) if scale is None else scale
    idx = np.nonzero((tubes.videos == video_name) & (tubes.scores >= min_score)
                     & (tubes.lengths > 0))[0]
    idx = idx[np.argsort(-tubes.scores[idx], kind="stable")][:max_tubes]
    starts = tubes.start_frames[idx]
    ends = starts + tubes.lengths[idx] if len(idx) else starts

    def images():
        for f, frame in enumerate(frames):
            on = np.nonzero((starts <= f) & (f < ends))[0]
            boxes = np.asarray([tubes.boxes[idx[k]][f - starts[k]] for k in on]).reshape(-1, 4)
            yield draw_frame(frame, np.zeros((0, 4)), boxes, tubes.labels[idx[on]],
                             tubes.scores[idx[on]], classes, scale,
                             tags=[f"#{k + 1}" for k in on])

    write_video(path, images(), (size[0] * scale, size[1] * scale), fps)
    return len(idx)
