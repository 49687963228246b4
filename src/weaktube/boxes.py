"""Box math: small pure functions on ``[N, 4]`` arrays of ``[x1, y1, x2, y2]`` corners.

Two conventions exist in the field and both are here, named explicitly:

* continuous (``plus_one=False``): width = x2 - x1. Used for training targets and NMS.
* pixel-inclusive (``plus_one=True``): width = x2 - x1 + 1, as in the PASCAL VOC / ACT evaluation
  code. Used by the ACT evaluation protocol.

This module is numpy only (the evaluator imports it and never loads torch); the torch flavour
used by the model and the losses is :mod:`weaktube.model.box_ops`. Coordinates are in whatever
unit the caller uses (pixels or normalised); the functions never mix units.
"""

from __future__ import annotations

import numpy as np


# ----------------------------------------------------------------------------------- numpy
def np_area(boxes: np.ndarray, plus_one: bool = False) -> np.ndarray:
    """``[N, 4] -> [N]`` box areas (0 for degenerate boxes)."""
    boxes = np.asarray(boxes, dtype=np.float64)
    one = 1.0 if plus_one else 0.0
    w = np.clip(boxes[:, 2] - boxes[:, 0] + one, 0.0, None)
    h = np.clip(boxes[:, 3] - boxes[:, 1] + one, 0.0, None)
    return w * h


def np_iou(a: np.ndarray, b: np.ndarray, plus_one: bool = False) -> np.ndarray:
    """``[N, 4] x [M, 4] -> [N, M]`` intersection over union."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    one = 1.0 if plus_one else 0.0
    ix1 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy1 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix2 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(ix2 - ix1 + one, 0.0, None) * np.clip(iy2 - iy1 + one, 0.0, None)
    union = np_area(a, plus_one)[:, None] + np_area(b, plus_one)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def np_iou_paired(a: np.ndarray, b: np.ndarray, plus_one: bool = False) -> np.ndarray:
    """``[N, 4] x [N, 4] -> [N]`` IoU of row i of ``a`` with row i of ``b``."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    one = 1.0 if plus_one else 0.0
    iw = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]) + one, 0.0, None)
    ih = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]) + one, 0.0, None)
    inter = iw * ih
    union = np_area(a, plus_one) + np_area(b, plus_one) - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def np_clip(boxes: np.ndarray, width: float, height: float) -> np.ndarray:
    """``[N, 4] -> [N, 4]`` boxes clipped to the image ``[0, width] x [0, height]``."""
    out = np.asarray(boxes, dtype=np.float64).copy()
    out[:, [0, 2]] = np.clip(out[:, [0, 2]], 0.0, width)
    out[:, [1, 3]] = np.clip(out[:, [1, 3]], 0.0, height)
    return out


def np_scale(boxes: np.ndarray, sx: float, sy: float) -> np.ndarray:
    """``[N, 4] -> [N, 4]`` boxes with x multiplied by ``sx`` and y by ``sy``."""
    return np.asarray(boxes, dtype=np.float64) * np.array([sx, sy, sx, sy])
