"""3D ResNet / ResNeXt: Hara parameter layout, shapes, strides, config validation."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from weaktube.model.resnet3d import (
    BackboneConfig,
    ResNet3d,
    ShallowSafeConv3d,
    resnet3d_10,
    resnet3d_18,
    resnet3d_34,
    resnet3d_50,
    resnet3d_101,
    resnext3d_50,
    resnext3d_101,
)


def _meta_state_shapes(factory, **kw) -> dict[str, tuple[int, ...]]:
    """Build on the meta device (no memory, no init cost) and return name -> shape."""
    with torch.device("meta"):
        model = factory(**kw)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


# Facts from Hara's 3D-ResNets-PyTorch (models/resnet.py, models/resnext.py): stem conv1 is
# 64 x 3 x 7 x 7 x 7; ResNet planes 64..512 (basic: expansion 1, bottleneck: 4); ResNeXt planes
# 128..1024, inner width cardinality * planes // 32, grouped 3x3x3 conv, expansion 2.
@pytest.mark.parametrize(
    "factory, expected",
    [
        (resnet3d_18, {
            "conv1.weight": (64, 3, 7, 7, 7),
            "bn1.running_mean": (64,),
            "layer1.0.conv1.weight": (64, 64, 3, 3, 3),
            "layer1.1.bn2.weight": (64,),
            "layer2.0.conv1.weight": (128, 64, 3, 3, 3),
            "layer2.0.downsample.0.weight": (128, 64, 1, 1, 1),
            "layer2.0.downsample.1.running_var": (128,),
            "layer4.1.conv2.weight": (512, 512, 3, 3, 3),
        }),
        (resnet3d_34, {
            "layer3.5.conv2.weight": (256, 256, 3, 3, 3),
            "layer4.2.bn2.bias": (512,),
            "layer4.0.downsample.0.weight": (512, 256, 1, 1, 1),
        }),
        (resnet3d_50, {
            "layer1.0.conv1.weight": (64, 64, 1, 1, 1),
            "layer1.0.conv2.weight": (64, 64, 3, 3, 3),
            "layer1.0.conv3.weight": (256, 64, 1, 1, 1),
            "layer1.0.downsample.0.weight": (256, 64, 1, 1, 1),
            "layer3.5.conv3.weight": (1024, 256, 1, 1, 1),
            "layer4.2.bn3.weight": (2048,),
        }),
        (resnext3d_50, {
            "conv1.weight": (64, 3, 7, 7, 7),
            "layer1.0.conv1.weight": (128, 64, 1, 1, 1),
            "layer1.0.conv2.weight": (128, 4, 3, 3, 3),
            "layer1.0.conv3.weight": (256, 128, 1, 1, 1),
            "layer1.0.downsample.0.weight": (256, 64, 1, 1, 1),
            "layer3.5.conv2.weight": (512, 16, 3, 3, 3),
            "layer4.0.downsample.0.weight": (2048, 1024, 1, 1, 1),
        }),
        (resnext3d_101, {
            "layer1.0.conv2.weight": (128, 4, 3, 3, 3),
            "layer2.3.conv2.weight": (256, 8, 3, 3, 3),
            "layer3.22.conv3.weight": (1024, 512, 1, 1, 1),
            "layer4.2.conv2.weight": (1024, 32, 3, 3, 3),
            "layer4.2.conv3.weight": (2048, 1024, 1, 1, 1),
        }),
    ],
)
def test_hara_layout_names_and_shapes(factory, expected):
    shapes = _meta_state_shapes(factory)
    for name, shape in expected.items():
        assert shapes[name] == shape, name
    assert not any(k.startswith("fc.") for k in shapes)  # detection drops the classifier


@pytest.mark.parametrize(
    "factory, n_blocks",
    [(resnet3d_10, (1, 1, 1, 1)), (resnet3d_18, (2, 2, 2, 2)), (resnet3d_34, (3, 4, 6, 3)),
     (resnet3d_50, (3, 4, 6, 3)), (resnet3d_101, (3, 4, 23, 3)), (resnext3d_101, (3, 4, 23, 3))],
)
def test_stage_depths(factory, n_blocks):
    shapes = _meta_state_shapes(factory)
    for stage, n in enumerate(n_blocks, start=1):
        assert f"layer{stage}.{n - 1}.conv1.weight" in shapes
        assert f"layer{stage}.{n}.conv1.weight" not in shapes
    # only the first block of a stage has a shortcut projection (when shapes change)
    assert not any(".1.downsample" in k for k in shapes)


def test_basic_layer1_has_no_downsample_bottleneck_has():
    assert "layer1.0.downsample.0.weight" not in _meta_state_shapes(resnet3d_18)
    assert "layer1.0.downsample.0.weight" in _meta_state_shapes(resnet3d_50)


def test_shortcut_a_has_no_projection_weights():
    shapes = _meta_state_shapes(resnet3d_18, shortcut="A")
    assert not any("downsample" in k for k in shapes)


def test_conv1_variants():
    assert _meta_state_shapes(resnet3d_18, conv1_t_size=3)["conv1.weight"] == (64, 3, 3, 7, 7)
    m = resnet3d_10(width=8, stem_width=8, conv1_t_size=5, conv1_t_stride=2)
    assert m.conv1.stride == (2, 2, 2) and m.conv1.padding == (2, 3, 3)


def test_stem_without_pool_strides_conv1_by_four_and_keeps_the_output_shape():
    torch.manual_seed(0)
    pooled = resnet3d_10(width=8, stem_width=8, temporal_strides=(1, 2, 2, 2)).eval()
    strided = resnet3d_10(width=8, stem_width=8, temporal_strides=(1, 2, 2, 2),
                          stem_pool=False).eval()
    assert strided.conv1.stride == (1, 4, 4) and isinstance(strided.maxpool, nn.Identity)
    assert pooled.conv1.stride == (1, 2, 2) and isinstance(pooled.maxpool, nn.MaxPool3d)
    # same parameters (the stride changes nothing stored): weights load either way
    strided.load_state_dict(pooled.state_dict())
    x = torch.randn(2, 3, 8, 64, 96)
    with torch.no_grad():
        stem = strided.relu(strided.bn1(strided.conv1(x)))
        y_pooled, y_strided = pooled(x), strided(x)
    assert stem.shape == (2, 8, 8, 16, 24)  # H, W / 4 straight from conv1
    assert y_strided.shape == y_pooled.shape == (2, 64, 1, 2, 3)
    assert torch.isfinite(y_strided).all() and not torch.allclose(y_strided, y_pooled)


def test_forward_shapes_default_strides():
    torch.manual_seed(0)
    m = resnet3d_10(width=8, stem_width=8).eval()
    x = torch.randn(2, 3, 16, 64, 96)
    with torch.no_grad():
        y = m(x)
    # T: 16 -pool-> 8 -layer2-> 4 -layer3-> 2 -layer4-> 1; H, W / 32
    assert y.shape == (2, 64, 1, 2, 3)
    assert m.out_channels == 64


def test_temporal_strides_one_keep_every_frame():
    m = resnet3d_18(width=8, stem_width=8, temporal_strides=(1, 1, 1, 1)).eval()
    with torch.no_grad():
        y = m(torch.randn(1, 3, 6, 64, 64))
    assert y.shape == (1, 64, 6, 2, 2)


def test_odd_clip_length_temporal_size():
    m = resnet3d_10(width=8, stem_width=8, temporal_strides=(2, 1, 2, 1)).eval()
    with torch.no_grad():
        y = m(torch.randn(1, 3, 7, 32, 32))
    assert y.shape[2] == 2  # 7 -> (7 - 1) // 2 + 1 = 4 -> 4 -> 2 -> 2


def test_bottleneck_and_resnext_forward_small():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 4, 32, 32)
    rn = resnet3d_50(width=8, stem_width=8).eval()
    rx = resnext3d_50(width=32, stem_width=8, cardinality=8).eval()  # inner 8*32//32 = 8
    with torch.no_grad():
        assert rn(x).shape == (2, 8 * 8 * 4, 1, 1, 1)
        assert rx(x).shape == (2, 32 * 8 * 2, 1, 1, 1)
    assert rx.layer1[0].conv2.groups == 8


def test_shortcut_a_forward_matches_zero_padded_identity():
    m = resnet3d_10(width=8, stem_width=8, shortcut="A")
    x = torch.arange(2 * 8 * 2 * 4 * 4, dtype=torch.float32).reshape(2, 8, 2, 4, 4)
    ds = m.layer2[0].downsample  # 8 -> 16 channels, stride (2, 2, 2)
    y = ds(x)
    assert y.shape == (2, 16, 1, 2, 2)
    assert torch.equal(y[:, :8], x[:, :, ::2, ::2, ::2])
    assert torch.count_nonzero(y[:, 8:]) == 0


def test_forward_features_is_forward():
    m = resnet3d_10(width=8, stem_width=8).eval()
    x = torch.randn(1, 3, 4, 32, 32)
    with torch.no_grad():
        assert torch.equal(m(x), m.forward_features(x))


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"depth": 20}, "depth"),
        ({"temporal_strides": (1, 1, 1)}, "temporal_strides"),
        ({"temporal_strides": (1, 3, 1, 1)}, "temporal_strides"),
        ({"conv1_t_size": 4}, "conv1_t_size"),
        ({"shortcut": "C"}, "shortcut"),
        ({"stem_pool": False, "temporal_strides": (2, 2, 2, 2)}, "stem_pool"),
        ({"depth": 18, "cardinality": 32}, "cardinality"),
        ({"depth": 50, "width": 16, "cardinality": 32}, "inner width"),
    ],
)
def test_config_validation(kw, match):
    with pytest.raises(ValueError, match=match):
        BackboneConfig(**kw)


def test_config_properties_and_from_dict():
    cfg = BackboneConfig.resnext(101)
    assert (cfg.width, cfg.stem_width, cfg.cardinality, cfg.expansion) == (128, 64, 32, 2)
    assert cfg.out_channels == 2048 and cfg.temporal_downsampling == 16
    assert BackboneConfig.resnet(34).out_channels == 512
    assert BackboneConfig.resnet(50).out_channels == 2048
    d = {"depth": 34, "width": 16, "temporal_strides": [1, 1, 1, 1]}  # list, as from YAML
    cfg2 = BackboneConfig.from_dict(d)
    assert cfg2.temporal_strides == (1, 1, 1, 1) and cfg2.temporal_downsampling == 1
    with pytest.raises(ValueError, match="unknown field"):
        BackboneConfig.from_dict({"depth": 18, "planes": 3})
    assert isinstance(ResNet3d(BackboneConfig(depth=10, width=4, stem_width=4)), ResNet3d)


def test_shallow_input_conv_gradients_are_sound_under_bf16_autocast():
    """A 3x3x3 conv over a 2-frame input: under CPU bf16 autocast the weight gradient must stay
    close to float32's (the plain bf16 kernel returned NaN/inf/1e37 in ~1 of 3 calls here)."""
    g = torch.Generator().manual_seed(0)
    conv = ShallowSafeConv3d(32, 32, kernel_size=3, padding=1, bias=False)
    for _ in range(12):
        x = torch.randn(2, 32, 2, 8, 8, generator=g)
        up = torch.randn(2, 32, 2, 8, 8, generator=g)
        conv.weight.grad = None
        conv(x).backward(up)
        ref = conv.weight.grad.clone()
        conv.weight.grad = None
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = conv(x)
        assert y.dtype == torch.float32  # ran in float32
        y.backward(up)
        torch.testing.assert_close(conv.weight.grad, ref)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # deep enough: bf16 as usual
        assert conv(torch.randn(1, 32, 4, 8, 8)).dtype == torch.bfloat16
