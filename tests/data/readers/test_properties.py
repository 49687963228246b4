"""Property tests: random valid files in every format round-trip exactly; random corruptions
(truncation, swapped corners, bad frame numbers, unknown classes, wrong types) raise
:class:`AnnotationError` and never any other exception."""

from __future__ import annotations

import copy
import json
import pickle
import string
import tempfile
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.data.readers import builders
from weaktube.data.readers import (
    read_act_pkl,
    read_actionformer_json,
    read_activitynet_json,
    read_bsn_activitynet,
    read_thumos14_txt,
    read_ucf24_pyannot,
    read_yowo_txt,
)
from weaktube.data.readers._common import JHMDB21_CLASSES, UCF24_CLASSES
from weaktube.structures import AnnotationError

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
WORD = st.text(string.ascii_letters + string.digits, min_size=1, max_size=6)
SEEDS = st.integers(0, 2**32 - 1)


def _raises_annotation_error(read, *args, **kwargs) -> AnnotationError:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(AnnotationError) as e:
            read(*args, **kwargs)
    return e.value


def _tmp() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix="weaktube-readers-")


# ------------------------------------------------------------------------- ucf24-pyannot
@st.composite
def pyannot_truth(draw, min_tubes: int = 0):
    classes = draw(st.lists(WORD, min_size=1, max_size=4, unique=True))
    rng = np.random.default_rng(draw(SEEDS))
    videos = {}
    for i in range(draw(st.integers(1, 4))):
        numf = draw(st.integers(1, 300))
        tubes = []
        for _ in range(draw(st.integers(max(min_tubes, 0), 3))):
            sf = int(rng.integers(0, numf))
            ef = int(rng.integers(sf + 1, min(numf, sf + 12) + 1))
            dtype = np.uint8 if rng.random() < 0.7 else np.uint16
            top = 256 if dtype is np.uint8 else 321
            x = rng.integers(1, min(top, 321), ef - sf)
            y = rng.integers(1, min(top, 241), ef - sf)
            w = np.minimum(rng.integers(0, 321 - x), top - 1)  # x + w <= 320, may pass 255
            h = np.minimum(rng.integers(0, 241 - y), top - 1)
            tubes.append((int(rng.integers(len(classes))), sf,
                          np.stack([x, y, w, h], 1).astype(dtype)))
        videos[f"{classes[0]}/v_{classes[0]}_g{i:02d}_c01"] = {"numf": numf, "tubes": tubes}
    train = [n for n in videos if draw(st.booleans())]
    return classes, videos, train


@SETTINGS
@given(pyannot_truth())
def test_pyannot_round_trip(truth):
    classes, videos, train = truth
    with _tmp() as d:
        ann = read_ucf24_pyannot(builders.write_pyannot(Path(d) / "p.pkl", classes, videos,
                                                        train))
    assert ann.classes == classes
    for name, v in videos.items():
        rec = ann[name]
        assert (rec.num_frames, rec.split) == (v["numf"], "train" if name in train else "test")
        assert len(rec.tubes) == len(v["tubes"])
        for t, (label, sf, xywh) in zip(rec.tubes, v["tubes"], strict=True):
            x, y, w, h = xywh.astype(np.int64).T
            assert (t.label, t.start_frame, t.end_frame) == (label, sf, sf + len(xywh))
            np.testing.assert_array_equal(t.boxes, np.stack([x - 1, y - 1, x + w, y + h], 1))


def _pyannot_corrupt(kind: str, obj: dict, rng: np.random.Generator) -> dict:
    name = next(iter(obj["db"]))
    v = obj["db"][name]
    t = v["annotations"][0]
    if kind == "unknown class":
        t["label"] = len(obj["classes"]) + int(rng.integers(0, 5))
    elif kind == "bad frames":
        choice = int(rng.integers(3))
        t["sf"], t["ef"] = [(-1, t["ef"]), (t["sf"], int(v["numf"]) + 1),
                            (t["ef"], t["sf"])][choice]
    elif kind == "swapped corners":  # w < 0: x + w < x - 1
        b = t["boxes"].astype(np.int64)
        b[0, 2] = -int(rng.integers(1, 5))
        t["boxes"] = b
    elif kind == "box outside":
        b = t["boxes"].astype(np.int64)
        b[-1, 3] = 300
        t["boxes"] = b
    elif kind == "wrong type":
        where, key, value = [(v, "numf", "many"), (t, "boxes", "boxes"), (t, "sf", 1.5),
                             (obj, "db", [name]), (obj, "classes", 5), (v, "annotations", {}),
                             (t, "label", None), (obj, "trainvideos", 3)][int(rng.integers(8))]
        where[key] = value
    return obj


