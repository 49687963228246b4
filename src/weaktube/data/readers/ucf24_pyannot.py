"""UCF101-24, corrected annotations: ``pyannot.pkl`` / ``pyannot_with_class_names.pkl``
(Singh et al., ICCV 2017; repo ``gurkirt/corrected-UCF101-Annots``).

Layout (pickle protocol 3, python 3)::

    {"classes": [24 names],                       # index = label
     "trainvideos": ["Class/v_Class_gXX_cYY", ...], # 2290 names, 2284 of them in db
     "db": {"Class/v_Class_gXX_cYY": {
         "label": int, "numf": uint8 | uint16,
         "annotations": [{"label": int, "sf": int, "ef": int,
                          "boxes": uint8 | uint16 array [ef - sf, 4]}]}}}

Conversion rules:

* ``sf`` is the 0-based first frame and ``ef`` the exclusive end; ``boxes[i]`` is frame
  ``sf + i``.
* boxes are ``[x, y, w, h]`` in 1-based (MATLAB) integer pixels of the 320x240 frame and become
  0-based corners ``[x - 1, y - 1, x + w, y + h]``. They are cast to float64 *before* any
  arithmetic: ``x + w`` in uint8 wraps around (1445 tubes have ``x + w`` or ``y + h`` > 255).
* split: names in ``trainvideos`` -> ``"train"``, every other db video -> ``"test"``.
* one temporal :class:`Segment` per tube, covering exactly its frames.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from weaktube.data.readers._common import (
    UCF101_FPS,
    UCF_JHMDB_FRAME_SIZE,
    ReaderOptionError,
    as_dict,
    as_int,
    as_list,
    as_str,
    check_boxes,
    check_class_names,
    check_frame_size,
    find_single,
    finish,
    get,
    load_pickle,
    read_text,
    reader,
    segments_from_tubes,
)
from weaktube.data.readers.frames import attach_frame_paths
from weaktube.structures import AnnotationError, AnnotationSet, Tube, VideoRecord


def _find_pickle(src: Path) -> Path:
    return find_single(src, "pyannot*.pkl")


def _convert_boxes(raw: object, length: int, **where: object) -> np.ndarray:
    """``[T, 4]`` 1-based ``[x, y, w, h]`` (any integer dtype) -> 0-based corners, float64."""
    arr = np.asarray(raw) if isinstance(raw, np.ndarray | list | tuple) else None
    if arr is None or arr.dtype.kind not in "iuf" or arr.ndim != 2 or arr.shape[1] != 4:
        desc = (f"array of dtype {arr.dtype} and shape {arr.shape}" if arr is not None
                else type(raw).__name__)
        raise AnnotationError(f"must be a numeric [T, 4] array of [x, y, w, h], got {desc}",
                              field="boxes", **where)
    if len(arr) != length:
        raise AnnotationError(f"holds {len(arr)} boxes but ef - sf = {length}", field="boxes",
                              **where)
    xywh = arr.astype(np.float64)  # before any arithmetic: uint8 x + w wraps around
    x, y, w, h = xywh.T
    return np.stack([x - 1.0, y - 1.0, x + w, y + h], axis=1)  # [T, 4] xyxy, 0-based


def _read_testlist(path: str | os.PathLike) -> list[str]:
    return [line.strip() for line in read_text(path).splitlines() if line.strip()]


@reader
def read_ucf24_pyannot(
    src: str | os.PathLike,
    *,
    testlist: str | os.PathLike | None = None,
    fps: float = UCF101_FPS,
    frame_size: tuple[int, int] | None = None,
    frames_root: str | os.PathLike | None = None,
) -> AnnotationSet:
    """Read the corrected UCF101-24 ``pyannot*.pkl`` (a file, or a folder holding one).

    Args:
        src: the pickle, or a folder with exactly one ``pyannot*.pkl``.
        testlist: optional ``testlist01.txt`` (``Class/v_Class_gXX_cYY`` per line); when given,
            it must list exactly the test videos (db videos not in ``trainvideos``).
        fps: frame rate stored on every video (UCF101 is nominally 25 fps; some clips are
            29.97). Frames are what the annotation indexes; fps only converts to seconds.
        frame_size: ``(width, height)`` of the videos actually used (the YOWO clips are
            340x256); boxes are rescaled from 320x240, with a warning naming the scale.
        frames_root: optional folder of frame folders ``<frames_root>/<Class>/<video>/``;
            videos found there get ``path`` set.

    Returns: 3194 videos (2284 train, 910 test), 24 classes, 4458 tubes for the real file.
    """
    path = _find_pickle(Path(src))
    if not (fps > 0 and np.isfinite(fps)):
        raise ReaderOptionError(f"fps must be a positive number, got {fps}")
    data = as_dict(load_pickle(path), file=path)
    classes = check_class_names(as_list(get(data, "classes", file=path), file=path,
                                        field="classes"), file=path, field="classes")
    db = as_dict(get(data, "db", file=path), file=path, field="db")
    train = {str(v) for v in as_list(get(data, "trainvideos", file=path), file=path,
                                     field="trainvideos")}
    width, height = UCF_JHMDB_FRAME_SIZE
    videos = []
    for key, entry in db.items():
        name = as_str(str(key) if isinstance(key, np.str_) else key, file=path, field="db")
        w = {"file": path, "video": name}
        entry = as_dict(entry, **w)
        numf = as_int(get(entry, "numf", **w), field="numf", **w)  # uint8/uint16 -> int
        if numf <= 0:
            raise AnnotationError(f"must be positive, got {numf}", field="numf", **w)
        tubes = []
        for ti, t in enumerate(as_list(get(entry, "annotations", **w), field="annotations",
                                       **w)):
            wt = {**w, "tube": ti}
            t = as_dict(t, field="annotations", **wt)
            label = as_int(get(t, "label", **wt), field="label", **wt)
            if not 0 <= label < len(classes):
                raise AnnotationError(f"unknown class index {label} (the file has "
                                      f"{len(classes)} classes)", field="label", **wt)
            sf = as_int(get(t, "sf", **wt), field="sf", **wt)
            ef = as_int(get(t, "ef", **wt), field="ef", **wt)
            if not 0 <= sf < ef <= numf:
                bad = sf if not 0 <= sf < numf else ef
                raise AnnotationError(f"needs 0 <= sf < ef <= numf = {numf}, got sf={sf}, "
                                      f"ef={ef}", frame=bad, field="sf" if bad == sf else "ef",
                                      **wt)
            boxes = _convert_boxes(get(t, "boxes", **wt), ef - sf, **wt)
            check_boxes(boxes, width, height, sf, **wt)
            tubes.append(Tube(label, sf, boxes.astype(np.float32)))
        split = "train" if name in train else "test"
        videos.append(VideoRecord(name, numf, width, height, float(fps), split, tubes,
                                  segments_from_tubes(tubes, fps)))
    if testlist is not None:
        _check_testlist(testlist, videos)
    ann = finish(classes, videos, path)
    if frame_size is not None:
        fw, fh = check_frame_size(frame_size)
        warnings.warn(f"{path}: rescaling UCF101-24 boxes from {width}x{height} to {fw}x{fh} "
                      f"(x * {fw / width:.4f}, y * {fh / height:.4f})", stacklevel=3)
        ann = rescale_to_video_sizes(ann, {v.name: (fw, fh) for v in ann.videos})
    if frames_root is not None:
        ann = attach_frame_paths(ann, frames_root)
    return ann


def _check_testlist(testlist: str | os.PathLike, videos: list[VideoRecord]) -> None:
    listed = _read_testlist(testlist)
    test = {v.name for v in videos if v.split == "test"}
    names = {v.name for v in videos}
    for name in listed:
        if name not in names:
            raise AnnotationError("listed video is not in the annotation db", file=testlist,
                                  video=name)
        if name not in test:
            raise AnnotationError("listed as a test video but the pickle's trainvideos has "
                                  "it", file=testlist, video=name)
    missing = sorted(test - set(listed))
    if missing:
        raise AnnotationError(f"{len(missing)} test video(s) (not in trainvideos) are missing "
                              f"from the test list", file=testlist, video=missing[0])


def rescale_to_video_sizes(ann: AnnotationSet,
                           sizes: dict[str, tuple[int, int]]) -> AnnotationSet:
    """A copy of ``ann`` with each video in ``sizes`` rescaled to its ``(width, height)``.

    Boxes are multiplied by ``new_width / width`` in x and ``new_height / height`` in y (e.g.
    340/320 = 1.0625 and 256/240 = 1.0667 for the YOWO UCF101-24 clips). Videos not in
    ``sizes`` are unchanged; names in ``sizes`` that ``ann`` lacks are ignored. A video of
    unknown size (0, temporal-only) just takes the new size.
    """
    videos = []
    for v in ann.videos:
        if v.name not in sizes:
            videos.append(v)
            continue
        w, h = check_frame_size(sizes[v.name])
        tubes = list(v.tubes)
        if v.tubes and (v.width, v.height) != (w, h):
            scale = np.array([w / v.width, h / v.height, w / v.width, h / v.height])
            tubes = [Tube(t.label, t.start_frame, (t.boxes * scale).astype(np.float32))
                     for t in v.tubes]
        videos.append(VideoRecord(v.name, v.num_frames, w, h, v.fps, v.split, tubes,
                                  list(v.segments), v.path))
    return AnnotationSet(list(ann.classes), videos)
