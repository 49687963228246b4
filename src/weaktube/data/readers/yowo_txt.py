"""YOWO per-frame label files (UCF101-24 and J-HMDB-21 as YOWO / YOWOv2 lay them out) and YOWO's
ground-truth zips for the frame-mAP evaluator.

Two layouts, in a folder or in a ``.zip``:

* nested: ``labels/<class>/<video>/<frame:05d>.txt`` (+ ``trainlist.txt`` / ``testlist.txt``
  next to ``labels/``, one ``labels/<class>/<video>/<frame>.txt`` or ``<class>/<video>`` per
  line);
* flat: ``<class>_<video>_<frame:05d>.txt`` (``groundtruths_jhmdb.zip``,
  ``groundtruths_ucf.zip``). Class names contain underscores, so the class is the longest known
  class name that prefixes the file name, never the text before the first ``_``.

Each non-empty line is ``class_id x1 y1 x2 y2``: a 1-based class id (alphabetical class list)
and a box in pixels of the 320x240 frame. An empty file is a frame without boxes.

Conversion rules:

* frame numbers are 1-based: ``00001.txt`` is frame 0.
* boxes are 1-based pixel corners (``box_base=1``: observed ``x1, y1 >= 1`` and
  ``x2 <= 320``, ``y2 <= 240``) and become ``[x1 - 1, y1 - 1, x2, y2]``, the same convention
  as the UCF101-24 pickle reader.
* the class id must agree with the class of the folder / file name.
* boxes are linked into tubes frame to frame: consecutive frames continue a tube of the same
  class (greedily by IoU when several boxes share a frame); a frame without a box of that
  class ends it, so a gap splits a track into two tubes.
* ``num_frames`` = the highest frame number that has a label file (the files hold no frame
  count); with ``frames_root`` it grows to the number of frame images when that is larger.
"""

from __future__ import annotations

import os
import re
import warnings
import zipfile
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from weaktube.boxes import np_iou
from weaktube.data.readers._common import (
    JHMDB21_CLASSES,
    UCF24_CLASSES,
    UCF_JHMDB_FRAME_SIZE,
    ReaderOptionError,
    as_float,
    as_int,
    check_boxes,
    check_class_names,
    check_frame_size,
    finish,
    nominal_fps,
    read_text,
    reader,
    segments_from_tubes,
)
from weaktube.data.readers.frames import attach_frame_paths
from weaktube.structures import AnnotationError, AnnotationSet, Tube, VideoRecord

LIST_FILES = ("trainlist.txt", "testlist.txt")
_FLAT_NAME = re.compile(r"^(?P<stem>.+)_(?P<frame>\d+)\.txt$")
_FRAME_FILE = re.compile(r"^\d+\.(txt|jpg|jpeg|png)$")


@dataclass
class _LabelFile:
    """One per-frame label file, before its class is resolved (flat names need the list)."""

    where: str          # file name used in messages (``zip:member`` inside a zip)
    text: str
    frame: int          # as in the name: 1-based
    cls: str | None     # nested layout: the class folder
    video: str | None   # nested layout: the video folder
    stem: str | None    # flat layout: "<class>_<video>"


def _parse_frame(text: str, where: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise AnnotationError(f"frame number {text!r} is not a 1-based integer", file=where,
                              field="frame")
    return int(text)


def _nested(where: str, text: str, cls: str, video: str, frame_name: str) -> _LabelFile:
    if not frame_name.endswith(".txt"):
        raise AnnotationError("a label file must be <frame>.txt", file=where)
    return _LabelFile(where, text, _parse_frame(frame_name[:-4], where), cls, video, None)


def _flat(where: str, text: str, base: str) -> _LabelFile:
    m = _FLAT_NAME.match(base)
    if m is None:
        raise AnnotationError("a flat label file must be named <class>_<video>_<frame>.txt",
                              file=where)
    return _LabelFile(where, text, _parse_frame(m["frame"], where), None, None, m["stem"])


def _gather_zip(path: Path) -> tuple[list[_LabelFile], dict[str, str]]:
    files, lists = [], {}
    try:
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                if info.is_dir() or not info.filename.endswith(".txt"):
                    continue
                where = f"{path}:{info.filename}"
                try:
                    text = z.read(info).decode("utf-8")
                except UnicodeDecodeError:
                    raise AnnotationError("not UTF-8 text", file=where) from None
                parts = PurePosixPath(info.filename).parts
                if parts[-1] in LIST_FILES:
                    lists[parts[-1]] = text
                elif len(parts) >= 4 and parts[-4] == "labels":
                    files.append(_nested(where, text, parts[-3], parts[-2], parts[-1]))
                else:
                    files.append(_flat(where, text, parts[-1]))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError) as e:
        raise AnnotationError(f"cannot read the zip archive ({type(e).__name__}: {e})",
                              file=path) from None
    return files, lists


