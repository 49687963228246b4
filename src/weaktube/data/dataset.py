"""Clips and their targets for training and inference.

A sample is a clip of ``clip_len`` frames, ``stride`` frames apart, ending at a keyframe ``f``
(the paper's keyframe is the last frame of the clip). Near the start of a video the clip repeats
frame 0; a tube shorter than the clip is therefore handled naturally: frames outside the tube
simply carry no box. With time reversal the clip approaches ``f`` from the future instead, so
the keyframe and its label are unchanged.

Targets (normalised ``[0, 1]`` xyxy of the network input):

* keyframe: every tube box at ``f`` with its class (the keyframe head's target);
* per frame: every tube box at each of the clip's frames (branch 4's targets, Loss_clip);
* weak (target-domain) videos have no tubes: ``key_labels`` then holds the class of the segment
  covering ``f`` in ``segment_label`` and the boxes are empty.
"""

from __future__ import annotations

import os
import warnings
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from weaktube.data.flow import network_input
from weaktube.data.transforms import (
    AugmentConfig,
    jitter_color,
    jitter_hue_saturation,
    random_matrix,
    resize_matrix,
    warp_boxes,
    warp_frames,
)
from weaktube.data.video import (
    find_video,
    iter_record_frames,
    load_record_frames,
    read_frame_files,
    record_frame_files,
)
from weaktube.structures import AMBIGUOUS_FRAME, AnnotationSet, VideoRecord


def clip_indices(keyframe: int, clip_len: int, stride: int, num_frames: int,
                 reverse: bool = False) -> np.ndarray:
    """``[clip_len]`` 0-based frame indices of the clip ending at ``keyframe``, clamped to the
    video. ``reverse`` walks from the future back to the keyframe."""
    offsets = stride * np.arange(clip_len - 1, -1, -1)  # [N]: (N-1)s, ..., s, 0
    idx = keyframe + offsets if reverse else keyframe - offsets
    return np.clip(idx, 0, num_frames - 1)


class FrameStore:
    """The frames of the videos under a root, for clips (:meth:`get`) and whole videos
    (:meth:`video`, :meth:`frames`).

    Video files are decoded whole on first use (and checked against the annotation) and kept in
    memory, least recently used first out, up to ``max_bytes`` of decoded frames. Frame folders
    (``ROOT/<name>/00001.jpg``, ...; ``weaktube data frames`` writes them from videos) are
    checked once and then read image by image: a clip reads only its own frames, so datasets
    far larger than memory (UCF101-24 decoded is ~95 GB, one THUMOS14 video ~1 GB) train at the
    cost of a few image decodes per clip. ``get`` returns ``[len(indices), H, W, 3]`` uint8.
    """

    def __init__(self, root: str | os.PathLike, max_bytes: int = 8 << 30) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes
        # keyed by (name, path): two records of one name with their own paths (a replayed
        # annotation file's) are two videos
        self._cache: OrderedDict[tuple[str, str | None], np.ndarray] = OrderedDict()
        self._bytes = 0
        # frame folders: their images and size (W, H); None: a video file
        self._files: dict[tuple[str, str | None], tuple[list[Path], tuple[int, int]] | None] = {}

    def video(self, record: VideoRecord) -> np.ndarray:
        """All frames of ``record``: ``[num_frames, H, W, 3]`` uint8 RGB."""
        key = (record.name, record.path)
        arr = self._cache.get(key)
        if arr is not None:
            self._cache.move_to_end(key)
            return arr
        arr = load_record_frames(self.root, record)
        self._cache[key] = arr
        self._bytes += arr.nbytes
        while self._bytes > self.max_bytes and len(self._cache) > 1:
            _, old = self._cache.popitem(last=False)
            self._bytes -= old.nbytes
        return arr

    def frame_files(self, record: VideoRecord) -> tuple[list[Path], tuple[int, int]] | None:
        """The checked images of a frame-folder record and their size (W, H); None for a
        video file. Looked up once per video."""
        key = (record.name, record.path)
        if key not in self._files:
            self._files[key] = record_frame_files(self.root, record)
        return self._files[key]

    def frames(self, record: VideoRecord) -> np.ndarray | Iterator[np.ndarray]:
        """Every frame of ``record`` in order, for one pass (detection): the cached array
        when the video is in memory, else a checked stream that keeps nothing
        (:func:`~weaktube.data.video.iter_record_frames`)."""
        arr = self._cache.get((record.name, record.path))
        return arr if arr is not None else iter_record_frames(self.root, record)

    def get(self, record: VideoRecord, indices: np.ndarray) -> np.ndarray:
        folder = self.frame_files(record)
        if folder is not None:
            files, size = folder
            return read_frame_files(files, indices, size)
        return self.video(record)[indices]

    def preload(self, ann: AnnotationSet, progress: bool = False) -> None:
        """Find every video (a missing one fails now, with its name) and decode the video files
        that fit into ``max_bytes`` (before DataLoader workers fork, so they share the pages).
        When the files do not fit, the others are decoded when a clip needs them (a whole
        video per clip after eviction): a warning says so and how to avoid it."""
        budget, over = self.max_bytes - self._bytes, []  # what is cached already stays
        for v in ann.videos:
            find_video(self.root, v.name, v.path)  # fail early with the video's name
        for v in tqdm(ann.videos, desc="decode", unit="video", disable=not progress):
            if self.frame_files(v) is not None or (v.name, v.path) in self._cache:
                continue  # read per clip, or decoded already
            need = v.num_frames * v.width * v.height * 3  # 0 when the size is unknown
            if need > budget:
                over.append(v.name)
                continue
            budget -= self.video(v).nbytes
        if over:
            warnings.warn(
                f"{len(over)} of {len(ann.videos)} videos under {str(self.root)!r} (first: "
                f"{over[0]!r}) do not fit the {self.max_bytes / 2**30:.1f} GiB frame cache "
                "and are decoded whole whenever a clip needs them: extract frames once with "
                "`weaktube data frames` and train on the frame folders", stacklevel=2)


