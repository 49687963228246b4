"""Synthetic scenes with known answers for the tracker tests."""

from __future__ import annotations

import cv2
import numpy as np


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
