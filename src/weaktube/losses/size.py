"""The size anchor of the target stage (``weak.size_teacher``, docs/WEAK.md "Size anchor"): a
predicted box's width and height pulled towards a reference size, with a tolerance. A pure
function of tensors; ``weaktube.train.weak`` gathers the predictions and the teacher's sizes."""

from __future__ import annotations

import torch

from weaktube.model.box_ops import torch_iou_paired, with_size_of, xyxy_to_cxcywh


def size_loss(pred: torch.Tensor, reference: torch.Tensor, valid: torch.Tensor,
              tolerance_iou: float) -> torch.Tensor:
    """Sum over the ``valid [F]`` boxes of the squared error of sqrt(w) and sqrt(h) (the box
    term of Loss_loc, eq. 11) between ``pred [F, 4]`` and ``reference [F, 4]`` (normalised
    xyxy; only the reference's width and height count). A box whose prediction already overlaps
    the reference size at its own centre by ``tolerance_iou`` or more costs nothing. Returns a
    scalar (unweighted, not averaged)."""
    target = with_size_of(pred.detach(), reference)  # [F, 4] the prediction's centre
    with torch.no_grad():
        keep = valid & (torch_iou_paired(pred, target) < tolerance_iou)  # [F]
    wh = xyxy_to_cxcywh(pred)[:, 2:]  # [F, 2]
    twh = xyxy_to_cxcywh(target)[:, 2:]  # [F, 2]
    err = ((wh.clamp(min=1e-9).sqrt() - twh.clamp(min=0).sqrt()) ** 2).sum(-1)  # [F]
    return (err * keep.float()).sum()
