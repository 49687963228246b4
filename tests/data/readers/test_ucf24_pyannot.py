"""UCF101-24 corrected pickle: the real file, its traps, and hand-built pickles."""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path

import numpy as np
import pytest

from tests.data.readers.builders import write_pyannot
from weaktube.data.readers import read_ucf24_pyannot, rescale_to_video_sizes
from weaktube.evaluate.temporal_map import temporal_ap
from weaktube.infer.temporal import segments_from_tubes
from weaktube.structures import AnnotationError, AnnotationSet, Segment, TubePredictions


@pytest.fixture(scope="module")
def raw_db(ucf24_pkl: Path) -> dict:
    """The pickle as python loads it, for cross-checks (trusted test data)."""
    with open(ucf24_pkl, "rb") as f:
        return pickle.load(f)["db"]


def test_real_file_counts(ucf24):
    assert len(ucf24) == 3194
    assert ucf24.num_classes == 24
    assert ucf24.classes[0] == "Basketball" and ucf24.classes[23] == "WalkingWithDog"
    assert sum(len(v.tubes) for v in ucf24.videos) == 4458
    assert len(ucf24.split("test")) == 910
    assert len(ucf24.split("train")) == 2284
    assert {v.split for v in ucf24.videos} == {"train", "test"}
    assert all((v.width, v.height, v.fps, v.path) == (320, 240, 25.0, None)
               for v in ucf24.videos)
    # the ground-truth segments: per class, the union of its tubes' frames in maximal runs
    # (tubes that overlap or touch make one instance: Fencing's two fencers are one)
    merged = 0
    for v in ucf24.videos:
        for k in {t.label for t in v.tubes}:
            frames = set().union(*(range(t.start_frame, t.end_frame) for t in v.tubes
                                   if t.label == k))
            runs = [s.frame_range(v.fps) for s in v.segments if s.label == k]
            assert set().union(*(range(*r) for r in runs)) == frames, v.name
            assert all(b[0] > a[1] for a, b in zip(runs, runs[1:])), v.name  # apart
            merged += sum(t.label == k for t in v.tubes) - len(runs)
    assert merged > 0 and sum(len(v.segments) for v in ucf24.videos) == 4458 - merged == 3468
    assert sum(len(v.segments) for v in ucf24.split("test").videos) == 966


def test_ground_truth_tubes_as_predictions_score_100_temporally(ucf24):
    """The readers' segments and the predicted ones follow one rule: the test split's own
    tubes, linked as a detector's would be, give temporal mAP 100 % (87 % when each tube was
    its own ground-truth segment)."""
    test = ucf24.split("test")
    rows = [(v.name, t) for v in test.videos for t in v.tubes]
    preds = TubePredictions(np.array([n for n, _ in rows], object),
                            np.array([t.label for _, t in rows]), np.ones(len(rows)),
                            np.array([t.start_frame for _, t in rows]),
                            [np.asarray(t.boxes, np.float64) for _, t in rows])
    segments = segments_from_tubes(preds, {v.name: v.fps for v in test.videos}, merge=True)
    assert temporal_ap(test, segments, (0.5,))[0.5].mean_ap == pytest.approx(1.0)
    # the old ground truth, one segment per tube, against the same predictions: 87.0 %
    per_tube = AnnotationSet(test.classes, [dataclasses.replace(v, segments=[
        Segment(t.label, t.start_frame / v.fps, t.end_frame / v.fps) for t in v.tubes])
        for v in test.videos])
    assert temporal_ap(per_tube, segments, (0.5,))[0.5].mean_ap == pytest.approx(0.870, abs=5e-4)


def test_box_conversion_known_answer(ucf24, raw_db):
    v = ucf24["Basketball/v_Basketball_g01_c01"]
    raw = raw_db["Basketball/v_Basketball_g01_c01"]["annotations"][0]
    assert raw["boxes"][0].tolist() == [189, 102, 47, 78]  # 1-based [x, y, w, h]
    assert v.num_frames == 141
    t = v.tubes[0]
    assert (t.start_frame, t.end_frame, t.label) == (8, 52, 0)
    # [x - 1, y - 1, x + w, y + h] = [188, 101, 236, 180]
    np.testing.assert_array_equal(t.boxes[0], [188, 101, 236, 180])


