"""Typed records for weaktube's file formats, with strict loading and atomic saving.

Formats (documented with examples in ``docs/FORMATS.md``):

* ``weaktube/annotations@1`` -> :class:`AnnotationSet` of :class:`VideoRecord`, each with
  :class:`Tube` (per-frame boxes, absolute pixels ``[x1, y1, x2, y2]`` of the video's
  ``width x height``, 0-based ``start_frame``) and :class:`Segment` (seconds; frame ``f`` is
  inside when ``start <= f / fps < end``).
* ``weaktube/detections@1`` -> :class:`Detections` (columnar arrays; one row per box).

Every loading problem raises :class:`AnnotationError` whose message names the file, video, tube,
frame and field concerned.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from weaktube.fileio import atomic_write_json


def keyframe_indices(num_frames: int, keyframe_stride: int) -> np.ndarray:
    """``[T']`` 0-based keyframes: every ``keyframe_stride``-th frame from 0, and the last frame
    (so that the end of a video always has detections). The frames ``weaktube detect`` runs
    the network on, and the frames frame-mAP is scored on when detections were made with a
    stride (``weaktube.evaluate.frame_ap``)."""
    if keyframe_stride < 1:
        raise ValueError(f"keyframe_stride must be >= 1, got {keyframe_stride}")
    keys = np.arange(0, num_frames, keyframe_stride)
    if num_frames and keys[-1] != num_frames - 1:
        keys = np.append(keys, num_frames - 1)
    return keys


def merge_runs(groups: Sequence[Any], starts: np.ndarray, ends: np.ndarray,
               gap: float = 0.0) -> np.ndarray:
    """Intervals sorted by ``(group, start)`` -> ``[N]`` index of the first interval of the run
    each one joins: an interval joins the run before it when it has the same group and
    ``start <= run end + gap`` (overlapping, touching or at most ``gap`` apart; the run end is
    the largest end so far). Compared with a relative tolerance of 1e-9, so that times computed
    as frame / fps that are equal in frames compare equal. The one rule by which segments of
    one class become one instance, in predictions (:func:`weaktube.infer.temporal.
    segments_from_tubes` with ``merge``) and in the ground truth made from tubes alike."""
    n = len(starts)
    head = np.arange(n)
    h, end = 0, None
    for i in range(n):
        if end is not None and groups[i] == groups[h] and (
                starts[i] <= end + gap + 1e-9 * max(1.0, abs(float(end)))):
            head[i] = h
            end = max(end, ends[i])
        else:
            h, end = i, ends[i]
    return head


ANNOTATIONS_FORMAT = "weaktube/annotations@1"
DETECTIONS_FORMAT = "weaktube/detections@1"
TUBES_FORMAT = "weaktube/tubes@1"
SEGMENTS_FORMAT = "weaktube/segments@1"

# Fraction of a frame within which a time in seconds counts as on a frame boundary.
FRAME_TOLERANCE = 0.01

# Slack for boxes touching the border: annotators and resizers produce x2 == width + a rounding.
BOX_BORDER_TOLERANCE = 1.0


class AnnotationError(ValueError):
    """A malformed annotation or prediction file; the message names where the problem is."""

    def __init__(
        self,
        message: str,
        *,
        file: str | os.PathLike | None = None,
        video: str | None = None,
        tube: int | None = None,
        segment: int | None = None,
        detection: int | None = None,
        frame: int | None = None,
        field: str | None = None,
    ) -> None:
        where = []
        if file is not None:
            where.append(f"file {str(file)!r}")
        if video is not None:
            where.append(f"video {video!r}")
        if tube is not None:
            where.append(f"tube {tube}")
        if segment is not None:
            where.append(f"segment {segment}")
        if detection is not None:
            where.append(f"detection {detection}")
        if frame is not None:
            where.append(f"frame {frame}")
        if field is not None:
            where.append(f"field {field!r}")
        self.file, self.video, self.tube, self.frame, self.field = file, video, tube, frame, field
        super().__init__(f"{', '.join(where)}: {message}" if where else message)


# ------------------------------------------------------------------------------ annotations
@dataclass
class Tube:
    """One actor performing one action over consecutive frames.

    ``boxes[i]`` is the box in frame ``start_frame + i``: ``[T, 4]`` float, absolute pixels.
    """

    label: int
    start_frame: int
    boxes: np.ndarray

    @property
    def end_frame(self) -> int:
        """Exclusive end frame (0-based)."""
        return self.start_frame + len(self.boxes)

    def box_at(self, frame: int) -> np.ndarray | None:
        """``[4]`` box in ``frame``, or None outside the tube."""
        if self.start_frame <= frame < self.end_frame:
            return self.boxes[frame - self.start_frame]
        return None

    def to_dict(self) -> dict:
        return {
            "label": int(self.label),
            "start_frame": int(self.start_frame),
            "boxes": [[round(float(v), 2) for v in b] for b in self.boxes],
        }


# frame label of time covered only by an ambiguous segment (VideoRecord.segment_labels): neither
# an action (>= 0) nor background (-1). In videos without tubes, training draws no keyframe
# there (either stage) and the target stage gives such frames no term
AMBIGUOUS_FRAME = -2


@dataclass
class Segment:
    """A temporal action instance: ``label`` from ``start`` to ``end`` seconds."""

    label: int
    start: float
    end: float
    # True for instances the dataset marks as ambiguous (THUMOS14's "Ambiguous"): kept out of
    # the ground truth by the evaluator, never used as a training label.
    ambiguous: bool = False

    def frame_range(self, fps: float) -> tuple[int, int]:
        """0-based ``[first, end)`` frames inside: ``start <= f / fps < end``.

        Times within 1/100 of a frame of a frame boundary count as on it, so seconds written
        with limited precision (files round to 6 decimals; other tools to 2-4) map back to the
        frames they were computed from.
        """
        first = math.ceil(self.start * fps - FRAME_TOLERANCE)
        end = math.ceil(self.end * fps - FRAME_TOLERANCE)
        return max(first, 0), max(end, 0)

    def to_dict(self) -> dict:
        d = {"label": int(self.label), "start": round(float(self.start), 6),
             "end": round(float(self.end), 6)}
        if self.ambiguous:
            d["ambiguous"] = True
        return d


@dataclass
class VideoRecord:
    """One video: its geometry, split, box tubes and temporal segments."""

    name: str
    num_frames: int
    width: int
    height: int
    fps: float
    split: str
    tubes: list[Tube] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    path: str | None = None

    @property
    def duration(self) -> float:
        """Seconds."""
        return self.num_frames / self.fps

    def boxes_at(self, frame: int) -> tuple[np.ndarray, np.ndarray]:
        """Ground truth in ``frame``: boxes ``[M, 4]`` (pixels) and labels ``[M]``."""
        boxes, labels = [], []
        for t in self.tubes:
            b = t.box_at(frame)
            if b is not None:
                boxes.append(b)
                labels.append(t.label)
        if not boxes:
            return np.zeros((0, 4), np.float32), np.zeros(0, np.int64)
        return np.stack(boxes).astype(np.float32), np.asarray(labels, np.int64)

    def segment_labels(self, ambiguous: int = -1) -> np.ndarray:
        """``[num_frames]`` int: the label of the segment covering each frame, -1 for none.

        Where segments overlap, the later one in the list wins. Frames covered by an ambiguous
        segment only are ``ambiguous`` (-1 by default: like no segment; the training data
        marks them :data:`AMBIGUOUS_FRAME` to keep them out of both classes).
        """
        out = np.full(self.num_frames, -1, np.int64)
        for s in sorted(self.segments, key=lambda s: not s.ambiguous):  # ambiguous ones first
            a, b = s.frame_range(self.fps)
            out[a : min(b, self.num_frames)] = ambiguous if s.ambiguous else s.label
        return out

    def to_dict(self) -> dict:
        d: dict[str, Any] = {
            "name": self.name,
            "num_frames": int(self.num_frames),
            "width": int(self.width),
            "height": int(self.height),
            "fps": float(self.fps),
            "split": self.split,
            "tubes": [t.to_dict() for t in self.tubes],
            "segments": [s.to_dict() for s in self.segments],
        }
        if self.path is not None:
            d["path"] = self.path
        return d


@dataclass
class AnnotationSet:
    """A dataset: class names (index = label) and videos."""

    classes: list[str]
    videos: list[VideoRecord]

    def __post_init__(self) -> None:
        self._by_name = {v.name: v for v in self.videos}

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, name: str) -> VideoRecord:
        return self._by_name[name]

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def split(self, name: str | Sequence[str]) -> AnnotationSet:
        """The videos whose split is ``name`` (or one of ``name``)."""
        names = {name} if isinstance(name, str) else set(name)
        return AnnotationSet(list(self.classes), [v for v in self.videos if v.split in names])

    def subset(self, video_names: Iterable[str]) -> AnnotationSet:
        keep = set(video_names)
        return AnnotationSet(list(self.classes), [v for v in self.videos if v.name in keep])

    def without_boxes(self, split: str | None = "train") -> AnnotationSet:
        """A weak copy: tubes removed from the videos of ``split`` (all when None).

        Segments are kept: they are the temporal labels of weak supervision."""
        videos = []
        for v in self.videos:
            strip = split is None or v.split == split
            videos.append(VideoRecord(v.name, v.num_frames, v.width, v.height, v.fps, v.split,
                                      [] if strip else list(v.tubes), list(v.segments), v.path))
        return AnnotationSet(list(self.classes), videos)

    def statistics(self) -> dict:
        """Counts per split and per class, for ``weaktube data check``."""
        stats: dict[str, Any] = {"classes": len(self.classes), "videos": len(self.videos),
                                 "splits": {}}
        for v in self.videos:
            s = stats["splits"].setdefault(v.split, {"videos": 0, "frames": 0, "tubes": 0,
                                                     "boxes": 0, "segments": 0,
                                                     "videos_without_boxes": 0})
            s["videos"] += 1
            s["frames"] += v.num_frames
            s["tubes"] += len(v.tubes)
            s["boxes"] += sum(len(t.boxes) for t in v.tubes)
            s["segments"] += len(v.segments)
            s["videos_without_boxes"] += int(not v.tubes)
        per_class = np.zeros(len(self.classes), np.int64)
        for v in self.videos:
            for t in v.tubes:
                per_class[t.label] += 1
        stats["tubes_per_class"] = {c: int(n) for c, n in zip(self.classes, per_class)}
        return stats

    # ---------------------------------------------------------------------- serialisation
    def to_dict(self) -> dict:
        return {"format": ANNOTATIONS_FORMAT, "classes": list(self.classes),
                "videos": [v.to_dict() for v in self.videos]}

    def save(self, path: str | os.PathLike) -> None:
        """Validate, then write atomically."""
        self.validate(path)
        atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike) -> AnnotationSet:
        """Read and validate a ``weaktube/annotations@1`` file."""
        data = _read_json(path)
        return cls.from_dict(data, file=path)

    @classmethod
    def from_dict(cls, data: Any, file: str | os.PathLike | None = None) -> AnnotationSet:
        if not isinstance(data, dict):
            raise AnnotationError("top level must be a JSON object", file=file)
        fmt = data.get("format", ANNOTATIONS_FORMAT)
        if fmt != ANNOTATIONS_FORMAT:
            raise AnnotationError(f"expected format {ANNOTATIONS_FORMAT!r}, got {fmt!r}",
                                  file=file, field="format")
        classes = _require(data, "classes", list, file=file)
        if not classes or not all(isinstance(c, str) and c for c in classes):
            raise AnnotationError("must be a non-empty list of class names", file=file,
                                  field="classes")
        if len(set(classes)) != len(classes):
            raise AnnotationError("class names must be unique", file=file, field="classes")
        raw_videos = _require(data, "videos", list, file=file)
        videos = [_parse_video(v, i, len(classes), file) for i, v in enumerate(raw_videos)]
        out = cls(list(classes), videos)
        out.validate(file)
        return out

    def validate(self, file: str | os.PathLike | None = None) -> None:
        """Check every constraint of the format; raise :class:`AnnotationError` on the first."""
        seen: set[str] = set()
        k = len(self.classes)
        for v in self.videos:
            if v.name in seen:
                raise AnnotationError("duplicate video name", file=file, video=v.name,
                                      field="name")
            seen.add(v.name)
            if v.num_frames <= 0:
                raise AnnotationError(f"must be positive, got {v.num_frames}", file=file,
                                      video=v.name, field="num_frames")
            # width/height 0 = unknown: allowed for temporal-only videos (no tubes).
            for fname, val in (("width", v.width), ("height", v.height)):
                if val < 0 or (val == 0 and v.tubes):
                    raise AnnotationError(f"must be positive, got {val}", file=file,
                                          video=v.name, field=fname)
            if not (v.fps > 0 and math.isfinite(v.fps)):
                raise AnnotationError(f"must be a positive number, got {v.fps}", file=file,
                                      video=v.name, field="fps")
            if not v.split:
                raise AnnotationError("must be a non-empty string", file=file, video=v.name,
                                      field="split")
            for ti, t in enumerate(v.tubes):
                _validate_tube(t, ti, v, k, file)
            for si, s in enumerate(v.segments):
                if not 0 <= s.label < k:
                    raise AnnotationError(f"label {s.label} is not a class index 0..{k - 1}",
                                          file=file, video=v.name, segment=si, field="label")
                if not (math.isfinite(s.start) and math.isfinite(s.end)) or s.end <= s.start:
                    raise AnnotationError(f"needs start < end, got {s.start}..{s.end}",
                                          file=file, video=v.name, segment=si, field="end")
                if s.start < -1e-6 or s.end > v.duration + 1.0 / v.fps + 1e-6:
                    raise AnnotationError(
                        f"{s.start}..{s.end} s lies outside the video (0..{v.duration:.3f} s)",
                        file=file, video=v.name, segment=si, field="start" if s.start < 0
                        else "end")


def _validate_tube(t: Tube, ti: int, v: VideoRecord, k: int, file) -> None:
    if not 0 <= t.label < k:
        raise AnnotationError(f"label {t.label} is not a class index 0..{k - 1}", file=file,
                              video=v.name, tube=ti, field="label")
    if t.start_frame < 0:
        raise AnnotationError(f"must be >= 0, got {t.start_frame}", file=file, video=v.name,
                              tube=ti, field="start_frame")
    b = t.boxes
    if b.ndim != 2 or b.shape[1] != 4 or len(b) == 0:
        raise AnnotationError(f"must be a non-empty list of [x1, y1, x2, y2], got shape "
                              f"{tuple(b.shape)}", file=file, video=v.name, tube=ti,
                              field="boxes")
    if t.end_frame > v.num_frames:
        raise AnnotationError(
            f"tube runs to frame {t.end_frame - 1} but the video has {v.num_frames} frames",
            file=file, video=v.name, tube=ti, frame=t.end_frame - 1, field="boxes")
    bad = ~np.isfinite(b).all(axis=1)
    msg = "box is not finite"
    if not bad.any():
        bad = (b[:, 2] <= b[:, 0]) | (b[:, 3] <= b[:, 1])
        msg = "box needs x1 < x2 and y1 < y2"
    if not bad.any():
        tol = BOX_BORDER_TOLERANCE
        bad = ((b[:, 0] < -tol) | (b[:, 1] < -tol) | (b[:, 2] > v.width + tol)
               | (b[:, 3] > v.height + tol))
        msg = f"box lies outside the {v.width}x{v.height} frame"
    if bad.any():
        i = int(np.argmax(bad))
        raise AnnotationError(f"{msg}: {b[i].tolist()}", file=file, video=v.name, tube=ti,
                              frame=t.start_frame + i, field="boxes")


def _require(d: dict, key: str, typ: type | tuple, **where) -> Any:
    if key not in d:
        raise AnnotationError("missing", field=key, **where)
    val = d[key]
    if not isinstance(val, typ) or isinstance(val, bool) and typ is not bool:
        tn = typ.__name__ if isinstance(typ, type) else "/".join(t.__name__ for t in typ)
        raise AnnotationError(f"must be {tn}, got {type(val).__name__}", field=key, **where)
    return val


def _parse_video(d: Any, index: int, k: int, file) -> VideoRecord:
    if not isinstance(d, dict):
        raise AnnotationError(f"videos[{index}] must be an object", file=file, field="videos")
    name = d.get("name")
    if not isinstance(name, str) or not name:
        raise AnnotationError(f"videos[{index}] needs a non-empty string", file=file,
                              field="name")
    w = {"file": file, "video": name}
    num = (int, float)
    tubes = []
    for ti, td in enumerate(_require(d, "tubes", list, **w) if "tubes" in d else []):
        if not isinstance(td, dict):
            raise AnnotationError("must be an object", tube=ti, field="tubes", **w)
        label = _require(td, "label", int, tube=ti, **w)
        start = _require(td, "start_frame", int, tube=ti, **w)
        raw = _require(td, "boxes", list, tube=ti, **w)
        try:
            boxes = np.asarray(raw, dtype=np.float32)
        except (TypeError, ValueError):
            raise AnnotationError("boxes must be a list of [x1, y1, x2, y2] numbers", tube=ti,
                                  field="boxes", **w) from None
        tubes.append(Tube(label, start, boxes.reshape(-1, 4) if boxes.size == 0 else boxes))
    segments = []
    for si, sd in enumerate(_require(d, "segments", list, **w) if "segments" in d else []):
        if not isinstance(sd, dict):
            raise AnnotationError("must be an object", segment=si, field="segments", **w)
        ambiguous = sd.get("ambiguous", False)
        if not isinstance(ambiguous, bool):
            raise AnnotationError("must be true or false", segment=si, field="ambiguous", **w)
        segments.append(Segment(_require(sd, "label", int, segment=si, **w),
                                float(_require(sd, "start", num, segment=si, **w)),
                                float(_require(sd, "end", num, segment=si, **w)), ambiguous))
    path = d.get("path")
    if path is not None and not isinstance(path, str):
        raise AnnotationError("must be a string", field="path", **w)
    return VideoRecord(
        name=name,
        num_frames=_require(d, "num_frames", int, **w),
        width=_require(d, "width", int, **w),
        height=_require(d, "height", int, **w),
        fps=float(_require(d, "fps", num, **w)),
        split=_require(d, "split", str, **w),
        tubes=tubes,
        segments=segments,
        path=path,
    )


def _read_json(path: str | os.PathLike) -> Any:
    p = Path(path)
    if not p.is_file():
        raise AnnotationError("file not found", file=path)
    try:
        with open(p, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise AnnotationError(f"not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})",
                              file=path) from None
    except UnicodeDecodeError:
        raise AnnotationError("not UTF-8 text", file=path) from None


# ------------------------------------------------------------------------------- detections
@dataclass
class Detections:
    """Per-frame detections, columnar. ``D`` rows.

    ``videos [D]`` video names, ``frames [D]`` 0-based, ``labels [D]`` class index,
    ``scores [D]`` in [0, 1], ``boxes [D, 4]`` absolute pixels ``[x1, y1, x2, y2]``;
    ``classes``: the label space (index = label) when known, saved with the file so that
    ``weaktube evaluate`` can refuse ground truth whose class list differs.
    """

    videos: np.ndarray
    frames: np.ndarray
    labels: np.ndarray
    scores: np.ndarray
    boxes: np.ndarray
    classes: list[str] | None = field(default=None, compare=False, repr=False)

    def __len__(self) -> int:
        return len(self.scores)

    def select(self, index: np.ndarray) -> Detections:
        """The detections at ``index`` ([D'] ints or a [D] bool mask), in that order."""
        return Detections(self.videos[index], self.frames[index], self.labels[index],
                          self.scores[index], self.boxes[index], self.classes)

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros(0, object), np.zeros(0, np.int64), np.zeros(0, np.int64),
                   np.zeros(0, np.float32), np.zeros((0, 4), np.float32))

    @classmethod
    def concat(cls, parts: Sequence[Detections]) -> Detections:
        known = {tuple(p.classes) for p in parts if p.classes is not None}
        classes = list(known.pop()) if len(known) == 1 else None
        parts = [p for p in parts if len(p)]
        if not parts:
            return dataclasses.replace(cls.empty(), classes=classes)
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in
                     ("videos", "frames", "labels", "scores", "boxes")), classes)

    def to_dict(self) -> dict:
        return {"format": DETECTIONS_FORMAT, **_classes_entry(self.classes), "detections": [
            {"video": str(v), "frame": int(f), "label": int(c), "score": exact(s),
             "box": [exact(x) for x in b]}
            for v, f, c, s, b in zip(self.videos, self.frames, self.labels, self.scores,
                                     self.boxes)]}

    def save(self, path: str | os.PathLike) -> None:
        atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike) -> Detections:
        """Read a ``weaktube/detections@1`` file; any problem raises :class:`AnnotationError`
        naming the detection, video and field. Scores and boxes load as float64 (the file
        holds the shortest decimals that give back the saved values, so rankings and ties are
        those of the run that wrote it)."""
        rows, classes = _pred_rows(path, "detections", DETECTIONS_FORMAT)
        n = len(rows)
        videos = np.empty(n, object)
        frames = np.zeros(n, np.int64)
        labels = np.zeros(n, np.int64)
        scores = np.zeros(n, np.float64)
        boxes = np.zeros((n, 4), np.float64)
        for i, r in enumerate(rows):
            w: dict[str, Any] = {"file": path, "detection": i}
            videos[i], labels[i], scores[i] = _pred_head(r, w)
            frames[i] = _pred_index(r, "frame", **w)
            boxes[i] = _pred_boxes(r, "box", **w)[0]
        return cls(videos, frames, labels, scores, boxes, classes)


