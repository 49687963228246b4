"""Run a detector over whole videos: sliding clips -> per-frame detections.

For every ``keyframe_stride``-th frame ``f`` of a video, and its last frame, the clip of
``clip_len`` frames ending at ``f`` (``frame_stride`` apart, clamped at the start) goes through
the network; the keyframe head's decoded boxes, after per-class NMS, are frame ``f``'s
detections, mapped back to the video's pixels. Before the NMS, each box's class probabilities
are pooled with those of the boxes of its keyframe that overlap it by
``postprocess.class_vote_iou`` (0 turns it off), then with those of the overlapping boxes of the
keyframes within ``postprocess.class_window_s`` seconds (:mod:`weaktube.infer.smooth`; 0 turns
it off).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from weaktube.data.dataset import FrameStore, clip_indices
from weaktube.data.flow import network_input
from weaktube.data.video import find_video
from weaktube.infer.smooth import smooth_class_probs, vote_class_probs
from weaktube.model.decode import PostprocessConfig, decode_keyframe, select_detections
from weaktube.structures import Detections, VideoRecord, keyframe_indices


def class_window_keyframes(seconds: float, fps: float | None, keyframe_stride: int,
                           video: str = "") -> int:
    """``+- seconds`` of class pooling as a number of keyframes (rounded half up)."""
    if seconds <= 0:
        return 0
    if fps is None or not 0 < fps <= 1000:
        raise ValueError(f"video {video!r}: class pooling over {seconds} s needs the video's fps "
                         f"(got {fps}); pass fps or set eval.postprocess.class_window_s=0")
    return int(seconds * fps / keyframe_stride + 0.5)


@dataclass
class DecodedVideo:
    """The keyframe head's decoded output over one video, before any post-processing."""

    keyframes: np.ndarray  # [T'] 0-based frame index of each keyframe
    boxes: torch.Tensor  # [T', N, 4] normalised xyxy, N = A*H'*W' anchor boxes
    obj: torch.Tensor  # [T', N] objectness
    cls: torch.Tensor  # [T', N, K] class probabilities
    width: int  # the video's frame size in pixels
    height: int


def resize_frames(frames: Iterable[np.ndarray], img_size: int
                  ) -> tuple[np.ndarray, tuple[int, int]]:
    """Frames ``[H, W, 3]`` (an array ``[T, H, W, 3]`` or any iterable, e.g. a decoder that
    streams: only the network-size copies are kept) -> ``([T, S, S, 3], (W, H))``, S =
    ``img_size``; ``(0, 0)`` for no frame."""
    small, size = [], None
    for f in frames:
        if size is None:
            size = (f.shape[1], f.shape[0])
        elif (f.shape[1], f.shape[0]) != size:
            raise ValueError(f"frame {len(small)} is {f.shape[1]}x{f.shape[0]}, the frames "
                             f"before it {size[0]}x{size[1]}")
        small.append(cv2.resize(f, (img_size, img_size), interpolation=cv2.INTER_LINEAR))
    if not small:
        return np.zeros((0, img_size, img_size, 3), np.uint8), (0, 0)
    return np.stack(small), size  # [T, S, S, 3]


@torch.no_grad()
def decode_frames(model: torch.nn.Module, frames: Iterable[np.ndarray], *, clip_len: int,
                  frame_stride: int, img_size: int, keyframe_stride: int = 1,
                  batch_size: int = 32, device: torch.device | str = "cpu") -> DecodedVideo:
    """Run the network over the keyframes (:func:`keyframe_indices`) of ``frames`` (uint8 RGB,
    ``[T, H, W, 3]`` or an iterable of ``[H, W, 3]``, see :func:`resize_frames`) and decode
    its keyframe head (no thresholds, no NMS)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    model.eval()
    flow = model.cfg.uses_flow  # the clip also carries its optical flow (weaktube.data.flow)
    small, (w, h) = resize_frames(frames, img_size)  # [T, S, S, 3]
    t = len(small)
    keyframes = keyframe_indices(t, keyframe_stride)
    if t == 0:
        k = model.cfg.num_classes
        return DecodedVideo(keyframes, torch.zeros(0, 0, 4), torch.zeros(0, 0),
                            torch.zeros(0, 0, k), w, h)
    decoded = []
    pair_flow: dict = {}  # (frame a, frame b) -> flow: each pair once over the overlapping clips
    for start in range(0, len(keyframes), batch_size):
        keys = keyframes[start : start + batch_size]
        clips = []
        for k in keys:
            idx = clip_indices(int(k), clip_len, frame_stride, t)
            clips.append(network_input(small[idx], flow=flow, indices=idx, cache=pair_flow))
        for pair in [p for p in pair_flow if p[0] < idx[0]]:  # keyframes only move forward
            del pair_flow[pair]
        clips = np.stack(clips)  # [B, 3 or 5, N, S, S]
        out = model(torch.from_numpy(clips).to(device))
        decoded.append([x.cpu() for x in decode_keyframe(out.key.float(),
                                                         model.anchors.float())])
    boxes, obj, cls = (torch.cat(parts) for parts in zip(*decoded))  # [T', N, ...]
    return DecodedVideo(keyframes, boxes, obj, cls, w, h)


def decoded_detections(decoded: DecodedVideo, video_name: str,
                       postprocess: PostprocessConfig | None = None,
                       fps: float | None = None, keyframe_stride: int = 1) -> Detections:
    """Post-process one video's decoded output: class pooling over the anchors of a keyframe
    and over time, then per-class NMS per keyframe; boxes in the video's pixels."""
    post = postprocess or PostprocessConfig()
    window = class_window_keyframes(post.class_window_s, fps, keyframe_stride, video_name)
    if len(decoded.keyframes) == 0:
        return Detections.concat([])
    boxes, obj = decoded.boxes, decoded.obj
    cls = vote_class_probs(boxes, obj, decoded.cls, post.class_vote_iou)
    cls = smooth_class_probs(boxes, obj, cls, window)
    w, h = decoded.width, decoded.height
    scale = torch.tensor([w, h, w, h], dtype=torch.float32)
    parts = []
    for i, k in enumerate(decoded.keyframes):
        bx, scores, labels = select_detections(boxes[i], obj[i], cls[i], post)
        n = len(scores)
        if n == 0:
            continue
        parts.append(Detections(
            videos=np.full(n, video_name, dtype=object),
            frames=np.full(n, int(k), np.int64),
            labels=labels.numpy().astype(np.int64),
            scores=scores.numpy().astype(np.float32),
            boxes=(bx * scale).numpy().astype(np.float32),
        ))
    return Detections.concat(parts)


