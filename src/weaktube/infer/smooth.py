"""Class probabilities pooled over time along each box (no gradients).

A clip of N frames sees a fraction of an action's cycle: a clap seen while the arms are apart
looks like a jumping jack. Each keyframe's boxes therefore take the mean class probabilities of
the boxes that cover the same place in the neighbouring keyframes: for a box ``b`` at keyframe
``t`` and every keyframe ``u`` with ``|u - t| <= window``, the neighbour box ``j`` maximising
``IoU(b, b_j) * obj_j`` contributes ``cls_j`` with weight ``IoU * obj_j`` (the box itself with
weight ``obj_b``). Boxes and objectness are unchanged, so localisation is the clip's own.
Only the ``candidates`` most confident boxes of each keyframe take part (on both sides), which
keeps the cost at ``T * 2 * window * candidates^2`` IoUs.
"""

from __future__ import annotations

import torch

from weaktube.model.box_ops import torch_iou


def batched_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``[T, N, 4] x [T, M, 4] -> [T, N, M]`` continuous IoU per leading index."""
    return torch.stack([torch_iou(x, y) for x, y in zip(a, b)]) if len(a) else \
        a.new_zeros(0, a.shape[1], b.shape[1])


@torch.no_grad()
def smooth_class_probs(boxes: torch.Tensor, obj: torch.Tensor, cls: torch.Tensor, window: int,
                       candidates: int = 64) -> torch.Tensor:
    """Pool class probabilities over ``+- window`` keyframes along box overlap.

    ``boxes [T, N, 4]`` (any consistent units), ``obj [T, N]``, ``cls [T, N, K]`` for the T
    keyframes of one video in time order. Returns the pooled ``cls [T, N, K]``; boxes outside
    each keyframe's ``candidates`` most confident keep their own probabilities. ``window`` 0
    returns ``cls`` unchanged.
    """
    t, n, k = cls.shape
    if window <= 0 or t < 2:
        return cls
    m = min(candidates, n)
    idx = obj.topk(m, dim=1).indices  # [T, M]
    cb = boxes.gather(1, idx[..., None].expand(-1, -1, 4))  # [T, M, 4]
    co = obj.gather(1, idx)  # [T, M]
    cc = cls.gather(1, idx[..., None].expand(-1, -1, k))  # [T, M, K]
    acc = cc * co[..., None]  # [T, M, K]
    weight = co.clone()  # [T, M]
    for d in range(1, min(window, t - 1) + 1):
        iou = batched_iou(cb[:-d], cb[d:])  # keyframe t vs t+d: [T-d, M, M]
        # forward: boxes at t take from t + d
        val, j = (iou * co[d:, None, :]).max(dim=2)  # [T-d, M]
        acc[:-d] += val[..., None] * cc[d:].gather(1, j[..., None].expand(-1, -1, k))
        weight[:-d] += val
        # backward: boxes at t + d take from t
        val, j = (iou.transpose(1, 2) * co[:-d, None, :]).max(dim=2)  # [T-d, M]
        acc[d:] += val[..., None] * cc[:-d].gather(1, j[..., None].expand(-1, -1, k))
        weight[d:] += val
    out = cls.clone()
    out.scatter_(1, idx[..., None].expand(-1, -1, k), acc / weight[..., None].clamp(min=1e-12))
    return out