@SETTINGS
@given(pyannot_truth(min_tubes=1),
       st.sampled_from(["truncation", "unknown class", "bad frames", "swapped corners",
                        "box outside", "wrong type"]), SEEDS)
def test_pyannot_corruption(truth, kind, seed):
    classes, videos, train = truth
    rng = np.random.default_rng(seed)
    with _tmp() as d:
        path = builders.write_pyannot(Path(d) / "p.pkl", classes, videos, train)
        data = path.read_bytes()
        if kind == "truncation":
            path.write_bytes(data[: int(rng.integers(0, len(data)))])
        else:
            obj = _pyannot_corrupt(kind, pickle.loads(data), rng)
            path.write_bytes(pickle.dumps(obj))
        err = _raises_annotation_error(read_ucf24_pyannot, path)
    assert "p.pkl" in str(err)


# ------------------------------------------------------------------------------- act-pkl
@st.composite
def act_truth(draw):
    labels = draw(st.lists(WORD, min_size=1, max_size=4, unique=True))
    rng = np.random.default_rng(draw(SEEDS))
    videos, expected = {}, {}
    for i in range(draw(st.integers(1, 4))):
        n, (h, w) = int(rng.integers(1, 60)), (int(rng.integers(8, 300)), int(rng.integers(8, 400)))
        gt, tubes = {}, []
        for _ in range(int(rng.integers(0, 4))):
            label = int(rng.integers(len(labels)))
            frames = np.flatnonzero(rng.random(n) < 0.5)  # 0-based, gaps split tubes
            if len(frames) == 0:
                continue
            x1 = rng.integers(0, w - 2, len(frames)).astype(np.float32)
            y1 = rng.integers(0, h - 2, len(frames)).astype(np.float32)
            x2 = (x1 + 1 + rng.integers(0, w - 1 - x1)).astype(np.float32)
            y2 = (y1 + 1 + rng.integers(0, h - 1 - y1)).astype(np.float32)
            boxes = np.stack([x1, y1, x2, y2], 1)
            gt.setdefault(label, []).append(np.column_stack([frames + 1, boxes]))
            breaks = np.flatnonzero(np.diff(frames) != 1) + 1
            for fr, bx in zip(np.split(frames, breaks), np.split(boxes, breaks), strict=True):
                tubes.append((label, int(fr[0]), bx))
        name = f"c{i}/video_{i}"
        videos[name] = (n, (h, w), gt)
        expected[name] = (n, w, h, sorted(tubes, key=lambda t: (t[0], t[1])))
    names = list(videos)
    is_train = [draw(st.booleans()) for _ in names]
    train = [n for n, b in zip(names, is_train, strict=True) if b]
    test = [n for n, b in zip(names, is_train, strict=True) if not b]
    return labels, videos, train, test, expected, draw(st.booleans())


@SETTINGS
@given(act_truth())
def test_act_round_trip(truth):
    labels, videos, train, test, expected, py2 = truth
    with _tmp() as d:
        path = builders.write_act_pkl(Path(d) / "X-GT.pkl", labels, videos, [train], [test],
                                      py2=py2)
        ann = read_act_pkl(path, fps=24.0)
    assert ann.classes == labels
    for name, (n, w, h, tubes) in expected.items():
        rec = ann[name]
        assert (rec.num_frames, rec.width, rec.height, rec.fps) == (n, w, h, 24.0)
        assert rec.split == ("train" if name in train else "test")
        got = sorted(rec.tubes, key=lambda t: (t.label, t.start_frame))
        assert [(t.label, t.start_frame) for t in got] == [(t[0], t[1]) for t in tubes]
        for t, (_, _, boxes) in zip(got, tubes, strict=True):
            np.testing.assert_array_equal(t.boxes, boxes)


