"""ActivityNet 1.3: BSN's files (real) and the official json layout (hand-built)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from tests.data.readers.builders import write_activitynet, write_bsn
from weaktube.data.readers import read_activitynet_json, read_bsn_activitynet
from weaktube.structures import AnnotationError


def test_bsn_real_files(shared_data: Path):
    root = shared_data / "activitynet"
    with pytest.warns(UserWarning) as record:
        ann = read_bsn_activitynet(root)
    messages = " | ".join(str(w.message) for w in record)
    assert "12 zero-length segment(s)" in messages
    assert "6 segment(s) ending over a frame after the video end clipped" in messages
    frameless = [(v.name, s) for v in ann.videos for s in v.segments
                 if s.frame_range(v.fps)[1] <= s.frame_range(v.fps)[0]]
    assert f"{len(frameless)} segment(s) holding no frame" in messages and len(frameless) == 58
    # BSN keeps action_name.csv's order; activitynet-json sorts the names (docs/DATASETS.md)
    assert sum(a != b for a, b in zip(ann.classes, sorted(ann.classes))) == 199
    assert len(ann) == 19228 and ann.num_classes == 200
    assert ann.classes[0] == "Applying sunscreen" and "Mooping floor" in ann.classes
    assert Counter(v.split for v in ann.videos) == {"train": 9649, "val": 4728, "test": 4851}
    # README: 14859 training + 7293 validation instances, of which the zero-length ones drop
    raw = json.loads((root / "anet_anno_action.json").read_text())
    empty = Counter(ann[name].split for name, v in raw.items() for a in v["annotations"]
                    if a["segment"][0] == a["segment"][1])
    kept = Counter(v.split for v in ann.videos for _ in v.segments)
    assert kept["train"] + empty["train"] == 14859
    assert kept["val"] + empty["val"] == 7293
    assert sum(empty.values()) == 12 and kept["test"] == 0
    v = ann["v_---9CpRcKoU"]  # csv: 418 frames, rfps 29.7085998579, training
    assert (v.num_frames, v.fps, v.split, v.width) == (418, 29.7085998579, "train", 0)
    assert all(name.startswith("v_") for name in (v.name for v in ann.videos))


def _bsn_videos() -> dict:
    return {"v_a": {"subset": "training", "num_frames": 300, "fps": 30.0,
                    "annotations": [("Zumba", 1.0, 2.5), ("Archery", 0.0, 10.0)]},
            "v_b": {"subset": "testing", "num_frames": 100, "fps": 25.0, "annotations": []}}


def test_bsn_synthetic(tmp_path):
    root = write_bsn(tmp_path / "anet", _bsn_videos(), classes=None)
    ann = read_bsn_activitynet(root / "anet_anno_action.json")
    assert ann.classes == ["Archery", "Zumba"]  # sorted without action_name.csv
    assert [(s.label, s.start, s.end) for s in ann["v_a"].segments] == [(1, 1.0, 2.5),
                                                                        (0, 0.0, 10.0)]
    assert (ann["v_b"].split, ann["v_b"].num_frames, ann["v_b"].fps) == ("test", 100, 25.0)
    root = write_bsn(tmp_path / "named", _bsn_videos(), classes=["Zumba", "Archery", "Yoga"])
    assert read_bsn_activitynet(root).classes == ["Zumba", "Archery", "Yoga"]
    root = write_bsn(tmp_path / "short", _bsn_videos(), classes=["Zumba"])
    with pytest.raises(AnnotationError, match="unknown class 'Archery'") as e:
        read_bsn_activitynet(root)
    assert e.value.video == "v_a"


@pytest.mark.parametrize("csv_text, match", [
    ("video,numFrame,seconds,fps,rfps,subset,featureFrame\nv_a,many,10,30,30,training,288\n",
     "must be an integer"),
    ("video,numFrame,seconds,fps,rfps,subset,featureFrame\nv_a,300,10,30,30,trainig,288\n",
     "unknown subset 'trainig'"),
    ("video,numFrame,seconds,fps,rfps,subset,featureFrame\nv_a,300,10,30,30,training\n",
     "6 fields, the header has 7"),
    ("video,seconds\nv_a,10\n", "lacks column"),
    ("video,numFrame,seconds,fps,rfps,subset,featureFrame\nv_a,300,10,30,30,training,288\n",
     "no row in video_info_new.csv"),
])
def test_bsn_csv_errors(tmp_path, csv_text, match):
    root = write_bsn(tmp_path, _bsn_videos(), classes=None)
    (root / "video_info_new.csv").write_text(csv_text)
    with pytest.raises(AnnotationError, match=match):
        read_bsn_activitynet(root)


def test_official_json(tmp_path):
    path = write_activitynet(tmp_path / "activity_net.v1-3.min.json", {
        "abc": {"subset": "validation", "duration": 10.01,
                "annotations": [("Polishing shoes", 1.0, 3.0), ("Archery", 2.0, 2.0),
                                ("Archery", 9.5, 12.0)]},
        "def": {"subset": "testing", "duration": 5.0, "annotations": []},
        "ghi": {"subset": "training", "duration": 2.0, "annotations": [("Archery", 0, 2.0)]},
    })
    with pytest.warns(UserWarning) as record:
        ann = read_activitynet_json(path, fps=25.0)
    messages = " | ".join(str(w.message) for w in record)
    assert "1 zero-length" in messages and "1 segment(s) ending over a frame" in messages
    assert ann.classes == ["Archery", "Polishing shoes"]
    v = ann["abc"]
    assert (v.split, v.num_frames, v.fps, v.width, v.height) == ("val", 250, 25.0, 640, 360)
    assert [(s.label, s.start, s.end) for s in v.segments] == [(1, 1.0, 3.0), (0, 9.5, 10.0)]
    assert (ann["def"].split, ann["def"].segments, ann["ghi"].split) == ("test", [], "train")
    with pytest.raises(AnnotationError, match="beyond the video end") as e:
        read_activitynet_json(path, out_of_range="error")
    assert (e.value.video, e.value.field) == ("abc", "segment")


@pytest.mark.parametrize("entry, match, field", [
    ({"subset": "validation", "duration": "long", "annotations": []}, "finite number",
     "duration"),
    ({"subset": "validation", "duration": 0, "annotations": []}, "must be positive", "duration"),
    ({"subset": "valid", "duration": 5, "annotations": []}, "unknown subset", "subset"),
    ({"duration": 5, "annotations": []}, "missing", "subset"),
    ({"subset": "validation", "duration": 5,
      "annotations": [{"segment": [3, 1], "label": "A"}]}, "ends before it starts", "segment"),
    ({"subset": "validation", "duration": 5,
      "annotations": [{"segment": ["a", 1], "label": "A"}]}, "finite number", "segment"),
    ({"subset": "validation", "duration": 5,
      "annotations": [{"segment": [1, 2], "label": 7}]}, "non-empty string", "label"),
])
def test_official_json_errors(tmp_path, entry, match, field):
    path = tmp_path / "a.json"
    db = {"ok": {"subset": "training", "duration": 5.0,
                 "annotations": [{"segment": [1, 2], "label": "A"}]}, "bad": entry}
    path.write_text(json.dumps({"database": db}))
    with pytest.raises(AnnotationError, match=match) as e:
        read_activitynet_json(path)
    assert (e.value.video, e.value.field) == ("bad", field)
