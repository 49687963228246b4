"""Class probabilities pooled over time along each box (no gradients).

A clip of N frames sees a fraction of an action's cycle: a clap seen while the arms are apart
looks like a jumping jack. Each keyframe's boxes therefore take the weighted mean of the class
probabilities of the boxes that cover the same place in the neighbouring keyframes: for a box
``b`` at keyframe ``t`` and every keyframe ``u`` with ``|u - t| <= window``, the neighbour box
``j`` maximising ``IoU(b, b_j) * obj_j`` contributes ``cls_j`` with weight ``IoU * obj_j``
(the box itself with weight ``obj_b``). Boxes and objectness are unchanged, so localisation is
the clip's own.

Only the ``candidates`` most confident boxes of each keyframe take part (on both sides), which
keeps the cost at ``T * window * candidates^2`` IoUs (one IoU matrix serves both directions),
computed ``CHUNK`` keyframes at a time so that memory stays flat for long videos.
"""

from __future__ import annotations

import torch

from weaktube.model.box_ops import torch_iou_batched

CHUNK = 1024  # keyframes per IoU batch


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
    m = min(candidates, n)
    if window <= 0 or t < 2 or m <= 0:
        return cls
    idx = obj.topk(m, dim=1).indices  # [T, M]
    cb = boxes.gather(1, idx[..., None].expand(-1, -1, 4))  # [T, M, 4]
    co = obj.gather(1, idx)  # [T, M]
    cc = cls.gather(1, idx[..., None].expand(-1, -1, k))  # [T, M, K]
    acc = cc * co[..., None]  # [T, M, K]
    weight = co.clone()  # [T, M]
    for d in range(1, min(window, t - 1) + 1):
        for s in range(0, t - d, CHUNK):
            e = min(t - d, s + CHUNK)  # keyframes s..e-1 against s+d..e+d-1
            iou = torch_iou_batched(cb[s:e], cb[s + d : e + d])  # [C, M, M]
            # forward: boxes at u take from u + d
            val, j = (iou * co[s + d : e + d, None, :]).max(dim=2)  # [C, M]
            acc[s:e] += val[..., None] * cc[s + d : e + d].gather(1, j[..., None].expand(-1, -1, k))
            weight[s:e] += val
            # backward: boxes at u + d take from u
            val, j = (iou.transpose(1, 2) * co[s:e, None, :]).max(dim=2)  # [C, M]
            acc[s + d : e + d] += val[..., None] * cc[s:e].gather(1, j[..., None].expand(-1, -1, k))
            weight[s + d : e + d] += val
    # a box with no weight at all (objectness 0, no overlapping neighbour) keeps its own
    pooled = torch.where(weight[..., None] > 0, acc / weight[..., None].clamp(min=1e-12), cc)
    out = cls.clone()
    out.scatter_(1, idx[..., None].expand(-1, -1, k), pooled)
    return out
