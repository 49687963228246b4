"""Builders of AnnotationSets from the real files in ../shared/data (read-only, never copied)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np

from weaktube.structures import AnnotationSet, Segment, Tube, VideoRecord


def jhmdb_test_set(shared_data: Path) -> AnnotationSet:
    """The 268 JHMDB-21 split-1 test videos of ``jhmdb21_gt_frames.csv``: one tube per video,
    frames made 0-based, boxes as given (320x240 pixels), 21 classes in 1-based id order."""
    rows: dict[str, list] = {}
    names: dict[int, str] = {}
    with open(shared_data / "jhmdb21" / "jhmdb21_gt_frames.csv", newline="") as f:
        for r in csv.DictReader(f):
            cid = int(r["class_id_1based"]) - 1
            names[cid] = r["class_name"]
            rows.setdefault(r["video"], []).append(
                (int(r["frame_1based"]) - 1, cid,
                 [float(r[k]) for k in ("x1", "y1", "x2", "y2")]))
    videos = []
    for name in sorted(rows):
        fr = sorted(rows[name])
        assert [x[0] for x in fr] == list(range(len(fr)))  # every frame 1..N present
        boxes = np.array([x[2] for x in fr], np.float32)
        videos.append(VideoRecord(name, len(fr), 320, 240, 30.0, "test",
                                  [Tube(fr[0][1], 0, boxes)]))
    return AnnotationSet([names[i] for i in range(len(names))], videos)


def thumos_test_set(shared_data: Path) -> AnnotationSet:
    """THUMOS'14 test videos from the official per-class txt files; ``Ambiguous_test.txt`` gives
    ambiguous segments (label 0, ``ambiguous=True``). fps/duration from the ActionFormer json."""
    d = shared_data / "thumos14"
    info = json.loads((d / "actionformer_json" / "thumos14.json").read_text())["database"]
    files = sorted((d / "official_txt" / "annotations_test").glob("*_test.txt"))
    classes = [f.name[: -len("_test.txt")] for f in files if not f.name.startswith("Ambiguous")]
    segs: dict[str, list[Segment]] = {}
    for f in files:
        cls = f.name[: -len("_test.txt")]
        for line in f.read_text().splitlines():
            if not line.strip():
                continue
            vid, a, b = line.split()
            amb = cls == "Ambiguous"
            segs.setdefault(vid, []).append(
                Segment(0 if amb else classes.index(cls), float(a), float(b), amb))
    videos = []
    for vid in sorted(segs):
        fps = float(info.get(vid, {}).get("fps", 30.0))
        dur = float(info.get(vid, {}).get("duration", max(s.end for s in segs[vid])))
        videos.append(VideoRecord(vid, math.ceil(dur * fps) + 1, 0, 0, fps, "test", [],
                                  segs[vid]))
    return AnnotationSet(classes, videos)
