"""Helpers shared by the dataset readers: strict loading, number parsing, tubes and segments.

Every problem is raised as one :class:`~weaktube.structures.AnnotationError` naming the file,
video, frame and field; :func:`reader` is the safety net that turns any stray low-level
exception (``KeyError``, ``UnpicklingError``, ...) into one too.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import math
import os
import pickle
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from weaktube.structures import (
    BOX_BORDER_TOLERANCE,
    AnnotationError,
    AnnotationSet,
    Segment,
    Tube,
    VideoRecord,
    merge_runs,
)

# Class lists, index = label. Facts from the datasets (alphabetical in all four).
UCF24_CLASSES = (
    "Basketball", "BasketballDunk", "Biking", "CliffDiving", "CricketBowling", "Diving",
    "Fencing", "FloorGymnastics", "GolfSwing", "HorseRiding", "IceDancing", "LongJump",
    "PoleVault", "RopeClimbing", "SalsaSpin", "SkateBoarding", "Skiing", "Skijet",
    "SoccerJuggling", "Surfing", "TennisSwing", "TrampolineJumping", "VolleyballSpiking",
    "WalkingWithDog",
)
JHMDB21_CLASSES = (
    "brush_hair", "catch", "clap", "climb_stairs", "golf", "jump", "kick_ball", "pick", "pour",
    "pullup", "push", "run", "shoot_ball", "shoot_bow", "shoot_gun", "sit", "stand",
    "swing_baseball", "throw", "walk", "wave",
)
THUMOS14_CLASSES = (
    "BaseballPitch", "BasketballDunk", "Billiards", "CleanAndJerk", "CliffDiving",
    "CricketBowling", "CricketShot", "Diving", "FrisbeeCatch", "GolfSwing", "HammerThrow",
    "HighJump", "JavelinThrow", "LongJump", "PoleVault", "Shotput", "SoccerPenalty",
    "TennisSwing", "ThrowDiscus", "VolleyballSpiking",
)

# Nominal frame rates: UCF101 is 25 fps (some clips are really 29.97), J-HMDB 30 fps.
UCF101_FPS = 25.0
JHMDB_FPS = 30.0
# Both UCF101-24 (annotation frame) and J-HMDB-21 are 320x240.
UCF_JHMDB_FRAME_SIZE = (320, 240)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
OUT_OF_RANGE_MODES = ("clip", "error")

F = TypeVar("F", bound=Callable[..., Any])


class ReaderOptionError(ValueError):
    """A bad reader option (``fps=-1``, ``box_base=2``...): the caller's mistake, not the file's,
    so :func:`reader` lets it through unchanged."""


# Low-level errors that malformed input can raise deep inside a parser.
_DATA_ERRORS = (KeyError, IndexError, TypeError, ValueError, AttributeError, EOFError,
                UnicodeDecodeError, OverflowError, RecursionError, pickle.UnpicklingError,
                OSError, csv.Error)


def reader(func: F) -> F:
    """Decorator for a reader ``func(src, **options)``: every data error becomes one
    :class:`AnnotationError` naming ``src``. Explicit checks inside give better messages;
    this is the safety net for the ones nobody foresaw."""

    @functools.wraps(func)
    def wrapper(src: str | os.PathLike, *args: Any, **kwargs: Any) -> Any:
        try:
            return func(src, *args, **kwargs)
        except (AnnotationError, ReaderOptionError):
            raise
        except _DATA_ERRORS as e:
            raise AnnotationError(f"malformed input ({type(e).__name__}: {e})",
                                  file=src) from None

    return wrapper  # type: ignore[return-value]


# ---------------------------------------------------------------------------------- files
def require_file(path: str | os.PathLike, what: str = "file") -> Path:
    p = Path(path)
    if not p.is_file():
        raise AnnotationError(f"{what} not found", file=p)
    return p


def require_dir(path: str | os.PathLike, what: str = "folder") -> Path:
    p = Path(path)
    if not p.is_dir():
        raise AnnotationError(f"{what} not found", file=p)
    return p


def read_text(path: str | os.PathLike) -> str:
    p = require_file(path)
    try:
        return p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise AnnotationError("not UTF-8 text", file=p) from None


def load_json(path: str | os.PathLike) -> Any:
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise AnnotationError(f"not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})",
                              file=path) from None


def load_csv(path: str | os.PathLike, columns: Sequence[str]) -> list[dict[str, str]]:
    """Rows of a headed CSV file; every name in ``columns`` must be in the header."""
    rows = list(csv.reader(io.StringIO(read_text(path))))
    if not rows:
        raise AnnotationError("empty CSV file (no header)", file=path)
    header = [h.strip() for h in rows[0]]
    missing = [c for c in columns if c not in header]
    if missing:
        raise AnnotationError(f"CSV header {header} lacks column(s) {missing}", file=path,
                              field=missing[0])
    out = []
    for i, row in enumerate(rows[1:], start=2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != len(header):
            raise AnnotationError(f"line {i} has {len(row)} fields, the header has "
                                  f"{len(header)}", file=path)
        out.append({h: c.strip() for h, c in zip(header, row, strict=True)})
    return out


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays/scalars only: an annotation pickle never
    needs anything else, and refusing the rest means a hostile file cannot run code."""

    _ALLOWED = {
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("numpy._core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "scalar"),
        ("numpy._core.numeric", "_frombuffer"),
        ("_codecs", "encode"), ("copyreg", "_reconstructor"),
        ("collections", "OrderedDict"), ("collections", "defaultdict"),
        ("builtins", "object"), ("builtins", "set"), ("builtins", "frozenset"),
        ("builtins", "list"), ("builtins", "dict"), ("builtins", "tuple"),
        ("builtins", "int"), ("builtins", "float"), ("builtins", "str"), ("builtins", "bytes"),
        ("builtins", "bool"), ("builtins", "complex"), ("builtins", "bytearray"),
    }

    def find_class(self, module: str, name: str) -> Any:
        # numpy 1.x pickles name numpy.core.*, numpy 2 moved it to numpy._core.*
        if module.startswith("numpy.core."):
            module = "numpy._core." + module[len("numpy.core."):]
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(
                f"refusing to load {module}.{name}: an annotation pickle holds only lists, "
                f"dicts, numbers, strings and numpy arrays")
        return super().find_class(module, name)


def load_pickle(path: str | os.PathLike) -> Any:
    """Load a python-2 or python-3 pickle (python-2 strings decoded as latin-1)."""
    p = require_file(path)
    data = p.read_bytes()
    try:
        return _RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError,
            AttributeError, ImportError, OverflowError, MemoryError, RecursionError,
            UnicodeDecodeError) as e:
        raise AnnotationError(f"cannot unpickle ({type(e).__name__}: {e}); is the file "
                              f"truncated or not a pickle?", file=p) from None