def _gather_folder(path: Path) -> tuple[list[_LabelFile], Path]:
    """Label files of a folder and the folder where list files live."""
    if (path / "labels").is_dir():
        labels, root = path / "labels", path
    elif path.name == "labels":
        labels, root = path, path.parent
    else:
        flat = [p for p in sorted(path.glob("*.txt")) if p.name not in LIST_FILES]
        return [_flat(str(p), read_text(p), p.name) for p in flat], path
    files = []
    for cdir in sorted(p for p in labels.iterdir() if p.is_dir()):
        for vdir in sorted(p for p in cdir.iterdir() if p.is_dir()):
            for f in sorted(vdir.glob("*.txt")):
                files.append(_nested(str(f), read_text(f), cdir.name, vdir.name, f.name))
    return files, root


def _resolve_nested_classes(files: list[_LabelFile],
                            classes: Sequence[str] | None) -> list[str]:
    found = {f.cls for f in files}
    if classes is not None:
        for f in files:
            if f.cls not in classes:
                raise AnnotationError(f"unknown class {f.cls!r} (not in the {len(classes)} "
                                      f"given classes)", file=f.where, field="class")
        return list(classes)
    for known in (UCF24_CLASSES, JHMDB21_CLASSES):
        if found <= set(known):
            return list(known)
    return sorted(found)  # a custom dataset: YOWO ids are 1-based over the sorted folder names


def _resolve_flat_classes(files: list[_LabelFile], classes: Sequence[str] | None) -> list[str]:
    candidates = [list(classes)] if classes is not None else [list(UCF24_CLASSES),
                                                              list(JHMDB21_CLASSES)]
    unmatched: _LabelFile | None = None
    for cand in candidates:
        by_length = sorted(cand, key=len, reverse=True)  # longest prefix wins
        unmatched = None
        for f in files:
            cls = next((c for c in by_length if f.stem.startswith(c + "_")), None)
            if cls is None:
                unmatched = f
                break
            f.cls, f.video = cls, f.stem[len(cls) + 1:]
        if unmatched is None:
            return cand
    known = "the given classes" if classes is not None else "the UCF101-24 or J-HMDB-21 classes"
    raise AnnotationError(f"unknown class: the name does not start with one of {known} followed "
                          f"by '_' (pass classes=[...] for another dataset)",
                          file=unmatched.where if unmatched else None, field="class")


def _parse_lines(f: _LabelFile, classes: list[str], box_base: int,
                 size: tuple[int, int]) -> list[tuple[int, np.ndarray]]:
    """``[(label, box [4] 0-based corners)]`` of one label file."""
    label_of = {c: i for i, c in enumerate(classes)}
    name = f"{f.cls}/{f.video}"
    out = []
    for ln, line in enumerate(f.text.splitlines(), start=1):
        tok = line.split()
        if not tok:
            continue
        w = {"file": f.where, "video": name, "frame": f.frame}
        if len(tok) != 5:
            raise AnnotationError(f"line {ln} must be 'class_id x1 y1 x2 y2', got {line!r}",
                                  field="line", **w)
        cid = as_int(tok[0], field="class_id", **w)
        if not 1 <= cid <= len(classes):
            raise AnnotationError(f"line {ln}: unknown class id {cid} (1-based, "
                                  f"{len(classes)} classes)", field="class_id", **w)
        if cid - 1 != label_of[f.cls]:
            raise AnnotationError(f"line {ln}: class id {cid} ({classes[cid - 1]!r}) but the "
                                  f"file belongs to class {f.cls!r}", field="class_id", **w)
        box = np.array([as_float(t, field="box", **w) for t in tok[1:]], np.float64)
        box[:2] -= box_base  # 1-based pixel corners -> 0-based
        check_boxes(box[None], size[0], size[1], f.frame, file=f.where, video=name)
        out.append((cid - 1, box))
    return out


