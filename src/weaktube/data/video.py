"""Video decoding: video files (any container OpenCV/FFmpeg reads, raw MPEG-4 streams included)
and folders of frame images.

Frames are returned as ``uint8`` RGB arrays ``[T, H, W, 3]``. Frame indices are 0-based.

Raw elementary streams (the UCF101-24 clips shipped as ``.mp4``) have no index: the container
reports a nonsense frame count, so :func:`probe_video` counts frames by decoding and never trusts
``CAP_PROP_FRAME_COUNT``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from weaktube.structures import AnnotationError, VideoRecord

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")


class VideoError(RuntimeError):
    """A video that is missing or cannot be decoded; the message names it."""


@dataclass(frozen=True)
class VideoInfo:
    """Geometry of a decoded video. ``fps`` is None for frame folders (no timing)."""

    width: int
    height: int
    num_frames: int
    fps: float | None


def find_video(root: str | os.PathLike, name: str, path: str | None = None) -> Path:
    """Locate video ``name`` under ``root``.

    Order: the record's own ``path`` (absolute, or relative to ``root``); ``root/<name>.<ext>``
    for the known video extensions; a frame folder ``root/<name>/``; and for names with folders
    (UCF101-24's ``Class/v_Class_g01_c01``) the same two with the last part of the name only
    (``root/v_Class_g01_c01.avi``, as UCF101 ships its videos).
    """
    root = Path(root)
    candidates: list[Path] = []
    if path:
        p = Path(path)
        candidates.append(p if p.is_absolute() else root / p)
    stems = [name] + ([Path(name).name] if Path(name).name != name else [])
    for stem in stems:
        candidates += [root / f"{stem}{ext}" for ext in VIDEO_EXTENSIONS]
        candidates.append(root / stem)
    for c in candidates:
        if c.is_file() or (c.is_dir() and _frame_files(c)):
            return c
    raise VideoError(
        f"video {name!r}: not found under {str(root)!r} (looked for "
        f"{', '.join(str(c.name) for c in candidates[:3])}, ... and a frame folder)")


def frame_order_key(name: str) -> tuple:
    """Sort key that orders frame images by the numbers in their names (``2.jpg`` before
    ``10.jpg``, ``0009`` before ``00010``), the text between them compared as text: a plain
    string sort scrambles unpadded or mixed-width numbering (ffmpeg's ``%d.jpg``) without any
    error, every box then landing on another frame."""
    return tuple((1, int(part), "") if part.isdigit() else (0, 0, part)
                 for part in re.split(r"(\d+)", name) if part)


def _frame_files(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS),
                  key=lambda p: frame_order_key(p.name))


def plausible_fps(fps: float | None) -> float | None:
    """``fps`` when it is a frame rate a video can have (0 < fps <= 1000), else None: containers
    without a rate report 0, some report nonsense such as 90000 (a time base)."""
    return fps if fps is not None and 0 < fps <= 1000 else None


def probe_video(path: str | os.PathLike, count_frames: bool = True) -> VideoInfo:
    """Width, height, fps (None for frame folders and implausible rates, :func:`plausible_fps`)
    and the true frame count (counted by decoding for files).

    With ``count_frames=False`` only the first frame is decoded and ``num_frames`` is -1.
    """
    path = Path(path)
    if path.is_dir():
        files = _frame_files(path)
        if not files:
            raise VideoError(f"frame folder {str(path)!r} holds no images")
        first = _imread(files[0])
        return VideoInfo(first.shape[1], first.shape[0], len(files), None)
    cap = _open(path)
    try:
        width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        fps = plausible_fps(float(cap.get(cv2.CAP_PROP_FPS)))
        n = 0
        while cap.grab():
            n += 1
            if not count_frames:
                return VideoInfo(width, height, -1, fps)
    finally:
        cap.release()
    if n == 0:
        raise VideoError(f"video {str(path)!r}: no frame could be decoded")
    return VideoInfo(width, height, n, fps)


def iter_video(path: str | os.PathLike, max_frames: int | None = None) -> Iterator[np.ndarray]:
    """Decode frame by frame (all, or the first ``max_frames``): ``[H, W, 3]`` uint8 RGB each,
    without holding the video in memory. Raises :class:`VideoError` naming the file when
    nothing decodes or a frame folder's images differ in size."""
    path = Path(path)
    shape = None
    if path.is_dir():
        files = _frame_files(path)[:max_frames]
        if not files:
            raise VideoError(f"frame folder {str(path)!r} holds no images")
        for f in files:
            img = _imread(f)
            if shape is not None and img.shape != shape:
                raise VideoError(f"frame folder {str(path)!r}: {f.name} is {img.shape}, the "
                                 f"frames before it {shape}")
            shape = img.shape
            yield img
        return
    cap = _open(path)
    n = 0
    try:
        while max_frames is None or n < max_frames:
            ok, frame = cap.read()
            if not ok:
                break
            n += 1
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    finally:
        cap.release()
    if n == 0:
        raise VideoError(f"video {str(path)!r}: no frame could be decoded")


def read_video(path: str | os.PathLike, max_frames: int | None = None) -> np.ndarray:
    """Decode all frames (or the first ``max_frames``): ``[T, H, W, 3]`` uint8 RGB."""
    return np.stack(list(iter_video(path, max_frames)))


def check_record_geometry(video: VideoRecord, path: Path, num_frames: int | None = None,
                          size: tuple[int, int] | None = None,
                          file: str | os.PathLike | None = None) -> None:
    """Raise :class:`AnnotationError` naming the video and field (and the annotation ``file``
    when given) when what ``path`` holds (``num_frames`` frames of ``size`` = (W, H); None:
    not checked) is not what the record says: the boxes would otherwise silently refer to
    other frames or another scale."""
    if num_frames is not None and num_frames != video.num_frames:
        raise AnnotationError(
            f"annotation says {video.num_frames} frames but {str(path)!r} "
            f"{'holds' if path.is_dir() else 'decodes to'} {num_frames}", file=file,
            video=video.name, field="num_frames")
    if size is not None and video.width and size != (video.width, video.height):
        raise AnnotationError(
            f"annotation says {video.width}x{video.height} but {str(path)!r} is "
            f"{size[0]}x{size[1]} (rescale the annotation's boxes to the video size)",
            file=file, video=video.name, field="width")


def load_record_frames(root: str | os.PathLike, video: VideoRecord,
                       check: bool = True) -> np.ndarray:
    """Decode the video of an annotation record: ``[num_frames, H, W, 3]`` uint8 RGB.

    With ``check``, the decoded frame count must equal the record's ``num_frames``, and the
    frame size its ``width x height`` (when known) (:func:`check_record_geometry`).
    """
    path = find_video(root, video.name, video.path)
    frames = read_video(path)
    if check:
        check_record_geometry(video, path, len(frames), (frames.shape[2], frames.shape[1]))
    return frames


def iter_record_frames(root: str | os.PathLike, video: VideoRecord) -> Iterator[np.ndarray]:
    """:func:`load_record_frames` as a stream (``[H, W, 3]`` uint8 RGB each, nothing kept): the
    size is checked at the first frame, the count once the stream ends."""
    path = find_video(root, video.name, video.path)
    n = 0
    for frame in iter_video(path):
        if n == 0:
            check_record_geometry(video, path, size=(frame.shape[1], frame.shape[0]))
        n += 1
        yield frame
    check_record_geometry(video, path, num_frames=n)


def record_frame_files(root: str | os.PathLike, video: VideoRecord
                       ) -> tuple[list[Path], tuple[int, int]] | None:
    """The image files of a record whose frames are a folder and their size (W, H), checked:
    one image per annotated frame, the first of the annotated size; None when the record is a
    video file."""
    path = find_video(root, video.name, video.path)
    if not path.is_dir():
        return None
    files = _frame_files(path)
    first = _imread(files[0])
    size = (first.shape[1], first.shape[0])
    check_record_geometry(video, path, len(files), size)
    return files, size


def read_frame_files(files: list[Path], indices: np.ndarray, size: tuple[int, int]
                     ) -> np.ndarray:
    """``[len(indices), H, W, 3]`` uint8 RGB: only the images ``indices`` names (0-based),
    each decoded once however often it repeats; every one must be ``size`` (W, H) — the
    folder's first frame's, which the annotation's boxes are in (:class:`VideoError` naming
    the image otherwise)."""
    uniq, inverse = np.unique(np.asarray(indices), return_inverse=True)
    imgs = [_imread(files[i]) for i in uniq]
    for i, img in zip(uniq, imgs, strict=True):
        if (img.shape[1], img.shape[0]) != size:
            raise VideoError(f"frame {str(files[i])!r} is {img.shape[1]}x{img.shape[0]}, the "
                             f"folder's first frame {size[0]}x{size[1]}")
    return np.stack(imgs)[inverse.reshape(-1)]


def _open(path: Path) -> cv2.VideoCapture:
    if not path.is_file():
        raise VideoError(f"video {str(path)!r}: file not found")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise VideoError(f"video {str(path)!r}: cannot be opened by OpenCV/FFmpeg")
    return cap


def _imread(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise VideoError(f"frame {str(path)!r}: cannot be decoded")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
