"""Box coding shared by the losses and inference, and post-processing (no gradients).

Raw predictions per anchor and grid cell (YOLOv2 coding, all in normalised image units):
``cx = (j + sigmoid(tx)) / W'``, ``cy = (i + sigmoid(ty)) / H'``, ``w = aw * exp(tw)``,
``h = ah * exp(th)``; objectness ``sigmoid(t_conf)``; class probabilities ``sigmoid(logits)``
(one-vs-all, the paper's eq. 10 binary cross-entropy). A detection's score is
objectness x class probability.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from weaktube.model.box_ops import cxcywh_to_xyxy, torch_nms

# exp(tw) is clamped so a wild early prediction cannot overflow
MAX_LOG_SCALE = 4.0


def grid_offsets(h: int, w: int, device: torch.device | None = None) -> tuple[torch.Tensor,
                                                                            torch.Tensor]:
    """Column and row index of every cell: two ``[H', W']`` tensors."""
    ys, xs = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device),
                            indexing="ij")
    return xs.float(), ys.float()


def decode_boxes(raw: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """``[..., A, 4+, H', W']`` raw -> ``[..., A, H', W', 4]`` normalised xyxy boxes."""
    h, w = raw.shape[-2:]
    gx, gy = grid_offsets(h, w, raw.device)
    aw = anchors[:, 0].view(-1, 1, 1)  # [A, 1, 1]
    ah = anchors[:, 1].view(-1, 1, 1)
    cx = (gx + raw[..., 0, :, :].sigmoid()) / w  # [..., A, H', W']
    cy = (gy + raw[..., 1, :, :].sigmoid()) / h
    bw = aw * raw[..., 2, :, :].clamp(max=MAX_LOG_SCALE).exp()
    bh = ah * raw[..., 3, :, :].clamp(max=MAX_LOG_SCALE).exp()
    return cxcywh_to_xyxy(torch.stack([cx, cy, bw, bh], dim=-1))


@dataclass
class PostprocessConfig:
    conf_threshold: float = 0.005  # minimum score kept (low: AP needs the tail of the ranking)
    nms_iou: float = 0.5  # per-class NMS threshold
    top_classes: int = 3  # classes emitted per anchor box (each with its own score)
    max_detections: int = 20  # per frame, after NMS
    # Class probabilities of a box averaged with those of the best-overlapping confident box of
    # every keyframe within +- this many seconds (weaktube.infer.smooth); 0: each clip alone.
    # Applied by weaktube.infer.detect, which knows the video's fps.
    class_window_s: float = 0.5
    # Class probabilities of a box averaged (objectness-weighted) with those of every box of the
    # same keyframe that overlaps it by at least this IoU, before the pooling over time
    # (weaktube.infer.smooth.vote_class_probs; docs/DESIGN.md "Inference"); 0: each anchor's own.
    class_vote_iou: float = 0.7


@torch.no_grad()
def decode_keyframe(key: torch.Tensor, anchors: torch.Tensor) -> tuple[torch.Tensor,
                                                                      torch.Tensor,
                                                                      torch.Tensor]:
    """Keyframe head output ``[B, A, 5+K, H', W']`` -> ``boxes [B, N, 4]`` (normalised xyxy),
    ``objectness [B, N]`` and ``class probabilities [B, N, K]``, ``N = A*H'*W'``."""
    b, a, c, h, w = key.shape
    boxes = decode_boxes(key, anchors).reshape(b, a * h * w, 4)  # [B, A, H', W', 4] -> [B, N, 4]
    obj = key[:, :, 4].sigmoid().reshape(b, a * h * w)  # [B, A, H', W'] -> [B, N]
    cls = key[:, :, 5:].sigmoid()  # [B, A, K, H', W']
    cls = cls.permute(0, 1, 3, 4, 2).reshape(b, a * h * w, c - 5)  # -> [B, N, K]
    return boxes, obj, cls


@torch.no_grad()
def select_detections(boxes: torch.Tensor, obj: torch.Tensor, cls: torch.Tensor,
                      cfg: PostprocessConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One frame's ``boxes [N, 4]``, ``obj [N]``, ``cls [N, K]`` -> ``(boxes [D, 4] normalised
    xyxy, scores [D], labels [D])``: score = objectness x class probability, the
    ``top_classes`` best classes per box, per-class NMS, highest score first."""
    scores = obj[:, None] * cls  # [N, K]
    k = min(cfg.top_classes, cls.shape[-1])
    top_s, top_l = scores.topk(k, dim=-1)  # [N, k]
    s = top_s.reshape(-1)  # [N*k]
    lab = top_l.reshape(-1)
    bx = boxes.repeat_interleave(k, dim=0)  # [N*k, 4]
    keep = s > cfg.conf_threshold
    # clipped to the image before NMS: two boxes that overlap only inside it must suppress
    # each other (clipped after, they came out as identical duplicates)
    s, lab, bx = s[keep], lab[keep], bx[keep].clamp(0.0, 1.0)
    # per-class NMS in one call: offset boxes (in [0, 1]) by class so classes never overlap
    kept = torch_nms(bx + lab[:, None].float() * 2.0, s, cfg.nms_iou)[: cfg.max_detections]
    return bx[kept], s[kept], lab[kept]
