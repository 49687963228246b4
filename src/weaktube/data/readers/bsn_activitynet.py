"""ActivityNet 1.3 as BSN (Lin et al., ECCV 2018) distributes it: ``anet_anno_action.json`` +
``video_info_new.csv`` (+ ``action_name.csv``).

Layout::

    anet_anno_action.json  {"v_<youtube_id>": {"duration_second": float, "duration_frame": int,
                                               "feature_frame": int,
                                               "annotations": [{"segment": [s, e], "label"}]}}
    video_info_new.csv     video,numFrame,seconds,fps,rfps,subset,featureFrame
    action_name.csv        action \\n <200 class names>   (optional)

Conversion rules:

* video names keep BSN's ``v_`` prefix (the official file and result submissions have none:
  strip it when matching those).
* subset from the csv: training / validation / testing -> "train" / "val" / "test".
* ``num_frames`` = ``numFrame`` and ``fps`` = ``rfps`` (the unrounded rate: ``numFrame / rfps``
  equals ``seconds``); both describe BSN's copies of the videos. width/height 0 (unknown).
* classes: ``action_name.csv`` in file order when present (note its spelling "Mooping floor"),
  else the sorted label names; a label not in the list is an error.
* the real file holds 12 zero-length segments (``end == start``), which are dropped, and 6
  segments ending past the video end, which ``out_of_range="clip"`` clips.
"""

from __future__ import annotations

import os
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
    load_csv,
    load_json,
    parse_segment,
    reader,
    require_file,
)
from weaktube.data.readers.actionformer_json import subset_to_split
from weaktube.structures import AnnotationError, AnnotationSet, VideoRecord

ANNOTATION_FILE = "anet_anno_action.json"
VIDEO_INFO_FILE = "video_info_new.csv"
ACTION_NAME_FILE = "action_name.csv"


def _read_video_info(path: Path) -> dict[str, tuple[int, float, str]]:
    """``{video: (num_frames, fps, split)}``; fps from ``rfps`` (``fps`` when absent)."""
    rows = load_csv(path, ["video", "numFrame", "subset"])
    out = {}
    for i, row in enumerate(rows, start=2):
        video = row["video"]
        w = {"file": path, "video": video or f"(line {i})"}
        if not video:
            raise AnnotationError("empty video name", field="video", **w)
        fps_field = "rfps" if "rfps" in row else "fps"
        if fps_field not in row:
            raise AnnotationError("the CSV needs an rfps or fps column", file=path, field="fps")
        n = as_int(row["numFrame"], field="numFrame", **w)
        fps = as_float(row[fps_field], field=fps_field, **w)
        if n <= 0 or fps <= 0:
            raise AnnotationError(f"needs numFrame > 0 and {fps_field} > 0, got {n}, {fps}",
                                  field="numFrame" if n <= 0 else fps_field, **w)
        if video in out:
            raise AnnotationError("video listed twice", field="video", **w)
        out[video] = (n, fps, subset_to_split(row["subset"], **w))
    return out


@reader
def read_bsn_activitynet(
    src: str | os.PathLike,
    *,
    video_info: str | os.PathLike | None = None,
    action_names: str | os.PathLike | None = None,
    out_of_range: str = "clip",
) -> AnnotationSet:
    """Read BSN's ActivityNet annotations.

    Args:
        src: ``anet_anno_action.json``, or the folder holding it.
        video_info: ``video_info_new.csv``; default: next to the json.
        action_names: ``action_name.csv``; default: next to the json when it is there.
        out_of_range: "clip" (drop segments starting after the video end, clip ends past it;
            warns) or "error".

    Returns: 19228 videos (9649 train, 4728 val, 4851 test), 200 classes, 14859 train + 7293
    val instances (12 zero-length ones dropped) for the real files.
    """
    path = Path(src)
    if path.is_dir():
        path = path / ANNOTATION_FILE
    path = require_file(path, ANNOTATION_FILE)
    info_path = Path(video_info) if video_info is not None else path.parent / VIDEO_INFO_FILE
    info = _read_video_info(require_file(info_path, VIDEO_INFO_FILE))
    names_path = Path(action_names) if action_names is not None else (
        path.parent / ACTION_NAME_FILE if (path.parent / ACTION_NAME_FILE).is_file() else None)
    data = as_dict(load_json(path), file=path)

    raw = {}
    for video, entry in data.items():
        w = {"file": path, "video": video}
        entry = as_dict(entry, **w)
        anns = []
        for si, a in enumerate(as_list(get(entry, "annotations", **w), field="annotations",
                                       **w)):
            a = as_dict(a, segment=si, **w)
            label = as_str(get(a, "label", segment=si, **w), field="label", segment=si, **w)
            anns.append((label, *parse_segment(get(a, "segment", segment=si, **w), segment=si,
                                               **w)))
        raw[video] = anns

    if names_path is not None:
        classes = [row["action"] for row in load_csv(require_file(names_path), ["action"])]
        if not classes or len(set(classes)) != len(classes) or not all(classes):
            raise AnnotationError("needs unique non-empty class names", file=names_path,
                                  field="action")
    else:
        classes = sorted({label for anns in raw.values() for label, _, _ in anns})
    label_of = {c: i for i, c in enumerate(classes)}

    fitter = SegmentFitter(out_of_range, path)
    videos = []
    for video, anns in raw.items():
        if video not in info:
            raise AnnotationError(f"no row in {info_path.name}", file=path, video=video)
        n, fps, split = info[video]
        segments = []
        for si, (label, start, end) in enumerate(anns):
            if label not in label_of:
                raise AnnotationError(f"unknown class {label!r}" + (
                    f" (not in {names_path.name})" if names_path else ""), file=path,
                    video=video, segment=si, field="label")
            seg = fitter.fit(video, label_of[label], start, end, n, fps, index=si)
            if seg is not None:
                segments.append(seg)
        videos.append(VideoRecord(video, n, 0, 0, fps, split, [], segments))
    fitter.warn()
    return finish(classes, videos, path)