def _act_corrupt(kind: str, obj: dict, rng: np.random.Generator) -> dict:
    name = next(v for v, g in obj["gttubes"].items() if g)
    label = next(iter(obj["gttubes"][name]))
    arr = obj["gttubes"][name][label][0]
    if kind == "unknown class":
        obj["gttubes"][name][len(obj["labels"]) + int(rng.integers(0, 3))] = [arr]
    elif kind == "bad frames":
        arr[int(rng.integers(len(arr))), 0] = [0, obj["nframes"][name] + 1, 2.5][
            int(rng.integers(3))]
    elif kind == "repeated frame":
        obj["gttubes"][name][label][0] = np.concatenate([arr, arr[-1:]])
    elif kind == "swapped corners":
        arr[-1, [1, 3]] = arr[-1, [3, 1]]
    elif kind == "wrong type":
        where, key, value = [(obj["nframes"], name, "x"), (obj["resolution"], name, 5),
                             (obj["gttubes"], name, [arr]), (obj["gttubes"][name], label, arr),
                             (obj["gttubes"][name], label, [arr[:, :4]]), (obj, "labels", 7),
                             (obj, "train_videos", [["ghost"]]), (obj, "nframes", None)][
            int(rng.integers(8))]
        where[key] = value
    return obj


@SETTINGS
@given(act_truth().filter(lambda t: any(g for _, _, g in t[1].values())),
       st.sampled_from(["truncation", "unknown class", "bad frames", "repeated frame",
                        "swapped corners", "wrong type"]), SEEDS)
def test_act_corruption(truth, kind, seed):
    labels, videos, train, test, _, py2 = truth
    rng = np.random.default_rng(seed)
    with _tmp() as d:
        path = Path(d) / "X-GT.pkl"
        if kind == "truncation":
            builders.write_act_pkl(path, labels, videos, [train], [test], py2=py2)
            data = path.read_bytes()
            path.write_bytes(data[: int(rng.integers(0, len(data)))])
        else:
            obj = {"labels": labels, "nframes": {k: v[0] for k, v in videos.items()},
                   "resolution": {k: v[1] for k, v in videos.items()},
                   "gttubes": copy.deepcopy({k: v[2] for k, v in videos.items()}),
                   "train_videos": [list(videos)], "test_videos": [[]]}
            path.write_bytes(builders.dumps_py2(_act_corrupt(kind, obj, rng)) if py2
                             else pickle.dumps(_act_corrupt(kind, obj, rng)))
        err = _raises_annotation_error(read_act_pkl, path)
    assert "X-GT.pkl" in str(err)


# ------------------------------------------------------------------------------ yowo-txt
@st.composite
def yowo_truth(draw, flat: bool):
    classes = JHMDB21_CLASSES if flat else UCF24_CLASSES
    rng = np.random.default_rng(draw(SEEDS))
    videos, expected = {}, {}
    for i in range(draw(st.integers(1, 4))):
        cls = classes[int(rng.integers(len(classes)))]
        name = f"{cls}/{draw(WORD)}_{i}"
        frames: dict[int, list] = {}
        tubes, f = [], int(rng.integers(1, 4))  # 1-based
        for _ in range(int(rng.integers(0, 3))):  # tubes separated by >= 1 empty frame
            length = int(rng.integers(1, 6))
            x1 = rng.integers(1, 300, length)
            y1 = rng.integers(1, 220, length)
            x2 = x1 + rng.integers(0, 321 - x1)  # x2 >= x1: a 1-based box of >= 1 pixel
            y2 = y1 + rng.integers(0, 241 - y1)
            for k in range(length):
                frames[f + k] = [(int(x1[k]), int(y1[k]), int(x2[k]), int(y2[k]))]
            tubes.append((f - 1, np.stack([x1 - 1, y1 - 1, x2, y2], 1)))
            f += length + int(rng.integers(1, 4))
        frames[f] = []  # an empty label file ends the video
        videos[name] = frames
        expected[name] = (classes.index(cls), f, tubes)
    return videos, expected


@SETTINGS
@given(yowo_truth(flat=False), st.data())
def test_yowo_nested_round_trip(truth, data):
    videos, expected = truth
    train = [n for n in videos if data.draw(st.booleans())]
    test = [n for n in videos if n not in train]
    with _tmp() as d:
        builders.write_yowo_folder(Path(d), videos, {c: i + 1 for i, c in
                                                     enumerate(UCF24_CLASSES)}, train, test)
        ann = read_yowo_txt(Path(d))
    _check_yowo(ann, expected, {n: "train" if n in train else "test" for n in videos})


@SETTINGS
@given(yowo_truth(flat=True))
def test_yowo_flat_zip_round_trip(truth):
    videos, expected = truth
    with _tmp() as d:
        path = builders.write_yowo_zip(Path(d) / "gt.zip", videos,
                                       {c: i + 1 for i, c in enumerate(JHMDB21_CLASSES)})
        ann = read_yowo_txt(path)
    _check_yowo(ann, expected, {n: "test" for n in videos})


