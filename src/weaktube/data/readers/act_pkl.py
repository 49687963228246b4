"""ACT-style ground-truth pickles: ``UCF101v2-GT.pkl``, ``JHMDB-GT.pkl`` (ACT-detector,
Kalogeiton et al. ICCV 2017; redistributed by MOC-Detector).

Layout (the real files are python-2 pickles, loaded with ``encoding="latin1"``)::

    {"labels": [class names],                          # index = label
     "train_videos": [[names of split 1], ...],        # one list per split
     "test_videos": [[names of split 1], ...],
     "nframes": {video: int},
     "resolution": {video: (height, width)},
     "gttubes": {video: {label: [array [n, 5]: frame (1-based), x1, y1, x2, y2]}}}

Conversion rules:

* ``start_frame = frame - 1``; frames inside one array must increase strictly, and a gap
  splits the array into several tubes (the canonical tube has one box per frame).
* boxes are taken as they are (``box_base=0``): ACT's own code treats them as 0-based pixel
  coordinates (its flip is ``w - x``, its crops subtract offsets directly; only its IoU adds
  the +1 of the pixel-inclusive convention). ``box_base=1`` subtracts 1 from ``x1, y1`` for
  files known to be 1-based.
* split ``split`` (0-based index into the lists; 0 = "split 1") -> ``"train"`` / ``"test"``;
  videos in neither list of that split are left out, with a warning.
* width/height from ``resolution``; one temporal segment per tube.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from weaktube.data.readers._common import (
    ReaderOptionError,
    as_dict,
    as_int,
    as_list,
    as_str,
    check_boxes,
    check_class_names,
    find_single,
    finish,
    get,
    load_pickle,
    nominal_fps,
    reader,
    segments_from_tubes,
    tubes_from_frames,
)
from weaktube.data.readers.frames import attach_frame_paths
from weaktube.structures import AnnotationError, AnnotationSet, Tube, VideoRecord


def _find_pickle(src: Path) -> Path:
    return find_single(src, "*-GT.pkl")


def _split_list(data: dict, key: str, split: int, path: Path) -> list[str]:
    lists = as_list(get(data, key, file=path), file=path, field=key)
    if not 0 <= split < len(lists):
        raise AnnotationError(f"split index {split} requested but the file has {len(lists)} "
                              f"split(s)", file=path, field=key)
    return [as_str(v, file=path, field=f"{key}[{split}]")
            for v in as_list(lists[split], file=path, field=f"{key}[{split}]")]


def _track(raw: object, nframes: int, box_base: int, size: tuple[int, int], label: int,
           **where: object) -> tuple[np.ndarray, np.ndarray]:
    """One ``[n, 5]`` array -> 0-based frames ``[n]`` and 0-based corner boxes ``[n, 4]``.
    ``where["tube"]`` is its index in ``gttubes[video][label]``, which messages name."""
    at = f"gttubes[{label}][{where.get('tube')}]"
    arr = np.asarray(raw) if isinstance(raw, np.ndarray | list | tuple) else None
    if arr is None or arr.dtype.kind not in "iuf" or arr.ndim != 2 or arr.shape[1] != 5 \
            or len(arr) == 0:
        desc = (f"dtype {arr.dtype}, shape {arr.shape}" if arr is not None
                else type(raw).__name__)
        raise AnnotationError(f"{at}: a tube must be a non-empty numeric [n, 5] array of "
                              f"<frame> <x1> <y1> <x2> <y2>, got {desc}", field="gttubes",
                              **where)
    arr = arr.astype(np.float64)
    frames = arr[:, 0]
    bad = ~np.isfinite(frames) | (frames != np.round(frames)) | (frames < 1) | (frames > nframes)
    if bad.any():
        raise AnnotationError(f"{at}: frame number {frames[bad][0]!r} is not an integer in "
                              f"1..{nframes} (nframes)", frame=_frame_of(frames[bad][0]),
                              field="frame", **where)
    if (np.diff(frames) <= 0).any():
        i = int(np.argmax(np.diff(frames) <= 0)) + 1
        raise AnnotationError(f"{at}: frame numbers must increase strictly along a tube",
                              frame=int(frames[i]), field="frame", **where)
    boxes = arr[:, 1:5].copy()
    boxes[:, :2] -= box_base  # [x1, y1] of 1-based pixels -> 0-based corners
    _check(boxes, frames, size, **where)
    return frames.astype(np.int64) - 1, boxes


def _frame_of(value: float) -> int | None:
    return int(value) if np.isfinite(value) else None


def _check(boxes: np.ndarray, frames: np.ndarray, size: tuple[int, int],
           **where: object) -> None:
    # check_boxes numbers frames from boxes[0]; ACT frames need not be consecutive, so on a
    # failure check box by box to name the right frame number (1-based, as in the file).
    try:
        check_boxes(boxes, size[0], size[1], 0, **where)
    except AnnotationError:
        for f, b in zip(frames, boxes, strict=True):
            check_boxes(b[None], size[0], size[1], int(f), **where)
        raise


@reader
def read_act_pkl(
    src: str | os.PathLike,
    *,
    split: int = 0,
    fps: float | None = None,
    box_base: int = 0,
    frames_root: str | os.PathLike | None = None,
) -> AnnotationSet:
    """Read an ACT ``*-GT.pkl`` (a file, or a folder holding exactly one).

    Args:
        split: 0-based index into ``train_videos`` / ``test_videos`` (0 = split 1).
        fps: frame rate stored on every video; None = 30 for the J-HMDB-21 class list, else 25
            (UCF101). Frames are what the file indexes; fps only converts to seconds.
        box_base: 0 (default) keeps the boxes as they are; 1 subtracts 1 from x1 and y1.
        frames_root: optional folder of frame folders (``Frames/`` or ``rgb-images/``).
    """
    path = _find_pickle(Path(src))
    if box_base not in (0, 1):
        raise ReaderOptionError(f"box_base must be 0 or 1, got {box_base!r}")
    data = as_dict(load_pickle(path), file=path)
    classes = check_class_names(as_list(get(data, "labels", file=path), file=path,
                                        field="labels"), file=path, field="labels")
    fps = nominal_fps(classes) if fps is None else float(fps)
    if not (fps > 0 and np.isfinite(fps)):
        raise ReaderOptionError(f"fps must be a positive number, got {fps}")
    nframes = as_dict(get(data, "nframes", file=path), file=path, field="nframes")
    resolution = as_dict(get(data, "resolution", file=path), file=path, field="resolution")
    gttubes = as_dict(get(data, "gttubes", file=path), file=path, field="gttubes")
    train = _split_list(data, "train_videos", split, path)
    test = _split_list(data, "test_videos", split, path)
    both = set(train) & set(test)
    if both:
        raise AnnotationError(f"video is in both train_videos[{split}] and test_videos[{split}]",
                              file=path, video=sorted(both)[0], field="test_videos")
    split_of = {**{v: "train" for v in train}, **{v: "test" for v in test}}
    missing = [v for v in split_of if v not in nframes]
    if missing:
        raise AnnotationError("listed in a split but absent from nframes", file=path,
                              video=missing[0], field="nframes")
    videos = []
    for name in nframes:
        name = as_str(name, file=path, field="nframes")
        if name not in split_of:
            continue
        w = {"file": path, "video": name}
        n = as_int(nframes[name], field="nframes", **w)
        if n <= 0:
            raise AnnotationError(f"must be positive, got {n}", field="nframes", **w)
        res = as_list(get(resolution, name, **w), field="resolution", **w)
        if len(res) != 2:
            raise AnnotationError(f"must be (height, width), got {res!r}", field="resolution",
                                  **w)
        height, width = (as_int(r, field="resolution", **w) for r in res)
        if height <= 0 or width <= 0:
            raise AnnotationError(f"must be positive, got {res!r}", field="resolution", **w)
        tubes: list[Tube] = []
        for label_key, tube_list in as_dict(gttubes.get(name, {}), field="gttubes",
                                            **w).items():
            label = as_int(label_key, field="gttubes", **w)
            if not 0 <= label < len(classes):
                raise AnnotationError(f"unknown class index {label} (the file has "
                                      f"{len(classes)} labels)", field="gttubes", **w)
            for ti, raw in enumerate(as_list(tube_list, field="gttubes", **w)):
                frames, boxes = _track(raw, n, box_base, (width, height), label, tube=ti, **w)
                tubes += tubes_from_frames(label, frames, boxes)
        videos.append(VideoRecord(name, n, width, height, fps, split_of[name], tubes,
                                  segments_from_tubes(tubes, fps)))
    unused = len(nframes) - len(videos)
    if unused:
        warnings.warn(f"{path}: {unused} video(s) are in neither train_videos[{split}] nor "
                      f"test_videos[{split}] and were left out", stacklevel=3)
    ann = finish(classes, videos, path)
    if frames_root is not None:
        ann = attach_frame_paths(ann, frames_root)
    return ann
