"""The four-branch action detector (SPEC "Network", Fig. 3).

    clip [B, 3, N, H, W]   (branch 1, and optionally branch 2, may see [clip, 4 * frame
                            difference]: 6 channels; cls_frame_diff / loc_frame_diff)
                           (with cls_flow / loc_flow the clip is [B, 5, N, H, W], RGB + optical
                            flow, and those branches also see the 2 flow channels)
      ├─ branch 1: cls_backbone (3D ResNeXt/ResNet, T strided) ─ mean over T' ─> F11 [B, C', H', W']
      └─ branch 2: loc_backbone (3D ResNet, T kept) ─> S50 [B, D', N, H', W']
             └─ branch 4: FrameHead, shared over frames ─> frames [B, N, A, 5, H', W']
                   └─ F01 = max_a sigmoid(t_conf), DETACHED ─> [B, N, H', W']
      branch 3: FusionHead(concat(F01, F11)) = 2 convs -> FB -> CFAM -> FC -> 2 convs
                ─> key [B, A, 5 + K, H', W']

H' = H / 32, W' = W / 32; the keyframe is the last frame of the clip. ``forward`` returns raw
predictions (:class:`DetectorOutput`) in train and eval mode alike: no decoding, no NMS.

Gradient routing (SPEC eq. 7, proposed reading): F01 enters the fusion detached, so the global
loss on ``key`` reaches only branches 1 and 3; branch 4 reads only branch 2, so the internal loss
on ``frames`` / ``frame_features`` reaches only branches 2 and 4. :meth:`Detector.param_groups`
returns the two disjoint parameter sets for the two learning rates.

F01, "squeeze D' -> 1, one location map per frame": it is branch 4's per-frame objectness map
(max over anchors of ``sigmoid(t_conf)``), not a separate 1x1x1 conv on S50. A separate squeeze
conv whose only consumer is the detached fusion input would receive a gradient from neither loss
and stay at its random initialisation; the objectness map is a D' -> 1 squeeze that the internal
loss trains to be exactly a per-frame location map. See docs/MODEL.md.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
from torch import nn

from weaktube.model.heads import FrameHead, FusionHead
from weaktube.model.resnet3d import BackboneConfig, ResNet3d

FLOW_CHANNELS = 2  # (dx, dy) after RGB when the model uses flow: what weaktube.data.flow makes

# Placeholder anchors (w, h) as fractions of the image side, person-shaped; the training code
# replaces them with k-means anchors of the training boxes.
DEFAULT_ANCHORS: tuple[tuple[float, float], ...] = (
    (0.08, 0.20), (0.15, 0.35), (0.25, 0.55), (0.40, 0.75), (0.65, 0.90),
)


def _paper_cls_backbone() -> BackboneConfig:
    return BackboneConfig.resnext(50)


def _paper_loc_backbone() -> BackboneConfig:
    return BackboneConfig.resnet(34, width=16, stem_width=16, conv1_t_size=3,
                                 temporal_strides=(1, 1, 1, 1))


@dataclass
class DetectorConfig:
    """Detector hyper-parameters. Defaults: the paper-size model (see :func:`detector_paper`)."""

    num_classes: int = 24  # K action classes (UCF101-24: 24, J-HMDB-21: 21)
    clip_len: int = 16  # N frames per clip; the keyframe is the last one
    img_size: int = 224  # training input side in pixels (square, multiple of 32)
    anchors: tuple[tuple[float, float], ...] = DEFAULT_ANCHORS  # A x (w, h), fractions of image
    # branch 1: classification 3D CNN (time strided, then averaged): 3D ResNeXt-50 32x4d
    cls_backbone: BackboneConfig = field(default_factory=_paper_cls_backbone)
    # branch 2: location 3D CNN, must keep all N frames: a narrow (width 16) 3D ResNet-34
    loc_backbone: BackboneConfig = field(default_factory=_paper_loc_backbone)
    fusion_channels: int = 1024  # C: width of the fusion convs, CFAM and the keyframe head
    frame_head_channels: int = 128  # hidden width of the per-frame head (branch 4)
    prior_prob: float = 0.01  # initial sigmoid of objectness and class logits
    # branch 1 input: False = the clip (RGB, the paper); True = the clip and its frame-to-frame
    # difference (TSN's "RGB difference"), 6 channels; cls_backbone.in_channels must match
    cls_frame_diff: bool = False
    # branch 2 input, the same choice for the location branch; loc_backbone.in_channels must match
    loc_frame_diff: bool = False
    # branch 1 also sees the optical flow between consecutive clip frames (2 channels, computed on
    # the data side: weaktube.data.flow); the clip then has 5 channels (RGB, dx, dy) and
    # cls_backbone.in_channels = 3 (+ 3 with cls_frame_diff) + 2
    cls_flow: bool = False
    # branch 2 likewise (loc_backbone.in_channels = 3 (+ 3 with loc_frame_diff) + 2)
    loc_flow: bool = False

    def __post_init__(self) -> None:
        # lists (YAML/JSON) -> tuples, dicts -> BackboneConfig
        self.anchors = tuple((float(w), float(h)) for w, h in self.anchors)
        if isinstance(self.cls_backbone, dict):
            self.cls_backbone = BackboneConfig.from_dict(self.cls_backbone)
        if isinstance(self.loc_backbone, dict):
            self.loc_backbone = BackboneConfig.from_dict(self.loc_backbone)
        if self.num_classes < 1:
            raise ValueError(f"DetectorConfig.num_classes={self.num_classes}: expected >= 1")
        if self.clip_len < 1:
            raise ValueError(f"DetectorConfig.clip_len={self.clip_len}: expected >= 1")
        if self.img_size < 32 or self.img_size % 32:
            raise ValueError(f"DetectorConfig.img_size={self.img_size}: expected a multiple of 32")
        if not self.anchors:
            raise ValueError("DetectorConfig.anchors: expected at least one (w, h) anchor")
        for i, (w, h) in enumerate(self.anchors):
            if not (0.0 < w <= 1.0 and 0.0 < h <= 1.0):
                raise ValueError(f"DetectorConfig.anchors[{i}]=({w}, {h}): w and h must be "
                                 "fractions of the image size in (0, 1]")
        if self.loc_backbone.temporal_downsampling != 1:
            raise ValueError(
                "DetectorConfig.loc_backbone must keep every frame (conv1_t_stride=1 and "
                f"temporal_strides=(1, 1, 1, 1)), got conv1_t_stride="
                f"{self.loc_backbone.conv1_t_stride}, temporal_strides="
                f"{self.loc_backbone.temporal_strides}")
        for branch, name, diff, flow, have in (  # inputs <-> the backbone's in_channels
                (1, "cls", self.cls_frame_diff, self.cls_flow, self.cls_backbone.in_channels),
                (2, "loc", self.loc_frame_diff, self.loc_flow, self.loc_backbone.in_channels)):
            want = branch_channels(diff, flow)
            if have != want:
                raise ValueError(
                    f"DetectorConfig: {name}_frame_diff={diff} and {name}_flow={flow} feed "
                    f"branch {branch} {want} channels, but {name}_backbone.in_channels={have}; "
                    f"set {name}_backbone.in_channels={want}")
        if self.fusion_channels < 1 or self.frame_head_channels < 1:
            raise ValueError("DetectorConfig: fusion_channels and frame_head_channels must be >= 1")

    @property
    def num_anchors(self) -> int:
        return len(self.anchors)

    @property
    def uses_flow(self) -> bool:
        """The input clip carries its optical flow: ``[B, 5, N, H, W]`` instead of
        ``[B, 3, N, H, W]`` (``weaktube.data.flow.network_input`` builds it)."""
        return self.cls_flow or self.loc_flow

    @property
    def input_channels(self) -> int:
        """Channels of the clip :meth:`Detector.forward` takes: 3 (RGB) or 5 (RGB + flow)."""
        return 3 + FLOW_CHANNELS * self.uses_flow

    def to_dict(self) -> dict:
        """``dataclasses.asdict`` with tuples as lists: safe for ``yaml.safe_dump`` and JSON."""
        return _tuples_to_lists(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, d: dict) -> DetectorConfig:
        """Inverse of :meth:`to_dict` / ``dataclasses.asdict``, also after a YAML/JSON trip."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"DetectorConfig: unknown field(s) {unknown}")
        return cls(**d)