def exact(x: Any) -> float:
    """A number for JSON that reads back as the same value of its own type: the shortest
    decimal that round-trips a float32 (numpy's ``str``) or a float64 (Python's ``repr``)."""
    return float(str(x)) if isinstance(x, np.floating) else float(x)


# -------------------------------------------------------------------------- tube predictions
def _classes_entry(classes: Sequence[str] | None) -> dict:
    """``{"classes": [...]}`` for a prediction file that knows its label space, else ``{}``."""
    return {} if classes is None else {"classes": [str(c) for c in classes]}


def _pred_rows(path: str | os.PathLike, key: str, fmt: str) -> tuple[list, list[str] | None]:
    """The list under ``key`` of a prediction file whose ``format`` must be ``fmt``, and its
    optional ``classes`` (a list of names)."""
    data = _read_json(path)
    if not isinstance(data, dict):
        raise AnnotationError("top level must be a JSON object", file=path)
    if data.get("format") != fmt:
        raise AnnotationError(f"expected format {fmt!r}, got {data.get('format')!r}", file=path,
                              field="format")
    rows = data.get(key)
    if not isinstance(rows, list):
        raise AnnotationError(f"expected a list under {key!r}", file=path, field=key)
    classes = data.get("classes")
    if classes is not None and not (isinstance(classes, list)
                                    and all(isinstance(c, str) and c for c in classes)):
        raise AnnotationError("must be a list of class names", file=path, field="classes")
    return rows, classes


