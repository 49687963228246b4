"""detect_frames: sliding clips -> per-frame detections, with and without class pooling."""

import dataclasses

import cv2
import numpy as np
import pytest
import torch

from weaktube.data.dataset import clip_indices
from weaktube.data.flow import network_input
from weaktube.infer.detect import detect_frames, detect_videos, keyframe_indices
from weaktube.infer.smooth import vote_class_probs
from weaktube.model import build_detector, detector_demo
from weaktube.model.decode import PostprocessConfig, decode_keyframe, select_detections


@pytest.fixture(scope="module", params=[False, True], ids=["rgb", "flow"])
def model_and_frames(request):
    """The demo variant, and the same with optical flow for branch 1 (a 5-channel clip)."""
    torch.manual_seed(0)
    cfg = detector_demo(3, ((0.2, 0.4), (0.4, 0.8)), clip_len=4, img_size=64)
    if request.param:
        cfg = dataclasses.replace(cfg, cls_flow=True, cls_backbone=dataclasses.replace(
            cfg.cls_backbone, in_channels=8))
    model = build_detector(cfg).eval()
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, size=(10, 48, 80, 3), dtype=np.uint8)  # [T, H, W, 3]
    return model, frames


def _run(model, frames, window_s: float, vote_iou: float = 0.0):
    post = PostprocessConfig(conf_threshold=0.0, class_window_s=window_s,
                             class_vote_iou=vote_iou)
    return detect_frames(model, frames, "v", clip_len=4, frame_stride=2, img_size=64,
                         batch_size=4, postprocess=post, fps=10.0)


def test_window_zero_equals_each_clip_alone(model_and_frames):
    model, frames = model_and_frames
    dets = _run(model, frames, 0.0)
    # the same clips by hand: keyframe 7 (clip 1, 3, 5, 7); with flow, computed for this clip
    # alone, not read from detect_frames' cache of the frame pairs
    idx = clip_indices(7, 4, 2, len(frames))
    small = np.stack([cv2.resize(f, (64, 64), interpolation=cv2.INTER_LINEAR)
                      for f in frames[idx]])
    x = network_input(small, flow=model.cfg.uses_flow, indices=idx)  # [3 or 5, 4, 64, 64]
    with torch.no_grad():
        key = model(torch.from_numpy(x)[None]).key
    boxes, obj, cls = decode_keyframe(key, model.anchors)
    # without and with the class vote over the keyframe's anchors
    for vote, got in ((0.0, dets), (0.2, _run(model, frames, 0.0, vote_iou=0.2))):
        voted = vote_class_probs(boxes, obj, cls, vote)
        assert torch.equal(voted, cls) == (vote == 0)  # the vote changes this keyframe
        bx, scores, labels = select_detections(boxes[0], obj[0], voted[0],
                                               PostprocessConfig(conf_threshold=0.0))
        mine = got.frames == 7
        np.testing.assert_allclose(got.scores[mine], scores.numpy(), rtol=1e-5)
        np.testing.assert_array_equal(got.labels[mine], labels.numpy())
        np.testing.assert_allclose(got.boxes[mine], bx.numpy() * [80, 48, 80, 48], rtol=1e-4,
                                   atol=1e-3)


def test_pooling_changes_scores_not_frames(model_and_frames):
    model, frames = model_and_frames
    alone, pooled = _run(model, frames, 0.0), _run(model, frames, 0.3)  # +- 3 keyframes
    assert sorted(set(alone.frames)) == sorted(set(pooled.frames)) == list(range(10))
    assert np.isfinite(pooled.scores).all() and (pooled.scores <= 1).all()
    assert not np.allclose(np.sort(alone.scores), np.sort(pooled.scores))
    # boxes stay within the frame in pixels
    assert (pooled.boxes[:, [0, 2]] <= 80).all() and (pooled.boxes[:, [1, 3]] <= 48).all()


def test_empty_video(model_and_frames):
    model, frames = model_and_frames
    assert len(_run(model, frames[:0], 0.5)) == 0


def test_keyframes_always_include_the_last_frame():
    assert keyframe_indices(10, 1).tolist() == list(range(10))
    assert keyframe_indices(23, 4).tolist() == [0, 4, 8, 12, 16, 20, 22]
    assert keyframe_indices(21, 4).tolist() == [0, 4, 8, 12, 16, 20]
    assert keyframe_indices(0, 4).tolist() == []
    with pytest.raises(ValueError, match="keyframe_stride"):
        keyframe_indices(10, 0)


def test_a_streamed_video_and_a_stride_reach_the_last_frame(model_and_frames):
    model, frames = model_and_frames
    post = PostprocessConfig(conf_threshold=0.0, class_window_s=0.0)
    kw = dict(clip_len=4, frame_stride=2, img_size=64, batch_size=3, postprocess=post)
    whole = detect_frames(model, frames, "v", **kw)
    streamed = detect_frames(model, (f for f in frames), "v", **kw)  # a generator, one pass
    assert streamed.to_dict() == whole.to_dict()
    strided = detect_frames(model, frames, "v", keyframe_stride=4, **kw)
    assert sorted(set(strided.frames)) == [0, 4, 8, 9]  # 10 frames: the last one too
    # the last keyframe's detections are the same as at stride 1
    np.testing.assert_allclose(strided.boxes[strided.frames == 9], whole.boxes[whole.frames == 9])
    mixed = [frames[0], frames[1][:40]]
    with pytest.raises(ValueError, match="frame 1 is 80x40"):
        detect_frames(model, mixed, "v", **kw)


def test_detect_videos_fails_on_a_missing_video_before_any_work(model_and_frames, tmp_path,
                                                              monkeypatch):
    import weaktube.infer.detect as det
    from weaktube.data.dataset import FrameStore
    from weaktube.data.video import VideoError
    from weaktube.structures import VideoRecord

    model, frames = model_and_frames
    folder = tmp_path / "here"
    folder.mkdir()
    for i, f in enumerate(frames):
        cv2.imwrite(str(folder / f"{i + 1:05d}.png"), f[:, :, ::-1])
    calls = []
    monkeypatch.setattr(det, "detect_frames", lambda *a, **k: calls.append(a) or None)
    records = [VideoRecord("here", 10, 80, 48, 10.0, "test"),
               VideoRecord("gone", 10, 80, 48, 10.0, "test")]
    with pytest.raises((VideoError, FileNotFoundError), match="gone"):
        detect_videos(model, records, FrameStore(tmp_path), progress=False, clip_len=4,
                      frame_stride=2, img_size=64)
    assert calls == []


def test_boxes_are_clipped_before_nms():
    """Two boxes of one class that overlap little until they are cut at the image edge are the
    same box inside the image: one survives (clipped after NMS, both did, as duplicates)."""
    boxes = torch.tensor([[-0.7, 0.2, 0.3, 0.8], [-0.1, 0.2, 0.3, 0.8], [0.5, 0.5, 0.9, 0.9]])
    obj = torch.tensor([0.9, 0.8, 0.7])
    cls = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    bx, scores, labels = select_detections(boxes, obj, cls, PostprocessConfig(
        conf_threshold=0.01, nms_iou=0.5, top_classes=1))
    assert scores.tolist() == pytest.approx([0.9, 0.7]) and labels.tolist() == [0, 0]
    assert bx.tolist() == [pytest.approx([0.0, 0.2, 0.3, 0.8]), pytest.approx(
        [0.5, 0.5, 0.9, 0.9])]
