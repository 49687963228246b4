"""3D ResNet / ResNeXt backbones with the parameter layout of Hara et al.'s 3D-ResNets-PyTorch.

Parameter names and shapes follow Hara's checkpoints so that Kinetics weights load with
:func:`weaktube.model.pretrained.load_hara_checkpoint`:

    conv1.weight                      [stem, 3, conv1_t_size, 7, 7]   (stride (t, 2, 2), no bias)
                                      (in_channels instead of 3 when not RGB)
    bn1.{weight,bias,running_mean,running_var}
    layer{1..4}.{i}.conv1/bn1/conv2/bn2[/conv3/bn3]
    layer{k}.0.downsample.0.weight    1x1x1 conv of the projection shortcut (type "B")
    layer{k}.0.downsample.1.*         its BatchNorm
    fc.*                              classifier: absent here (detection drops it)

Hara's two generations differ only in the stem: the original ``resnext.py`` / ``resnet.py``
(the ``resnext-101-kinetics.pth`` that YOWO loads) use a 7x7x7 ``conv1`` with stride (1, 2, 2)
and padding 3 and a 64-channel stem for ResNet *and* ResNeXt; the newer ``resnet.py``
(``r3d18_K_200ep.pth`` ...) exposes ``conv1_t_size`` / ``conv1_t_stride`` (padding
``conv1_t_size // 2``). Both are covered by :class:`BackboneConfig`.

Blocks:
- basic (depth 10/18/34): two 3x3x3 convs, expansion 1;
- bottleneck (depth 50/101/152, ``cardinality == 1``): 1x1x1 -> 3x3x3 -> 1x1x1, expansion 4;
- ResNeXt bottleneck (``cardinality > 1``): inner width ``cardinality * planes // 32``, grouped
  3x3x3 conv, expansion 2; Hara's ResNeXt uses stage planes (128, 256, 512, 1024), so
  ResNeXt-50/101 "32x4d" has inner widths 128, 256, 512, 1024 and outputs 2048 channels.

Downsampling: conv1 halves H and W, the 3x3x3 max-pool and the first block of layers 2-4 halve
H, W and (by default) T. With ``stem_pool=False`` (not Hara's) conv1 strides 4 spatially and the
max-pool is gone: the same stem output for ~1/4 of its convolution (an option; measured on the
demo model and not adopted there, docs/MODEL.md).
``temporal_strides`` sets the temporal stride of those four places
independently (the location branch uses all ones to keep every frame); the spatial stride is
always 32 in total. Changing a stride does not change any parameter shape, so pretrained weights
still load.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

# depth -> blocks per stage (Hara's table)
STAGE_BLOCKS: dict[int, tuple[int, int, int, int]] = {
    10: (1, 1, 1, 1),
    18: (2, 2, 2, 2),
    34: (3, 4, 6, 3),
    50: (3, 4, 6, 3),
    101: (3, 4, 23, 3),
    152: (3, 8, 36, 3),
}
BASIC_DEPTHS = (10, 18, 34)  # the others use bottleneck blocks


@dataclass
class BackboneConfig:
    """A 3D ResNet / ResNeXt trunk. Defaults: Hara's 3D ResNet-18 (Kinetics layout)."""

    depth: int = 18  # 10, 18, 34 (basic blocks) or 50, 101, 152 (bottleneck blocks)
    width: int = 64  # stage-1 planes; stage k has width * 2**(k-1) (Hara: ResNet 64, ResNeXt 128)
    stem_width: int = 64  # conv1 output channels (Hara: 64 for ResNet and for the old ResNeXt)
    cardinality: int = 1  # 1: ResNet; > 1: ResNeXt bottleneck (groups; needs depth >= 50)
    conv1_t_size: int = 7  # temporal kernel of conv1 (spatial kernel is always 7)
    conv1_t_stride: int = 1  # temporal stride of conv1 (spatial stride 2, or 4 without stem_pool)
    # True: conv1 (spatial stride 2) -> BN -> ReLU -> 3x3x3 max-pool (stride 2), Hara's stem.
    # False: conv1 strides 4 spatially and there is no max-pool: the same output size for ~1/4
    # of the stem's convolution and none of its full-resolution BN/ReLU/pool (docs/MODEL.md).
    stem_pool: bool = True
    # temporal stride of (max-pool, layer2, layer3, layer4); (1, 1, 1, 1) keeps every frame;
    # without stem_pool the first one must be 1
    temporal_strides: tuple[int, int, int, int] = (2, 2, 2, 2)
    shortcut: str = "B"  # "B": 1x1x1 conv + BN projection (has weights); "A": zero-padding
    in_channels: int = 3  # input channels (3: RGB; 6: RGB + frame difference, see detector)

    def __post_init__(self) -> None:
        self.temporal_strides = tuple(int(s) for s in self.temporal_strides)  # lists from YAML
        if self.depth not in STAGE_BLOCKS:
            raise ValueError(f"BackboneConfig.depth={self.depth}: expected one of "
                             f"{sorted(STAGE_BLOCKS)}")
        if len(self.temporal_strides) != 4 or any(s not in (1, 2) for s in self.temporal_strides):
            raise ValueError(f"BackboneConfig.temporal_strides={self.temporal_strides}: expected "
                             "4 values, each 1 or 2 (max-pool, layer2, layer3, layer4)")
        if not self.stem_pool and self.temporal_strides[0] != 1:
            raise ValueError(
                f"BackboneConfig: stem_pool=False has no max-pool to stride time, but "
                f"temporal_strides[0]={self.temporal_strides[0]}; set it to 1 (or use "
                "conv1_t_stride)")
        if self.conv1_t_stride not in (1, 2):
            raise ValueError(
                f"BackboneConfig.conv1_t_stride={self.conv1_t_stride}: expected 1 or 2")
        if self.conv1_t_size < 1 or self.conv1_t_size % 2 == 0:
            raise ValueError(f"BackboneConfig.conv1_t_size={self.conv1_t_size}: expected odd >= 1")
        if self.shortcut not in ("A", "B"):
            raise ValueError(f"BackboneConfig.shortcut={self.shortcut!r}: expected 'A' or 'B'")
        if self.in_channels < 1:
            raise ValueError(f"BackboneConfig.in_channels={self.in_channels}: expected >= 1")
        if self.width < 1 or self.stem_width < 1 or self.cardinality < 1:
            raise ValueError(f"BackboneConfig: width={self.width}, stem_width={self.stem_width} "
                             f"and cardinality={self.cardinality} must be >= 1")
        if self.cardinality > 1:
            if self.depth in BASIC_DEPTHS:
                raise ValueError(f"BackboneConfig: cardinality={self.cardinality} (ResNeXt) needs "
                                 f"bottleneck blocks (depth >= 50), got depth={self.depth}")
            inner = self.cardinality * self.width // 32
            if inner < self.cardinality or inner % self.cardinality:
                raise ValueError(f"BackboneConfig: ResNeXt inner width cardinality*width//32 = "
                                 f"{inner} must be a positive multiple of cardinality="
                                 f"{self.cardinality} (width={self.width})")

    @property
    def expansion(self) -> int:
        """Output channels of a block / its planes: 1 basic, 4 bottleneck, 2 ResNeXt."""
        if self.depth in BASIC_DEPTHS:
            return 1
        return 2 if self.cardinality > 1 else 4

    @property
    def out_channels(self) -> int:
        """Channels of the last stage (``forward_features``' C)."""
        return self.width * 8 * self.expansion

    @property
    def temporal_downsampling(self) -> int:
        """Total temporal stride (conv1 x max-pool x layers 2-4)."""
        total = self.conv1_t_stride
        for s in self.temporal_strides:
            total *= s
        return total

    @classmethod
    def resnet(cls, depth: int, **overrides) -> BackboneConfig:
        """Hara's 3D ResNet-``depth`` (planes 64, 128, 256, 512), fields overridable."""
        return cls(depth=depth, **overrides)

    @classmethod
    def resnext(cls, depth: int, **overrides) -> BackboneConfig:
        """Hara's 3D ResNeXt-``depth`` 32x4d (planes 128 ... 1024, cardinality 32, stem 64)."""
        kw = {"width": 128, "stem_width": 64, "cardinality": 32, **overrides}
        return cls(depth=depth, **kw)

    @classmethod
    def from_dict(cls, d: dict) -> BackboneConfig:
        """Inverse of ``dataclasses.asdict`` (lists from YAML/JSON become tuples)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"BackboneConfig: unknown field(s) {unknown}")
        return cls(**d)


class ShallowSafeConv3d(nn.Conv3d):
    """``nn.Conv3d`` that runs in float32 under CPU autocast when the input has fewer frames
    than the kernel is deep.

    Works around a CPU kernel bug: in bf16, the weight gradient of a 3x3x3 convolution (padding
    1) over a 2-frame input is garbage (NaN, inf or ~1e37) in about a third of the calls on this
    machine's torch 2.13 (``tests/model/test_resnet3d.py`` keeps the check; docs/MODEL.md).
    Such layers sit deep in the trunk, where the maps are small, so float32 costs little there.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (x.device.type == "cpu" and x.shape[2] < self.kernel_size[0]
                and torch.is_autocast_enabled("cpu")):
            with torch.autocast("cpu", enabled=False):
                return super().forward(x.float())
        return super().forward(x)