def link_frame_boxes(per_frame: dict[int, list[tuple[int, np.ndarray]]]) -> list[Tube]:
    """Link per-frame boxes into tubes.

    ``per_frame``: 0-based frame -> ``[(label, box [4])]``. A box continues a tube of its label
    that had a box in the previous frame; when several could, pairs are matched greedily by
    decreasing IoU. Unmatched boxes start new tubes. Tubes come out sorted by (start, label,
    first box).
    """
    done: list[tuple[int, int, list[np.ndarray]]] = []
    active: list[tuple[int, int, list[np.ndarray]]] = []  # (label, start, boxes)
    for f in sorted(per_frame):
        dets = per_frame[f]
        alive = [t for t in active if t[1] + len(t[2]) == f]
        done += [t for t in active if t[1] + len(t[2]) != f]
        pairs = [(i, j) for i, (lab, _) in enumerate(dets) for j, t in enumerate(alive)
                 if t[0] == lab]
        if len(pairs) > 1:  # a choice to make: best overlap first
            iou = np_iou(np.stack([d[1] for d in dets]), np.stack([t[2][-1] for t in alive]))
            pairs.sort(key=lambda p: -iou[p])
        used_d, used_t = set(), set()
        for i, j in pairs:
            if i not in used_d and j not in used_t:
                alive[j][2].append(dets[i][1])
                used_d.add(i)
                used_t.add(j)
        done += [t for j, t in enumerate(alive) if j not in used_t]
        active = [t for j, t in enumerate(alive) if j in used_t]
        active += [(lab, f, [box]) for i, (lab, box) in enumerate(dets) if i not in used_d]
    done += active
    tubes = [Tube(lab, start, np.stack(boxes).astype(np.float32)) for lab, start, boxes in done]
    return sorted(tubes, key=lambda t: (t.start_frame, t.label, t.boxes[0].tolist()))


def _list_videos(text: str, where: str) -> set[str]:
    """Video names ``<class>/<video>`` of a YOWO list file (frame-level or video-level lines)."""
    names = set()
    for ln, line in enumerate(text.splitlines(), start=1):
        parts = [p for p in line.strip().replace("\\", "/").split("/") if p]
        if not parts:
            continue
        if parts[0] in ("labels", "rgb-images"):
            parts = parts[1:]
        if parts and _FRAME_FILE.match(parts[-1]):
            parts = parts[:-1]
        if len(parts) != 2:
            raise AnnotationError(f"line {ln}: cannot read '<class>/<video>' from {line!r}",
                                  file=where, field="line")
        names.add("/".join(parts))
    return names


