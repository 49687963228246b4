"""weaktube/tubes@1 and weaktube/segments@1: round trip and strict loading."""

from __future__ import annotations

import json

import numpy as np
import pytest

from weaktube.structures import (
    DETECTIONS_FORMAT,
    SEGMENTS_FORMAT,
    TUBES_FORMAT,
    AnnotationError,
    Detections,
    SegmentPredictions,
    TubePredictions,
)

from .helpers import annotations, detections, segment_preds, tube, tube_preds, video


def write(path, obj):
    path.write_text(json.dumps(obj))
    return path


def test_tubes_round_trip(tmp_path):
    boxes = np.array([[1.5, 2.0, 30.25, 40.0], [2.0, 3.0, 31.0, 41.0]])
    t = tube_preds([("v1", 2, 0.75, 4, boxes, 2), ("v2", 0, 0.5, 0, [0, 0, 5, 5], 3)])
    p = tmp_path / "t.json"
    t.save(p)
    assert json.loads(p.read_text())["format"] == TUBES_FORMAT
    back = TubePredictions.load(p)
    assert list(back.videos) == ["v1", "v2"]
    np.testing.assert_array_equal(back.labels, [2, 0])
    np.testing.assert_array_equal(back.start_frames, [4, 0])
    np.testing.assert_allclose(back.scores, [0.75, 0.5])
    np.testing.assert_allclose(back.boxes[0], boxes)
    np.testing.assert_array_equal(back.lengths, [2, 3])
    assert [f.name for f in tmp_path.iterdir()] == ["t.json"]  # no temporary left behind


def test_segments_round_trip(tmp_path):
    s = segment_preds([("v1", 3, 0.9, 1.25, 7.5), ("v2", 0, 0.1, 0.0, 2.0)])
    p = tmp_path / "s.json"
    s.save(p)
    back = SegmentPredictions.load(p)
    assert json.loads(p.read_text())["format"] == SEGMENTS_FORMAT
    assert list(back.videos) == ["v1", "v2"]
    np.testing.assert_allclose(back.starts, [1.25, 0.0])
    np.testing.assert_allclose(back.ends, [7.5, 2.0])
    assert len(SegmentPredictions.empty()) == 0 and len(TubePredictions.empty()) == 0


GOOD_TUBE = {"video": "v", "label": 1, "score": 0.5, "start_frame": 3, "boxes": [[0, 0, 4, 4]]}


@pytest.mark.parametrize("change, field, where", [
    ({"label": "1"}, "label", "tube 1"),
    ({"label": True}, "label", "tube 1"),
    ({"label": -1}, "label", "tube 1"),
    ({"score": float("nan")}, "score", "tube 1"),
    ({"start_frame": -2}, "start_frame", "tube 1"),
    ({"start_frame": 1.5}, "start_frame", "tube 1"),
    ({"video": ""}, "video", "tube 1"),
    ({"boxes": []}, "boxes", "tube 1"),
    ({"boxes": [[0, 0, 4]]}, "boxes", "tube 1"),
    ({"boxes": [[0, 0, 4, 4], [5, 0, 4, 4]]}, "boxes", "frame 4"),
    ({"boxes": "x"}, "boxes", "tube 1"),
])
def test_tubes_strict_errors(tmp_path, change, field, where):
    bad = {**GOOD_TUBE, **change}
    p = write(tmp_path / "t.json", {"format": TUBES_FORMAT, "tubes": [GOOD_TUBE, bad]})
    with pytest.raises(AnnotationError) as e:
        TubePredictions.load(p)
    msg = str(e.value)
    assert e.value.field == field and where in msg and "t.json" in msg


