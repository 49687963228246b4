import cv2
import numpy as np
import pytest

from weaktube.boxes import np_iou
from weaktube.data.transforms import (
    BORDER_FILL,
    AugmentConfig,
    jitter_color,
    jitter_hue_saturation,
    random_matrix,
    resize_matrix,
    to_tensor_layout,
    warp_boxes,
    warp_frames,
)


def _ellipse_frame(w=160, h=120, box=(40, 30, 100, 100)):
    f = np.zeros((h, w, 3), np.uint8)
    x1, y1, x2, y2 = box
    cv2.ellipse(f, (((x1 + x2) / 2, (y1 + y2) / 2), (x2 - x1, y2 - y1), 0), (255, 255, 255), -1)
    return f


def _mask_box(img):
    ys, xs = np.nonzero(img[..., 0] > 127)
    return np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], np.float64)


def test_resize_matrix_scales_boxes():
    m = resize_matrix(160, 120, 64)
    out, keep = warp_boxes(np.array([[40, 30, 120, 90]]), m, 64)
    np.testing.assert_allclose(out, [[16, 16, 48, 48]], atol=1e-5)
    assert keep.tolist() == [True]


def test_random_affine_moves_boxes_with_pixels():
    # an ellipse filling its box: the inscribed-ellipse rule is exact up to pixelisation
    box = np.array([[40, 30, 100, 100]], np.float64)
    frame = _ellipse_frame(box=tuple(box[0]))
    cfg = AugmentConfig(shift=0.1, rotation=10, scale=0.1, hflip=True)
    for seed in range(10):
        m = random_matrix(np.random.default_rng(seed), 160, 120, 128, cfg)
        warped = warp_frames(frame[None], m, 128)[0]
        pred, keep = warp_boxes(box, m, 128)
        assert keep[0]
        assert np_iou(pred, _mask_box(warped))[0, 0] > 0.9


def test_boxes_pushed_out_are_dropped():
    # shift right by 100 px: [20, 60] -> [120, 160], 8 of 40 px visible (< 30 %); [0, 10] stays in
    m = np.array([[1.0, 0, 100], [0, 1.0, 0]])
    _, keep = warp_boxes(np.array([[20, 20, 60, 60], [0, 0, 10, 10]]), m, 128)
    assert keep.tolist() == [False, True]


def test_tensor_layout():
    x = to_tensor_layout(np.zeros((4, 8, 8, 3), np.uint8))
    assert x.shape == (3, 4, 8, 8) and x.dtype == np.float32


def test_tensor_layout_equals_normalising_every_pixel():
    """The lookup-table conversion gives exactly ``(x - mean) / std`` in float32."""
    from weaktube.data.transforms import IMAGENET_MEAN, IMAGENET_STD

    frames = np.random.default_rng(0).integers(0, 256, (3, 5, 7, 3), dtype=np.uint8)
    ref = ((frames.astype(np.float32) - IMAGENET_MEAN) / IMAGENET_STD).transpose(3, 0, 1, 2)
    x = to_tensor_layout(frames)
    assert x.flags.c_contiguous
    np.testing.assert_array_equal(x, ref)


# ------------------------------------------------------------------ hue / saturation jitter
def _hsv(frames: np.ndarray) -> np.ndarray:
    return np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2HSV) for f in frames]).astype(np.int64)


@pytest.mark.parametrize("seed", range(20))
def test_color_jitter_table_equals_the_float32_formula_on_every_level(seed):
    """The lookup table gives what gain * x + bias, clipped and truncated in float32, gives."""
    levels = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1).repeat(3, axis=3)
    clip = np.concatenate([levels, levels[:, ::-1]])  # [2, 16, 16, 3], every level twice
    out = jitter_color(clip, np.random.default_rng(seed), 0.5)
    rng = np.random.default_rng(seed)
    gain = 1.0 + rng.uniform(-0.5, 0.5)
    bias = rng.uniform(-0.5, 0.5) * 255.0 * 0.5
    want = np.clip(clip.astype(np.float32) * gain + bias, 0, 255).astype(np.uint8)
    assert out.shape == clip.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out, want)
    assert not np.array_equal(out, clip)


def test_color_jitter_off_is_the_identity():
    clip = np.random.default_rng(0).integers(0, 256, (3, 8, 8, 3), dtype=np.uint8)
    assert jitter_color(clip, np.random.default_rng(0), 0.0) is clip


def test_hue_saturation_off_is_the_identity():
    frames = np.random.default_rng(0).integers(0, 256, (3, 8, 8, 3), dtype=np.uint8)
    rng = np.random.default_rng(1)
    assert jitter_hue_saturation(frames, rng, 0.0, 1.0) is frames
    assert rng.random() == np.random.default_rng(1).random()  # no draw: old runs unchanged


def test_hue_rotation_keeps_value_and_greys_and_is_the_same_on_every_frame():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    frame[:4] = 128  # a grey band: no saturation, no hue to rotate
    frames = np.stack([frame, frame])
    hues = set()
    for seed in range(8):
        out = jitter_hue_saturation(frames, np.random.default_rng(seed), 0.5, 1.0)
        assert np.array_equal(out[0], out[1])  # one transform per clip
        assert np.array_equal(out[:, :4], frames[:, :4])
        before, after = _hsv(frames), _hsv(out)
        # brightness (HSV value) survives the round trip to within rounding
        assert np.abs(after[..., 2] - before[..., 2]).max() <= 2
        saturated = before[0, 4:, :, 1] > 100
        shift = (after[0, 4:, :, 0] - before[0, 4:, :, 0]) % 180
        hues.add(int(np.median(shift[saturated])))
    assert len(hues) >= 6  # a different rotation per seed, anywhere on the circle
    assert max(hues) - min(hues) > 60


