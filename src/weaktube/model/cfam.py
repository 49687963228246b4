"""Channel attention of the fusion branch (SPEC eq. 9, the Gram matrix of YOWO's CFAM).

    FF = reshape(FB)            [B, C, L]   (L = H'·W')
    G  = FF · FFᵀ / L           [B, C, C]
    M  = softmax over each row of G
    FC = β · reshape(M · FF) + FB,   β a learned scalar starting at 0

Two choices, documented in docs/MODEL.md:

- **softmax(G), as the SPEC writes it**, not YOWO's ``softmax(max(G) − G)`` (inherited from
  DANet), which makes each channel attend most to the channels *least* correlated with it.
- **G is divided by L = H'·W'**, i.e. G holds the mean over positions of the channel products
  (second moments) instead of their sum. Unscaled, the logits grow with the grid size (49 cells
  at 224², 169 at 416²) and the size of the activations, and the softmax saturates to a one-hot
  row at once: attention sharpness would then depend on the input resolution. With the mean the
  softmax temperature is resolution-independent. Overflow itself is not the issue (softmax
  subtracts the row maximum); the Gram matrix is nevertheless always computed in float32, so
  that under autocast/fp16 the sum over L cannot overflow.

With β = 0 at initialisation the module is the identity, so training starts from the plain
fusion features and learns how much attention to mix in.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch
from torch import nn


def channel_attention(fb: torch.Tensor) -> torch.Tensor:
    """Attention term ``reshape(M · FF)`` of eq. 9 (without β and the residual).

    ``fb``: ``[B, C, H, W]``; returns ``[B, C, H, W]`` in ``fb``'s dtype.
    """
    b, c, h, w = fb.shape
    # autocast would run bmm in bf16/fp16 whatever the inputs' dtype: switch it off here
    # (devices without autocast, e.g. ``meta`` for FLOP counting, refuse the context)
    no_autocast = (torch.autocast(fb.device.type, enabled=False)
                   if torch.amp.is_autocast_available(fb.device.type) else nullcontext())
    with no_autocast:
        ff = fb.float().reshape(b, c, h * w)  # [B, C, H, W] -> [B, C, L]
        gram = torch.bmm(ff, ff.transpose(1, 2)) / (h * w)  # [B, C, L] x [B, L, C] -> [B, C, C]
        attn = torch.softmax(gram, dim=-1)  # each row sums to 1
        out = torch.bmm(attn, ff)  # [B, C, C] x [B, C, L] -> [B, C, L]
    return out.reshape(b, c, h, w).to(fb.dtype)  # [B, C, L] -> [B, C, H, W]


class ChannelAttention(nn.Module):
    """``FC = β · channel_attention(FB) + FB`` with a learned scalar β initialised to 0."""

    def __init__(self) -> None:
        super().__init__()
        self.beta = nn.Parameter(torch.zeros(()))

    def forward(self, fb: torch.Tensor) -> torch.Tensor:
        """``[B, C, H', W']`` -> ``[B, C, H', W']``."""
        return self.beta * channel_attention(fb) + fb