def test_tubes_missing_field_and_format(tmp_path):
    row = dict(GOOD_TUBE)
    del row["score"]
    p = write(tmp_path / "t.json", {"format": TUBES_FORMAT, "tubes": [row]})
    with pytest.raises(AnnotationError, match="tube 0.*'score'.*missing"):
        TubePredictions.load(p)
    p = write(tmp_path / "t.json", {"format": SEGMENTS_FORMAT, "tubes": [GOOD_TUBE]})
    with pytest.raises(AnnotationError, match="expected format"):
        TubePredictions.load(p)
    p = write(tmp_path / "t.json", {"tubes": [GOOD_TUBE]})
    with pytest.raises(AnnotationError, match="format"):
        TubePredictions.load(p)
    p = write(tmp_path / "t.json", {"format": TUBES_FORMAT, "tubes": {}})
    with pytest.raises(AnnotationError, match="list"):
        TubePredictions.load(p)
    with pytest.raises(AnnotationError, match="not found"):
        TubePredictions.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(AnnotationError, match="not valid JSON"):
        TubePredictions.load(tmp_path / "bad.json")


GOOD_SEG = {"video": "v", "label": 0, "score": 1, "start": 0.5, "end": 2}


@pytest.mark.parametrize("change, field", [
    ({"end": 0.5}, "end"),
    ({"start": None}, "start"),
    ({"label": 2.0}, "label"),
    ({"score": "high"}, "score"),
    ({"video": 3}, "video"),
])
def test_segments_strict_errors(tmp_path, change, field):
    p = write(tmp_path / "s.json", {"format": SEGMENTS_FORMAT,
                                    "segments": [GOOD_SEG, {**GOOD_SEG, **change}]})
    with pytest.raises(AnnotationError) as e:
        SegmentPredictions.load(p)
    assert e.value.field == field and "segment 1" in str(e.value)


def test_segments_row_not_object(tmp_path):
    p = write(tmp_path / "s.json", {"format": SEGMENTS_FORMAT, "segments": [GOOD_SEG, 3]})
    with pytest.raises(AnnotationError, match="segment 1.*must be an object"):
        SegmentPredictions.load(p)


def test_saved_detections_score_as_the_run_did(tmp_path):
    """A detections file reads back to the same ranking and ties as the run that wrote it, so
    ``weaktube evaluate`` on it gives the run's own frame-mAP (scores rounded to 5 decimals
    made a tie of 0.1234561 and 0.1234559, broken by row order: AP 0.5 became 0.125)."""
    from weaktube.evaluate import frame_ap

    gt = annotations(video("a", [tube(0, 0, [0, 0, 9, 9], 1)]))
    det = detections([("a", 0, 0, 0.1234559, [50, 50, 59, 59]),  # false positive, lower
                      ("a", 0, 0, 0.1234561, [0, 0, 9, 9])])  # the true one ranks first
    det.scores[:] = det.scores.astype(np.float32)
    det.save(tmp_path / "d.json")
    back = Detections.load(tmp_path / "d.json")
    assert back.scores.dtype == np.float64
    assert np.array_equal(back.scores.astype(np.float32), det.scores)
    assert np.array_equal(back.boxes, det.boxes)
    assert frame_ap(gt, back).mean_ap == frame_ap(gt, det).mean_ap == 1.0


GOOD_DET = {"video": "v", "frame": 3, "label": 1, "score": 0.5, "box": [0, 0, 4, 4]}


@pytest.mark.parametrize("change, field", [
    ({"frame": 3.7}, "frame"),
    ({"frame": -1}, "frame"),
    ({"label": True}, "label"),
    ({"score": "0.9"}, "score"),
    ({"box": [5, 0, 4, 4]}, "box"),
    ({"box": [0, 0, 4]}, "box"),
    ({"video": ""}, "video"),
])
def test_detections_strict_errors(tmp_path, change, field):
    p = write(tmp_path / "d.json", {"format": DETECTIONS_FORMAT,
                                   "detections": [GOOD_DET, {**GOOD_DET, **change}]})
    with pytest.raises(AnnotationError) as e:
        Detections.load(p)
    assert e.value.field == field and "detection 1" in str(e.value) and "d.json" in str(e.value)
    with pytest.raises(AnnotationError, match="format"):  # the format is required, as for tubes
        Detections.load(write(tmp_path / "n.json", {"detections": [GOOD_DET]}))
