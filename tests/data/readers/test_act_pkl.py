"""ACT ``*-GT.pkl``: hand-built files with the real structure (python-2 and python-3 pickles)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.data.readers.builders import write_act_pkl
from weaktube.data.readers import read_act_pkl
from weaktube.data.readers._common import JHMDB21_CLASSES
from weaktube.structures import AnnotationError

V1 = "brush_hair/April_09_brush_hair_u_nm_np1_ba_goo_0"
V2 = "clap/Boom_Snap_Clap_clap_u_nm_np1_fr_med_1"
V3 = "walk/unused_video"


def _track(frames: list[int], box: list[float]) -> np.ndarray:
    """``[n, 5]``: 1-based frame, x1, y1, x2, y2 (the box drifts by 1 px per row)."""
    return np.array([[f, box[0] + i, box[1], box[2] + i, box[3]] for i, f in enumerate(frames)],
                    np.float32)


def _videos(**override) -> dict:
    videos = {
        V1: (40, (240, 320), {0: [_track([1, 2, 3, 4], [10, 20, 100, 200])]}),
        # one track with a gap (frames 5-6, then 9): two tubes
        V2: (30, (240, 320), {2: [_track([5, 6, 9], [0, 0, 319, 240])]}),
        V3: (10, (240, 320), {19: [_track([1], [1, 1, 2, 2])]}),
    }
    videos.update(override)
    return videos


def _write(tmp_path: Path, videos=None, train=None, test=None, py2=True) -> Path:
    return write_act_pkl(tmp_path / "JHMDB-GT.pkl", list(JHMDB21_CLASSES),
                         videos if videos is not None else _videos(),
                         train if train is not None else [[V1], [V2]],
                         test if test is not None else [[V2], [V1]], py2=py2)


@pytest.mark.parametrize("py2", [True, False])
def test_round_trip(tmp_path, py2):
    with pytest.warns(UserWarning, match="1 video"):  # V3 is in neither list
        ann = read_act_pkl(_write(tmp_path, py2=py2))
    assert ann.classes == list(JHMDB21_CLASSES)
    assert [v.name for v in ann.videos] == [V1, V2]
    a, b = ann[V1], ann[V2]
    assert (a.split, b.split) == ("train", "test")
    assert (a.num_frames, a.width, a.height, a.fps) == (40, 320, 240, 30.0)  # J-HMDB -> 30 fps
    (t,) = a.tubes
    assert (t.label, t.start_frame, t.end_frame) == (0, 0, 4)  # 1-based frames 1..4
    np.testing.assert_array_equal(t.boxes[1], [11, 20, 101, 200])  # taken as they are
    assert [(t.label, t.start_frame, t.end_frame) for t in b.tubes] == [(2, 4, 6), (2, 8, 9)]
    np.testing.assert_array_equal(b.tubes[1].boxes, [[2, 0, 321, 240]])
    assert [(s.label, *s.frame_range(30.0)) for s in b.segments] == [(2, 4, 6), (2, 8, 9)]


def test_split_index_box_base_and_fps(tmp_path):
    path = _write(tmp_path)
    with pytest.warns(UserWarning):
        ann = read_act_pkl(path, split=1, box_base=1, fps=25.0)
    assert (ann[V1].split, ann[V2].split, ann[V1].fps) == ("test", "train", 25.0)
    np.testing.assert_array_equal(ann[V1].tubes[0].boxes[0], [9, 19, 100, 200])
    with pytest.raises(AnnotationError, match="split index 2 requested but the file has 2"):
        read_act_pkl(path, split=2)
    with pytest.warns(UserWarning):
        assert len(read_act_pkl(tmp_path).videos) == 2  # a folder holding one *-GT.pkl


def test_ucf101_labels_get_25_fps(tmp_path):
    path = write_act_pkl(tmp_path / "UCF101v2-GT.pkl", ["Basketball", "Biking"],
                         {"Biking/v_Biking_g01_c01": (5, (240, 320),
                                                      {1: [_track([2, 3], [1, 2, 3, 4])]})},
                         [["Biking/v_Biking_g01_c01"]], [[]])
    ann = read_act_pkl(path)
    assert ann.videos[0].fps == 25.0


@pytest.mark.parametrize("videos, match, field", [
    ({V1: (40, (240, 320), {0: [_track([0, 1], [1, 1, 5, 5])]})}, "1..40", "frame"),
    ({V1: (3, (240, 320), {0: [_track([1, 2, 3, 4], [1, 1, 5, 5])]})}, "1..3", "frame"),
    ({V1: (40, (240, 320), {0: [_track([3, 2], [1, 1, 5, 5])]})}, "increase strictly", "frame"),
    ({V1: (40, (240, 320), {0: [_track([1, 2], [5, 1, 3, 5])]})}, "x2 <= x1", "x2"),
    ({V1: (40, (240, 320), {0: [_track([1, 2], [1, 1, 5, 500])]})}, "outside", "boxes"),
    ({V1: (40, (240, 320), {21: [_track([1, 2], [1, 1, 5, 5])]})}, "unknown class", "gttubes"),
    ({V1: (40, (240, 320), {0: ["not an array"]})}, "non-empty numeric", "gttubes"),
    ({V1: (40, (240,), {})}, "height, width", "resolution"),
    ({V1: ("forty", (240, 320), {})}, "integer", "nframes"),
])
def test_errors_name_video_and_field(tmp_path, videos, match, field):
    with pytest.raises(AnnotationError, match=match) as e:
        read_act_pkl(_write(tmp_path, videos={**_videos(), **videos}))
    assert (e.value.video, e.value.field) == (V1, field)
    assert "JHMDB-GT.pkl" in str(e.value)


def test_errors_name_the_tube_by_its_place_in_gttubes(tmp_path):
    # label 1's first tube is bad; label 0's gap-split track came before it
    gap = _track([5, 6, 9], [1, 1, 5, 5])
    bad = {V1: (40, (240, 320), {0: [gap], 1: [_track([3, 2], [1, 1, 5, 5])]})}
    with pytest.raises(AnnotationError, match=r"gttubes\[1\]\[0\]") as e:
        read_act_pkl(_write(tmp_path, videos={**_videos(), **bad}))
    assert e.value.tube == 0 and "tube 0" in str(e.value)


def test_split_list_errors(tmp_path):
    with pytest.raises(AnnotationError, match="both train_videos"):
        read_act_pkl(_write(tmp_path, train=[[V1, V2]], test=[[V2]]))
    with pytest.raises(AnnotationError, match="absent from nframes"):
        read_act_pkl(_write(tmp_path, train=[["ghost/video"]], test=[[V1]]))


def test_truncated_file(tmp_path):
    path = _write(tmp_path)
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with pytest.raises(AnnotationError, match="cannot unpickle"):
        read_act_pkl(path)
