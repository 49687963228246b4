"""Optical flow as network input (``weaktube.data.flow``): known shifts, repeated frames, the
inference cache, the dataset's wiring, and a real UCF101-24 clip."""

import cv2
import numpy as np
import pytest
import torch

from weaktube.data.dataset import ClipDataset, FrameStore, keyframe_index
from weaktube.data.flow import FLOW_CHANNELS, clip_flow, network_input
from weaktube.data.transforms import AugmentConfig, to_tensor_layout
from weaktube.data.video import read_video
from weaktube.model import FLOW_CHANNELS as MODEL_FLOW_CHANNELS
from weaktube.structures import AnnotationSet, Tube, VideoRecord

S = 96


def _texture(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    g = cv2.GaussianBlur((rng.random((S + 40, S + 40)) * 255).astype(np.uint8), (0, 0), 2.0)
    return np.repeat(g[..., None], 3, axis=2)  # [S + 40, S + 40, 3] uint8


def _shifted_clip(dx: int, dy: int, n: int = 4) -> np.ndarray:
    """``n`` crops of one texture, each moved by (dx, dy) pixels from the one before."""
    tex = _texture()
    frames = [tex[20 - i * dy:20 - i * dy + S, 20 - i * dx:20 - i * dx + S] for i in range(n)]
    return np.ascontiguousarray(np.stack(frames))  # [n, S, S, 3]


def _interior_median(flow: np.ndarray, t: int) -> np.ndarray:
    return np.median(flow[:, t, 16:-16, 16:-16].reshape(2, -1), axis=1)  # [2]: (dx, dy)


def test_model_and_data_agree_on_the_flow_channels():
    assert FLOW_CHANNELS == MODEL_FLOW_CHANNELS == 2


def test_clip_flow_measures_a_known_shift_and_its_reversal():
    clip = _shifted_clip(3, -2)
    flow = clip_flow(clip)
    assert flow.shape == (2, 4, S, S) and flow.dtype == np.float32
    assert np.all(flow[:, 0] == 0)  # nothing before the first frame
    for t in (1, 2, 3):
        np.testing.assert_allclose(_interior_median(flow, t), [3.0, -2.0], atol=0.25)
    back = clip_flow(clip[::-1].copy())  # time reversal: the motion runs the other way
    for t in (1, 2, 3):
        np.testing.assert_allclose(_interior_median(back, t), [-3.0, 2.0], atol=0.25)


def test_repeated_frames_have_no_flow_and_the_cache_changes_no_value():
    clip = _shifted_clip(2, 1)
    flow = clip_flow(clip, indices=np.array([0, 0, 2, 4]))
    assert np.all(flow[:, 1] == 0)  # same video frame twice (a clip clamped at the start)
    assert np.abs(_interior_median(flow, 2)).sum() > 1
    with pytest.raises(ValueError, match="frame indices"):
        clip_flow(clip, cache={})
    with pytest.raises(ValueError, match="uint8"):
        clip_flow(clip.astype(np.float32))


def test_cache_over_the_sliding_clips_of_a_real_video(ucf24_videos):
    """Inference computes each frame pair once over overlapping clips; the values are exactly
    those of per-clip computation, and the real clip has motion."""
    frames = read_video(ucf24_videos / "v_Basketball_g01_c02.mp4", max_frames=24)
    small = np.stack([cv2.resize(f, (S, S)) for f in frames])  # [24, S, S, 3]
    cache: dict = {}
    for key in range(0, 24, 3):
        idx = np.clip(key - 2 * np.arange(3, -1, -1), 0, 23)  # 4 frames, stride 2, clamped
        cached = clip_flow(small[idx], idx, cache)
        np.testing.assert_array_equal(cached, clip_flow(small[idx], idx))
    assert set(cache) >= {(0, 2), (19, 21)}
    assert np.isfinite(cached).all() and np.abs(cached).max() > 0.1  # it moves


def test_network_input_is_rgb_then_flow():
    clip = _shifted_clip(1, 0)
    rgb = network_input(clip, flow=False)
    np.testing.assert_array_equal(rgb, to_tensor_layout(clip))  # [3, T, S, S]
    both = network_input(clip, flow=True)
    assert both.shape == (5, 4, S, S)
    np.testing.assert_array_equal(both[:3], rgb)
    np.testing.assert_array_equal(both[3:], clip_flow(clip))


def test_dataset_flow_is_the_flow_of_the_augmented_frames(tmp_path):
    """The flow is computed after augmentation (shift, rotation, time reversal): it equals the
    flow of the very pixels the sample carries."""
    folder = tmp_path / "vid"
    folder.mkdir()
    tex = _texture(1)
    for f in range(12):
        cv2.imwrite(str(folder / f"{f + 1:05d}.png"), tex[20:20 + 72, 2 * f:2 * f + 96])
    boxes = np.array([[20, 10, 60, 60]] * 12, np.float32)
    ann = AnnotationSet(["pan"], [VideoRecord("vid", 12, 96, 72, 10.0, "train",
                                              [Tube(0, 0, boxes)])])
    aug = AugmentConfig(time_reverse=0.5)
    ds = ClipDataset(ann, FrameStore(tmp_path), keyframe_index(ann), 4, 2, 64, aug,
                     with_pixels=True, flow=True)
    reversed_seen = set()
    for i in range(len(ds)):
        s = ds[i]
        assert s["clip"].shape == (5, 4, 64, 64)
        pixels, idx = s["pixels"].numpy(), s["frame_indices"].numpy()
        torch.testing.assert_close(s["clip"][3:], torch.from_numpy(clip_flow(pixels, idx)))
        reversed_seen.add(bool(idx[-1] < idx[0]))
    assert reversed_seen == {True, False}
    plain = ClipDataset(ann, FrameStore(tmp_path), keyframe_index(ann), 4, 2, 64, aug)
    assert plain[0]["clip"].shape == (3, 4, 64, 64)
