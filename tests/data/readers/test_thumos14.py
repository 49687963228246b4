"""THUMOS'14: the official per-class text files and the ActionFormer json, on the real files."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import pytest

from tests.data.readers.builders import write_thumos
from weaktube.data.readers import ReaderOptionError, read_actionformer_json, read_thumos14_txt
from weaktube.data.readers._common import THUMOS14_CLASSES
from weaktube.structures import AnnotationError, AnnotationSet

OUT_OF_RANGE_VIDEOS = {"video_validation_0000364", "video_validation_0000856",
                       "video_test_0000814", "video_test_0001081", "video_test_0000270"}


@pytest.fixture(scope="module")
def txt_root(shared_data: Path) -> Path:
    return shared_data / "thumos14" / "official_txt"


@pytest.fixture(scope="module")
def video_info(shared_data: Path) -> Path:
    return shared_data / "thumos14" / "mmtad_json" / "TH14_video_info.json"


@pytest.fixture(scope="module")
def thumos(txt_root: Path) -> AnnotationSet:
    return read_thumos14_txt(txt_root)


def _count(ann: AnnotationSet, split: str, ambiguous: bool) -> int:
    return sum(s.ambiguous == ambiguous for v in ann.split(split).videos for s in v.segments)


def test_official_txt_counts(thumos):
    assert thumos.classes == list(THUMOS14_CLASSES)
    assert (len(thumos.split("val")), len(thumos.split("test"))) == (200, 213)
    assert _count(thumos, "val", False) == 3007
    assert _count(thumos, "test", False) == 3358
    assert _count(thumos, "val", True) + _count(thumos, "test", True) == 188
    for v in thumos.videos:
        assert (v.width, v.height, v.fps) == (0, 0, 30.0)
        assert v.num_frames == math.ceil(max(s.end for s in v.segments) * 30 - 1e-9)
        assert all(s.label == 0 for s in v.segments if s.ambiguous)
    # video_test_0001292 holds only ambiguous segments: kept, and nothing it holds is a label
    v = thumos["video_test_0001292"]
    assert v.segments and all(s.ambiguous for s in v.segments)
    assert (v.segment_labels() == -1).all()


def test_cliffdiving_is_also_diving(thumos):
    cliff, diving = THUMOS14_CLASSES.index("CliffDiving"), THUMOS14_CLASSES.index("Diving")
    n = 0
    for v in thumos.videos:
        dives = {(s.start, s.end) for s in v.segments if s.label == diving}
        for s in v.segments:
            if s.label == cliff:
                assert (s.start, s.end) in dives
                n += 1
    assert n > 0


def test_ambiguous_can_be_left_out(txt_root):
    ann = read_thumos14_txt(txt_root, ambiguous=False)
    assert not any(s.ambiguous for v in ann.videos for s in v.segments)
    assert sum(len(v.segments) for v in ann.videos) == 3007 + 3358
    assert "video_test_0001292" not in ann


def test_video_info_and_out_of_range(txt_root, video_info):
    with pytest.warns(UserWarning) as record:
        ann = read_thumos14_txt(txt_root, video_info=video_info, ambiguous=False)
    messages = " | ".join(str(w.message) for w in record)
    assert "30 segment(s) starting after the video end dropped" in messages
    assert sum(len(v.segments) for v in ann.videos) == 3007 + 3358 - 30
    v = ann["video_validation_0000170"]  # fps 30.0, num_frame 6476 in the info file
    assert (v.num_frames, v.fps) == (6476, 30.0)
    assert any(v.fps == pytest.approx(30000 / 1001) for v in ann.videos)
    with pytest.raises(AnnotationError, match="beyond the video end") as e:
        read_thumos14_txt(txt_root, video_info=video_info, out_of_range="error")
    assert e.value.video in OUT_OF_RANGE_VIDEOS
    # named by the class file and the line that holds it, not the folder and a merged index
    src, line = Path(e.value.file), int(e.value.field.removeprefix("line "))
    assert src.is_file() and src.name.endswith(("_val.txt", "_test.txt"))
    assert src.read_text().splitlines()[line - 1].split()[0] == e.value.video
    with pytest.raises(ReaderOptionError, match="out_of_range"):
        read_thumos14_txt(txt_root, out_of_range="keep")


def test_actionformer_json_matches_the_txt(shared_data, thumos):
    path = shared_data / "thumos14" / "actionformer_json" / "thumos14.json"
    with pytest.warns(UserWarning, match="30 segment.*starting after the video end"):
        af = read_actionformer_json(path)
    assert len(af) == 412 and af.classes == list(THUMOS14_CLASSES)
    assert {v.split for v in af.videos} == {"val", "test"}
    v = af["video_test_0000004"]
    assert (v.fps, v.num_frames) == (30.0, round(33.83 * 30))
    bowling = sorted((s.start, s.end) for s in v.segments if s.label == 5)  # CricketBowling
    assert bowling[:2] == [(0.2, 1.1), (11.4, 12.2)]
    total_dropped = 0
    for v in af.videos:
        txt = Counter((s.label, s.start, s.end) for s in thumos[v.name].segments
                      if not s.ambiguous)
        dropped = Counter(k for k in txt.elements() if k[1] >= v.duration)
        total_dropped += sum(dropped.values())
        assert Counter((s.label, s.start, s.end) for s in v.segments) + dropped == txt, v.name
        assert v.split == thumos[v.name].split
    assert total_dropped == 30
    assert sum(len(v.segments) for v in af.videos) + total_dropped == 6365


def test_actionformer_json_takes_frame_counts_from_video_info(shared_data):
    path = shared_data / "thumos14" / "actionformer_json" / "thumos14.json"
    info_path = shared_data / "thumos14" / "mmtad_json" / "TH14_video_info.json"
    info = json.loads(info_path.read_text())
    with pytest.warns(UserWarning, match="after the video end"):
        plain = read_actionformer_json(path)
    with pytest.warns(UserWarning, match="after the video end"):
        af = read_actionformer_json(path, video_info=info_path)
    # ActionFormer's duration overstates every video by 2-4 frames; the info file is taken
    assert Counter(plain[v.name].num_frames - v.num_frames for v in af.videos) == \
        {3: 388, 2: 15, 4: 9}
    for v in af.videos:
        assert (v.fps, v.num_frames) == (info[v.name]["fps"], info[v.name]["num_frame"])


def _thumos_tree(tmp_path: Path, rows: dict) -> Path:
    return write_thumos(tmp_path, {"val": {"Diving": [("video_validation_1", 1.0, 2.0)]},
                                   **rows})


def test_synthetic_round_trip(tmp_path):
    root = _thumos_tree(tmp_path, {"test": {
        "Billiards": [("video_test_9", 5.5, 7.5), ("video_test_9", 0.0, 1.0)],
        "Ambiguous": [("video_test_9", 3.0, 4.0)]}})
    ann = read_thumos14_txt(root)
    assert ann.classes == ["Billiards", "Diving"]
    v = ann["video_test_9"]
    assert [(s.label, s.start, s.end, s.ambiguous) for s in v.segments] == [
        (0, 0.0, 1.0, False), (0, 3.0, 4.0, True), (0, 5.5, 7.5, False)]
    assert (v.split, v.num_frames) == ("test", 225)
    assert read_thumos14_txt(root / "annotations_test").classes == ["Billiards"]


@pytest.mark.parametrize("line, match", [
    ("video_test_9 1.0\n", "must be 'video start end'"),
    ("video_test_9 1.0 x\n", "finite number"),
    ("video_test_9 2.0 1.0\n", "needs 0 <= start <= end"),
    ("video_test_9 -1.0 1.0\n", "needs 0 <= start <= end"),
])
def test_synthetic_errors(tmp_path, line, match):
    root = _thumos_tree(tmp_path, {})
    (root / "annotations_val" / "Billiards_val.txt").write_text(line)
    with pytest.raises(AnnotationError, match=match) as e:
        read_thumos14_txt(root)
    assert "Billiards_val.txt" in str(e.value)


def test_split_conflict_and_empty_folder(tmp_path):
    root = _thumos_tree(tmp_path, {"test": {"Diving": [("video_validation_1", 1.0, 2.0)]}})
    with pytest.raises(AnnotationError, match="both the 'val' and the 'test'"):
        read_thumos14_txt(root)
    (tmp_path / "empty").mkdir()
    with pytest.raises(AnnotationError, match="no <Class>_val.txt"):
        read_thumos14_txt(tmp_path / "empty")
    with pytest.raises(AnnotationError, match="expected a folder"):
        read_thumos14_txt(tmp_path / "missing")
