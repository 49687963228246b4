"""Detection losses of the source domain: Loss_cls (eq. 10), Loss_loc (eq. 11) and Loss_clip
(eq. 12). Pure functions of tensors.

Conventions (recorded in ``docs/DESIGN.md``):

* Responsible anchor (1obj_ij): the cell containing the box centre and, in it, the anchor whose
  shape has the highest IoU with the box (YOLOv2).
* Loss_loc: ``lambda_coord`` x squared error of the centre offsets within the cell (sigmoid
  outputs vs. targets in [0, 1)) and of sqrt(w), sqrt(h) in normalised image units; objectness
  binary cross-entropy with target 1 on responsible anchors, plus the no-object term the paper
  omits (``lambda_noobj`` x BCE towards 0 on every other anchor, except anchors whose decoded box
  already overlaps a ground truth by more than ``ignore_iou``).
* Loss_cls: one-vs-all binary cross-entropy over the K classes on responsible anchors (eq. 10
  as written; the softmax mentioned in the text is not used).
* Sums are divided by the number of clips (Loss_clip: clips x frames), so Loss_clip is the mean
  over the N frames of the per-frame Loss_loc, as eq. 12 says.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from weaktube.model.box_ops import torch_iou, torch_iou_paired
from weaktube.model.decode import MAX_LOG_SCALE, decode_boxes


@dataclass
class DetectionLossConfig:
    lambda_coord: float = 5.0  # weight of the box terms (YOLO's lambda_coord)
    lambda_noobj: float = 1.0  # weight of the no-object term (absent from the paper's eq. 11)
    lambda_cls: float = 1.0  # weight of Loss_cls
    ignore_iou: float = 0.6  # anchors whose box overlaps a ground truth this much: no "no object"
    # also train the class of every other anchor whose decoded box overlaps a ground truth by at
    # least this IoU, with that box's label (0 = off: only the responsible anchor, YOLO's rule).
    # At test time the top box of a person comes from another anchor than the trained one most of
    # the time (docs/MODEL.md, "Which anchors learn the class")
    class_iou: float = 0.0
    # with class_iou > 0: weigh each extra anchor's class term by 1 / (the number of extra
    # anchors on the same person), so a person adds its responsible anchor's term plus one term
    # spread over the others however many anchors box it (False: each extra anchor weighs 1)
    class_iou_norm: bool = False


@dataclass
class Assignment:
    """Which anchor answers for which ground truth. All ``[B, A, H', W']``."""

    obj: torch.Tensor  # bool: anchor is responsible for a box
    txy: torch.Tensor  # [B, A, H', W', 2] centre offset inside the cell, in [0, 1)
    wh: torch.Tensor  # [B, A, H', W', 2] box width/height, normalised
    label: torch.Tensor  # long: class of the box (-1 where not responsible)
    box: torch.Tensor  # [B, A, H', W', 4] the box, normalised xyxy


def grid_cell(cx: torch.Tensor, cy: torch.Tensor, grid_h: int, grid_w: int
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Row and column ``[G]`` of the cell holding each centre ``cx, cy [G]`` (normalised)."""
    return ((cy * grid_h).long().clamp(0, grid_h - 1),
            (cx * grid_w).long().clamp(0, grid_w - 1))


