"""YOWO per-frame label files: the real J-HMDB-21 zip, and hand-built folders / zips."""

from __future__ import annotations

import csv
import zipfile

import numpy as np
import pytest

from tests.data.readers.builders import write_yowo_folder, write_yowo_zip
from weaktube.data.readers import attach_frame_paths, read_yowo_txt
from weaktube.data.readers._common import JHMDB21_CLASSES, UCF24_CLASSES
from weaktube.data.readers.yowo_txt import link_frame_boxes
from weaktube.data.video import find_video
from weaktube.structures import AnnotationError

UCF_IDS = {c: i + 1 for i, c in enumerate(UCF24_CLASSES)}
JHMDB_IDS = {c: i + 1 for i, c in enumerate(JHMDB21_CLASSES)}


def test_real_jhmdb_zip_counts(jhmdb):
    assert len(jhmdb) == 268
    assert jhmdb.classes == list(JHMDB21_CLASSES) and jhmdb.num_classes == 21
    stats = jhmdb.statistics()["splits"]
    assert list(stats) == ["test"]
    assert stats["test"]["boxes"] == 9126
    # every video is labelled on every frame 1..N: one tube covering the whole video
    assert all(len(v.tubes) == 1 and v.tubes[0].start_frame == 0
               and v.tubes[0].end_frame == v.num_frames for v in jhmdb.videos)
    frames = [v.num_frames for v in jhmdb.videos]
    assert (min(frames), max(frames), round(np.mean(frames), 2)) == (15, 40, 34.05)
    per_class = jhmdb.statistics()["tubes_per_class"]
    assert min(per_class.values()) == 11 and max(per_class.values()) == 16
    assert all((v.width, v.height, v.fps) == (320, 240, 30.0) for v in jhmdb.videos)


