"""Optical flow between consecutive frames of a clip: the motion channels of the network input.

With ``model.cls_flow`` (or ``loc_flow``) the clip the detector receives carries two more
channels after RGB: the dense flow ``(dx, dy)`` from clip frame ``t - 1`` to clip frame ``t``, in
pixels of the network input (``img_size``), computed on the final (augmented, resized) uint8
frames, so that every geometric augmentation and a time reversal act on the flow exactly as on
the frames. Clip frame 0 has zero flow, like the frame difference (``with_frame_difference``),
and so do two equal frames (a clip clamped at the start of a video repeats frame 0).

The flow comes from OpenCV's DIS (Kroeger et al., ECCV 2016; ``cv2.DISOpticalFlow``, preset
FAST): 3.6-5.2 ms per 8-frame 128 px clip on one core (``benchmarks/flow_speed.py``).
Units stay pixels: on the synthetic demo benchmark at 128 px with ``frame_stride`` 2 the flow's
standard deviation is 0.69 and its 99th-percentile magnitude 2.8-2.9 px, the scale of the
ImageNet-normalised RGB channels, so no gain is applied (docs/MODEL.md, "Optical flow as input").
"""

from __future__ import annotations

import cv2
import numpy as np

from weaktube.data.transforms import to_tensor_layout

FLOW_CHANNELS = 2  # (dx, dy)


def clip_flow(frames: np.ndarray, indices: np.ndarray | None = None,
              cache: dict | None = None) -> np.ndarray:
    """``[T, S, S, 3]`` uint8 RGB -> ``[2, T, S, S]`` float32 flow in input pixels.

    Channel 0 is dx (to the right), 1 is dy (down); slot ``t`` holds the motion from frame
    ``t - 1`` to frame ``t``, slot 0 is zero. ``indices`` (``[T]``, the video frame index of each
    clip frame, optional) marks repeated frames: where ``indices[t] == indices[t - 1]`` the flow
    is exactly zero without computing it. ``cache`` (needs ``indices``): a dict from the pair
    ``(indices[t - 1], indices[t])`` to its ``[2, S, S]`` flow, read and filled, so that the
    overlapping clips of one video (inference) compute each pair once; the values are the same
    as without it.
    """
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"clip_flow: expected [T, H, W, 3] uint8 frames, got "
                         f"{frames.shape} {frames.dtype}")
    t, h, w = frames.shape[:3]
    out = np.zeros((FLOW_CHANNELS, t, h, w), np.float32)
    if t < 2:
        return out
    if cache is not None and indices is None:
        raise ValueError("clip_flow: a cache needs the clip's frame indices")
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)  # ~10 us; no shared state
    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]  # T x [H, W], ~10 us each
    for i in range(1, t):
        pair = None if indices is None else (int(indices[i - 1]), int(indices[i]))
        if pair is not None and pair[0] == pair[1]:
            continue  # a repeated frame: no motion
        if cache is not None and pair in cache:
            out[:, i] = cache[pair]
            continue
        flow = dis.calc(grey[i - 1], grey[i], None)  # [H, W, 2] float32
        out[:, i] = flow.transpose(2, 0, 1)  # [H, W, 2] -> [2, H, W]
        if cache is not None:
            cache[pair] = out[:, i].copy()
    return out


def network_input(frames: np.ndarray, *, flow: bool, indices: np.ndarray | None = None,
                  cache: dict | None = None) -> np.ndarray:
    """The detector's input for one clip: ``[T, S, S, 3]`` uint8 RGB -> ``[3, T, S, S]``
    float32 (ImageNet-normalised RGB), or with ``flow`` ``[5, T, S, S]`` (RGB, then
    :func:`clip_flow`; ``indices`` and ``cache`` as there). Training clips
    (:class:`~weaktube.data.dataset.ClipDataset`) and inference clips
    (:func:`~weaktube.infer.detect.detect_frames`) both come from here."""
    rgb = to_tensor_layout(frames)  # [T, S, S, 3] -> [3, T, S, S]
    if not flow:
        return rgb
    return np.concatenate([rgb, clip_flow(frames, indices, cache)])  # -> [5, T, S, S]
