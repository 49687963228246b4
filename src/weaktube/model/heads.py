"""Branch 3 (fusion + keyframe head) and branch 4 (per-frame location head).

Prediction layout, per anchor a and grid cell (i, j): ``tx, ty, tw, th, t_conf`` then (keyframe
head only) ``K`` class logits. All are raw (no sigmoid / exp); decoding is the caller's.
The last 1x1 conv of each head starts with small weights (std 0.01) and biases set so that
``sigmoid(t_conf)`` and ``sigmoid(class logit)`` start at ``prior_prob`` (RetinaNet's focal-loss
prior trick), box offsets at 0: the first iterations are then not dominated by the thousands of
background cells all predicting 0.5 confidence.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from weaktube.model.cfam import ChannelAttention

BOX_CHANNELS = 5  # tx, ty, tw, th, t_conf


class ConvBNReLU(nn.Sequential):
    """``k x k`` 2D conv (no bias) -> BatchNorm -> ReLU; keeps the spatial size."""

    def __init__(self, cin: int, cout: int, kernel_size: int = 3) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, kernel_size, padding=kernel_size // 2, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )


def init_prediction_conv(conv: nn.Conv2d, num_anchors: int, prior_prob: float) -> None:
    """Small weights; per anchor: box biases 0, objectness and class biases ``logit(prior_prob)``.

    ``conv`` has ``num_anchors * P`` output channels ordered anchor-major (``a * P + p``) with
    ``p < 4`` the box offsets.
    """
    if not 0.0 < prior_prob < 1.0:
        raise ValueError(f"prior_prob={prior_prob}: expected 0 < prior_prob < 1")
    per_anchor = conv.out_channels // num_anchors
    nn.init.normal_(conv.weight, std=0.01)
    bias = torch.full((num_anchors, per_anchor), math.log(prior_prob / (1.0 - prior_prob)))
    bias[:, :4] = 0.0
    with torch.no_grad():
        conv.bias.copy_(bias.reshape(-1))  # [A, P] -> [A*P]


class FusionHead(nn.Module):
    """Branch 3: ``FA = concat(F01, F11)`` -> 2 convs -> FB -> CFAM -> FC -> 2 convs -> FD.

    ``forward(fa)`` returns the raw keyframe predictions ``[B, A, 5 + K, H', W']`` with FB and FC.
    """

    def __init__(self, in_channels: int, channels: int, num_anchors: int, num_classes: int,
                 prior_prob: float) -> None:
        super().__init__()
        self.num_anchors = num_anchors
        self.per_anchor = BOX_CHANNELS + num_classes
        self.fuse = nn.Sequential(ConvBNReLU(in_channels, channels),
                                  ConvBNReLU(channels, channels))
        self.cfam = ChannelAttention()
        self.hidden = ConvBNReLU(channels, channels)
        self.pred = nn.Conv2d(channels, num_anchors * self.per_anchor, kernel_size=1)
        init_prediction_conv(self.pred, num_anchors, prior_prob)

    def forward(self, fa: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``fa`` ``[B, N + C', H', W']`` -> ``(key [B, A, 5+K, H', W'], FB, FC)``.

        FB and FC (``[B, C, H', W']``, before / after the channel attention) are returned for
        heat-maps; the detector keeps only ``key`` in its output.
        """
        fb = self.fuse(fa)
        fc = self.cfam(fb)
        fd = self.pred(self.hidden(fc))  # [B, A*(5+K), H', W']
        b, _, h, w = fd.shape
        key = fd.reshape(b, self.num_anchors, self.per_anchor, h, w)  # -> [B, A, 5+K, H', W']
        return key, fb, fc


class FrameHead(nn.Module):
    """Branch 4: the same small 2D head on each frame's branch-2 features.

    ``forward(s50)``: ``[B, D', N, H', W']`` -> ``[B, N, A, 5, H', W']`` raw box + objectness.
    """

    def __init__(self, in_channels: int, channels: int, num_anchors: int,
                 prior_prob: float) -> None:
        super().__init__()
        self.num_anchors = num_anchors
        self.hidden = ConvBNReLU(in_channels, channels)
        self.pred = nn.Conv2d(channels, num_anchors * BOX_CHANNELS, kernel_size=1)
        init_prediction_conv(self.pred, num_anchors, prior_prob)

    def forward(self, s50: torch.Tensor) -> torch.Tensor:
        b, d, n, h, w = s50.shape
        x = s50.transpose(1, 2).reshape(b * n, d, h, w)  # [B, D', N, H', W'] -> [B*N, D', H', W']
        x = self.pred(self.hidden(x))  # [B*N, A*5, H', W']
        return x.reshape(b, n, self.num_anchors, BOX_CHANNELS, h, w)  # -> [B, N, A, 5, H', W']
