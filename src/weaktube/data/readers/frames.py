"""Folders of JPEG/PNG frames laid out as ``<frames_root>/<video name>/00001.jpg``.

This is the layout of the ACT / MOC / YOWO data releases (``rgb-images/<class>/<video>/``,
``Frames/<class>/<video>/``): with video names ``<class>/<video>`` the frame folder of a video is
``frames_root / name``. Only paths and file counts are looked at here; decoding is
:mod:`weaktube.data.video`'s job.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from pathlib import Path

from weaktube.data.readers._common import IMAGE_EXTENSIONS, require_dir
from weaktube.structures import AnnotationSet


def count_frame_images(folder: Path) -> int:
    """Number of image files (``.jpg .jpeg .png .bmp``) directly inside ``folder``."""
    return sum(1 for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)


def attach_frame_paths(ann: AnnotationSet, frames_root: str | os.PathLike,
                       extend_num_frames: bool = False) -> AnnotationSet:
    """A copy of ``ann`` whose videos with a frame folder get ``path = frames_root/<name>``.

    The path is stored absolute (a relative ``frames_root`` is taken from the current folder):
    a relative ``path`` would be read relative to ``--videos``, not to where the conversion
    ran. Videos without a folder keep
    their ``path``. When ``extend_num_frames`` is True a video whose folder holds more images than
    its ``num_frames`` gets ``num_frames`` = the image count (readers whose frame count is only a
    lower bound, e.g. the highest annotated frame, use this). Folders with a different count, and
    videos without a folder, are reported in one warning.
    """
    root = require_dir(frames_root, "frame folder root").absolute()
    videos, missing, mismatched = [], [], []
    for v in ann.videos:
        folder = root / v.name
        n = count_frame_images(folder) if folder.is_dir() else 0
        if n == 0:
            missing.append(v.name)
            videos.append(v)
            continue
        num_frames = max(v.num_frames, n) if extend_num_frames else v.num_frames
        if n != num_frames:
            mismatched.append(f"{v.name} ({n} images, {num_frames} frames)")
        videos.append(dataclasses.replace(v, path=str(folder), num_frames=num_frames))
    if missing:
        warnings.warn(f"{root}: no frame folder for {len(missing)} of {len(ann.videos)} videos "
                      f"(e.g. {missing[0]!r})", stacklevel=2)
    if mismatched:
        warnings.warn(f"{root}: {len(mismatched)} frame folder(s) hold a different number of "
                      f"images than the annotation's frame count, e.g. {mismatched[0]}",
                      stacklevel=2)
    return AnnotationSet(list(ann.classes), videos)