@dataclass
class KeyframeIndex:
    """The candidate keyframes of a dataset: ``[K]`` arrays."""

    video: np.ndarray  # index into ann.videos
    frame: np.ndarray  # 0-based keyframe
    positive: np.ndarray  # bool: a tube (or, for weak videos, a segment) covers the frame

    def __len__(self) -> int:
        return len(self.frame)

    def sampling_weights(self, positive_fraction: float) -> np.ndarray:
        """``[K]`` weights so that a weighted draw is positive with ``positive_fraction``."""
        n_pos = max(int(self.positive.sum()), 1)
        n_neg = max(int((~self.positive).sum()), 1)
        if not self.positive.any() or self.positive.all():
            return np.ones(len(self), np.float64)
        return np.where(self.positive, positive_fraction / n_pos,
                        (1 - positive_fraction) / n_neg)


def keyframe_index(ann: AnnotationSet, every: int = 1) -> KeyframeIndex:
    """Every ``every``-th frame of every video, with whether an action covers it; in videos
    without tubes, frames covered only by an ambiguous segment are left out."""
    vids, frames, pos = [], [], []
    for vi, v in enumerate(ann.videos):
        f = np.arange(0, v.num_frames, every)
        covered = np.zeros(v.num_frames, bool)
        for t in v.tubes:
            covered[t.start_frame : t.end_frame] = True
        if not v.tubes:
            labels = v.segment_labels(ambiguous=AMBIGUOUS_FRAME)
            covered = labels >= 0
            f = f[labels[f] != AMBIGUOUS_FRAME]  # ambiguous time: neither action nor background
        vids.append(np.full(len(f), vi))
        frames.append(f)
        pos.append(covered[f])
    if not vids:
        raise ValueError("keyframe_index: the annotation set has no videos")
    return KeyframeIndex(np.concatenate(vids), np.concatenate(frames), np.concatenate(pos))


