import cv2
import numpy as np
import pytest
import torch

from weaktube.boxes import np_iou
from weaktube.data.dataset import (
    ClipDataset,
    FrameStore,
    clip_indices,
    collate_clips,
    keyframe_index,
)
from weaktube.data.transforms import AugmentConfig
from weaktube.structures import (
    AMBIGUOUS_FRAME,
    AnnotationError,
    AnnotationSet,
    Segment,
    Tube,
    VideoRecord,
)

W, H, T = 96, 72, 20


def _box(f):
    x = 10 + 2 * f
    return [x, 20, x + 30, 60]


@pytest.fixture()
def frame_root(tmp_path):
    """A frame-folder video: a white rectangle moving right, boxed in frames 5..14."""
    folder = tmp_path / "vid"
    folder.mkdir()
    for f in range(T):
        img = np.zeros((H, W, 3), np.uint8)
        x1, y1, x2, y2 = _box(f)
        cv2.rectangle(img, (x1, y1), (x2 - 1, y2 - 1), (255, 255, 255), -1)
        cv2.imwrite(str(folder / f"{f + 1:05d}.png"), img)
    boxes = np.array([_box(f) for f in range(5, 15)], np.float32)
    ann = AnnotationSet(["move"], [VideoRecord("vid", T, W, H, 10.0, "train",
                                               [Tube(0, 5, boxes)])])
    return tmp_path, ann


def test_clip_indices_clamp_and_reverse():
    assert clip_indices(3, 4, 2, 10).tolist() == [0, 0, 1, 3]
    assert clip_indices(9, 3, 1, 10).tolist() == [7, 8, 9]
    assert clip_indices(7, 3, 2, 10, reverse=True).tolist() == [9, 9, 7]


def test_keyframe_index_positives(frame_root):
    _, ann = frame_root
    idx = keyframe_index(ann)
    assert len(idx) == T and idx.positive.sum() == 10
    w = idx.sampling_weights(0.75)
    assert w[idx.positive].sum() == pytest.approx(0.75)


def test_sample_targets_follow_the_pixels(frame_root):
    root, ann = frame_root
    store = FrameStore(root)
    ds = ClipDataset(ann, store, keyframe_index(ann), clip_len=4, stride=1, img_size=64,
                     augment=AugmentConfig(rotation=0.0, color=0.0), seed=3)
    s = ds[10]
    assert s["clip"].shape == (3, 4, 64, 64)
    assert s["frame_indices"].tolist() == [7, 8, 9, 10]
    assert s["key_labels"].tolist() == [0]
    # keyframe pixels (de-normalised) vs. the keyframe target box
    img = s["clip"][0, -1].numpy()
    ys, xs = np.nonzero(img > 1.0)
    mask_box = np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]]) / 64
    assert np_iou(s["key_boxes"].numpy(), mask_box)[0, 0] > 0.85
    assert all(len(b) == 1 for b in s["frame_boxes"])
    # deterministic per (seed, epoch, index)
    assert torch.equal(ds[10]["clip"], s["clip"])
    ds.set_epoch(1)
    assert not torch.equal(ds[10]["clip"], s["clip"])
    batch = collate_clips([ds[2], ds[10]])
    assert batch["key_labels"].tolist() == [[-1], [0]]
    assert batch["frame_valid"].shape == (2, 4, 1)


def test_weak_video_uses_segment_label(frame_root):
    root, _ = frame_root
    weak = AnnotationSet(["move"], [VideoRecord("vid", T, W, H, 10.0, "train", [],
                                                [Segment(0, 0.5, 1.5)])])
    ds = ClipDataset(weak, FrameStore(root), keyframe_index(weak), 4, 1, 64)
    assert ds[7]["segment_label"] == 0 and ds[2]["segment_label"] == -1
    assert len(ds[7]["key_labels"]) == 0  # weak videos carry no boxes
    # clip frames 4..7; the segment 0.5..1.5 s at 10 fps covers frames 5..14
    assert ds[7]["frame_segment"].tolist() == [-1, 0, 0, 0]


def test_ambiguous_time_is_neither_action_nor_background(frame_root):
    """An ambiguous segment (THUMOS14's "Ambiguous") is never a training label either way: no
    keyframe is drawn in its time, and clip frames there are AMBIGUOUS_FRAME, not -1; a real
    segment over the same frames wins whatever the order."""
    root, _ = frame_root
    v = VideoRecord("vid", T, W, H, 10.0, "train", [],
                    [Segment(0, 0.5, 1.0), Segment(0, 0.8, 1.5, ambiguous=True)])
    assert v.segment_labels().tolist()[4:16] == [-1] + [0] * 5 + [-1] * 5 + [-1]
    assert v.segment_labels(ambiguous=AMBIGUOUS_FRAME).tolist()[4:16] == \
        [-1] + [0] * 5 + [AMBIGUOUS_FRAME] * 5 + [-1]
    weak = AnnotationSet(["move"], [v])
    idx = keyframe_index(weak)
    assert idx.frame.tolist() == [f for f in range(T) if not 10 <= f < 15]
    assert idx.positive.sum() == 5
    ds = ClipDataset(weak, FrameStore(root), idx, 4, 1, 64)
    last = int(np.nonzero(idx.frame == 15)[0][0])  # keyframe 15: clip frames 12..15
    assert ds[last]["frame_segment"].tolist() == [AMBIGUOUS_FRAME] * 3 + [-1]
    assert ds[last]["segment_label"] == -1
    # the order of the segments in the file does not matter
    flipped = VideoRecord("vid", T, W, H, 10.0, "train", [], v.segments[::-1])
    assert flipped.segment_labels(-2).tolist() == v.segment_labels(-2).tolist()


def test_frame_count_mismatch_is_reported(frame_root):
    root, ann = frame_root
    v = ann["vid"]
    bad = AnnotationSet(["move"], [VideoRecord("vid", T + 5, W, H, 10.0, "train", v.tubes)])
    with pytest.raises(AnnotationError, match="video 'vid'.*num_frames"):
        FrameStore(root).preload(bad)


def test_one_name_two_paths_are_two_videos(tmp_path):
    """A replayed annotation file may name a video as the trained one does, at its own path:
    the store must not hand one's frames for the other (it was keyed by name alone)."""
    for folder, value in (("a", 1), ("b", 2)):
        (tmp_path / folder).mkdir()
        for f in range(3):
            cv2.imwrite(str(tmp_path / folder / f"{f + 1:05d}.png"),
                        np.full((8, 8, 3), value, np.uint8))
    store = FrameStore(tmp_path)
    a, b = (VideoRecord("x", 3, 8, 8, 10.0, "train", path=p) for p in ("a", "b"))
    assert [int(store.get(r, np.array([0]))[0, 0, 0, 0]) for r in (a, b)] == [1, 2]
    assert [int(store.video(r)[0, 0, 0, 0]) for r in (a, b)] == [1, 2]
