"""L_TRB, the tracking-regularisation loss (paper eq. 13). A pure function of tensors: the
tracker's boxes come in as targets (``weaktube.tracking`` produces them from the network's own
detached boxes; ``weaktube.train.weak`` wires the two).

``L_TRB = (1/N) sum_i Loss_clip(Loc_i, Tracker(Loc_{i+1}))``: per frame, branch 4's prediction is
pulled towards the tracker's box with a tolerance: a responsible anchor whose box already overlaps
the tracker's by ``tolerance_iou`` or more gets no box terms (the tracker is not ground truth;
consecutive human annotations agree only to ~0.93 IoU). Frames without a tracker box contribute
nothing (no "no object" term either: an untracked frame is unknown, not empty).
"""

from __future__ import annotations

import torch

from weaktube.losses.detection import DetectionLossConfig, yolo_loss


def tracking_loss(frames: torch.Tensor, anchors: torch.Tensor, track_boxes: torch.Tensor,
                  track_valid: torch.Tensor, cfg: DetectionLossConfig,
                  tolerance_iou: float = 0.7, prefix: str = "trb_",
                  box_terms: bool = True,
                  anchor_index: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """``frames [B, N, A, 5, H', W']`` raw per-frame predictions; ``track_boxes [B, N, M, 4]``
    normalised xyxy tracker boxes with ``track_valid [B, N, M]``. Frames with no valid box are
    skipped. Terms are divided by B*N, so the result is the mean over frames as in eq. 13.
    ``box_terms=False``: objectness only (the boxes say *where*, not how big).
    ``anchor_index [B, N, M]``: the responsible anchor of each box (-1: best shape match)."""
    b, n, a, c, h, w = frames.shape
    has = track_valid.any(-1).reshape(b * n)  # [B*N] frames with a tracker box
    if not has.any():
        zero = frames.sum() * 0.0
        return {f"{prefix}{k}": zero for k in ("xy", "wh", "obj", "noobj")}
    raw = frames.reshape(b * n, a, c, h, w)[has]  # [B, N, A, 5, H', W'] -> [F, A, 5, H', W']
    boxes = track_boxes.reshape(b * n, -1, 4)[has]  # [B, N, M, 4] -> [F, M, 4]
    labels = track_valid.reshape(b * n, -1)[has].long() - 1  # valid -> 0, padding -> -1
    fixed = (anchor_index.reshape(b * n, -1)[has]  # [B, N, M] -> [F, M]
             if anchor_index is not None else None)
    terms = yolo_loss(raw, anchors, boxes, labels, 0, cfg, prefix=prefix,
                      tolerance_iou=tolerance_iou, box_terms=box_terms, anchor_index=fixed)
    scale = raw.shape[0] / (b * n)  # yolo_loss divided by F frames; eq. 13 divides by B*N
    return {k: v * scale for k, v in terms.items()}
