"""Channel attention (eq. 9): known answer, identity at init, scale behaviour."""

from __future__ import annotations

import math

import torch

from weaktube.model.cfam import ChannelAttention, channel_attention


def test_known_answer_two_channels():
    # FB: C = 2 channels on a 1 x 2 grid (L = 2); FF rows: [1, 0] and [0, 2]
    fb = torch.tensor([[[[1.0, 0.0]], [[0.0, 2.0]]]])  # [1, 2, 1, 2]
    # G = FF FF^T / L = [[1, 0], [0, 4]] / 2 = [[0.5, 0], [0, 2]]
    m00 = math.exp(0.5) / (math.exp(0.5) + 1.0)
    m01 = 1.0 - m00
    m10 = 1.0 / (1.0 + math.exp(2.0))
    m11 = 1.0 - m10
    # M FF: row 0 = m00 * [1, 0] + m01 * [0, 2]; row 1 = m10 * [1, 0] + m11 * [0, 2]
    expected = torch.tensor([[[[m00, 2 * m01]], [[m10, 2 * m11]]]])
    torch.testing.assert_close(channel_attention(fb), expected)

    cam = ChannelAttention()
    with torch.no_grad():
        cam.beta.fill_(0.5)
    torch.testing.assert_close(cam(fb), 0.5 * expected + fb)


def test_beta_starts_at_zero_identity():
    cam = ChannelAttention()
    assert cam.beta.item() == 0.0
    fb = torch.randn(2, 8, 3, 5)
    assert torch.equal(cam(fb), fb)


def test_beta_gets_gradient_at_zero():
    cam = ChannelAttention()
    fb = torch.rand(2, 4, 3, 3)
    (cam(fb) * torch.randn_like(fb)).sum().backward()
    assert cam.beta.grad is not None and cam.beta.grad.abs() > 0


def test_rows_are_convex_combinations():
    # softmax rows sum to 1, so a constant feature map is a fixed point of the attention term
    fb = torch.full((1, 6, 4, 4), 3.0)
    torch.testing.assert_close(channel_attention(fb), fb)


def test_resolution_independent_for_tiled_input():
    # Tiling the map 2x2 leaves the per-position channel statistics (G / L) unchanged, so the
    # attention weights, hence the output per position, are the same; unscaled G would be 4x.
    torch.manual_seed(0)
    fb = torch.randn(1, 5, 3, 3)
    tiled = fb.repeat(1, 1, 2, 2)
    torch.testing.assert_close(channel_attention(tiled), channel_attention(fb).repeat(1, 1, 2, 2))


def test_half_precision_large_activations_stay_finite():
    fb = torch.full((1, 4, 16, 16), 200.0, dtype=torch.float16)  # sum of squares 1e7 > fp16 max
    out = channel_attention(fb)
    assert out.dtype == torch.float16
    assert torch.isfinite(out).all()


def test_gram_is_float32_under_autocast():
    """Autocast runs bmm in bf16 whatever its inputs: the attention must match float32 anyway."""
    g = torch.Generator().manual_seed(0)
    fb = torch.randn(2, 8, 6, 6, generator=g) * 30  # large activations: bf16 Gram is coarse
    ref = channel_attention(fb)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = channel_attention(fb)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, ref)
