"""Joint spatial augmentation of clip frames and boxes (the paper's §4.1 recipe).

One random affine transform per clip (shift up to ±``shift`` of the frame size, rotation up to
±``rotation`` degrees, optional scale and horizontal flip) maps the original frames to the square
network input; the same transform maps every box of every frame. Boxes are pixels in, pixels of
the output square out.

Rotated boxes: the corners of a rotated box overestimate the object (by up to ~15 % per side at
10°). We transform the ellipse inscribed in the box instead and take its bounding box, which is
exact for elliptical objects and a much tighter bound for people. (Decision recorded in
``docs/DESIGN.md``.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

BORDERS = {"reflect": cv2.BORDER_REFLECT_101, "constant": cv2.BORDER_CONSTANT,
           "replicate": cv2.BORDER_REPLICATE}
BORDER_FILL = (124, 116, 104)  # RGB: the ImageNet mean (0.485, 0.456, 0.406) x 255, rounded


@dataclass
class AugmentConfig:
    shift: float = 0.1  # max translation, fraction of the output size (paper: 0.1)
    rotation: float = 10.0  # max rotation, degrees (paper: 10)
    scale: float = 0.1  # max relative zoom in/out (not in the paper; mild, documented)
    hflip: bool = True  # random horizontal flip (actions here are left/right symmetric)
    color: float = 0.15  # brightness/contrast jitter amplitude (not in the paper)
    hue: float = 0.0  # max hue rotation, fraction of the colour circle (0.5 = any hue; YOWO 0.1)
    saturation: float = 1.0  # saturation scaled by a factor in [1/s, s] (1 = off; YOWO 1.5)
    time_reverse: float = 0.0  # probability of a time-reversed clip (paper: 1:1 mix on THUMOS)
    # What the warp exposes beyond the frame: "reflect" (mirror, cv2.BORDER_REFLECT_101; every
    # recorded figure), "constant" (the ImageNet mean colour, 0 after normalisation; YOWO fills
    # grey) or "replicate" (the edge pixels smeared). A person near the edge is mirrored, without
    # a box, by "reflect": docs/DESIGN.md, "Augmentation"
    border: str = "reflect"

    def __post_init__(self) -> None:
        if self.border not in BORDERS:
            raise ValueError(f"data.augment.border={self.border!r}: expected one of "
                             f"{sorted(BORDERS)}")
        if not 0.0 <= self.hue <= 0.5:
            raise ValueError(f"data.augment.hue={self.hue}: expected 0..0.5 (a fraction of the "
                             "colour circle; 0.5 = any hue, 0 = off)")
        if self.saturation < 1.0:
            raise ValueError(f"data.augment.saturation={self.saturation}: expected >= 1 (the "
                             "gain is drawn from [1/s, s]; 1 = off)")


def resize_matrix(width: int, height: int, size: int) -> np.ndarray:
    """``[2, 3]`` affine that stretches a ``width x height`` frame onto ``size x size``."""
    return np.array([[size / width, 0.0, 0.0], [0.0, size / height, 0.0]])


def random_matrix(rng: np.random.Generator, width: int, height: int, size: int,
                  cfg: AugmentConfig) -> np.ndarray:
    """``[2, 3]`` random affine: resize to ``size``, then rotate/scale/flip about the centre
    and shift. Maps original pixel coordinates to output pixel coordinates."""
    base = np.vstack([resize_matrix(width, height, size), [0, 0, 1]])  # [3, 3]
    angle = math.radians(rng.uniform(-cfg.rotation, cfg.rotation))
    zoom = 1.0 + rng.uniform(-cfg.scale, cfg.scale)
    flip = -1.0 if cfg.hflip and rng.random() < 0.5 else 1.0
    c = size / 2.0
    tx, ty = rng.uniform(-cfg.shift, cfg.shift, size=2) * size
    cos, sin = math.cos(angle) * zoom, math.sin(angle) * zoom
    # about the centre: T(c + shift) . R.S . F . T(-c)
    lin = np.array([[cos * flip, -sin], [sin * flip, cos]])
    m = np.eye(3)
    m[:2, :2] = lin
    m[:2, 2] = np.array([c + tx, c + ty]) - lin @ np.array([c, c])
    return (m @ base)[:2]


def pixel_index_matrix(matrix: np.ndarray) -> np.ndarray:
    """The ``[2, 3]`` affine on continuous coordinates (pixel i spans ``[i, i + 1]``, its centre
    at ``i + 0.5``: the box convention) -> the same map on pixel indices (centre at ``i``:
    what ``cv2.warpAffine`` samples with). ``M_idx(p) = M(p + 0.5) - 0.5``, so the translation
    gains ``0.5 * (a11 + a12) - 0.5`` per row. With it a plain resize warps exactly as
    ``cv2.resize`` does at inference (``docs/DESIGN.md``, "Half-pixel alignment")."""
    m = np.array(matrix, np.float64).reshape(2, 3)
    m[:, 2] += 0.5 * (m[:, 0] + m[:, 1]) - 0.5
    return m


def warp_frames(frames: np.ndarray, matrix: np.ndarray, size: int,
                border: str = "reflect") -> np.ndarray:
    """``[T, H, W, 3]`` uint8 RGB -> ``[T, size, size, 3]`` uint8 under the ``[2, 3]`` affine,
    which maps continuous input coordinates to continuous output coordinates (as for the boxes,
    :func:`warp_boxes`); what lies beyond the frame is filled as ``border`` says
    (:class:`AugmentConfig`)."""
    m = pixel_index_matrix(matrix)
    return np.stack([
        cv2.warpAffine(f, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=BORDERS[border],
                       borderValue=BORDER_FILL) for f in frames])


def warp_boxes(boxes: np.ndarray, matrix: np.ndarray, size: int,
               min_visible: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """Map ``[M, 4]`` pixel boxes through the affine (inscribed-ellipse rule) and clip.

    Returns the ``[M, 4]`` boxes in output pixels and a ``[M]`` bool mask of boxes that keep at
    least ``min_visible`` of their (transformed) area inside the ``size x size`` output.
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    if len(boxes) == 0:
        return np.zeros((0, 4), np.float32), np.zeros(0, bool)
    ctr = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], 1)
    a = (boxes[:, 2] - boxes[:, 0]) / 2  # semi-axes [M]
    b = (boxes[:, 3] - boxes[:, 1]) / 2
    lin, t = matrix[:, :2], matrix[:, 2]
    new_ctr = ctr @ lin.T + t  # [M, 2]
    hx = np.sqrt((lin[0, 0] * a) ** 2 + (lin[0, 1] * b) ** 2)
    hy = np.sqrt((lin[1, 0] * a) ** 2 + (lin[1, 1] * b) ** 2)
    out = np.stack([new_ctr[:, 0] - hx, new_ctr[:, 1] - hy,
                    new_ctr[:, 0] + hx, new_ctr[:, 1] + hy], 1)
    full = (out[:, 2] - out[:, 0]) * (out[:, 3] - out[:, 1])
    out = np.clip(out, 0.0, size)
    vis = (out[:, 2] - out[:, 0]) * (out[:, 3] - out[:, 1])
    keep = (vis >= min_visible * np.maximum(full, 1e-9)) & (out[:, 2] - out[:, 0] > 1) & (
        out[:, 3] - out[:, 1] > 1)
    return out.astype(np.float32), keep