# -------------------------------------------------------------------------------- numbers
def as_int(value: Any, **where: Any) -> int:
    """An integer from an int, an integral numpy scalar, or an integral float/string."""
    if isinstance(value, bool | np.bool_):
        raise AnnotationError(f"must be an integer, got {value!r}", **where)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating | str | np.str_):
        try:
            f = float(value)
        except ValueError:
            f = math.nan
        if math.isfinite(f) and f == int(f):
            return int(f)
    raise AnnotationError(f"must be an integer, got {value!r}", **where)


def as_float(value: Any, **where: Any) -> float:
    """A finite float from a number or a numeric string."""
    if isinstance(value, bool | np.bool_):
        raise AnnotationError(f"must be a number, got {value!r}", **where)
    if isinstance(value, int | float | np.integer | np.floating | str | np.str_):
        try:
            f = float(value)
        except ValueError:
            f = math.nan
        if math.isfinite(f):
            return f
    raise AnnotationError(f"must be a finite number, got {value!r}", **where)


def as_str(value: Any, **where: Any) -> str:
    if isinstance(value, str) and value:
        return str(value)
    raise AnnotationError(f"must be a non-empty string, got {value!r}", **where)


def as_dict(value: Any, **where: Any) -> dict:
    if not isinstance(value, dict):
        raise AnnotationError(f"must be a mapping, got {type(value).__name__}", **where)
    return value


def as_list(value: Any, **where: Any) -> list:
    if not isinstance(value, list | tuple):
        raise AnnotationError(f"must be a list, got {type(value).__name__}", **where)
    return list(value)


def get(d: dict, key: str, **where: Any) -> Any:
    if key not in d:
        raise AnnotationError("missing", field=key, **where)
    return d[key]


def check_class_names(classes: Iterable[Any], **where: Any) -> list[str]:
    out = [as_str(c, **where) for c in classes]
    if not out:
        raise AnnotationError("the class list is empty", **where)
    if len(set(out)) != len(out):
        dup = next(c for c in out if out.count(c) > 1)
        raise AnnotationError(f"class {dup!r} is listed twice", **where)
    return out


def check_frame_size(size: Any) -> tuple[int, int]:
    """``(width, height)`` as two positive ints; ``ValueError`` otherwise (a bad option)."""
    try:
        w, h = (int(s) for s in size)
    except (TypeError, ValueError):
        raise ReaderOptionError(f"a frame size must be (width, height), got {size!r}") from None
    if w <= 0 or h <= 0:
        raise ReaderOptionError(f"a frame size must be positive, got {size!r}")
    return w, h


