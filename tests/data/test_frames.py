"""``weaktube data frames``: videos -> frame folders, and clips read from them frame by frame
(real UCF101-24 clips and a synthetic benchmark)."""

from __future__ import annotations

import numpy as np
import pytest

from weaktube.data.dataset import FrameStore
from weaktube.data.frames import extract_frames, frame_folder
from weaktube.data.readers import read_ucf24_pyannot
from weaktube.data.video import VideoError, read_video
from weaktube.structures import AnnotationError, AnnotationSet


@pytest.fixture(scope="module")
def two_clips(shared_data):
    """Two real UCF101-24 records (raw MPEG-4 streams), rescaled to the clips' 340x256."""
    from weaktube.data.readers import rescale_to_video_sizes

    ann = read_ucf24_pyannot(shared_data / "ucf24" / "annotations" /
                             "pyannot_with_class_names.pkl")
    names = [v.name for v in ann.videos if v.name.endswith(("v_Biking_g01_c01",
                                                            "v_Fencing_g01_c06"))]
    ann = ann.subset(names)
    return rescale_to_video_sizes(ann, {n: (340, 256) for n in names})


def test_png_folders_hold_exactly_the_decoded_frames(two_clips, ucf24_videos, tmp_path):
    out = tmp_path / "frames"
    stats = extract_frames(two_clips, ucf24_videos, out, ext="png", progress=False)
    assert (stats.videos, stats.skipped) == (2, 0)
    assert stats.frames == sum(v.num_frames for v in two_clips.videos)
    v = two_clips.videos[0]
    folder = frame_folder(out, v)  # UCF101-24's Class/v_... name nests
    assert folder == out / v.name and (folder / "00001.png").is_file()
    assert len(list(folder.iterdir())) == v.num_frames
    assert not list(folder.parent.glob(".*tmp*"))  # nothing half-written left
    # clips from the folder are the clips from the video, pixel for pixel, and reading one
    # decodes only its frames (nothing cached whole)
    idx = np.array([0, 0, 3, 7, 7, v.num_frames - 1])
    from_video = FrameStore(ucf24_videos).get(v, idx)
    folders = FrameStore(out)
    np.testing.assert_array_equal(folders.get(v, idx), from_video)
    assert folders._cache == {}
    np.testing.assert_array_equal(np.stack(list(folders.frames(v))), read_video(
        ucf24_videos / f"{v.name.split('/')[-1]}.mp4"))
    # a second run finds both folders complete and writes nothing
    again = extract_frames(two_clips, ucf24_videos, out, ext="png", progress=False)
    assert (again.videos, again.skipped, again.frames) == (0, 2, 0)


def test_jpeg_changes_pixels_by_a_few_levels_only(two_clips, ucf24_videos, tmp_path):
    v = two_clips.videos[1]
    one = AnnotationSet(list(two_clips.classes), [v])
    extract_frames(one, ucf24_videos, tmp_path, ext="jpg", quality=95, progress=False)
    idx = np.arange(0, v.num_frames, 30)
    a = FrameStore(tmp_path).get(v, idx).astype(int)
    b = FrameStore(ucf24_videos).get(v, idx).astype(int)
    assert np.abs(a - b).mean() < 2.0


def test_a_wrong_record_fails_naming_the_video_and_leaves_no_folder(two_clips, ucf24_videos,
                                                                    tmp_path):
    import dataclasses

    v = dataclasses.replace(two_clips.videos[0], num_frames=two_clips.videos[0].num_frames + 5)
    with pytest.raises(AnnotationError, match=rf"video {v.name!r}.*num_frames"):
        extract_frames(AnnotationSet(list(two_clips.classes), [v]), ucf24_videos, tmp_path,
                       progress=False)
    assert not frame_folder(tmp_path, v).exists()
    assert not list(frame_folder(tmp_path, v).parent.glob(".*"))
    # a folder that holds other than the annotated count is refused when read
    good = two_clips.videos[0]
    extract_frames(AnnotationSet(list(two_clips.classes), [good]), ucf24_videos, tmp_path,
                   progress=False)
    with pytest.raises(AnnotationError, match="holds"):
        FrameStore(tmp_path).get(v, np.array([0]))


def test_training_reads_frame_folders(tmp_path):
    """A tiny synthetic benchmark extracted to frame folders trains like its videos do: the
    same clips (PNG) give the same first-epoch losses."""
    import json

    from tests.train.test_engine import RECIPE, TINY
    from weaktube.config import apply_overrides
    from weaktube.data.synthetic import SynthConfig, generate
    from weaktube.demo import demo_config
    from weaktube.train.engine import fit

    data = tmp_path / "data"
    generate(SynthConfig(**TINY), seed=3, out_dir=data, progress=False)
    ann = AnnotationSet.load(data / "source.json").split("train")
    extract_frames(ann, data / "videos", tmp_path / "frames", ext="png", progress=False)
    cfg = apply_overrides(demo_config(data), RECIPE)
    fit(cfg, tmp_path / "videos_run", progress=False, evaluate_at_end=False)
    fit(apply_overrides(cfg, {"data": {"videos": str(tmp_path / "frames")}}),
        tmp_path / "frames_run", progress=False, evaluate_at_end=False)

    def losses(run):
        lines = (run / "metrics.jsonl").read_text().splitlines()
        return [json.loads(x)["loss"] for x in lines if "iteration" in json.loads(x)]

    assert losses(tmp_path / "frames_run") == losses(tmp_path / "videos_run")


def test_preload_keeps_to_its_budget_and_says_what_to_do(two_clips, ucf24_videos, tmp_path):
    sizes = [v.num_frames * 340 * 256 * 3 for v in two_clips.videos]
    store = FrameStore(ucf24_videos, max_bytes=sizes[0] + sizes[1] // 2)  # room for one
    with pytest.warns(UserWarning, match=r"1 of 2 videos .*weaktube data frames"):
        store.preload(two_clips)
    assert [name for name, _ in store._cache] == [two_clips.videos[0].name]
    with pytest.warns(UserWarning, match="1 of 2 videos"):  # what is cached counts
        store.preload(two_clips)
    assert [name for name, _ in store._cache] == [two_clips.videos[0].name]
    # frame folders are never decoded ahead: nothing to warn about, nothing cached
    extract_frames(two_clips, ucf24_videos, tmp_path, ext="jpg", progress=False)
    folders = FrameStore(tmp_path, max_bytes=1)
    folders.preload(two_clips)
    assert folders._cache == {}


def test_a_frame_of_another_size_inside_a_folder_is_named(two_clips, ucf24_videos, tmp_path):
    """Only the first image's size is checked when a folder is opened; a clip that reads a
    frame of another size fails naming it (its boxes would be at the wrong scale)."""
    import cv2

    v = two_clips.videos[0]
    one = AnnotationSet(list(two_clips.classes), [v])
    extract_frames(one, ucf24_videos, tmp_path, ext="jpg", progress=False)
    small = frame_folder(tmp_path, v) / "00010.jpg"
    cv2.imwrite(str(small), np.zeros((24, 32, 3), np.uint8))
    store = FrameStore(tmp_path)
    assert store.get(v, np.array([0, 1, 2])).shape == (3, 256, 340, 3)
    with pytest.raises(VideoError, match=r"00010.jpg' is 32x24, the folder's first frame 340x256"):
        store.get(v, np.array([7, 8, 9]))
