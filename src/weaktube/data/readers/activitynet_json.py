"""ActivityNet official annotations (``activity_net.v1-3.min.json`` layout).

Layout::

    {"version": "VERSION 1.3", "taxonomy": [...],
     "database": {youtube_id: {"subset": "training" | "validation" | "testing",
                               "duration": seconds, "resolution": "WxH", "url": str,
                               "annotations": [{"segment": [start_s, end_s], "label": str}]}}}

Conversion rules:

* video names are the database keys (YouTube ids, no ``v_`` prefix).
* classes: the sorted label names found in the annotations (the taxonomy is not used).
* subset -> "train" / "val" / "test" (test videos have no annotations).
* the file has no frame rate: fps is an option (default 30) and
  ``num_frames = round(duration * fps)``.
* width/height from ``resolution`` when it reads ``"<W>x<H>"``, else 0 (unknown); it describes
  the YouTube original, not necessarily a downloaded copy.
* zero-length segments are dropped; segments past the video end: see ``out_of_range``.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

from weaktube.data.readers._common import (
    ReaderOptionError,
    SegmentFitter,
    as_dict,
    as_float,
    as_list,
    as_str,
    finish,
    get,
    load_json,
    parse_segment,
    reader,
)
from weaktube.data.readers.actionformer_json import subset_to_split
from weaktube.structures import AnnotationError, AnnotationSet, VideoRecord

_RESOLUTION = re.compile(r"^\s*(\d+)\s*x\s*(\d+)\s*$")


@reader
def read_activitynet_json(src: str | os.PathLike, *, fps: float = 30.0,
                          out_of_range: str = "clip") -> AnnotationSet:
    """Read an official ActivityNet json (1.2 / 1.3 layout).

    Args:
        fps: frame rate stored on every video (the file has none).
        out_of_range: "clip" (drop segments starting after the video end, clip ends past it;
            warns) or "error".
    """
    path = Path(src)
    if not (fps > 0 and math.isfinite(fps)):
        raise ReaderOptionError(f"fps must be a positive number, got {fps}")
    data = as_dict(load_json(path), file=path)
    db = as_dict(get(data, "database", file=path), file=path, field="database")
    raw = {}
    for video, entry in db.items():
        w = {"file": path, "video": video}
        entry = as_dict(entry, **w)
        anns = []
        for si, a in enumerate(as_list(entry.get("annotations", []), field="annotations",
                                       **w)):
            a = as_dict(a, segment=si, **w)
            label = as_str(get(a, "label", segment=si, **w), field="label", segment=si, **w)
            anns.append((label, *parse_segment(get(a, "segment", segment=si, **w), segment=si,
                                               **w)))
        raw[video] = (entry, anns)
    classes = sorted({label for _, anns in raw.values() for label, _, _ in anns})
    if not classes:
        raise AnnotationError("no annotated segment: cannot build a class list", file=path)
    label_of = {c: i for i, c in enumerate(classes)}
    fitter = SegmentFitter(out_of_range, path)
    videos = []
    for video, (entry, anns) in raw.items():
        w = {"file": path, "video": video}
        split = subset_to_split(get(entry, "subset", **w), **w)
        duration = as_float(get(entry, "duration", **w), field="duration", **w)
        if duration <= 0:
            raise AnnotationError(f"must be positive, got {duration}", field="duration", **w)
        n = max(1, round(duration * fps))
        m = _RESOLUTION.match(str(entry.get("resolution", "")))
        width, height = (int(m[1]), int(m[2])) if m else (0, 0)
        segments = [fitter.fit(video, label_of[label], s, e, n, fps, index=i)
                    for i, (label, s, e) in enumerate(anns)]
        videos.append(VideoRecord(video, n, width, height, float(fps), split, [],
                                  [s for s in segments if s is not None]))
    fitter.warn()
    return finish(classes, videos, path)