def nominal_fps(classes: Sequence[str]) -> float:
    """30 fps for J-HMDB-21's class list, else UCF101's nominal 25 fps."""
    return JHMDB_FPS if tuple(classes) == JHMDB21_CLASSES else UCF101_FPS


# ---------------------------------------------------------------------------- tubes/boxes
def tubes_from_frames(label: int, frames: np.ndarray, boxes: np.ndarray) -> list[Tube]:
    """Split one track into :class:`Tube` s of consecutive frames.

    ``frames [N]`` 0-based, strictly increasing; ``boxes [N, 4]`` pixels. A gap in ``frames``
    ends a tube and the next frame starts a new one.
    """
    if len(frames) == 0:
        return []
    breaks = np.flatnonzero(np.diff(frames) != 1) + 1  # first index of each new run
    tubes = []
    for run_frames, run_boxes in zip(np.split(frames, breaks), np.split(boxes, breaks),
                                     strict=True):
        tubes.append(Tube(int(label), int(run_frames[0]), run_boxes.astype(np.float32)))
    return tubes


def check_boxes(boxes: np.ndarray, width: int, height: int, first_frame: int,
                **where: Any) -> None:
    """Reject non-finite boxes, ``x2 <= x1`` / ``y2 <= y1``, and boxes outside the frame.

    ``boxes [N, 4]`` 0-based corners in pixels; ``first_frame`` is the frame number (as the
    source numbers them) of ``boxes[0]``, used in the message.
    """
    tol = BOX_BORDER_TOLERANCE
    checks = (
        (~np.isfinite(boxes).all(axis=1), "box is not finite", "boxes"),
        (boxes[:, 2] <= boxes[:, 0], "box has x2 <= x1", "x2"),
        (boxes[:, 3] <= boxes[:, 1], "box has y2 <= y1", "y2"),
        ((boxes[:, 0] < -tol) | (boxes[:, 1] < -tol) | (boxes[:, 2] > width + tol)
         | (boxes[:, 3] > height + tol), f"box lies outside the {width}x{height} frame",
         "boxes"),
    )
    for bad, msg, fname in checks:
        if bad.any():
            i = int(np.argmax(bad))
            raise AnnotationError(f"{msg}: {boxes[i].tolist()}", frame=first_frame + i,
                                  field=fname, **where)


def segments_from_tubes(tubes: Iterable[Tube], fps: float) -> list[Segment]:
    """The ground-truth action instances of a box dataset: the tubes of one class that overlap
    or touch in time (two people fencing, a track split at a gap that closes) make one
    :class:`Segment`, their union ``[first frame / fps, end frame / fps)``, sorted by class and
    start. Predictions are merged by the same rule (:func:`weaktube.structures.merge_runs`,
    ``weaktube.infer.pipeline.tubes_and_segments``), so temporal mAP counts the same instances
    on both sides (one segment per tube capped it at 87 % on the real UCF101-24 test split
    with the ground truth itself as predictions)."""
    spans = sorted((t.label, t.start_frame, t.end_frame) for t in tubes)
    if not spans:
        return []
    labels, starts, ends = (np.array(x) for x in zip(*spans))
    head = merge_runs(labels, starts, ends)  # in frames: exact
    np.maximum.at(ends, head, ends)
    return [Segment(int(labels[i]), int(starts[i]) / fps, int(ends[i]) / fps)
            for i in np.flatnonzero(head == np.arange(len(head)))]


# -------------------------------------------------------------------------------- segments
def parse_segment(seg: Any, **where: Any) -> tuple[float, float]:
    """``[start, end]`` seconds from a 2-element list; rejects ``end < start`` and ``start < 0``."""
    if not isinstance(seg, list | tuple) or len(seg) != 2:
        raise AnnotationError(f"must be [start, end] seconds, got {seg!r}", field="segment",
                              **where)
    start = as_float(seg[0], field="segment", **where)
    end = as_float(seg[1], field="segment", **where)
    if start < 0:
        raise AnnotationError(f"starts before the video: {start} s", field="segment", **where)
    if end < start:
        raise AnnotationError(f"ends before it starts: {start}..{end} s", field="segment",
                              **where)
    return start, end


