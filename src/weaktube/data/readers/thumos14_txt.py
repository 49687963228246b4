"""THUMOS'14 official temporal annotations: one text file per class and split.

Layout: a folder holding ``annotations_val/`` and/or ``annotations_test/`` (or one of those
folders itself) with ``<Class>_val.txt`` / ``<Class>_test.txt`` for 20 classes, plus
``Ambiguous_val.txt`` / ``Ambiguous_test.txt``; other files (``readme.txt``) are ignored. Each line
is ``video_name start end`` (whitespace-separated, seconds with one decimal).

Conversion rules:

* classes = the class file names, sorted (= the usual ids 0 BaseballPitch .. 19
  VolleyballSpiking).
* split from the file name: ``_val`` -> ``"val"``, ``_test`` -> ``"test"``. THUMOS'14 trains on
  its validation videos; the split names are kept as in the source.
* ``Ambiguous`` segments are kept as ``Segment(label=0, ambiguous=True)``: the label of an
  ambiguous segment means nothing (evaluators drop these from the ground truth), and
  "Ambiguous" is not a class. ``ambiguous=False`` leaves them out.
* every CliffDiving instance is also listed under Diving: both are kept (two labelled
  instances).
* fps / num_frames: from ``video_info`` (``TH14_video_info.json``: ``{video: {fps, num_frame,
  ...}}``) when given; otherwise (and for videos it lacks) fps = 30 and num_frames =
  ``ceil(max segment end * fps)``. width/height are 0 (unknown: the info file's 320x180 describe
  resized copies, not the originals).
* segments past the video end (THUMOS has 30, in 5 videos, with ``video_info``): see
  ``out_of_range``.
"""

from __future__ import annotations

import math
import os
import re
import warnings
from pathlib import Path

from weaktube.data.readers._common import (
    ReaderOptionError,
    SegmentFitter,
    as_float,
    finish,
    frames_for_duration,
    load_video_info,
    read_text,
    reader,
)
from weaktube.structures import AnnotationError, AnnotationSet, VideoRecord

AMBIGUOUS = "Ambiguous"
_CLASS_FILE = re.compile(r"^(?P<cls>.+)_(?P<split>val|test)\.txt$")
_SPLITS = {"val": "val", "test": "test"}


def _class_files(path: Path) -> list[tuple[Path, str, str]]:
    """``[(file, class name, split)]`` under ``path`` (itself and its annotations_* folders)."""
    folders = [path] + [path / f"annotations_{s}" for s in _SPLITS if
                        (path / f"annotations_{s}").is_dir()]
    out = []
    for folder in folders:
        for f in sorted(folder.glob("*.txt")):
            m = _CLASS_FILE.match(f.name)
            if m:
                out.append((f, m["cls"], _SPLITS[m["split"]]))
    return out


def parse_thumos_lines(text: str, file: str | os.PathLike
                       ) -> list[tuple[str, float, float, int]]:
    """``[(video, start s, end s, 1-based line number)]`` of one class file; rejects malformed
    lines."""
    out = []
    for ln, line in enumerate(text.splitlines(), start=1):
        tok = line.split()
        if not tok:
            continue
        if len(tok) != 3:
            raise AnnotationError(f"line {ln} must be 'video start end', got {line!r}",
                                  file=file, field="line")
        video = tok[0]
        start = as_float(tok[1], file=file, video=video, field=f"start (line {ln})")
        end = as_float(tok[2], file=file, video=video, field=f"end (line {ln})")
        if start < 0 or end < start:
            raise AnnotationError(f"line {ln}: needs 0 <= start <= end, got {start}..{end} s",
                                  file=file, video=video, field="end")
        out.append((video, start, end, ln))
    return out


@reader
def read_thumos14_txt(
    src: str | os.PathLike,
    *,
    video_info: str | os.PathLike | None = None,
    fps: float = 30.0,
    ambiguous: bool = True,
    out_of_range: str = "clip",
) -> AnnotationSet:
    """Read the official THUMOS'14 per-class text files.

    Args:
        src: a folder with ``annotations_val/`` / ``annotations_test/``, or one of them.
        video_info: optional ``TH14_video_info.json`` giving fps and num_frame per video.
        fps: frame rate for videos the info file does not cover (THUMOS is mostly 30 fps).
        ambiguous: keep ``Ambiguous_*.txt`` segments (flagged ``ambiguous=True``, label 0).
        out_of_range: "clip" (drop segments starting after the video end, clip ends past it;
            warns) or "error".

    Returns: 200 val + 213 test videos, 20 classes; 3007 val and 3358 test instances and 188
    ambiguous segments for the real files (without ``video_info``).
    """
    path = Path(src)
    if not path.is_dir():
        raise AnnotationError("expected a folder of <Class>_val.txt / <Class>_test.txt files",
                              file=path)
    if not (fps > 0 and math.isfinite(fps)):
        raise ReaderOptionError(f"fps must be a positive number, got {fps}")
    files = _class_files(path)
    classes = sorted({cls for _, cls, _ in files if cls != AMBIGUOUS})
    if not classes:
        raise AnnotationError("no <Class>_val.txt / <Class>_test.txt files found", file=path)
    label_of = {c: i for i, c in enumerate(classes)}
    info = load_video_info(video_info) if video_info is not None else {}

    # video -> [(label, start, end, ambiguous, file, line)]
    raw: dict[str, list[tuple[int, float, float, bool, Path, int]]] = {}
    split_of: dict[str, str] = {}
    for f, cls, split in files:
        if cls == AMBIGUOUS and not ambiguous:
            continue
        for video, start, end, ln in parse_thumos_lines(read_text(f), f):
            if split_of.setdefault(video, split) != split:
                raise AnnotationError(f"video is listed in both the {split_of[video]!r} and "
                                      f"the {split!r} files", file=f, video=video)
            amb = cls == AMBIGUOUS
            raw.setdefault(video, []).append((0 if amb else label_of[cls], start, end, amb, f,
                                              ln))

    fitter = SegmentFitter(out_of_range, path)
    uninformed = []
    videos = []
    for video in sorted(raw):
        segs = sorted(raw[video], key=lambda s: (s[1], s[2], s[0], s[3]))
        if video in info:
            vfps, n = info[video]
        else:
            vfps, n = float(fps), frames_for_duration(max(s[2] for s in segs), fps)
            if video_info is not None:
                uninformed.append(video)
        segments = [fitter.fit(video, lab, s, e, n, vfps, amb, file=f, field=f"line {ln}")
                    for lab, s, e, amb, f, ln in segs]
        videos.append(VideoRecord(video, n, 0, 0, vfps, split_of[video], [],
                                  [s for s in segments if s is not None]))
    if uninformed:
        warnings.warn(f"{video_info}: no entry for {len(uninformed)} video(s) ({uninformed[0]!r}"
                      f"...); used fps={fps} and the last segment end", stacklevel=3)
    fitter.warn()
    return finish(classes, videos, path)
