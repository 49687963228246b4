import dataclasses
import json

import numpy as np
import pytest

from weaktube.structures import (
    AnnotationError,
    AnnotationSet,
    Detections,
    Segment,
    SegmentPredictions,
    Tube,
    TubePredictions,
    VideoRecord,
)


def _ann() -> AnnotationSet:
    v = VideoRecord("a", num_frames=10, width=100, height=80, fps=5.0, split="train",
                    tubes=[Tube(1, 2, np.array([[10, 10, 50, 60]] * 4, np.float32))],
                    segments=[Segment(1, 0.4, 1.2)])
    w = VideoRecord("b", 20, 100, 80, 10.0, "test")
    return AnnotationSet(["x", "y"], [v, w])


def test_roundtrip(tmp_path):
    p = tmp_path / "ann.json"
    _ann().save(p)
    back = AnnotationSet.load(p)
    assert back.to_dict() == _ann().to_dict()
    assert json.loads(p.read_text())["format"] == "weaktube/annotations@1"
    assert back["a"].tubes[0].end_frame == 6


def test_boxes_at_and_segments():
    v = _ann()["a"]
    boxes, labels = v.boxes_at(5)
    assert boxes.shape == (1, 4) and labels.tolist() == [1]
    assert v.boxes_at(6)[0].shape == (0, 4)
    # start <= f / fps < end: 0.4 s * 5 fps = frame 2 (inside), 1.2 s = frame 6 (outside)
    assert v.segments[0].frame_range(5.0) == (2, 6)
    assert np.nonzero(v.segment_labels() == 1)[0].tolist() == [2, 3, 4, 5]


def test_without_boxes_keeps_segments():
    weak = _ann().without_boxes("train")
    assert weak["a"].tubes == [] and len(weak["a"].segments) == 1


@pytest.mark.parametrize("mutate, expect", [
    (lambda d: d["videos"][0]["tubes"][0]["boxes"].__setitem__(1, [50, 10, 10, 60]),
     ["video 'a'", "tube 0", "frame 3", "field 'boxes'", "x1 < x2"]),
    (lambda d: d["videos"][0]["tubes"][0]["boxes"].__setitem__(0, [10, 10, 150, 60]),
     ["video 'a'", "frame 2", "outside"]),
    (lambda d: d["videos"][0]["tubes"][0].__setitem__("start_frame", 8),
     ["video 'a'", "tube 0", "frame 11", "10 frames"]),
    (lambda d: d["videos"][0]["tubes"][0].__setitem__("label", 5),
     ["video 'a'", "tube 0", "field 'label'"]),
    (lambda d: d["videos"][1].pop("fps"), ["video 'b'", "field 'fps'", "missing"]),
    (lambda d: d["videos"][1].__setitem__("name", "a"), ["video 'a'", "duplicate"]),
    (lambda d: d["videos"][0]["segments"][0].__setitem__("end", 0.1),
     ["video 'a'", "segment 0", "start < end"]),
    (lambda d: d.__setitem__("classes", []), ["field 'classes'"]),
])
def test_bad_files_name_the_place(tmp_path, mutate, expect):
    d = _ann().to_dict()
    mutate(d)
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(d))
    with pytest.raises(AnnotationError) as e:
        AnnotationSet.load(p)
    msg = str(e.value)
    assert "bad.json" in msg
    for part in expect:
        assert part in msg, msg


def test_not_json(tmp_path):
    p = tmp_path / "x.json"
    p.write_text("{not json")
    with pytest.raises(AnnotationError, match="not valid JSON"):
        AnnotationSet.load(p)
    with pytest.raises(AnnotationError, match="file not found"):
        AnnotationSet.load(tmp_path / "missing.json")


def test_detections_roundtrip(tmp_path):
    d = Detections(np.array(["a", "b"], object), np.array([0, 3]), np.array([1, 0]),
                   np.array([0.9, 0.25], np.float32),
                   np.array([[1, 2, 3, 4], [5, 6, 7, 8]], np.float32))
    d.save(tmp_path / "d.json")
    back = Detections.load(tmp_path / "d.json")
    assert back.videos.tolist() == ["a", "b"] and back.frames.tolist() == [0, 3]
    np.testing.assert_allclose(back.boxes, d.boxes)
    (tmp_path / "bad.json").write_text('{"format": "weaktube/detections@1", '
                                       '"detections": [{"video": "a", "frame": 1}]}')
    with pytest.raises(AnnotationError, match="detection 0"):
        Detections.load(tmp_path / "bad.json")


def test_prediction_files_carry_their_class_list(tmp_path):
    d = Detections(np.array(["a"], object), np.array([0]), np.array([1]),
                   np.array([0.9], np.float32), np.array([[1, 2, 3, 4]], np.float32),
                   classes=["run", "jump"])
    d.save(tmp_path / "d.json")
    assert Detections.load(tmp_path / "d.json").classes == ["run", "jump"]
    assert Detections.concat([d.select(np.array([], np.int64)), d]).classes == ["run", "jump"]
    assert Detections.concat([d, dataclasses.replace(d, classes=["x", "y"])]).classes is None
    t = TubePredictions(np.array(["a"], object), np.array([0]), np.array([0.5]), np.array([2]),
                        [np.array([[1.0, 2, 3, 4]])], classes=["run"])
    t.save(tmp_path / "t.json")
    assert TubePredictions.load(tmp_path / "t.json").classes == ["run"]
    s = SegmentPredictions(np.array(["a"], object), np.array([0]), np.array([0.5]),
                           np.array([0.0]), np.array([1.0]))
    s.save(tmp_path / "s.json")  # no class list: none written, none read
    assert "classes" not in json.loads((tmp_path / "s.json").read_text())
    assert SegmentPredictions.load(tmp_path / "s.json").classes is None
    (tmp_path / "bad.json").write_text('{"format": "weaktube/segments@1", "classes": [1], '
                                       '"segments": []}')
    with pytest.raises(AnnotationError, match="bad.json.*classes|classes.*bad.json"):
        SegmentPredictions.load(tmp_path / "bad.json")


def test_segment_frames_survive_rounding():
    # 30 fps: frame 2 starts at 0.0666... s; files and other tools round the seconds
    for fps in (30.0, 29.97, 25.0, 24.0):
        for f in range(0, 200, 7):
            for digits in (4, 6):
                seg = Segment(0, round(f / fps, digits), round((f + 5) / fps, digits))
                assert seg.frame_range(fps) == (f, f + 5), (fps, f, digits)
