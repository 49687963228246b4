"""The four-branch action tube detector and its 3D ResNet / ResNeXt backbones."""

from weaktube.model.cfam import ChannelAttention, channel_attention
from weaktube.model.detector import (
    DEFAULT_ANCHORS,
    FLOW_CHANNELS,
    Detector,
    DetectorConfig,
    DetectorIntermediates,
    DetectorOutput,
    branch_input,
    build_detector,
    detector_demo,
    detector_paper,
    detector_small,
    location_maps,
    with_frame_difference,
)
from weaktube.model.heads import FrameHead, FusionHead
from weaktube.model.pretrained import LoadReport, load_hara_checkpoint
from weaktube.model.resnet3d import (
    BackboneConfig,
    ResNet3d,
    resnet3d_10,
    resnet3d_18,
    resnet3d_34,
    resnet3d_50,
    resnet3d_101,
    resnext3d_50,
    resnext3d_101,
)

__all__ = [
    "DEFAULT_ANCHORS",
    "BackboneConfig",
    "ChannelAttention",
    "Detector",
    "DetectorConfig",
    "DetectorIntermediates",
    "DetectorOutput",
    "FrameHead",
    "FusionHead",
    "LoadReport",
    "ResNet3d",
    "build_detector",
    "channel_attention",
    "detector_demo",
    "detector_paper",
    "detector_small",
    "load_hara_checkpoint",
    "location_maps",
    "with_frame_difference",
    "branch_input",
    "FLOW_CHANNELS",
    "resnet3d_10",
    "resnet3d_18",
    "resnet3d_34",
    "resnet3d_50",
    "resnet3d_101",
    "resnext3d_50",
    "resnext3d_101",
]