class ClipDataset(torch.utils.data.Dataset):
    """Clips ending at the keyframes of a :class:`KeyframeIndex`, with their targets.

    Randomness (augmentation) comes from a generator seeded by ``(seed, epoch, index)``: runs are
    reproducible and DataLoader workers never share a stream. Call :meth:`set_epoch` each epoch.
    """

    def __init__(self, ann: AnnotationSet, store: FrameStore, index: KeyframeIndex,
                 clip_len: int, stride: int, img_size: int,
                 augment: AugmentConfig | None = None, seed: int = 0,
                 with_pixels: bool = False, flow: bool = False, replay: bool = False) -> None:
        self.ann, self.store, self.index = ann, store, index
        self.clip_len, self.stride, self.img_size = clip_len, stride, img_size
        self.augment, self.seed, self.epoch = augment, seed, 0
        self.with_pixels = with_pixels  # also return the uint8 frames (for the tracker)
        self.flow = flow  # clip = RGB + optical flow, 5 channels (DetectorConfig.uses_flow)
        # clips of another dataset (the source domain's) replayed in the target stage for their
        # boxes only: their labels index that dataset's classes (weak.replay_fraction)
        self.replay = replay
        self._segment_labels = {v.name: v.segment_labels(ambiguous=AMBIGUOUS_FRAME)
                                for v in ann.videos}

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict:
        video = self.ann.videos[int(self.index.video[i])]
        key = int(self.index.frame[i])
        rng = np.random.default_rng((self.seed, self.epoch, i))
        aug = self.augment
        reverse = aug is not None and rng.random() < aug.time_reverse
        idx = clip_indices(key, self.clip_len, self.stride, video.num_frames, reverse)
        frames = self.store.get(video, idx)  # [N, H, W, 3]
        h, w = frames.shape[1:3]
        s = self.img_size
        m = random_matrix(rng, w, h, s, aug) if aug else resize_matrix(w, h, s)
        clip = warp_frames(frames, m, s, aug.border if aug else "reflect")
        if aug:
            clip = jitter_color(clip, rng, aug.color)
            clip = jitter_hue_saturation(clip, rng, aug.hue, aug.saturation)
        frame_boxes = []
        for f in idx:
            b, _ = video.boxes_at(int(f))
            b, keep = warp_boxes(b, m, s)
            frame_boxes.append(b[keep] / s)
        kb, kl = video.boxes_at(key)
        kb, keep = warp_boxes(kb, m, s)
        seg_frames = self._segment_labels[video.name][idx]  # [N]
        seg = int(seg_frames[-1]) if not video.tubes else -1
        sample = {
            # [3, N, S, S], or [5, N, S, S] with the flow (weaktube.data.flow)
            "clip": torch.from_numpy(network_input(clip, flow=self.flow, indices=idx)),
            "key_boxes": torch.from_numpy(kb[keep] / s),  # [M, 4] normalised
            "key_labels": torch.from_numpy(kl[keep]),  # [M]
            "frame_boxes": [torch.from_numpy(b) for b in frame_boxes],  # N x [M_t, 4]
            "segment_label": int(seg),  # weak videos: class covering the keyframe, else -1
            "boxed": bool(video.tubes),  # the video has tubes (full supervision possible)
            "replay": self.replay,  # boxes of another class set: class-free terms only
            "video": video.name,
            "frame": key,
            "frame_indices": torch.from_numpy(idx),
            "matrix": torch.from_numpy(m.astype(np.float32)),  # [2, 3] original px -> input px
            # [N] segment label per frame: -1 outside segments, AMBIGUOUS_FRAME in ambiguous time
            "frame_segment": torch.from_numpy(seg_frames),
        }
        if self.with_pixels:
            sample["pixels"] = torch.from_numpy(clip)  # [N, S, S, 3] uint8 RGB
        return sample


def collate_clips(samples: list[dict]) -> dict:
    """Stack clips; pad boxes to the batch maximum (labels -1, valid mask False).

    Output: ``clip [B, 3, N, S, S]``, ``key_boxes [B, M, 4]``, ``key_labels [B, M]``,
    ``frame_boxes [B, N, M', 4]``, ``frame_valid [B, N, M']``, ``segment_label [B]``,
    ``boxed [B]`` and ``replay [B]`` (bool), ``frame_segment [B, N]`` and, when sampled
    ``with_pixels``, ``pixels [B, N, S, S, 3]``.
    """
    b = len(samples)
    n = samples[0]["clip"].shape[1]
    m = max(1, max(len(s["key_labels"]) for s in samples))
    mf = max(1, max(len(fb) for s in samples for fb in s["frame_boxes"]))
    key_boxes = torch.zeros(b, m, 4)
    key_labels = torch.full((b, m), -1, dtype=torch.long)
    frame_boxes = torch.zeros(b, n, mf, 4)
    frame_valid = torch.zeros(b, n, mf, dtype=torch.bool)
    for i, s in enumerate(samples):
        k = len(s["key_labels"])
        key_boxes[i, :k] = s["key_boxes"]
        key_labels[i, :k] = s["key_labels"]
        for t, fb in enumerate(s["frame_boxes"]):
            frame_boxes[i, t, : len(fb)] = fb
            frame_valid[i, t, : len(fb)] = True
    return {
        "clip": torch.stack([s["clip"] for s in samples]),
        "key_boxes": key_boxes,
        "key_labels": key_labels,
        "frame_boxes": frame_boxes,
        "frame_valid": frame_valid,
        "segment_label": torch.tensor([s["segment_label"] for s in samples]),
        "boxed": torch.tensor([s["boxed"] for s in samples], dtype=torch.bool),
        "replay": torch.tensor([s.get("replay", False) for s in samples], dtype=torch.bool),
        "video": [s["video"] for s in samples],
        "frame": torch.tensor([s["frame"] for s in samples]),
        "frame_indices": torch.stack([s["frame_indices"] for s in samples]),
        "matrix": torch.stack([s["matrix"] for s in samples]),
        "frame_segment": torch.stack([s["frame_segment"] for s in samples]),
        **({"pixels": torch.stack([s["pixels"] for s in samples])} if "pixels" in samples[0]
           else {}),
    }
