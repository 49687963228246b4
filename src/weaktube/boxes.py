"""Box math: small pure functions on ``[N, 4]`` arrays of ``[x1, y1, x2, y2]`` corners.

Two conventions exist in the field and both are here, named explicitly:

* continuous (``plus_one=False``): width = x2 - x1. Used for training targets and NMS.
* pixel-inclusive (``plus_one=True``): width = x2 - x1 + 1, as in the PASCAL VOC / ACT evaluation
  code. Used by the ACT evaluation protocol.

Functions exist in a numpy flavour (evaluation, data; ``np_`` prefix) and a torch flavour (model,
losses; ``torch_`` prefix). Coordinates are in whatever unit the caller uses (pixels or
normalised); the functions never mix units.
"""

from __future__ import annotations

import numpy as np
import torch


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


# ----------------------------------------------------------------------------------- torch
def torch_area(boxes: torch.Tensor) -> torch.Tensor:
    """``[..., 4] -> [...]`` continuous areas."""
    return (boxes[..., 2] - boxes[..., 0]).clamp(min=0) * (boxes[..., 3] - boxes[..., 1]).clamp(min=0)


def torch_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``[N, 4] x [M, 4] -> [N, M]`` continuous IoU."""
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    union = torch_area(a)[:, None] + torch_area(b)[None, :] - inter
    return inter / union.clamp(min=1e-12)


def torch_iou_paired(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``[..., 4] x [..., 4] -> [...]`` continuous IoU of matching rows."""
    lt = torch.maximum(a[..., :2], b[..., :2])
    rb = torch.minimum(a[..., 2:], b[..., 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    union = torch_area(a) + torch_area(b) - inter
    return inter / union.clamp(min=1e-12)


def cxcywh_to_xyxy(boxes: torch.Tensor) -> torch.Tensor:
    """``[..., 4]`` centre/size -> corners."""
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=-1)


def xyxy_to_cxcywh(boxes: torch.Tensor) -> torch.Tensor:
    """``[..., 4]`` corners -> centre/size."""
    x1, y1, x2, y2 = boxes.unbind(-1)
    return torch.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], dim=-1)


def torch_nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy non-maximum suppression.

    ``boxes [N, 4]``, ``scores [N]`` -> indices ``[K]`` of the kept boxes, highest score first.
    A box is dropped when its IoU with an already kept box is above ``iou_threshold``.
    (torchvision is not a dependency; N is small after the score threshold.)
    """
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    order = scores.argsort(descending=True)
    iou = torch_iou(boxes[order], boxes[order])  # [N, N] in score order
    n = order.numel()
    keep = torch.ones(n, dtype=torch.bool)
    iou_cpu = (iou > iou_threshold).cpu()
    for i in range(n):
        if keep[i]:
            keep[i + 1 :] &= ~iou_cpu[i, i + 1 :]
    return order[keep.to(order.device)]