def _check_yowo(ann, expected, splits):
    assert sorted(v.name for v in ann.videos) == sorted(expected)
    for name, (label, num_frames, tubes) in expected.items():
        rec = ann[name]
        assert (rec.num_frames, rec.split) == (num_frames, splits[name])
        assert [(t.label, t.start_frame, len(t.boxes)) for t in rec.tubes] == \
               [(label, s, len(b)) for s, b in tubes]
        for t, (_, b) in zip(rec.tubes, tubes, strict=True):
            np.testing.assert_array_equal(t.boxes, b)


def _yowo_corrupt_line(kind: str, line: str, cid: int, k: int,
                       rng: np.random.Generator) -> str:
    tok = line.split()
    if kind == "truncation":
        return " ".join(tok[: int(rng.integers(0, 5))] or ["1", "2"])
    if kind == "wrong type":
        tok[int(rng.integers(5))] = ["x", "1e", "nan", "[]"][int(rng.integers(4))]
    elif kind == "swapped corners":
        x1, x2 = int(tok[1]), int(tok[3])
        tok[1], tok[3] = str(max(x1, x2) + 1), str(min(x1, x2))
    elif kind == "unknown class":
        tok[0] = str([0, k + 1, k + 7, cid % k + 1][int(rng.integers(4))])
    elif kind == "box outside":
        tok[4] = "400"
    return " ".join(tok) + "\n"


@SETTINGS
@given(yowo_truth(flat=False).filter(lambda t: any(e[2] for e in t[1].values())),
       st.booleans(),
       st.sampled_from(["truncation", "wrong type", "swapped corners", "unknown class",
                        "box outside", "bad frame number", "unknown folder"]), SEEDS)
def test_yowo_corruption(truth, as_zip, kind, seed):
    videos, _ = truth
    rng = np.random.default_rng(seed)
    ids = {c: i + 1 for i, c in enumerate(UCF24_CLASSES)}
    files = builders.yowo_files(videos, ids)
    name = next(n for n, fr in files.items() if any(fr.values()))
    frame = next(f for f, text in files[name].items() if text)
    cls, video = name.split("/")
    if kind == "bad frame number":
        files[name][0] = files[name].pop(frame)
    elif kind == "unknown folder":
        files[f"NotAClass/{video}"] = files.pop(name)
    else:
        files[name][frame] = _yowo_corrupt_line(kind, files[name][frame], ids[cls],
                                                len(UCF24_CLASSES), rng)
    with _tmp() as d:
        if as_zip:
            path = Path(d) / "labels.zip"
            with zipfile.ZipFile(path, "w") as z:
                for n, frames in files.items():
                    for f, text in frames.items():
                        z.writestr(f"data/labels/{n}/{f:05d}.txt", text)
            if rng.random() < 0.3:
                data = path.read_bytes()
                path.write_bytes(data[: int(rng.integers(0, len(data)))])
        else:
            path = Path(d)
            for n, frames in files.items():
                (path / "labels" / n).mkdir(parents=True, exist_ok=True)
                for f, text in frames.items():
                    (path / "labels" / n / f"{f:05d}.txt").write_text(text)
        _raises_annotation_error(read_yowo_txt, path, classes=UCF24_CLASSES)


# -------------------------------------------------------------------------- thumos14-txt
TIMES = st.integers(0, 3000).map(lambda t: t / 10)


@st.composite
def thumos_truth(draw):
    classes = draw(st.lists(st.sampled_from(["Diving", "Shotput", "Billiards", "HighJump"]),
                            min_size=1, max_size=4, unique=True))
    per_split: dict = {}
    for split, prefix in (("val", "video_validation_"), ("test", "video_test_")):
        per_split[split] = {c: [] for c in classes + ["Ambiguous"]}
        for i in range(draw(st.integers(0, 3))):
            for _ in range(draw(st.integers(1, 4))):
                cls = draw(st.sampled_from(classes + ["Ambiguous"]))
                s, e = sorted(draw(st.lists(TIMES, min_size=2, max_size=2, unique=True)))
                per_split[split][cls].append((f"{prefix}{i:07d}", s, e))
    return sorted(classes), per_split