def test_real_jhmdb_zip_matches_the_csv_table(jhmdb, shared_data):
    # the derived csv holds the same 9126 boxes, 1-based: converted = [x1 - 1, y1 - 1, x2, y2]
    v = jhmdb["clap/Boom_Snap_Clap_clap_u_nm_np1_fr_med_1"]
    np.testing.assert_array_equal(v.tubes[0].boxes[37], [112, 10, 230, 240])  # "3 113 11 230 240"
    with open(shared_data / "jhmdb21" / "jhmdb21_gt_frames.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 9126
    for r in rows:
        v = jhmdb[f"{r['class_name']}/{r['video']}"]
        t = v.tubes[0]
        assert t.label == int(r["class_id_1based"]) - 1
        np.testing.assert_array_equal(
            t.boxes[int(r["frame_1based"]) - 1],
            [int(r["x1"]) - 1, int(r["y1"]) - 1, int(r["x2"]), int(r["y2"])])


FENCE = "Fencing/v_Fencing_g01_c01"
BASKET = "Basketball/v_Basketball_g01_c01"
DUNK = "BasketballDunk/v_BasketballDunk_g01_c01"


def _videos() -> dict:
    left, right = (11, 21, 60, 120), (201, 21, 260, 120)
    return {
        # two actors on frames 1-3; the line order swaps on frame 2
        FENCE: {1: [left, right], 2: [right, left], 3: [left, right]},
        # frames 1-2, gap at 3, frame 4; an empty file for frame 6 (no box)
        BASKET: {1: [(1, 1, 10, 10)], 2: [(2, 1, 11, 10)], 4: [(3, 1, 12, 10)], 6: []},
        DUNK: {1: [(1, 1, 320, 240)]},
    }


def test_nested_folder_round_trip(tmp_path):
    write_yowo_folder(tmp_path, _videos(), UCF_IDS, trainlist=[FENCE], testlist=[BASKET])
    with pytest.warns(UserWarning, match="1 labelled video.*BasketballDunk"):
        ann = read_yowo_txt(tmp_path)
    assert ann.classes == list(UCF24_CLASSES)
    assert [v.name for v in ann.videos] == [BASKET, FENCE]
    f, b = ann[FENCE], ann[BASKET]
    assert (f.split, b.split, f.fps) == ("train", "test", 25.0)
    assert [(t.label, t.start_frame, t.end_frame) for t in f.tubes] == [(6, 0, 3), (6, 0, 3)]
    # identities follow the boxes, not the line order
    np.testing.assert_array_equal(f.tubes[0].boxes[:, 0], [10, 10, 10])
    np.testing.assert_array_equal(f.tubes[1].boxes[:, 0], [200, 200, 200])
    assert [(t.start_frame, t.end_frame) for t in b.tubes] == [(0, 2), (3, 4)]
    np.testing.assert_array_equal(b.tubes[1].boxes, [[2, 0, 12, 10]])
    assert b.num_frames == 6  # the highest label file, even an empty one
    assert [s.frame_range(25.0) for s in b.segments] == [(0, 2), (3, 4)]
    # the labels folder itself, and an explicit split for everything
    ann = read_yowo_txt(tmp_path / "labels", split="train")
    assert {v.split for v in ann.videos} == {"train"} and len(ann) == 3


def test_flat_zip_with_underscored_classes(tmp_path):
    videos = {"shoot_ball/a_shoot_bow_clip_1": {1: [(5, 5, 50, 60)], 2: [(6, 5, 51, 60)]},
              "shoot_bow/b_1": {3: [(1, 1, 320, 240)]}}
    ann = read_yowo_txt(write_yowo_zip(tmp_path / "gt.zip", videos, JHMDB_IDS))
    assert ann.classes == list(JHMDB21_CLASSES)
    a, b = ann["shoot_ball/a_shoot_bow_clip_1"], ann["shoot_bow/b_1"]
    assert (a.tubes[0].label, b.tubes[0].label) == (12, 13)
    assert (a.num_frames, b.num_frames, b.tubes[0].start_frame) == (2, 3, 2)
    assert {v.split for v in ann.videos} == {"test"}  # no list files
    # the same files unpacked into a flat folder
    with zipfile.ZipFile(tmp_path / "gt.zip") as z:
        z.extractall(tmp_path / "x")
    assert read_yowo_txt(tmp_path / "x" / "groundtruths").to_dict() == ann.to_dict()


def test_custom_classes(tmp_path):
    ids = {"jog": 1, "leap": 2}
    write_yowo_folder(tmp_path, {"leap/v1": {1: [(1, 1, 5, 5)]}, "jog/v2": {1: [(1, 1, 5, 5)]}},
                      ids)
    assert read_yowo_txt(tmp_path).classes == ["jog", "leap"]  # sorted folder names
    with pytest.raises(AnnotationError, match="unknown class 'leap'"):
        read_yowo_txt(tmp_path, classes=["jog", "run"])
    write_yowo_zip(tmp_path / "f.zip", {"leap/v1": {1: [(1, 1, 5, 5)]}}, ids)
    with pytest.raises(AnnotationError, match="unknown class: the name does not start"):
        read_yowo_txt(tmp_path / "f.zip")
    assert read_yowo_txt(tmp_path / "f.zip", classes=["jog", "leap"]).videos[0].tubes[0].label \
        == 1


@pytest.mark.parametrize("text, match, field", [
    ("7 1 1 5 5\n", r"class id 7 \('Fencing'\) but the file belongs to class 'Basketball'",
     "class_id"),
    ("99 1 1 5 5\n", "unknown class id 99", "class_id"),
    ("1 1 1 5\n", "must be 'class_id x1 y1 x2 y2'", "line"),
    ("1 1 one 5 5\n", "finite number", "box"),
    ("1 9 1 5 5\n", "x2 <= x1", "x2"),
    ("1 1 1 5 400\n", "outside the 320x240 frame", "boxes"),
])
def test_bad_lines(tmp_path, text, match, field):
    folder = tmp_path / "labels" / "Basketball" / "v_B"
    folder.mkdir(parents=True)
    (folder / "00004.txt").write_text(text)
    with pytest.raises(AnnotationError, match=match) as e:
        read_yowo_txt(tmp_path)
    assert (e.value.video, e.value.frame, e.value.field) == ("Basketball/v_B", 4, field)
    assert "00004.txt" in str(e.value)


def test_bad_frame_names_and_sources(tmp_path):
    folder = tmp_path / "labels" / "Basketball" / "v_B"
    folder.mkdir(parents=True)
    (folder / "00000.txt").write_text("1 1 1 5 5\n")
    with pytest.raises(AnnotationError, match="not a 1-based integer"):
        read_yowo_txt(tmp_path)
    with pytest.raises(AnnotationError, match="no label files"):
        read_yowo_txt(tmp_path / "labels" / "Basketball")
    with pytest.raises(AnnotationError, match="folder of YOWO label files or a .zip"):
        read_yowo_txt(tmp_path / "missing")
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(AnnotationError, match="cannot read the zip"):
        read_yowo_txt(bad)


def test_frames_root_sets_paths_and_extends_frames(tmp_path):
    write_yowo_folder(tmp_path, _videos(), UCF_IDS)
    for name, n in ((BASKET, 8), (FENCE, 3)):
        d = tmp_path / "rgb-images" / name
        d.mkdir(parents=True)
        for i in range(1, n + 1):
            (d / f"{i:05d}.jpg").write_bytes(b"")
    with pytest.warns(UserWarning, match="no frame folder for 1 of 3 videos"):
        ann = read_yowo_txt(tmp_path, frames_root=tmp_path / "rgb-images")
    assert ann[BASKET].path == str(tmp_path / "rgb-images" / BASKET)
    assert ann[BASKET].num_frames == 8  # 6 from the labels, 8 images
    assert ann[DUNK].path is None
    # the helper on its own keeps num_frames and reports the mismatch
    plain = read_yowo_txt(tmp_path)
    with pytest.warns(UserWarning) as record:
        out = attach_frame_paths(plain, tmp_path / "rgb-images")
    messages = [str(w.message) for w in record]
    assert len(messages) == 2 and "1 frame folder(s) hold a different number" in messages[1]
    assert "Basketball/v_Basketball_g01_c01 (8 images, 6 frames)" in messages[1]
    assert out[BASKET].num_frames == 6 and out[FENCE].path is not None


def test_a_relative_frames_root_is_stored_absolute(tmp_path, monkeypatch):
    write_yowo_folder(tmp_path, _videos(), UCF_IDS)
    d = tmp_path / "rgb-images" / BASKET
    d.mkdir(parents=True)
    for i in range(1, 7):  # the 6 frames its labels span
        (d / f"{i:05d}.jpg").write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    with pytest.warns(UserWarning, match="no frame folder"):
        ann = read_yowo_txt(tmp_path, frames_root="rgb-images")
    assert ann[BASKET].path == str(d)
    # found whatever --videos root the file is later used with
    assert find_video(tmp_path / "elsewhere", BASKET, ann[BASKET].path) == d


def test_link_frame_boxes_greedy_by_iou():
    a, b = np.array([0, 0, 10, 10.0]), np.array([100, 0, 110, 10.0])
    tubes = link_frame_boxes({0: [(1, a), (1, b)], 1: [(1, b + 1), (1, a + 1)], 2: [(1, a)],
                              3: [(0, a)]})
    got = [(t.label, t.start_frame, t.boxes[:, 0].tolist()) for t in tubes]
    assert got == [(1, 0, [0, 1, 0]), (1, 0, [100, 101]), (0, 3, [0])]