def _pred_head(row: Any, where: dict[str, Any]) -> tuple[str, int, float]:
    """The ``video``, ``label`` (>= 0) and ``score`` every prediction row starts with; adds the
    video to ``where`` for the messages about the row's other fields."""
    video = _pred_value(row, "video", str, **where)
    where["video"] = video
    label = _pred_value(row, "label", int, **where)
    if label < 0:
        raise AnnotationError(f"must be >= 0, got {label}", field="label", **where)
    return video, label, _pred_value(row, "score", float, **where)


def _pred_index(row: Any, key: str, **where) -> int:
    """``row[key]``: an integer >= 0 (a 0-based frame)."""
    val = _pred_value(row, key, int, **where)
    if val < 0:
        raise AnnotationError(f"must be >= 0, got {val}", field=key, **where)
    return val


def _pred_boxes(row: dict, key: str, first_frame: int | None = None, **where) -> np.ndarray:
    """``row[key]``: one box ``[x1, y1, x2, y2]`` (``first_frame`` None) or a non-empty list of
    them, one per frame from ``first_frame`` -> ``[T, 4]`` float64, each finite with
    ``x1 <= x2`` and ``y1 <= y2``."""
    raw = row.get(key)
    try:
        b = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError):
        b = np.zeros((0, 3))
    single = first_frame is None
    b = b.reshape(1, -1) if single and b.ndim == 1 else b
    if not isinstance(raw, list) or b.ndim != 2 or b.shape[1] != 4 or len(b) == 0:
        want = "[x1, y1, x2, y2]" if single else "a non-empty list of [x1, y1, x2, y2]"
        raise AnnotationError(f"must be {want}", field=key, **where)
    bad = ~np.isfinite(b).all(axis=1) | (b[:, 2] < b[:, 0]) | (b[:, 3] < b[:, 1])
    if bad.any():
        j = int(np.argmax(bad))
        frame = {} if single else {"frame": first_frame + j}
        raise AnnotationError(f"box must be finite with x1 <= x2, y1 <= y2: {b[j].tolist()}",
                              field=key, **frame, **where)
    return b