def assign_targets(boxes: torch.Tensor, labels: torch.Tensor, anchors: torch.Tensor,
                   grid_h: int, grid_w: int,
                   anchor_index: torch.Tensor | None = None) -> Assignment:
    """Ground truth ``boxes [B, M, 4]`` (normalised xyxy) with ``labels [B, M]`` (-1 = padding)
    -> an :class:`Assignment` on the ``[B, A, grid_h, grid_w]`` anchor grid.

    Each box goes to the anchor of best shape IoU in the cell holding its centre, or to
    ``anchor_index [B, M]`` where that is >= 0 (targets made from the network's own boxes keep
    the anchor that produced them: docs/WEAK.md)."""
    b, m = labels.shape
    a = anchors.shape[0]
    dev = boxes.device
    obj = torch.zeros(b, a, grid_h, grid_w, dtype=torch.bool, device=dev)
    txy = torch.zeros(b, a, grid_h, grid_w, 2, device=dev)
    wh = torch.zeros(b, a, grid_h, grid_w, 2, device=dev)
    box = torch.zeros(b, a, grid_h, grid_w, 4, device=dev)
    label = torch.full((b, a, grid_h, grid_w), -1, dtype=torch.long, device=dev)
    valid = labels >= 0
    if not valid.any():
        return Assignment(obj, txy, wh, label, box)
    bi, mi = valid.nonzero(as_tuple=True)  # [G] clip and box index of each ground truth
    g = boxes[bi, mi]  # [G, 4]
    cx, cy = (g[:, 0] + g[:, 2]) / 2, (g[:, 1] + g[:, 3]) / 2
    gw, gh = (g[:, 2] - g[:, 0]).clamp(min=1e-6), (g[:, 3] - g[:, 1]).clamp(min=1e-6)
    gi, gj = grid_cell(cx, cy, grid_h, grid_w)
    inter = torch.minimum(gw[:, None], anchors[None, :, 0]) * torch.minimum(
        gh[:, None], anchors[None, :, 1])  # [G, A]
    shape_iou = inter / (gw[:, None] * gh[:, None] + anchors.prod(-1)[None] - inter)
    ga = shape_iou.argmax(1)  # [G]
    if anchor_index is not None:
        fixed = anchor_index[bi, mi]  # [G]
        ga = torch.where(fixed >= 0, fixed, ga)
    obj[bi, ga, gi, gj] = True
    txy[bi, ga, gi, gj] = torch.stack([cx * grid_w - gj, cy * grid_h - gi], -1)
    wh[bi, ga, gi, gj] = torch.stack([gw, gh], -1)
    box[bi, ga, gi, gj] = g
    label[bi, ga, gi, gj] = labels[bi, mi]
    return Assignment(obj, txy, wh, label, box)


