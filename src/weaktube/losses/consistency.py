"""L_NCB, the neighbour-consistency loss (paper eqs. 14-18). Pure functions of tensors.

Our reading (the paper's text and formula disagree; see ``docs/WEAK.md``):

* ``f(x_i)``: the frame's *target confidence feature*: branch 2's per-frame feature map pooled
  with the frame's own location map (per-cell objectness, detached) as weights, then
  L2-normalised. It describes "what the detected actor looks like in frame i".
* ``d_i = f(x_i)^T f(x_{i+1})`` (cosine similarity) for the N-1 consecutive pairs; the keyframe
  pair ``(x_{N-1}, x_N)`` with ``x_N`` a copy of ``x_{N-1}`` has ``d = 1`` by construction and
  serves as the reference similarity in the softmax's normaliser.
* Weights follow the text ("if the distance between x_i and x_{i+1} is large, its contribution
  is small"): with the distance ``1 - d_i``, ``w_i = (1/N) (1 - dist_i / sum_j dist_j)``; they are
  constants (no gradient). When every distance is 0 the weights are uniform.
* ``L = sum_{i<N-1} w_i [log sum_k exp(d_k / eps) - d_i / eps] - (sum_i w_i) log N``, k running
  over the N-1 pairs and the reference. The constant offset makes the loss 0 when neighbours are
  identical; it is >= 0 near there and its gradient raises every neighbour similarity towards the
  reference. The keyframe pair's own term of eq. 18 is dropped: with ``x_N`` a copy of
  ``x_{N-1}`` it would only push every other similarity *down*.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def target_features(frame_features: torch.Tensor, location_maps: torch.Tensor) -> torch.Tensor:
    """``[B, N, D, H', W']`` features pooled by ``[B, N, H', W']`` non-negative maps ->
    ``[B, N, D]`` L2-normalised target confidence features."""
    w = location_maps.detach().clamp(min=0) + 1e-6  # [B, N, H', W']
    w = w / w.sum(dim=(-2, -1), keepdim=True)
    pooled = (frame_features * w[:, :, None]).sum(dim=(-2, -1))  # [B, N, D, H', W'] -> [B, N, D]
    return F.normalize(pooled, dim=-1)


def neighbour_similarities(feats: torch.Tensor) -> torch.Tensor:
    """``[B, N, D]`` unit features -> ``[B, N-1]`` cosine similarities of consecutive frames."""
    return (feats[:, :-1] * feats[:, 1:]).sum(-1)


def ncb_weights(sim: torch.Tensor) -> torch.Tensor:
    """``[B, N-1]`` similarities -> ``[B, N-1]`` constant weights (large distance, small weight)."""
    n = sim.shape[1] + 1
    dist = (1.0 - sim.detach()).clamp(min=0)
    total = dist.sum(dim=1, keepdim=True)
    share = torch.where(total > 1e-8, dist / total.clamp(min=1e-8),
                        torch.full_like(dist, 1.0 / dist.shape[1]))
    return (1.0 - share) / n


def neighbour_consistency_loss(feats: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """L_NCB of ``[B, N, D]`` unit-norm per-frame features, averaged over the B clips."""
    sim = neighbour_similarities(feats)  # [B, N-1]
    b, pairs = sim.shape
    w = ncb_weights(sim)
    ref = torch.ones(b, 1, dtype=sim.dtype, device=sim.device)  # the keyframe pair: d = 1
    log_norm = torch.logsumexp(torch.cat([sim, ref], dim=1) / eps, dim=1, keepdim=True)
    per_clip = (w * (log_norm - sim / eps)).sum(1) - w.sum(1) * math.log(pairs + 1)
    return per_clip.mean()