def jitter_color(frames: np.ndarray, rng: np.random.Generator, amount: float) -> np.ndarray:
    """Same brightness/contrast change on every frame: ``[T, H, W, 3]`` uint8 -> uint8."""
    if amount <= 0:
        return frames
    gain = 1.0 + rng.uniform(-amount, amount)
    bias = rng.uniform(-amount, amount) * 255.0 * 0.5
    # per-level table, the same float32 arithmetic as on the pixels (clip, then truncate):
    # one lookup per byte instead of a float32 copy of the clip (~1.5x faster, RESULTS §1 s. 9)
    lut = np.clip(np.arange(256, dtype=np.float32) * gain + bias, 0, 255).astype(np.uint8)
    t, h, w, c = frames.shape
    out = cv2.LUT(np.ascontiguousarray(frames).reshape(t * h, w, c), lut)  # [T*H, W, C]
    return out.reshape(t, h, w, c)


def jitter_hue_saturation(frames: np.ndarray, rng: np.random.Generator, hue: float,
                          saturation: float) -> np.ndarray:
    """Same hue rotation and saturation gain on every frame: ``[T, H, W, 3]`` uint8 RGB -> uint8.

    ``hue``: the rotation is uniform in ``[-hue, hue]`` of the colour circle (OpenCV's 0..179 hue
    scale wraps around); ``saturation``: the gain is log-uniform in ``[1/saturation,
    saturation]``. Luminance structure (shapes, motion) is untouched, colours are not: a
    detector trained this way cannot lean on its training domain's palette.
    """
    if hue <= 0 and saturation <= 1:
        return frames
    shift = rng.uniform(-hue, hue) * 180.0 if hue > 0 else 0.0
    gain = math.exp(rng.uniform(-math.log(saturation), math.log(saturation))) if (
        saturation > 1) else 1.0
    # one lookup table per HSV channel: hue shifted with wrap-around (levels 0..179), saturation
    # scaled and clipped, value kept; all frames in one call each ([T, H, W, 3] -> [T*H, W, 3])
    lut = np.empty((256, 1, 3), np.uint8)
    lut[:, 0, 0] = (np.arange(256) + round(shift)) % 180
    lut[:, 0, 1] = np.clip(np.arange(256) * gain, 0, 255).astype(np.uint8)
    lut[:, 0, 2] = np.arange(256)
    t, h, w, _ = frames.shape
    hsv = cv2.cvtColor(np.ascontiguousarray(frames).reshape(t * h, w, 3), cv2.COLOR_RGB2HSV)
    rgb = cv2.cvtColor(cv2.LUT(hsv, lut), cv2.COLOR_HSV2RGB)
    return rgb.reshape(t, h, w, 3)


IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32) * 255.0
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32) * 255.0


# per channel, the normalised float32 value of each uint8 level: [3, 256]
_NORMALISE_LUT = ((np.arange(256, dtype=np.float32)[None, :] - IMAGENET_MEAN[:, None])
                  / IMAGENET_STD[:, None]).astype(np.float32)


def to_tensor_layout(frames: np.ndarray) -> np.ndarray:
    """``[T, S, S, 3]`` uint8 RGB -> ``[3, T, S, S]`` float32, ImageNet-normalised.

    Transposes the bytes first, then looks each level up in a per-channel table: the same
    values as ``(x - mean) / std`` in float32, about 5x faster (it feeds every training clip).
    """
    u8 = np.ascontiguousarray(frames.transpose(3, 0, 1, 2))  # [T, S, S, 3] -> [3, T, S, S]
    out = np.empty(u8.shape, np.float32)
    for c in range(3):
        np.take(_NORMALISE_LUT[c], u8[c], out=out[c])
    return out