@reader
def read_yowo_txt(
    src: str | os.PathLike,
    *,
    classes: Sequence[str] | None = None,
    frame_size: tuple[int, int] = UCF_JHMDB_FRAME_SIZE,
    fps: float | None = None,
    split: str | None = None,
    trainlist: str | os.PathLike | None = None,
    testlist: str | os.PathLike | None = None,
    box_base: int = 1,
    frames_root: str | os.PathLike | None = None,
) -> AnnotationSet:
    """Read YOWO per-frame label files from a folder or a ``.zip``.

    Args:
        classes: class names, index = id - 1. None: the UCF101-24 or J-HMDB-21 list that
            contains every class found (for the nested layout, else the sorted folder names).
        frame_size: ``(width, height)`` of the labelled frames (320x240 for both datasets).
        fps: frame rate stored on every video; None = 30 for J-HMDB-21, else 25.
        split: give every video this split. None: ``trainlist.txt`` -> "train",
            ``testlist.txt`` -> "test" (videos in neither are left out, with a warning); with no
            list at all every video is "test" (YOWO ground-truth sets are evaluation sets).
        trainlist, testlist: list files to use instead of the ones next to ``labels/``.
        box_base: 1 (default): boxes are 1-based pixels, x1 and y1 lose 1; 0: kept as they are.
        frames_root: optional folder of frame folders (``rgb-images/``).
    """
    path = Path(src)
    if box_base not in (0, 1):
        raise ReaderOptionError(f"box_base must be 0 or 1, got {box_base!r}")
    if classes is not None:
        classes = check_class_names(classes, field="classes")
    lists: dict[str, str] = {}
    if path.is_file() and path.suffix.lower() == ".zip":
        files, lists = _gather_zip(path)
    elif path.is_dir():
        files, root = _gather_folder(path)
        for name in LIST_FILES:
            if (root / name).is_file():
                lists[name] = read_text(root / name)
    else:
        raise AnnotationError("expected a folder of YOWO label files or a .zip of them",
                              file=path)
    for name, given in (("trainlist.txt", trainlist), ("testlist.txt", testlist)):
        if given is not None:
            lists[name] = read_text(given)
    if not files:
        raise AnnotationError("no label files found (labels/<class>/<video>/<frame>.txt or "
                              "<class>_<video>_<frame>.txt)", file=path)
    nested = [f for f in files if f.stem is None]
    if nested and len(nested) != len(files):
        raise AnnotationError("mixes nested labels/<class>/<video>/ files and flat "
                              "<class>_<video>_<frame>.txt files", file=path)
    classes = (_resolve_nested_classes(files, classes) if nested
               else _resolve_flat_classes(files, classes))
    fps = nominal_fps(classes) if fps is None else float(fps)
    if not (fps > 0 and np.isfinite(fps)):
        raise ReaderOptionError(f"fps must be a positive number, got {fps}")
    width, height = check_frame_size(frame_size)

    per_video: dict[str, dict[int, list[tuple[int, np.ndarray]]]] = defaultdict(dict)
    for f in files:
        name = f"{f.cls}/{f.video}"
        if f.frame - 1 in per_video[name]:
            raise AnnotationError("two label files for the same frame", file=f.where,
                                  video=name, frame=f.frame, field="frame")
        per_video[name][f.frame - 1] = _parse_lines(f, classes, box_base, (width, height))

    split_of = _assign_splits(sorted(per_video), lists, split, path)
    videos = []
    for name in sorted(per_video):
        if name not in split_of:
            continue
        frames = per_video[name]
        tubes = link_frame_boxes({f: d for f, d in frames.items() if d})
        videos.append(VideoRecord(name, max(frames) + 1, width, height, fps, split_of[name],
                                  tubes, segments_from_tubes(tubes, fps)))
    ann = finish(classes, videos, path)
    if frames_root is not None:
        ann = attach_frame_paths(ann, frames_root, extend_num_frames=True)
    return ann


def _assign_splits(names: list[str], lists: dict[str, str], split: str | None,
                   path: Path) -> dict[str, str]:
    if split is not None:
        if not isinstance(split, str) or not split:
            raise ReaderOptionError(f"split must be a non-empty string, got {split!r}")
        return {n: split for n in names}
    if not lists:
        return {n: "test" for n in names}
    train = _list_videos(lists.get("trainlist.txt", ""), f"{path} trainlist.txt")
    test = _list_videos(lists.get("testlist.txt", ""), f"{path} testlist.txt")
    both = train & test
    if both:
        raise AnnotationError("video is in both trainlist.txt and testlist.txt", file=path,
                              video=sorted(both)[0])
    out = {n: "train" if n in train else "test" for n in names if n in train or n in test}
    if len(out) < len(names):
        left = [n for n in names if n not in out]
        warnings.warn(f"{path}: {len(left)} labelled video(s) are in neither trainlist.txt nor "
                      f"testlist.txt and were left out (e.g. {left[0]!r})", stacklevel=4)
    return out