def _tuples_to_lists(obj):
    if isinstance(obj, dict):
        return {k: _tuples_to_lists(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_tuples_to_lists(v) for v in obj]
    return obj


class DetectorOutput(NamedTuple):
    """Raw predictions of one forward pass (the contract with losses and decoding)."""

    key: torch.Tensor  # [B, A, 5 + K, H', W'] keyframe: tx, ty, tw, th, t_conf, K class logits
    frames: torch.Tensor  # [B, N, A, 5, H', W'] per frame (branch 4): tx, ty, tw, th, t_conf
    frame_features: torch.Tensor  # [B, N, D', H', W'] branch-2 features before the frame head


class DetectorIntermediates(NamedTuple):
    """Everything of one forward pass, for heat-maps (SPEC Fig. 5) and debugging."""

    output: DetectorOutput
    f11: torch.Tensor  # [B, C', H', W'] branch 1 after the temporal mean
    f01: torch.Tensor  # [B, N, H', W'] per-frame location maps (detached), in [0, 1]
    fb: torch.Tensor  # [B, C, H', W'] fusion features before the channel attention
    fc: torch.Tensor  # [B, C, H', W'] after the channel attention


def location_maps(frames: torch.Tensor) -> torch.Tensor:
    """F01 from branch-4 predictions: ``[B, N, A, 5, H', W']`` -> ``[B, N, H', W']``.

    ``max`` over anchors of ``sigmoid(t_conf)``: the probability-like "someone is here" map of
    each frame. Not detached here; :class:`Detector` detaches it before the fusion.
    """
    return frames[:, :, :, 4].sigmoid().amax(dim=2)  # [B, N, A, H', W'] -> [B, N, H', W']


FRAME_DIFF_GAIN = 4.0  # frame differences are ~4x smaller than frames; equal footing at conv1


def branch_channels(frame_diff: bool, flow: bool) -> int:
    """Input channels of a branch: RGB 3, + 3 for the frame difference, + 2 for the flow."""
    return 3 + 3 * frame_diff + FLOW_CHANNELS * flow


def with_frame_difference(clip: torch.Tensor) -> torch.Tensor:
    """``[B, 3, N, H, W] -> [B, 6, N, H, W]``: the clip and ``FRAME_DIFF_GAIN * (x_t - x_{t-1})``.

    The first frame's difference is zero. Static appearance (background, clothes) cancels in the
    difference, which is what makes a small branch 1 learn the motion instead of memorising the
    look of the training videos (docs/MODEL.md, "Branch-1 input").
    """
    diff = clip[:, :, 1:] - clip[:, :, :-1]  # [B, 3, N - 1, H, W]
    diff = nn.functional.pad(diff, (0, 0, 0, 0, 1, 0))  # zero first frame -> [B, 3, N, H, W]
    return torch.cat([clip, FRAME_DIFF_GAIN * diff], dim=1)  # -> [B, 6, N, H, W]


def branch_input(clip: torch.Tensor, frame_diff: bool, flow: bool) -> torch.Tensor:
    """What one branch sees of the input clip ``[B, 3 or 5, N, H, W]`` (RGB, then the flow when
    the model uses one): RGB, + its frame difference (``frame_diff``), + the flow (``flow``),
    ``[B, branch_channels(frame_diff, flow), N, H, W]``, channels-last on the CPU like every
    conv input here. RGB alone when neither is on and the clip has no flow: no copy."""
    if not frame_diff and (not flow) and clip.shape[1] == 3:
        return clip
    rgb = clip[:, :3]  # [B, 3 or 5, N, H, W] -> [B, 3, N, H, W]
    parts = [with_frame_difference(rgb) if frame_diff else rgb]  # [B, 3 or 6, N, H, W]
    if flow:
        parts.append(clip[:, 3:3 + FLOW_CHANNELS])  # [B, 2, N, H, W]
    x = torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]
    return x.contiguous(memory_format=torch.channels_last_3d) if x.device.type == "cpu" else x


