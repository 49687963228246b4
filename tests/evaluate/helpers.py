"""Small builders for hand-made ground truth and predictions."""

from __future__ import annotations

import numpy as np

from weaktube.structures import (
    AnnotationSet,
    Detections,
    Segment,
    SegmentPredictions,
    Tube,
    TubePredictions,
    VideoRecord,
)

CLASSES = ["run", "jump", "wave"]


def video(name: str, tubes=(), segments=(), num_frames: int = 20, fps: float = 10.0,
          size: int = 100) -> VideoRecord:
    return VideoRecord(name, num_frames, size, size, fps, "test", list(tubes), list(segments))


def tube(label: int, start: int, box, length: int) -> Tube:
    return Tube(label, start, np.tile(np.asarray(box, np.float32), (length, 1)))


def annotations(*videos: VideoRecord, classes=CLASSES) -> AnnotationSet:
    return AnnotationSet(list(classes), list(videos))


def detections(rows) -> Detections:
    """rows: (video, frame, label, score, [x1, y1, x2, y2])"""
    if not rows:
        return Detections.empty()
    v, f, c, s, b = zip(*rows, strict=True)
    return Detections(np.array(v, object), np.array(f, np.int64), np.array(c, np.int64),
                      np.array(s, np.float32), np.array(b, np.float32))


def tube_preds(rows) -> TubePredictions:
    """rows: (video, label, score, start_frame, box or [T, 4] boxes, length)"""
    if not rows:
        return TubePredictions.empty()
    vids, labels, scores, starts, boxes = [], [], [], [], []
    for v, c, s, f, b, n in rows:
        b = np.asarray(b, np.float64)
        vids.append(v)
        labels.append(c)
        scores.append(s)
        starts.append(f)
        boxes.append(np.tile(b, (n, 1)) if b.ndim == 1 else b)
    return TubePredictions(np.array(vids, object), np.array(labels, np.int64),
                           np.array(scores, np.float64), np.array(starts, np.int64), boxes)


def segment_preds(rows) -> SegmentPredictions:
    """rows: (video, label, score, start, end)"""
    if not rows:
        return SegmentPredictions.empty()
    v, c, s, a, b = zip(*rows, strict=True)
    return SegmentPredictions(np.array(v, object), np.array(c, np.int64),
                              np.array(s, np.float64), np.array(a, np.float64),
                              np.array(b, np.float64))


def seg(label: int, start: float, end: float, ambiguous: bool = False) -> Segment:
    return Segment(label, start, end, ambiguous)