@SETTINGS
@given(thumos_truth())
def test_thumos_round_trip(truth):
    classes, per_split = truth
    with _tmp() as d:
        ann = read_thumos14_txt(builders.write_thumos(Path(d), per_split))
    assert ann.classes == classes
    expected: dict = {}
    for split, per_class in per_split.items():
        for cls, rows in per_class.items():
            for v, s, e in rows:
                amb = cls == "Ambiguous"
                expected.setdefault(v, (split, []))[1].append(
                    (0 if amb else classes.index(cls), s, e, amb))
    assert sorted(v.name for v in ann.videos) == sorted(expected)
    for name, (split, segs) in expected.items():
        rec = ann[name]
        assert rec.split == split and rec.fps == 30.0
        assert rec.num_frames == int(np.ceil(max(e for _, _, e, _ in segs) * 30 - 1e-9))
        got = [(s.label, s.start, s.end, s.ambiguous) for s in rec.segments]
        assert sorted(got, key=str) == sorted(segs, key=str)


@SETTINGS
@given(thumos_truth().filter(lambda t: any(r for pc in t[1].values() for r in pc.values())),
       st.sampled_from(["truncation", "wrong type", "swapped", "negative", "split clash"]),
       SEEDS)
def test_thumos_corruption(truth, kind, seed):
    _, per_split = truth
    rng = np.random.default_rng(seed)
    split, cls = next((s, c) for s, pc in per_split.items() for c, r in pc.items() if r)
    v, s, e = per_split[split][cls][0]
    with _tmp() as d:
        root = builders.write_thumos(Path(d), per_split)
        f = root / f"annotations_{split}" / f"{cls}_{split}.txt"
        junk = ["x", "inf", "1,5"][int(rng.integers(3))]
        bad = {"truncation": f"{v} {s}", "wrong type": f"{v} {s} {junk}",
               "swapped": f"{v} {e + 1} {s}", "negative": f"{v} -0.5 {e}",
               "split clash": None}[kind]
        if bad is None:
            other = "test" if split == "val" else "val"
            (root / f"annotations_{other}").mkdir(exist_ok=True)
            (root / f"annotations_{other}" / f"{cls}_{other}.txt").write_text(f"{v} 1.0 2.0\n")
        else:
            f.write_text(f.read_text() + bad + "\n")
        _raises_annotation_error(read_thumos14_txt, root)


# ---------------------------------------------------------------- temporal json formats
@st.composite
def temporal_truth(draw):
    """``{video: {"subset", "fps", "duration", "num_frames", "annotations": [(l, s, e)]}}``."""
    labels = draw(st.lists(WORD, min_size=1, max_size=4, unique=True))
    rng = np.random.default_rng(draw(SEEDS))
    videos = {}
    for i in range(draw(st.integers(1, 4))):
        fps = float(rng.choice([24.0, 25.0, 29.97002997, 30.0]))
        num_frames = int(rng.integers(10, 5000))
        duration = num_frames / fps
        anns = []
        for _ in range(int(rng.integers(1 if i == 0 else 0, 4))):
            s = float(rng.uniform(0, duration * 0.9))
            anns.append((labels[int(rng.integers(len(labels)))], s,
                         float(rng.uniform(s + 0.01, duration))))
        videos[f"v_{draw(WORD)}{i}"] = {
            "subset": ["training", "validation", "testing"][int(rng.integers(3))],
            "fps": fps, "num_frames": num_frames, "duration": duration, "annotations": anns}
    return videos


def _check_temporal(ann, videos, fps_of, frames_of):
    classes = ann.classes
    splits = {"training": "train", "validation": "val", "testing": "test"}
    for name, v in videos.items():
        rec = ann[name]
        assert (rec.split, rec.fps, rec.num_frames) == (splits[v["subset"]], fps_of(v),
                                                        frames_of(v))
        assert [(classes[s.label], s.start, s.end) for s in rec.segments] == v["annotations"]


@SETTINGS
@given(temporal_truth())
def test_actionformer_round_trip(videos):
    classes = sorted({lab for v in videos.values() for lab, _, _ in v["annotations"]})
    with _tmp() as d:
        ann = read_actionformer_json(builders.write_actionformer(Path(d) / "a.json", videos,
                                                                 classes))
    assert ann.classes == classes
    _check_temporal(ann, videos, lambda v: v["fps"],
                    lambda v: max(1, round(v["duration"] * v["fps"])))


