"""Video decoding on the real UCF101-24 clips (raw MPEG-4 streams without a frame index)."""

import cv2
import numpy as np
import pytest

from weaktube.data.readers import read_ucf24_pyannot
from weaktube.data.video import (
    VideoError,
    find_video,
    frame_order_key,
    plausible_fps,
    probe_video,
    read_video,
)


@pytest.fixture(scope="module")
def ucf24(shared_data):
    return read_ucf24_pyannot(shared_data / "ucf24" / "annotations" /
                              "pyannot_with_class_names.pkl")


def test_every_real_clip_decodes_to_the_annotated_frame_count(ucf24, ucf24_videos):
    clips = sorted(ucf24_videos.glob("*.mp4"))
    assert len(clips) == 6
    for clip in clips:
        name = next(v.name for v in ucf24.videos if v.name.endswith("/" + clip.stem))
        # the container reports no usable count: OpenCV's property is garbage for these streams
        assert find_video(ucf24_videos, name) == clip
        info = probe_video(clip)
        frames = read_video(clip)
        assert info.num_frames == len(frames) == ucf24[name].num_frames, clip.name
        assert frames.shape[1:] == (256, 340, 3) and frames.dtype == np.uint8
        assert (info.width, info.height) == (340, 256)
        assert probe_video(clip, count_frames=False).num_frames == -1


def test_frame_folder_and_errors(tmp_path):
    folder = tmp_path / "clipA"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"{i + 1:05d}.jpg"), np.full((24, 32, 3), 40 * i, np.uint8))
    assert find_video(tmp_path, "clipA") == folder
    info = probe_video(folder)
    assert (info.width, info.height, info.num_frames, info.fps) == (32, 24, 3, None)
    assert read_video(folder).shape == (3, 24, 32, 3)
    with pytest.raises(VideoError, match="video 'nope'"):
        find_video(tmp_path, "nope")
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video at all")
    with pytest.raises(VideoError, match="broken.mp4"):
        read_video(bad)


def test_plausible_fps_drops_missing_and_nonsense_rates():
    assert plausible_fps(29.97) == 29.97 and plausible_fps(1000.0) == 1000.0
    assert plausible_fps(0.0) is None and plausible_fps(90000.0) is None
    assert plausible_fps(-25.0) is None and plausible_fps(None) is None


def test_frame_folders_are_read_in_number_order(tmp_path):
    """Unpadded (ffmpeg's %d.jpg) and mixed-width numbering: frame i is the image numbered i,
    not the i-th name in string order (1, 10, 11, 12, 2, ...)."""
    for names in ([f"{i}.png" for i in range(1, 13)],
                  [f"{i:04d}.png" for i in range(1, 10)] + [f"{i:05d}.png" for i in (10, 11, 12)],
                  [f"img_{i}.png" for i in range(1, 13)]):
        folder = tmp_path / names[0].split(".")[0]
        folder.mkdir()
        for i, name in enumerate(names):
            cv2.imwrite(str(folder / name), np.full((8, 8, 3), 10 * i, np.uint8))
        frames = read_video(folder)
        assert [int(f[0, 0, 0]) for f in frames] == [10 * i for i in range(12)], names[:3]
    assert frame_order_key("2.jpg") < frame_order_key("10.jpg")