def test_uint8_overflow_is_avoided(ucf24, raw_db):
    raw = raw_db["Skijet/v_Skijet_g10_c04"]["annotations"][0]
    assert raw["boxes"].dtype == np.uint8
    x, y, w, h = raw["boxes"][28]
    assert (int(x), int(y), int(w), int(h)) == (212, 55, 48, 59)
    with np.errstate(over="ignore"):
        assert int(x + w) == 4  # the trap: uint8 arithmetic wraps 260 to 4
    t = ucf24["Skijet/v_Skijet_g10_c04"].tubes[0]
    np.testing.assert_array_equal(t.boxes[28], [211, 54, 260, 114])
    # README: 1445 uint8 tubes have x + w or y + h above 255; all of them keep the true value
    n = 0
    for name, entry in raw_db.items():
        for rt, t in zip(entry["annotations"], ucf24[str(name)].tubes, strict=True):
            if rt["boxes"].dtype == np.uint8 and ((t.boxes[:, 2] > 255) | (t.boxes[:, 3] > 255)
                                                  ).any():
                n += 1
    assert n == 1445


def test_uint16_numf_and_readme_clips(ucf24):
    assert ucf24["SoccerJuggling/v_SoccerJuggling_g11_c06"].num_frames == 307  # uint16 in file
    # README table of the six provided clips: frames, (sf, ef) per tube, label
    table = {
        "Basketball/v_Basketball_g01_c02": (180, [(63, 111)], 0),
        "Basketball/v_Basketball_g07_c04": (101, [(14, 64)], 0),
        "Biking/v_Biking_g01_c01": (151, [(0, 151)], 2),
        "CliffDiving/v_CliffDiving_g03_c01": (92, [(23, 78)], 3),
        "Fencing/v_Fencing_g01_c06": (174, [(0, 174), (0, 174)], 6),
        "HorseRiding/v_HorseRiding_g01_c03": (98, [(0, 98)], 9),
    }
    for name, (numf, ranges, label) in table.items():
        v = ucf24[name]
        assert v.num_frames == numf
        assert [(t.start_frame, t.end_frame) for t in v.tubes] == ranges
        assert {t.label for t in v.tubes} == {label}


def test_testlist_agrees_and_disagreement_is_named(ucf24_pkl, shared_data, tmp_path, ucf24):
    testlist = shared_data / "ucf24" / "annotations" / "testlist01.txt"
    ann = read_ucf24_pyannot(ucf24_pkl, testlist=testlist)
    assert len(ann.split("test")) == 910
    lines = testlist.read_text().split()
    short = tmp_path / "short.txt"
    short.write_text("\n".join(lines[1:]))
    with pytest.raises(AnnotationError, match=lines[0].replace("/", "/")) as e:
        read_ucf24_pyannot(ucf24_pkl, testlist=short)
    assert e.value.video == lines[0]
    train_video = ucf24.split("train").videos[0].name
    extra = tmp_path / "extra.txt"
    extra.write_text("\n".join(lines + [train_video]))
    with pytest.raises(AnnotationError, match="trainvideos") as e:
        read_ucf24_pyannot(ucf24_pkl, testlist=extra)
    assert e.value.video == train_video


def test_frame_size_rescales_with_warning(ucf24_pkl, ucf24):
    with pytest.warns(UserWarning, match=r"320x240 to 340x256 \(x \* 1\.0625, y \* 1\.0667\)"):
        ann = read_ucf24_pyannot(ucf24_pkl, frame_size=(340, 256))
    v = ann["Basketball/v_Basketball_g01_c01"]
    assert (v.width, v.height) == (340, 256)
    np.testing.assert_allclose(v.tubes[0].boxes[0],
                               [188 * 1.0625, 101 * 256 / 240, 236 * 1.0625, 180 * 256 / 240],
                               rtol=1e-6)
    # the cached set is untouched
    np.testing.assert_array_equal(ucf24["Basketball/v_Basketball_g01_c01"].tubes[0].boxes[0],
                                  [188, 101, 236, 180])


def test_rescale_to_video_sizes_per_video(ucf24):
    sizes = {"Biking/v_Biking_g01_c01": (640, 480), "not/a_video": (1, 1)}
    out = rescale_to_video_sizes(ucf24, sizes)
    out.validate()
    b, b0 = out["Biking/v_Biking_g01_c01"], ucf24["Biking/v_Biking_g01_c01"]
    assert (b.width, b.height) == (640, 480)
    np.testing.assert_allclose(b.tubes[0].boxes, b0.tubes[0].boxes * 2)
    f = out["Fencing/v_Fencing_g01_c06"]
    assert (f.width, f.height) == (320, 240)
    assert f.tubes[0].boxes is ucf24["Fencing/v_Fencing_g01_c06"].tubes[0].boxes
    with pytest.raises(ValueError, match="positive"):
        rescale_to_video_sizes(ucf24, {"Biking/v_Biking_g01_c01": (0, 240)})