@SETTINGS
@given(temporal_truth())
def test_activitynet_round_trip(videos):
    with _tmp() as d:
        ann = read_activitynet_json(builders.write_activitynet(Path(d) / "a.json", videos),
                                    fps=15.0)
    assert ann.classes == sorted({lab for v in videos.values() for lab, _, _ in
                                  v["annotations"]})
    _check_temporal(ann, videos, lambda v: 15.0, lambda v: max(1, round(v["duration"] * 15)))


@SETTINGS
@given(temporal_truth(), st.booleans())
def test_bsn_round_trip(videos, with_names):
    classes = sorted({lab for v in videos.values() for lab, _, _ in v["annotations"]})
    with _tmp() as d:
        root = builders.write_bsn(Path(d), videos, list(reversed(classes)) if with_names
                                  else None)
        ann = read_bsn_activitynet(root)
    assert ann.classes == (list(reversed(classes)) if with_names else classes)
    _check_temporal(ann, videos, lambda v: v["fps"], lambda v: v["num_frames"])


def _json_corrupt(kind: str, db: dict, rng: np.random.Generator) -> None:
    """Corrupt a ``{video: {..., "annotations": [{"segment", "label", ...}]}}`` mapping."""
    name = next(n for n, v in db.items() if v["annotations"])
    v = db[name]
    a = v["annotations"][0]
    if kind == "swapped":
        a["segment"] = [a["segment"][1] + 0.5, a["segment"][0]]
    elif kind == "unknown class":
        if "label_id" in a:
            a["label_id"] = a["label_id"] + 100  # the label's id disagrees / leaves a gap
        else:
            a["label"] = "NotAClass"
    elif kind == "wrong type":
        choices = [(a, "segment", 3.0), (a, "segment", ["a", 2]), (a, "label", None),
                   (v, "annotations", {}), (a, "segment", [1, 2, 3]), (v, "annotations", ["x"])]
        if "subset" in v:  # BSN keeps the subset in its csv
            choices += [(v, "subset", "dev"), (v, "subset", 5)]
        where, key, value = choices[int(rng.integers(len(choices)))]
        where[key] = value
    elif kind == "duration":
        for key in ("duration", "duration_second", "fps"):
            if key in v:
                v[key] = [-1.0, "long", None][int(rng.integers(3))]


JSON_KINDS = ["truncation", "swapped", "unknown class", "wrong type", "duration"]


@SETTINGS
@given(temporal_truth(), st.sampled_from(["actionformer", "activitynet", "bsn"]),
       st.sampled_from(JSON_KINDS + ["csv truncation", "csv type"]), SEEDS)
def test_temporal_json_corruption(videos, fmt, kind, seed):
    rng = np.random.default_rng(seed)
    classes = sorted({lab for v in videos.values() for lab, _, _ in v["annotations"]})
    if kind.startswith("csv") and fmt != "bsn":
        kind = "truncation"
    if kind == "unknown class" and fmt == "activitynet":  # no class list: any label is new
        kind = "swapped"
    if kind == "duration" and fmt == "bsn":  # BSN takes frames and fps from its csv
        kind = "csv type"
    with _tmp() as d:
        if fmt == "actionformer":
            path = builders.write_actionformer(Path(d) / "a.json", videos, classes)
            read, top = read_actionformer_json, "database"
        elif fmt == "activitynet":
            path = builders.write_activitynet(Path(d) / "a.json", videos)
            read, top = read_activitynet_json, "database"
        else:
            root = builders.write_bsn(Path(d), videos, classes)
            path, read, top = root / "anet_anno_action.json", read_bsn_activitynet, None
        if kind == "truncation":
            text = path.read_text()
            path.write_text(text[: int(rng.integers(0, len(text)))])
        elif kind.startswith("csv"):
            csv_path = path.parent / "video_info_new.csv"
            lines = csv_path.read_text().splitlines()
            i = int(rng.integers(1, len(lines)))
            cells = lines[i].split(",")
            if kind == "csv truncation":
                cells = cells[: int(rng.integers(0, len(cells)))]
            else:
                cells[int(rng.choice([1, 4, 5]))] = ["x", "-3", ""][int(rng.integers(3))]
            lines[i] = ",".join(cells)
            csv_path.write_text("\n".join(lines) + "\n")
        else:
            data = json.loads(path.read_text())
            _json_corrupt(kind, data[top] if top else data, rng)
            path.write_text(json.dumps(data))
        _raises_annotation_error(read, path)
