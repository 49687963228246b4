"""Fixtures for the tracker tests: one real UCF101-24 clip with its rescaled ground truth, and a
synthetic scene with a known moving square."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
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


def moving_square(num_frames: int = 11, size: int = 128, start: tuple[int, int] = (20, 30),
                  side: int = 24, velocity: tuple[int, int] = (3, 2),
                  seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A textured square moving ``velocity`` pixels per frame over a smooth random background.

    Returns frames ``[T, size, size, 3]`` uint8 and the exact boxes ``[T, 4]`` xyxy: frame t's
    square covers ``[x0 + vx t, y0 + vy t, x0 + vx t + side, y0 + vy t + side]``.
    """
    rng = np.random.default_rng(seed)
    background = cv2.GaussianBlur(rng.integers(0, 256, (size, size, 3), dtype=np.uint8),
                                  (0, 0), 3)
    texture = cv2.resize(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8), (side, side),
                         interpolation=cv2.INTER_NEAREST)  # [side, side, 3], 4-px random blocks
    frames, boxes = [], []
    for t in range(num_frames):
        x, y = start[0] + velocity[0] * t, start[1] + velocity[1] * t
        frame = background.copy()
        frame[y : y + side, x : x + side] = texture
        frames.append(frame)
        boxes.append([x, y, x + side, y + side])
    return np.stack(frames), np.asarray(boxes, dtype=np.float64)
