"""ActionFormer-style temporal annotations (``thumos14.json`` of ActionFormer and its forks).

Layout::

    {"version": "...",
     "database": {video: {"subset": "Validation" | "Test" | "Training",
                          "duration": seconds, "fps": float,
                          "annotations": [{"label": str, "label_id": int (0-based),
                                           "segment": [start_s, end_s],
                                           "segment(frames)": [...]}]}}}

Conversion rules:

* classes: ``label_id`` -> ``label`` (must be one-to-one and cover 0..K-1); without any
  ``label_id``, the sorted label names.
* subset (case-insensitive) training/train -> "train", validation/val -> "val",
  testing/test -> "test".
* ``num_frames = round(duration * fps)``, or fps and ``num_frame`` from ``video_info``
  (``TH14_video_info.json``) for the videos it lists: on THUMOS'14 ActionFormer's ``duration``
  gives 2-4 frames more than mmtad's decoded counts for every video. ``segment(frames)`` is
  ignored (it is ``segment * fps``). width/height 0 (unknown).
* segments past the video end: see ``out_of_range``.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from weaktube.data.readers._common import (
    SegmentFitter,
    as_dict,
    as_float,
    as_int,
    as_list,
    as_str,
    finish,
    get,
    load_json,
    load_video_info,
    parse_segment,
    reader,
)
from weaktube.structures import AnnotationError, AnnotationSet, VideoRecord

SUBSETS = {"training": "train", "train": "train", "validation": "val", "val": "val",
           "testing": "test", "test": "test"}


def subset_to_split(value: object, **where: object) -> str:
    s = as_str(value, field="subset", **where).lower()
    if s not in SUBSETS:
        raise AnnotationError(f"unknown subset {value!r} (expected training, validation or "
                              f"testing)", field="subset", **where)
    return SUBSETS[s]


def _classes(db: dict, path: Path) -> list[str]:
    """Class names indexed by ``label_id`` (or sorted names when no id is given)."""
    id_of: dict[str, int] = {}
    name_of: dict[int, str] = {}
    names: set[str] = set()
    with_id = without_id = 0
    for video, entry in db.items():
        w = {"file": path, "video": video}
        for si, a in enumerate(as_list(get(as_dict(entry, **w), "annotations", **w),
                                       field="annotations", **w)):
            a = as_dict(a, segment=si, **w)
            label = as_str(get(a, "label", segment=si, **w), field="label", segment=si, **w)
            names.add(label)
            if "label_id" not in a:
                without_id += 1
                continue
            with_id += 1
            lid = as_int(a["label_id"], field="label_id", segment=si, **w)
            if id_of.setdefault(label, lid) != lid or name_of.setdefault(lid, label) != label:
                raise AnnotationError(f"label {label!r} / label_id {lid} disagree with earlier "
                                      f"annotations ({label!r} -> {id_of[label]}, {lid} -> "
                                      f"{name_of[lid]!r})", field="label_id", segment=si, **w)
    if with_id and without_id:
        raise AnnotationError("some annotations have a label_id and others do not", file=path,
                              field="label_id")
    if not with_id:
        return sorted(names)
    if sorted(name_of) != list(range(len(name_of))):
        raise AnnotationError(f"label_id values must be 0..{len(name_of) - 1}, got "
                              f"{sorted(name_of)}", file=path, field="label_id")
    return [name_of[i] for i in range(len(name_of))]


@reader
def read_actionformer_json(src: str | os.PathLike, *, out_of_range: str = "clip",
                           video_info: str | os.PathLike | None = None) -> AnnotationSet:
    """Read an ActionFormer-style json.

    Args:
        video_info: optional ``TH14_video_info.json`` giving fps and num_frame per video (the
            decoded counts; videos it lacks keep ``round(duration * fps)``, with a warning).
        out_of_range: "clip" (drop segments starting after the video end, clip ends past it;
            warns) or "error".

    Returns: 412 videos, 20 classes, 6365 instances for the real THUMOS'14 file (30 of them
    lie past the end of 5 videos and are dropped by "clip").
    """
    path = Path(src)
    data = as_dict(load_json(path), file=path)
    db = as_dict(get(data, "database", file=path), file=path, field="database")
    classes = _classes(db, path)
    label_of = {c: i for i, c in enumerate(classes)}
    fitter = SegmentFitter(out_of_range, path)
    info = load_video_info(video_info) if video_info is not None else {}
    uninformed = []
    videos = []
    for video, entry in db.items():
        w = {"file": path, "video": video}
        entry = as_dict(entry, **w)
        split = subset_to_split(get(entry, "subset", **w), **w)
        fps = as_float(get(entry, "fps", **w), field="fps", **w)
        duration = as_float(get(entry, "duration", **w), field="duration", **w)
        if fps <= 0 or duration <= 0:
            raise AnnotationError(f"needs fps > 0 and duration > 0, got {fps}, {duration}",
                                  field="fps" if fps <= 0 else "duration", **w)
        if video in info:
            fps, n = info[video]
        else:
            n = max(1, round(duration * fps))
            if video_info is not None:
                uninformed.append(video)
        segments = []
        for si, a in enumerate(entry["annotations"]):
            start, end = parse_segment(get(a, "segment", segment=si, **w), segment=si, **w)
            seg = fitter.fit(video, label_of[a["label"]], start, end, n, fps, index=si)
            if seg is not None:
                segments.append(seg)
        videos.append(VideoRecord(video, n, 0, 0, fps, split, [], segments))
    if uninformed:
        warnings.warn(f"{video_info}: no entry for {len(uninformed)} video(s) ({uninformed[0]!r}"
                      f"...); used round(duration * fps)", stacklevel=3)
    fitter.warn()
    return finish(classes, videos, path)