def test_saturation_gain_scales_saturation_only():
    frames = np.full((1, 4, 4, 3), (200, 120, 80), np.uint8)  # orange, S ~ 153
    outs = [jitter_hue_saturation(frames, np.random.default_rng(s), 0.0, 2.0) for s in range(6)]
    sats = [int(_hsv(o)[0, 0, 0, 1]) for o in outs]
    base = int(_hsv(frames)[0, 0, 0, 1])
    assert min(sats) < base < max(sats)  # both ways: the gain is log-uniform in [1/2, 2]
    for o in outs:
        assert abs(int(_hsv(o)[0, 0, 0, 0]) - int(_hsv(frames)[0, 0, 0, 0])) <= 2  # hue kept


@pytest.mark.parametrize("field,value", [("hue", -0.1), ("hue", 0.6), ("saturation", 0.5)])
def test_bad_hue_or_saturation_is_refused_with_its_name(field, value):
    from weaktube.config import ConfigError, ExperimentConfig, apply_overrides

    with pytest.raises(ValueError, match=f"data.augment.{field}"):
        AugmentConfig(**{field: value})
    with pytest.raises(ConfigError, match=f"data.augment.{field}"):  # the CLI's clean error
        apply_overrides(ExperimentConfig(), {"data": {"augment": {field: value}}})


# ------------------------------------------------------------------ half-pixel alignment
@pytest.mark.parametrize("wh", [(160, 120), (320, 240), (100, 200)])
def test_plain_warp_equals_the_inference_resize(wh):
    """Training's warp without augmentation gives the frame inference gets from cv2.resize
    (both put pixel centres at i + 0.5; before the fix the warp was shifted by
    0.5 * (w / s - 1) input pixels)."""
    w, h = wh
    rng = np.random.default_rng(0)
    # smooth texture: bilinear interpolation differences show as offsets, not as aliasing
    frame = cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (0, 0), 2.0)
    frame = cv2.normalize(frame, None, 0, 255, cv2.NORM_MINMAX)
    warped = warp_frames(frame[None], resize_matrix(w, h, 128), 128)[0].astype(int)
    resized = cv2.resize(frame, (128, 128), interpolation=cv2.INTER_LINEAR).astype(int)
    # interior: the borders differ by design (resize replicates, the warp reflects)
    assert np.abs(warped - resized)[2:-2, 2:-2].max() <= 1
    # the old pixel-index warp (the matrix as is) was measurably off on the same frame
    old = cv2.warpAffine(frame, resize_matrix(w, h, 128), (128, 128), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REFLECT_101).astype(int)
    assert np.abs(old - resized)[8:-8, 8:-8].mean() > 4 * np.abs(warped - resized).mean()


def test_warped_blob_centre_lands_on_its_mapped_centre():
    """A blob centred at continuous (70, 60) ends centred at M(70, 60) = (35, 40) in the output,
    measured with pixel centres at j + 0.5 (the box convention), to a few hundredths of a pixel
    (the old warp put it 0.25 / 0.17 output pixels up-left)."""
    ys, xs = np.mgrid[0:120, 0:160] + 0.5  # pixel centres, continuous coordinates
    blob = np.exp(-((xs - 70) ** 2 + (ys - 60) ** 2) / (2 * 8.0 ** 2))
    frame = np.repeat((blob * 255).round().astype(np.uint8)[..., None], 3, 2)
    out = warp_frames(frame[None], resize_matrix(160, 120, 80), 80)[0, ..., 0].astype(float)
    oy, ox = np.mgrid[0:80, 0:80] + 0.5
    cx, cy = (out * ox).sum() / out.sum(), (out * oy).sum() / out.sum()
    assert abs(cx - 35) < 0.05 and abs(cy - 40) < 0.05


def test_border_modes_fill_what_the_shift_exposes():
    """A shift right by 20 px exposes a 20-px strip at the left: mirrored by "reflect" (the
    person at the edge appears again, boxless), the ImageNet mean by "constant", the edge
    column by "replicate"; the interior is the same in all three."""
    frame = np.zeros((64, 64, 3), np.uint8)
    frame[:, :6] = 255  # a bright "person" touching the left edge
    m = resize_matrix(64, 64, 64)
    m[0, 2] += 20
    out = {b: warp_frames(frame[None], m, 64, b)[0] for b in ("reflect", "constant", "replicate")}
    strip = slice(0, 16)  # output columns 0..15 come from beyond the left edge
    assert out["reflect"][:, 15:20].min() == 255 and out["reflect"][:, :14].max() == 0
    assert (out["constant"][:, strip] == BORDER_FILL).all()
    assert (out["replicate"][:, strip] == 255).all()
    for b in ("constant", "replicate"):
        np.testing.assert_array_equal(out[b][:, 22:], out["reflect"][:, 22:])
    with pytest.raises(ValueError, match="data.augment.border"):
        AugmentConfig(border="wrap")