def _pred_value(row: Any, key: str, kind: type, **where) -> Any:
    """``row[key]`` checked to be a str (non-empty), an int (not bool) or a finite number."""
    if not isinstance(row, dict):
        raise AnnotationError("must be an object", **where)
    if key not in row:
        raise AnnotationError("missing", field=key, **where)
    val = row[key]
    if kind is str:
        ok = isinstance(val, str) and bool(val)
    elif kind is int:
        ok = isinstance(val, int) and not isinstance(val, bool)
    else:
        ok = (isinstance(val, (int, float)) and not isinstance(val, bool)
              and math.isfinite(val))
    if not ok:
        want = {str: "a non-empty string", int: "an integer"}.get(kind, "a finite number")
        raise AnnotationError(f"must be {want}, got {val!r}", field=key, **where)
    return val


@dataclass
class TubePredictions:
    """Predicted action tubes (``weaktube/tubes@1``), columnar. ``N`` tubes.

    ``videos [N]`` video names, ``labels [N]`` class index, ``scores [N]`` (higher = more
    confident), ``start_frames [N]`` 0-based first frame, ``boxes`` a list of ``N`` arrays
    ``[T_i, 4]`` absolute pixels ``[x1, y1, x2, y2]``; row ``j`` is the box in frame
    ``start_frames[i] + j`` (one box per frame, no gaps).
    """

    videos: np.ndarray
    labels: np.ndarray
    scores: np.ndarray
    start_frames: np.ndarray
    boxes: list[np.ndarray]
    classes: list[str] | None = field(default=None, compare=False, repr=False)  # as Detections

    def __len__(self) -> int:
        return len(self.scores)

    @property
    def lengths(self) -> np.ndarray:
        """``[N]`` frames per tube."""
        return np.asarray([len(b) for b in self.boxes], dtype=np.int64)

    @classmethod
    def empty(cls) -> TubePredictions:
        return cls(np.zeros(0, object), np.zeros(0, np.int64), np.zeros(0, np.float64),
                   np.zeros(0, np.int64), [])

    def to_dict(self) -> dict:
        return {"format": TUBES_FORMAT, **_classes_entry(self.classes), "tubes": [
            {"video": str(v), "label": int(c), "score": exact(s),
             "start_frame": int(f), "boxes": [[exact(x) for x in b] for b in bx]}
            for v, c, s, f, bx in zip(self.videos, self.labels, self.scores, self.start_frames,
                                      self.boxes, strict=True)]}

    def save(self, path: str | os.PathLike) -> None:
        atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike) -> TubePredictions:
        """Read a ``weaktube/tubes@1`` file; any problem raises :class:`AnnotationError`."""
        rows, classes = _pred_rows(path, "tubes", TUBES_FORMAT)
        n = len(rows)
        videos = np.empty(n, object)
        labels = np.zeros(n, np.int64)
        scores = np.zeros(n, np.float64)
        starts = np.zeros(n, np.int64)
        boxes: list[np.ndarray] = []
        for i, r in enumerate(rows):
            w: dict[str, Any] = {"file": path, "tube": i}
            videos[i], labels[i], scores[i] = _pred_head(r, w)
            starts[i] = _pred_index(r, "start_frame", **w)
            boxes.append(_pred_boxes(r, "boxes", first_frame=int(starts[i]), **w))
        return cls(videos, labels, scores, starts, boxes, classes)