def yolo_loss(raw: torch.Tensor, anchors: torch.Tensor, boxes: torch.Tensor,
              labels: torch.Tensor, num_classes: int, cfg: DetectionLossConfig,
              prefix: str = "", tolerance_iou: float | None = None,
              box_terms: bool = True,
              anchor_index: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Loss_loc (+ Loss_cls when ``num_classes > 0``) of one prediction map.

    ``raw [B, A, 5 + num_classes, H', W']``; ``boxes [B, M, 4]`` normalised xyxy;
    ``labels [B, M]`` class index (any value >= 0 for class-free heads), -1 = padding.
    ``tolerance_iou``: responsible anchors whose decoded box already overlaps its target by at
    least this IoU get no box terms (targets that are themselves estimates, e.g. a tracker's).
    ``box_terms=False`` drops the box terms altogether (class and objectness only).
    ``anchor_index [B, M]``: a fixed responsible anchor per box (-1: best shape match).
    Returns named scalar terms (``{prefix}xy``, ``wh``, ``obj``, ``noobj``, ``cls``), each summed
    over anchors and divided by B.
    """
    bsz, a, _, h, w = raw.shape
    asg = assign_targets(boxes, labels, anchors, h, w, anchor_index)
    pred = raw.permute(0, 1, 3, 4, 2)  # [B, A, C, H', W'] -> [B, A, H', W', C]
    pred_boxes = decode_boxes(raw, anchors)  # [B, A, H', W', 4]
    with torch.no_grad():  # anchors whose box already covers a ground truth are not penalised
        ignore = torch.zeros(bsz, a, h, w, dtype=torch.bool, device=raw.device)
        near_label = torch.full((bsz, a, h, w), -1, dtype=torch.long, device=raw.device)
        near_weight = torch.ones(bsz, a, h, w, device=raw.device)  # class-term weight
        for i in range(bsz):
            valid = labels[i] >= 0
            gt = boxes[i][valid]  # [M', 4]
            if len(gt):
                best, which = torch_iou(pred_boxes[i].reshape(-1, 4), gt).max(1)  # [A*H'*W']
                ignore[i] = (best > cfg.ignore_iou).view(a, h, w)
                if cfg.class_iou > 0:
                    hit = best >= cfg.class_iou  # [A*H'*W']
                    near = torch.where(hit, labels[i][valid][which], -1)
                    near_label[i] = near.view(a, h, w)
                    if cfg.class_iou_norm:
                        extra = hit & ~asg.obj[i].reshape(-1)  # [A*H'*W'] not responsible
                        count = torch.bincount(which[extra], minlength=len(gt))  # [M']
                        near_weight[i] = torch.where(
                            extra, 1.0 / count[which].clamp(min=1), 1.0).view(a, h, w)
    o = asg.obj
    conf = pred[..., 4]
    zero = raw.sum() * 0.0
    if o.any():
        p = pred[o]  # [G, C]
        keep = torch.full((len(p),), float(box_terms), device=raw.device)  # [G] box-term weight
        if tolerance_iou is not None and box_terms:
            with torch.no_grad():
                close = torch_iou_paired(pred_boxes[o], asg.box[o]) >= tolerance_iou
            keep = keep * (~close).float()
        xy = (((p[:, :2].sigmoid() - asg.txy[o]) ** 2).sum(1) * keep).sum()
        pwh = anchors.view(1, a, 1, 1, 2).expand(bsz, a, h, w, 2)[o]  # [G, 2] anchor w, h
        bwh = pwh * p[:, 2:4].clamp(max=MAX_LOG_SCALE).exp()  # [G, 2] predicted w, h
        wh = (((bwh.sqrt() - asg.wh[o].sqrt()) ** 2).sum(1) * keep).sum()
        obj = F.binary_cross_entropy_with_logits(conf[o], torch.ones_like(conf[o]),
                                                 reduction="sum")
    else:
        xy = wh = obj = zero
    cls = zero
    if num_classes > 0:
        # class targets: the responsible anchors, then (class_iou > 0) every other anchor whose
        # box overlaps a ground truth that much, with the label of its best-overlapping one
        cls_label = torch.where(o, asg.label, near_label)  # [B, A, H', W']
        c = cls_label >= 0
        if c.any():
            onehot = F.one_hot(cls_label[c], num_classes).float()  # [G', K]
            if cfg.class_iou > 0 and cfg.class_iou_norm:
                per_anchor = F.binary_cross_entropy_with_logits(
                    pred[c][:, 5:], onehot, reduction="none").sum(1)  # [G', K] -> [G']
                cls = (per_anchor * near_weight[c]).sum()
            else:
                cls = F.binary_cross_entropy_with_logits(pred[c][:, 5:], onehot,
                                                         reduction="sum")
    noobj_mask = ~o & ~ignore
    noobj = F.binary_cross_entropy_with_logits(conf[noobj_mask],
                                               torch.zeros_like(conf[noobj_mask]),
                                               reduction="sum")
    terms = {
        "xy": cfg.lambda_coord * xy,
        "wh": cfg.lambda_coord * wh,
        "obj": obj,
        "noobj": cfg.lambda_noobj * noobj,
    }
    if num_classes > 0:
        terms["cls"] = cfg.lambda_cls * cls
    return {f"{prefix}{k}": v / bsz for k, v in terms.items()}


def clip_loss(frames: torch.Tensor, anchors: torch.Tensor, frame_boxes: torch.Tensor,
              frame_valid: torch.Tensor, cfg: DetectionLossConfig,
              prefix: str = "clip_") -> dict[str, torch.Tensor]:
    """Loss_clip (eq. 12): the mean over the N frames of Loss_loc of branch 4.

    ``frames [B, N, A, 5, H', W']``; ``frame_boxes [B, N, M, 4]`` normalised xyxy;
    ``frame_valid [B, N, M]``.
    """
    b, n, a, c, h, w = frames.shape
    raw = frames.reshape(b * n, a, c, h, w)  # [B, N, A, 5, H', W'] -> [B*N, A, 5, H', W']
    boxes = frame_boxes.reshape(b * n, -1, 4)  # [B, N, M, 4] -> [B*N, M, 4]
    labels = frame_valid.reshape(b * n, -1).long() - 1  # valid -> 0, padding -> -1
    return yolo_loss(raw, anchors, boxes, labels, 0, cfg, prefix=prefix)


def total(terms: dict[str, torch.Tensor]) -> torch.Tensor:
    """Sum of named loss terms."""
    return torch.stack(list(terms.values())).sum()