class Detector(nn.Module):
    """Four-branch detector; see the module docstring for the data flow.

    Attributes: ``cls_backbone`` (branch 1), ``loc_backbone`` (branch 2), ``frame_head``
    (branch 4), ``fusion`` (branch 3), ``anchors`` (buffer ``[A, 2]``, (w, h) as fractions of the
    image), ``num_anchors``, ``num_classes``, ``clip_len``, ``cfg``.
    """

    def __init__(self, cfg: DetectorConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.num_anchors = cfg.num_anchors
        self.num_classes = cfg.num_classes
        self.clip_len = cfg.clip_len
        self.cls_backbone = ResNet3d(cfg.cls_backbone)
        self.loc_backbone = ResNet3d(cfg.loc_backbone)
        self.frame_head = FrameHead(self.loc_backbone.out_channels, cfg.frame_head_channels,
                                    cfg.num_anchors, cfg.prior_prob)
        self.fusion = FusionHead(cfg.clip_len + self.cls_backbone.out_channels,
                                 cfg.fusion_channels, cfg.num_anchors, cfg.num_classes,
                                 cfg.prior_prob)
        self.register_buffer("anchors", torch.tensor(cfg.anchors, dtype=torch.float32))

    def _check_input(self, clip: torch.Tensor) -> None:
        c = self.cfg.input_channels
        if clip.dim() != 5 or clip.shape[1] != c:
            what = "RGB + optical flow (cls_flow / loc_flow)" if self.cfg.uses_flow else "RGB"
            raise ValueError(f"Detector: expected a clip [B, {c}, N, H, W] ({what}), got "
                             f"{tuple(clip.shape)}")
        _, _, n, h, w = clip.shape
        if n != self.clip_len:
            raise ValueError(f"Detector: clip has {n} frames, the model was built for "
                             f"clip_len={self.clip_len}")
        if h % 32 or w % 32:
            raise ValueError(f"Detector: clip height and width must be multiples of 32, got "
                             f"{h}x{w}")

    def _prepare(self, clip: torch.Tensor) -> torch.Tensor:
        self._check_input(clip)
        if clip.device.type == "cpu":
            # oneDNN's 3D convs and max-pool are several times faster channels-last on CPU
            clip = clip.contiguous(memory_format=torch.channels_last_3d)
        return clip

    def forward_location(self, clip: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Branches 2 + 4 only: ``(frames [B, N, A, 5, H', W'], frame_features
        [B, N, D', H', W'])``. With :meth:`forward_global` this is :meth:`forward` in two steps,
        so that work needing the per-frame boxes (the tracker of the target stage) can run while
        branches 1 + 3 compute."""
        return self._location(self._prepare(clip))

    def _location(self, clip: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s50 = self.loc_backbone(self.branch2_input(clip))  # [B, D', N, H', W']
        frames = self.frame_head(s50)  # [B, N, A, 5, H', W']
        return frames, s50.transpose(1, 2)  # [B, D', N, H', W'] -> [B, N, D', H', W']

    def forward_global(self, clip: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """Branches 1 + 3 given branch 4's ``frames``: the keyframe predictions
        ``[B, A, 5 + K, H', W']`` (F01 enters detached)."""
        return self._global(self._prepare(clip), frames)[0]

    def branch1_input(self, clip: torch.Tensor) -> torch.Tensor:
        """What branch 1 sees (:func:`branch_input`): RGB ``[B, 3, N, H, W]``, + the frame
        difference with ``cls_frame_diff`` (6 channels), + the flow with ``cls_flow`` (+ 2)."""
        return branch_input(clip, self.cfg.cls_frame_diff, self.cfg.cls_flow)

    def branch2_input(self, clip: torch.Tensor) -> torch.Tensor:
        """What branch 2 sees, the same choices with ``loc_frame_diff`` and ``loc_flow``."""
        return branch_input(clip, self.cfg.loc_frame_diff, self.cfg.loc_flow)

    def _global(self, clip: torch.Tensor, frames: torch.Tensor):
        s101 = self.cls_backbone(self.branch1_input(clip))  # [B, C', T', H', W']
        f11 = s101.mean(dim=2)  # [B, C', T', H', W'] -> [B, C', H', W']
        # branch 3: the global loss must not reach branches 2/4 -> detach F01
        f01 = location_maps(frames).detach()  # [B, N, H', W']
        fa = torch.cat([f01.to(f11.dtype), f11], dim=1)  # -> [B, N + C', H', W']
        key, fb, fc = self.fusion(fa)
        return key, f11, f01, fb, fc

    def forward_intermediates(self, clip: torch.Tensor) -> DetectorIntermediates:
        """Like :meth:`forward`, also returning F11, F01, FB and FC."""
        clip = self._prepare(clip)  # once for both branches (a copy on the CPU)
        frames, frame_features = self._location(clip)
        key, f11, f01, fb, fc = self._global(clip, frames)
        out = DetectorOutput(key=key, frames=frames, frame_features=frame_features)
        return DetectorIntermediates(output=out, f11=f11, f01=f01, fb=fb, fc=fc)

    def forward(self, clip: torch.Tensor) -> DetectorOutput:
        """``clip``: ``[B, 3, N, H, W]`` float, normalised by the caller (with ``cls_flow`` or
        ``loc_flow``: ``[B, 5, N, H, W]``, RGB then the flow); H, W multiples of 32.

        Returns :class:`DetectorOutput` (raw, undecoded) in train and eval mode.
        """
        return self.forward_intermediates(clip).output

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        """``"global"``: branches 1 + 3 (trained by the global loss, lr λ·α);
        ``"internal"``: branches 2 + 4 (trained by the internal loss, lr α).
        Every parameter is in exactly one group."""
        return {
            "global": [*self.cls_backbone.parameters(), *self.fusion.parameters()],
            "internal": [*self.loc_backbone.parameters(), *self.frame_head.parameters()],
        }


def build_detector(cfg: DetectorConfig) -> Detector:
    return Detector(cfg)


def detector_demo(num_classes: int, anchors: tuple[tuple[float, float], ...],
                  clip_len: int = 8, img_size: int = 128) -> DetectorConfig:
    """CPU-trainable demo: narrow 3D ResNet-10s (branch 1 width 16, branch 2 width 8); branch 1
    sees the clip and its frame difference (``cls_frame_diff``, docs/MODEL.md). Both keep Hara's
    stem; branch 1's cheaper stride-4 stem (``cls_backbone.stem_pool=False``, 1.07-1.3x the
    clips/s) was measured and not adopted (docs/MODEL.md, "The demo's branch-1 stem")."""
    return DetectorConfig(
        num_classes=num_classes, clip_len=clip_len, img_size=img_size, anchors=anchors,
        cls_frame_diff=True,
        cls_backbone=BackboneConfig.resnet(10, width=16, stem_width=16, conv1_t_size=1,
                                           temporal_strides=(1, 2, 2, 2), in_channels=6),
        loc_backbone=BackboneConfig.resnet(10, width=8, stem_width=8, conv1_t_size=1,
                                           temporal_strides=(1, 1, 1, 1)),
        fusion_channels=64, frame_head_channels=32)


def detector_small(num_classes: int, anchors: tuple[tuple[float, float], ...],
                   clip_len: int = 16, img_size: int = 224) -> DetectorConfig:
    """Between demo and paper: 3D ResNet-18 width 32 + location ResNet-18 width 16."""
    return DetectorConfig(
        num_classes=num_classes, clip_len=clip_len, img_size=img_size, anchors=anchors,
        cls_backbone=BackboneConfig.resnet(18, width=32, stem_width=32),
        loc_backbone=BackboneConfig.resnet(18, width=16, stem_width=16, conv1_t_size=3,
                                           temporal_strides=(1, 1, 1, 1)),
        fusion_channels=256, frame_head_channels=64)


def detector_paper(num_classes: int, anchors: tuple[tuple[float, float], ...],
                   clip_len: int = 16, img_size: int = 224) -> DetectorConfig:
    """Paper-size: 3D ResNeXt-50 32x4d (Hara layout) + narrow 34-layer location branch."""
    return DetectorConfig(num_classes=num_classes, clip_len=clip_len, img_size=img_size,
                          anchors=anchors)