def _conv3x3x3(cin: int, cout: int, stride: tuple[int, int, int], groups: int = 1) -> nn.Conv3d:
    return ShallowSafeConv3d(cin, cout, kernel_size=3, stride=stride, padding=1, groups=groups,
                             bias=False)


def _conv1x1x1(cin: int, cout: int, stride: tuple[int, int, int] = (1, 1, 1)) -> nn.Conv3d:
    return nn.Conv3d(cin, cout, kernel_size=1, stride=stride, bias=False)


class ZeroPadShortcut(nn.Module):
    """Hara's shortcut type "A": subsample by ``stride`` and zero-pad the channels (no weights)."""

    def __init__(self, out_channels: int, stride: tuple[int, int, int]) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        st, sh, sw = self.stride
        x = x[:, :, ::st, ::sh, ::sw]  # 1x1x1 subsampling, as avg_pool3d(kernel 1, stride)
        pad = self.out_channels - x.shape[1]
        # [B, C, T, H, W] -> [B, out_channels, T, H, W]: pad the channel dim at its end
        return F.pad(x, (0, 0, 0, 0, 0, 0, 0, pad))


class BasicBlock3d(nn.Module):
    """Two 3x3x3 convs (Hara's ``BasicBlock``); ``stride`` is applied by ``conv1``."""

    def __init__(self, cin: int, planes: int, stride: tuple[int, int, int],
                 downsample: nn.Module | None) -> None:
        super().__init__()
        self.conv1 = _conv3x3x3(cin, planes, stride)
        self.bn1 = nn.BatchNorm3d(planes)
        self.conv2 = _conv3x3x3(planes, planes, (1, 1, 1))
        self.bn2 = nn.BatchNorm3d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck3d(nn.Module):
    """1x1x1 -> 3x3x3 (stride, groups) -> 1x1x1: Hara's ``Bottleneck`` / ``ResNeXtBottleneck``."""

    def __init__(self, cin: int, inner: int, cout: int, stride: tuple[int, int, int],
                 groups: int, downsample: nn.Module | None) -> None:
        super().__init__()
        self.conv1 = _conv1x1x1(cin, inner)
        self.bn1 = nn.BatchNorm3d(inner)
        self.conv2 = _conv3x3x3(inner, inner, stride, groups=groups)
        self.bn2 = nn.BatchNorm3d(inner)
        self.conv3 = _conv1x1x1(inner, cout)
        self.bn3 = nn.BatchNorm3d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet3d(nn.Module):
    """3D ResNet / ResNeXt trunk without the classifier.

    ``forward(x)`` = ``forward_features(x)``: ``[B, C_in, T, H, W] -> [B, C, T', H/32, W/32]`` with
    ``C_in = cfg.in_channels`` (3 for RGB),
    ``C = cfg.out_channels`` and ``T' = ceil``-style ``T / cfg.temporal_downsampling`` (each
    stride-2 step maps T to ``(T - 1) // 2 + 1``). H and W must be multiples of 32.
    """

    def __init__(self, cfg: BackboneConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.out_channels = cfg.out_channels
        s = 2 if cfg.stem_pool else 4  # conv1's spatial stride
        self.conv1 = nn.Conv3d(cfg.in_channels, cfg.stem_width,
                               kernel_size=(cfg.conv1_t_size, 7, 7),
                               stride=(cfg.conv1_t_stride, s, s),
                               padding=(cfg.conv1_t_size // 2, 3, 3), bias=False)
        self.bn1 = nn.BatchNorm3d(cfg.stem_width)
        self.relu = nn.ReLU(inplace=True)
        t_pool, t2, t3, t4 = cfg.temporal_strides
        self.maxpool: nn.Module = (
            nn.MaxPool3d(kernel_size=3, stride=(t_pool, 2, 2), padding=1) if cfg.stem_pool
            else nn.Identity())
        blocks = STAGE_BLOCKS[cfg.depth]
        strides = [(1, 1, 1), (t2, 2, 2), (t3, 2, 2), (t4, 2, 2)]
        cin = cfg.stem_width
        for k in range(4):
            planes = cfg.width * 2**k
            layer, cin = self._make_stage(cin, planes, blocks[k], strides[k])
            self.add_module(f"layer{k + 1}", layer)
        self._init_weights()

    def _make_stage(self, cin: int, planes: int, n_blocks: int,
                    stride: tuple[int, int, int]) -> tuple[nn.Sequential, int]:
        cfg = self.cfg
        cout = planes * cfg.expansion
        downsample: nn.Module | None = None
        if stride != (1, 1, 1) or cin != cout:
            if cfg.shortcut == "B":
                downsample = nn.Sequential(_conv1x1x1(cin, cout, stride), nn.BatchNorm3d(cout))
            else:
                downsample = ZeroPadShortcut(cout, stride)
        layers = []
        for i in range(n_blocks):
            s = stride if i == 0 else (1, 1, 1)
            ds = downsample if i == 0 else None
            if cfg.depth in BASIC_DEPTHS:
                layers.append(BasicBlock3d(cin, planes, s, ds))
            else:
                groups = cfg.cardinality
                inner = planes if groups == 1 else groups * planes // 32
                layers.append(Bottleneck3d(cin, inner, cout, s, groups, ds))
            cin = cout
        return nn.Sequential(*layers), cout

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 3, T, H, W]`` -> last-stage features ``[B, C, T', H/32, W/32]``."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        return self.layer4(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)


def resnet3d_10(**overrides) -> ResNet3d:
    return ResNet3d(BackboneConfig.resnet(10, **overrides))


def resnet3d_18(**overrides) -> ResNet3d:
    return ResNet3d(BackboneConfig.resnet(18, **overrides))


def resnet3d_34(**overrides) -> ResNet3d:
    return ResNet3d(BackboneConfig.resnet(34, **overrides))


def resnet3d_50(**overrides) -> ResNet3d:
    return ResNet3d(BackboneConfig.resnet(50, **overrides))


def resnet3d_101(**overrides) -> ResNet3d:
    return ResNet3d(BackboneConfig.resnet(101, **overrides))


def resnext3d_50(**overrides) -> ResNet3d:
    return ResNet3d(BackboneConfig.resnext(50, **overrides))


def resnext3d_101(**overrides) -> ResNet3d:
    return ResNet3d(BackboneConfig.resnext(101, **overrides))