def detect_frames(model: torch.nn.Module, frames: Iterable[np.ndarray], video_name: str, *,
                  clip_len: int, frame_stride: int, img_size: int, keyframe_stride: int = 1,
                  batch_size: int = 32, postprocess: PostprocessConfig | None = None,
                  fps: float | None = None, device: torch.device | str = "cpu") -> Detections:
    """Detections of one video given its frames ``[T, H, W, 3]`` uint8 RGB (or an iterable of
    ``[H, W, 3]`` frames, e.g. :func:`weaktube.data.video.iter_video`, so that a long video is
    never held at full size) at ``fps`` frames per second (needed when
    ``postprocess.class_window_s`` > 0):
    :func:`decode_frames`, then :func:`decoded_detections`.

    Boxes are returned in the video's pixels; frames are 0-based.
    """
    post = postprocess or PostprocessConfig()
    class_window_keyframes(post.class_window_s, fps, keyframe_stride, video_name)  # fail early
    decoded = decode_frames(model, frames, clip_len=clip_len, frame_stride=frame_stride,
                            img_size=img_size, keyframe_stride=keyframe_stride,
                            batch_size=batch_size, device=device)
    return decoded_detections(decoded, video_name, post, fps, keyframe_stride)


def detect_videos(model: torch.nn.Module, videos: Iterable[VideoRecord], store: FrameStore,
                  *, progress: bool = True, **kw) -> Detections:
    """:func:`detect_frames` over annotation records whose frames ``store`` can decode. Every
    video file is looked up first: a missing one fails before any work is done."""
    videos = list(videos)
    for v in videos:
        find_video(store.root, v.name, v.path)  # raises naming the video
    parts = []
    for v in tqdm(videos, desc="detect", unit="video", disable=not progress):
        # streamed unless already in memory: a long test video is never held whole
        parts.append(detect_frames(model, store.frames(v), v.name, fps=v.fps, **kw))
    return Detections.concat(parts)


def postprocess_from_checkpoint(ckpt: dict) -> PostprocessConfig:
    """The run's ``eval.postprocess`` (fields a checkpoint predates take their defaults)."""
    saved = ckpt.get("config", {}).get("eval", {}).get("postprocess", {})
    known = {f.name for f in dataclasses.fields(PostprocessConfig)}
    return PostprocessConfig(**{k: v for k, v in saved.items() if k in known})


def detect_checkpoint(checkpoint: str | Path, videos: Iterable[VideoRecord], store: FrameStore,
                      *, device: torch.device | str = "cpu", keyframe_stride: int = 1,
                      batch_size: int = 32, progress: bool = True) -> Detections:
    """A saved run's detections on ``videos``: its inference weights (the weight average or
    teacher where it has one), clip geometry and ``eval.postprocess``, as ``weaktube detect``
    uses them. Frames 0-based, boxes in the videos' pixels."""
    from weaktube.train.checkpoint import inference_model, load_checkpoint

    ckpt = load_checkpoint(checkpoint, map_location=device)
    model = inference_model(ckpt)
    with torch.inference_mode():
        return detect_videos(model, videos, store, progress=progress,
                             clip_len=model.cfg.clip_len,
                             frame_stride=ckpt["config"]["data"]["frame_stride"],
                             img_size=model.cfg.img_size, keyframe_stride=keyframe_stride,
                             batch_size=batch_size, postprocess=postprocess_from_checkpoint(ckpt),
                             device=device)
