"""Class probabilities pooled over the anchors of a keyframe and over time (no gradients).

**Within a keyframe** (:func:`vote_class_probs`): training teaches the class only at the anchor
responsible for a person, yet the most confident box on that person comes from another anchor
most of the time (docs/MODEL.md, "Which anchors learn the class"). Each box therefore takes the
objectness-weighted mean of the class probabilities of every box of its keyframe that overlaps
it by at least ``iou_min`` (itself included).

**Over time** (:func:`smooth_class_probs`):

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
PAIR_BUDGET = 1 << 24  # box pairs per batch of vote_class_probs (~64 MB per float32 [C, N, N])


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


@torch.no_grad()
def vote_class_probs(boxes: torch.Tensor, obj: torch.Tensor, cls: torch.Tensor,
                     iou_min: float) -> torch.Tensor:
    """Pool class probabilities over the overlapping boxes of each keyframe.

    ``boxes [T, N, 4]`` (any consistent units), ``obj [T, N]``, ``cls [T, N, K]``. Box ``b``
    gets ``sum_j w_bj cls_j / sum_j w_bj`` with ``w_bj = obj_j`` where ``IoU(b, j) >= iou_min``
    (``j = b`` always counts), else 0. ``iou_min`` <= 0 returns ``cls`` unchanged. Boxes and
    objectness are not touched.
    """
    if iou_min <= 0 or cls.shape[1] == 0:
        return cls
    out = torch.empty_like(cls)
    n = cls.shape[1]
    chunk = max(1, min(CHUNK, PAIR_BUDGET // (n * n)))  # every keyframe alone: any chunk gives
    # the same numbers; 16k boxes per keyframe (a 416² paper-size input) go one at a time
    for s in range(0, len(cls), chunk):
        e = min(len(cls), s + chunk)
        near = torch_iou_batched(boxes[s:e], boxes[s:e]) >= iou_min  # [C, N, N]
        near |= torch.eye(near.shape[1], dtype=torch.bool, device=near.device)[None]
        w = near.float() * obj[s:e, None, :]  # [C, N, N] row b: weights of the boxes j
        total = w.sum(2, keepdim=True)  # [C, N, 1]
        pooled = torch.bmm(w, cls[s:e]) / total.clamp(min=1e-12)  # [C, N, K]
        out[s:e] = torch.where(total > 0, pooled, cls[s:e])
    return out
