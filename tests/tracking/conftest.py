"""Fixtures for the tracker tests: one real UCF101-24 clip with its rescaled ground truth."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from weaktube.data.readers import read_ucf24_pyannot, rescale_to_video_sizes
from weaktube.data.video import read_video
from weaktube.structures import Tube

CLIP = "Biking/v_Biking_g01_c01"  # one tube over all 151 frames, a cyclist moving steadily
NUM_FRAMES = 48  # decoded frames (enough for every test)


@dataclass
class RealClip:
    frames: np.ndarray  # [T, H, W, 3] uint8 RGB, 340x256
    tube: Tube  # boxes rescaled from the annotation's 320x240 to the clip's size


@pytest.fixture(scope="session")
def biking(shared_data: Path) -> RealClip:
    frames = read_video(shared_data / "ucf24" / "videos" / f"{CLIP.split('/')[1]}.mp4",
                        max_frames=NUM_FRAMES)
    ann = read_ucf24_pyannot(shared_data / "ucf24" / "annotations"
                             / "pyannot_with_class_names.pkl")
    height, width = frames.shape[1:3]
    ann = rescale_to_video_sizes(ann.subset([CLIP]), {CLIP: (width, height)})
    return RealClip(frames, ann[CLIP].tubes[0])
