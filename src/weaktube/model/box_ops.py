"""Box math on torch tensors (model, losses, decoding): ``[..., 4]`` ``[x1, y1, x2, y2]``
corners, continuous convention (width = x2 - x1). The numpy flavour is :mod:`weaktube.boxes`."""

from __future__ import annotations

import torch


def torch_area(boxes: torch.Tensor) -> torch.Tensor:
    """``[..., 4] -> [...]`` continuous areas."""
    w = (boxes[..., 2] - boxes[..., 0]).clamp(min=0)
    return w * (boxes[..., 3] - boxes[..., 1]).clamp(min=0)


def torch_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``[N, 4] x [M, 4] -> [N, M]`` continuous IoU."""
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    union = torch_area(a)[:, None] + torch_area(b)[None, :] - inter
    return inter / union.clamp(min=1e-12)


def torch_iou_batched(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``[T, N, 4] x [T, M, 4] -> [T, N, M]`` continuous IoU per leading index."""
    lt = torch.maximum(a[:, :, None, :2], b[:, None, :, :2])  # [T, N, M, 2]
    rb = torch.minimum(a[:, :, None, 2:], b[:, None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)  # [T, N, M]
    union = torch_area(a)[:, :, None] + torch_area(b)[:, None, :] - inter
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


def with_size_of(centres: torch.Tensor, sizes: torch.Tensor) -> torch.Tensor:
    """``[..., 4] x [..., 4] -> [..., 4]`` xyxy: the centre of ``centres``, the width and height
    of ``sizes``."""
    c, s = xyxy_to_cxcywh(centres), xyxy_to_cxcywh(sizes)
    return cxcywh_to_xyxy(torch.cat([c[..., :2], s[..., 2:]], dim=-1))


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