class SegmentFitter:
    """Fits raw ``(start, end)`` second pairs into a video of ``num_frames / fps`` seconds.

    * zero-length segments (``end == start``) are dropped: they contain no frame.
    * segments ending at most one frame after the end are kept as they are (the canonical
      format's tolerance). For the others, ``out_of_range="clip"``: a segment starting at or
      after the video end is dropped, one ending later is clipped to the end;
      ``out_of_range="error"``: :class:`AnnotationError`.

    Drops and clips are counted; :meth:`warn` reports them once per file.
    """

    def __init__(self, out_of_range: str, file: str | os.PathLike) -> None:
        if out_of_range not in OUT_OF_RANGE_MODES:
            raise ReaderOptionError(f"out_of_range must be one of {OUT_OF_RANGE_MODES}, "
                             f"got {out_of_range!r}")
        self.mode = out_of_range
        self.file = file
        self.dropped: list[tuple[str, float, float]] = []
        self.clipped: list[tuple[str, float, float]] = []
        self.empty: list[tuple[str, float, float]] = []
        self.frameless: list[tuple[str, float, float]] = []  # kept (see fit)

    def fit(self, video: str, label: int, start: float, end: float, num_frames: int,
            fps: float, ambiguous: bool = False, index: int | None = None,
            file: str | os.PathLike | None = None, field: str = "segment") -> Segment | None:
        """The segment as kept (``None``: dropped). ``index``, ``file`` (default: the reader's
        source) and ``field`` say where the segment is in its source, for the error."""
        duration = num_frames / fps
        if end == start:
            self.empty.append((video, start, end))
            return None
        if end <= duration + 1.0 / fps:  # inside, or within a frame of the end: as it is
            seg = Segment(label, start, end, ambiguous)
            first, stop = seg.frame_range(fps)
            if stop <= first:  # shorter than a frame, between two frames: kept, reported
                self.frameless.append((video, start, end))
            return seg
        if self.mode == "error":
            raise AnnotationError(
                f"{start}..{end} s lies beyond the video end ({duration:.3f} s); use "
                f"out_of_range='clip' to drop or clip such segments",
                file=self.file if file is None else file, video=video, segment=index,
                field=field)
        if start >= duration:
            self.dropped.append((video, start, end))
            return None
        self.clipped.append((video, start, end))
        return Segment(label, start, duration, ambiguous)

    def warn(self) -> None:
        for items, what in (
                (self.empty, "zero-length segment(s) (end == start) dropped"),
                (self.dropped, "segment(s) starting after the video end dropped"),
                (self.clipped, "segment(s) ending over a frame after the video end clipped"),
                (self.frameless, "segment(s) holding no frame (shorter than a frame, between "
                                 "two) kept: temporal mAP counts them, training never samples "
                                 "them")):
            if items:
                videos = sorted({v for v, _, _ in items})
                more = f" and {len(videos) - 5} more" if len(videos) > 5 else ""
                warnings.warn(f"{self.file}: {len(items)} {what}, in video(s) "
                              f"{', '.join(videos[:5])}{more}", stacklevel=4)


def frames_for_duration(seconds: float, fps: float) -> int:
    """Frames needed so that ``seconds`` lies inside the video: ``ceil(seconds * fps)``, >= 1."""
    return max(1, math.ceil(seconds * fps - 1e-9))


def finish(classes: Sequence[str], videos: list[VideoRecord],
           file: str | os.PathLike) -> AnnotationSet:
    """Build the :class:`AnnotationSet` and run the format's full validation."""
    out = AnnotationSet(list(classes), videos)
    out.validate(file)
    return out


def find_single(src: Path, pattern: str) -> Path:
    """``src`` itself, or the single file matching ``pattern`` inside the folder ``src``."""
    if src.is_dir():
        found = sorted(src.glob(pattern))
        if len(found) != 1:
            raise AnnotationError(f"expected exactly one {pattern} in the folder, found "
                                  f"{[p.name for p in found]}", file=src)
        return found[0]
    return src


def load_video_info(path: str | os.PathLike) -> dict[str, tuple[float, int]]:
    """``TH14_video_info.json`` (mmtad / BasicTAD: ``{video: {fps, num_frame, ...}}``) ->
    ``{video: (fps, num_frames)}``."""
    data = as_dict(load_json(path), file=path)
    out = {}
    for video, entry in data.items():
        w = {"file": path, "video": video}
        entry = as_dict(entry, **w)
        fps = as_float(get(entry, "fps", **w), field="fps", **w)
        n = as_int(get(entry, "num_frame", **w), field="num_frame", **w)
        if fps <= 0 or n <= 0:
            raise AnnotationError(f"needs fps > 0 and num_frame > 0, got {fps}, {n}",
                                  field="fps" if fps <= 0 else "num_frame", **w)
        out[video] = (fps, n)
    return out