def _small(tmp_path: Path, **change) -> Path:
    boxes = np.array([[10, 20, 30, 40], [11, 21, 30, 40]], np.uint8)
    videos = {"A/v_A_g01_c01": {"numf": 5, "tubes": [(0, 1, boxes)]},
              "B/v_B_g01_c01": {"numf": 300, "tubes": [(1, 290, boxes)]}}
    videos["A/v_A_g01_c01"].update(change)
    return write_pyannot(tmp_path / "pyannot.pkl", ["A", "B"], videos, ["A/v_A_g01_c01"])


def test_small_pickle_round_trip(tmp_path):
    ann = read_ucf24_pyannot(_small(tmp_path))
    a, b = ann["A/v_A_g01_c01"], ann["B/v_B_g01_c01"]
    assert (a.split, b.split, a.num_frames, b.num_frames) == ("train", "test", 5, 300)
    np.testing.assert_array_equal(a.tubes[0].boxes, [[9, 19, 40, 60], [10, 20, 41, 61]])
    assert (b.tubes[0].start_frame, b.tubes[0].label) == (290, 1)
    # a folder holding one pyannot*.pkl works too
    assert len(read_ucf24_pyannot(tmp_path)) == 2


@pytest.mark.parametrize("change, match", [
    ({"numf": 2}, "sf < ef <= numf"),
    ({"tubes": [(5, 1, np.ones((2, 4), np.uint8))]}, "unknown class index 5"),
    ({"tubes": [(0, 1, 3, np.ones((3, 4), np.uint8))]}, "holds 3 boxes but ef - sf = 2"),
    ({"tubes": [(0, 1, np.array([[1, 1, -3, 5], [1, 1, 2, 2]], np.int64))]}, "x2 <= x1"),
    ({"tubes": [(0, 1, np.array([[300, 1, 30, 5], [1, 1, 2, 2]], np.int64))]}, "outside"),
    ({"tubes": [(0, 1, 3, "boxes")]}, "numeric"),
    ({"tubes": [(0, 1.5, 3, np.ones((2, 4), np.uint8))]}, "must be an integer"),
    ({"numf": "many"}, "must be an integer"),
])
def test_small_pickle_errors(tmp_path, change, match):
    with pytest.raises(AnnotationError, match=match) as e:
        read_ucf24_pyannot(_small(tmp_path, **change))
    assert e.value.video == "A/v_A_g01_c01"
    assert "pyannot.pkl" in str(e.value)


def test_missing_and_truncated_file(tmp_path):
    with pytest.raises(AnnotationError, match="not found"):
        read_ucf24_pyannot(tmp_path / "nope.pkl")
    p = _small(tmp_path)
    p.write_bytes(p.read_bytes()[:-10])
    with pytest.raises(AnnotationError, match="truncated"):
        read_ucf24_pyannot(p)


def test_hostile_pickle_is_refused(tmp_path):
    p = tmp_path / "pyannot.pkl"
    p.write_bytes(pickle.dumps({"classes": ["A"], "db": {}, "trainvideos": [], "x": print}))
    with pytest.raises(AnnotationError, match="refusing to load builtins.print"):
        read_ucf24_pyannot(p)


def test_rescale_to_probed_clip_sizes(ucf24, ucf24_videos):
    from weaktube.data.video import probe_video

    infos = {f"{p.stem.split('_')[1]}/{p.stem}": probe_video(p)
             for p in sorted(ucf24_videos.glob("*.mp4"))}
    assert len(infos) == 6
    out = rescale_to_video_sizes(ucf24, {n: (i.width, i.height) for n, i in infos.items()})
    out.validate()
    for name, info in infos.items():
        v, v0 = out[name], ucf24[name]
        assert v.num_frames == info.num_frames  # numf = the decoded frame count
        assert (v.width, v.height) == (340, 256)
        np.testing.assert_allclose(v.tubes[0].boxes, v0.tubes[0].boxes
                                   * [340 / 320, 256 / 240, 340 / 320, 256 / 240], rtol=1e-6)