# ----------------------------------------------------------------------- segment predictions
@dataclass
class SegmentPredictions:
    """Predicted temporal action segments (``weaktube/segments@1``), columnar. ``N`` rows.

    ``videos [N]`` names, ``labels [N]`` class index, ``scores [N]``, ``starts [N]`` and
    ``ends [N]`` in seconds from the start of the video (``start < end``).
    """

    videos: np.ndarray
    labels: np.ndarray
    scores: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    classes: list[str] | None = field(default=None, compare=False, repr=False)  # as Detections

    def __len__(self) -> int:
        return len(self.scores)

    @classmethod
    def empty(cls) -> SegmentPredictions:
        return cls(np.zeros(0, object), np.zeros(0, np.int64), np.zeros(0, np.float64),
                   np.zeros(0, np.float64), np.zeros(0, np.float64))

    def to_dict(self) -> dict:
        return {"format": SEGMENTS_FORMAT, **_classes_entry(self.classes), "segments": [
            {"video": str(v), "label": int(c), "score": exact(s),
             "start": exact(a), "end": exact(b)}
            for v, c, s, a, b in zip(self.videos, self.labels, self.scores, self.starts,
                                     self.ends, strict=True)]}

    def save(self, path: str | os.PathLike) -> None:
        atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike) -> SegmentPredictions:
        """Read a ``weaktube/segments@1`` file; any problem raises :class:`AnnotationError`."""
        rows, classes = _pred_rows(path, "segments", SEGMENTS_FORMAT)
        n = len(rows)
        videos = np.empty(n, object)
        labels = np.zeros(n, np.int64)
        scores, starts, ends = (np.zeros(n, np.float64) for _ in range(3))
        for i, r in enumerate(rows):
            w: dict[str, Any] = {"file": path, "segment": i}
            videos[i], labels[i], scores[i] = _pred_head(r, w)
            starts[i] = _pred_value(r, "start", float, **w)
            ends[i] = _pred_value(r, "end", float, **w)
            if ends[i] <= starts[i]:
                raise AnnotationError(f"needs start < end, got {starts[i]}..{ends[i]}",
                                      field="end", **w)
        return cls(videos, labels, scores, starts, ends, classes)
