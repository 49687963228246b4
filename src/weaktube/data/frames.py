"""Videos -> frame folders (``OUT/<name>/00001.jpg``, ...): decode once, then train on images.

A clip of a video file needs its whole video decoded (codecs seek poorly, raw MPEG-4 streams
not at all), which :class:`~weaktube.data.dataset.FrameStore` affords only while the decoded
videos fit in memory. Frame folders are read image by image, so a clip costs a few image
decodes whatever the dataset's size: the layout YOWO, ACT and MOC use for UCF101-24 and
J-HMDB-21 (``rgb-images/<class>/<video>/00001.jpg``), and what ``weaktube data frames``
writes.

Images are 1-based and zero-padded to at least five digits (``00001.jpg``), so that sorting the
names gives frame order. JPEG at quality 95 (the default, what the public frame dumps use)
changes pixel values by about one level on average; ``--ext png`` keeps them exactly, at 4.6x
the disk space on the six real UCF101-24 clips (21 MB of JPEG, 98 MB of PNG; session 26).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import cv2
from tqdm import tqdm

from weaktube.data.video import IMAGE_EXTENSIONS, VideoError, iter_record_frames
from weaktube.structures import AnnotationSet, VideoRecord


@dataclass
class ExtractStats:
    videos: int = 0  # folders written now
    skipped: int = 0  # folders already complete (a re-run after a kill goes on from there)
    frames: int = 0  # images written now


def frame_folder(out_root: str | os.PathLike, video: VideoRecord) -> Path:
    """Where ``video``'s images go: ``out_root/<name>`` (UCF101-24's ``Class/v_...`` nests)."""
    return Path(out_root) / video.name


def _complete(folder: Path, num_frames: int) -> bool:
    return folder.is_dir() and sum(
        1 for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS) == num_frames


def extract_video(videos_root: str | os.PathLike, video: VideoRecord,
                  out_root: str | os.PathLike, ext: str = "jpg", quality: int = 95) -> int:
    """Write every frame of ``video`` as an image into :func:`frame_folder`. The folder
    appears whole or not at all (written under a temporary name, then renamed); the decoded
    frames are checked against the record's ``num_frames`` and size (an
    :class:`~weaktube.structures.AnnotationError` names the video). Returns the frame count."""
    if ext not in ("jpg", "png"):
        raise ValueError(f"image format {ext!r}: expected jpg or png")
    if not 1 <= quality <= 100:
        raise ValueError(f"JPEG quality {quality}: expected 1..100")
    dest = frame_folder(out_root, video)
    dest.parent.mkdir(parents=True, exist_ok=True)
    for stale in dest.parent.glob(f".{dest.name}.tmp-*"):  # of a run killed mid-video
        shutil.rmtree(stale, ignore_errors=True)
    tmp = dest.parent / f".{dest.name}.tmp-{os.getpid()}"
    tmp.mkdir()
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if ext == "jpg" else []
    digits = max(5, len(str(video.num_frames)))
    n = 0
    try:
        for frame in iter_record_frames(videos_root, video):  # RGB [H, W, 3]
            n += 1
            path = tmp / f"{n:0{digits}d}.{ext}"
            if not cv2.imwrite(str(path), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), params):
                raise VideoError(f"video {video.name!r}: frame {n - 1} could not be written "
                                 f"to {str(path)!r}")
        if dest.exists():  # an incomplete folder of an earlier run
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return n


def extract_frames(ann: AnnotationSet, videos_root: str | os.PathLike,
                   out_root: str | os.PathLike, *, ext: str = "jpg", quality: int = 95,
                   progress: bool = True) -> ExtractStats:
    """:func:`extract_video` for every video of ``ann``; folders already complete are kept,
    so a killed extraction resumes where it stopped. Train with ``--videos out_root``."""
    stats = ExtractStats()
    bar = tqdm(ann.videos, desc="frames", unit="video", disable=not progress)
    for v in bar:
        if _complete(frame_folder(out_root, v), v.num_frames):
            stats.skipped += 1
            continue
        stats.frames += extract_video(videos_root, v, out_root, ext, quality)
        stats.videos += 1
    return stats
