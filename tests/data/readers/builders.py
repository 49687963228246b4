"""Writers of small files in each source format, for the reader tests.

Each writer takes a plain description of what the file should hold and writes it exactly as the
dataset's own tools would (pickle layouts, per-frame text files, json, csv), so that a test can
compare what a reader returns with what was written.
"""

from __future__ import annotations

import csv
import io
import json
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np


# ------------------------------------------------------------------------------ pickles
class Py2StylePickler(pickle._Pickler):
    """Pickles ``str`` and ``bytes`` as python-2 ``str`` (BINSTRING opcodes), the way the real
    ACT pickles were written by python 2: loading them needs ``encoding="latin1"``."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2_str(self, obj: str | bytes) -> None:
        data = obj.encode("latin1") if isinstance(obj, str) else obj
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[str] = save_py2_str
    dispatch[bytes] = save_py2_str


def dumps_py2(obj: object) -> bytes:
    buf = io.BytesIO()
    Py2StylePickler(buf, protocol=2).dump(obj)
    # numpy 1.x (and python 2) name the array module numpy.core.multiarray
    return buf.getvalue().replace(b"numpy._core.multiarray", b"numpy.core.multiarray")


def write_pyannot(path: Path, classes: list[str], videos: dict, train: list[str]) -> Path:
    """``videos``: ``{name: {"numf": int, "tubes": [(label, sf, [ef,] xywh [T, 4] array)]}}``.

    ``ef`` defaults to ``sf + len(boxes)``.
    ``numf`` is stored as uint8 / uint16 and boxes keep their dtype, as in the real file.
    """
    db = {}
    for name, v in videos.items():
        numf = v["numf"]
        if isinstance(numf, int):
            numf = np.uint8(numf) if numf < 256 else np.uint16(numf)
        db[np.str_(name)] = {
            "label": v["tubes"][0][0] if v["tubes"] else 0,
            "numf": numf,
            "annotations": [{"label": t[0], "sf": t[1],
                             "ef": t[2] if len(t) == 4 else t[1] + len(t[-1]), "boxes": t[-1]}
                            for t in v["tubes"]],
        }
    path.write_bytes(pickle.dumps({"classes": classes, "trainvideos": train, "db": db},
                                  protocol=3))
    return path


def write_act_pkl(path: Path, labels: list[str], videos: dict, train: list[list[str]],
                  test: list[list[str]], py2: bool = False) -> Path:
    """``videos``: ``{name: (nframes, (h, w), {label: [array [n, 5]]})}``; ``train`` and
    ``test``: one list of names per split."""
    obj = {
        "labels": labels,
        "train_videos": train,
        "test_videos": test,
        "nframes": {n: v[0] for n, v in videos.items()},
        "resolution": {n: v[1] for n, v in videos.items()},
        "gttubes": {n: v[2] for n, v in videos.items()},
    }
    path.write_bytes(dumps_py2(obj) if py2 else pickle.dumps(obj, protocol=3))
    return path


# -------------------------------------------------------------------------- yowo labels
def yowo_files(videos: dict, class_ids: dict[str, int]) -> dict[str, dict[int, str]]:
    """``videos``: ``{"cls/video": {frame_1based: [(x1, y1, x2, y2)]}}`` -> per-frame text."""
    out = {}
    for name, frames in videos.items():
        cls = name.split("/")[0]
        out[name] = {f: "".join(f"{class_ids[cls]} {x1} {y1} {x2} {y2}\n"
                                for x1, y1, x2, y2 in boxes)
                     for f, boxes in frames.items()}
    return out


def write_yowo_folder(root: Path, videos: dict, class_ids: dict[str, int],
                      trainlist: list[str] | None = None,
                      testlist: list[str] | None = None) -> Path:
    """Nested layout ``root/labels/<class>/<video>/<frame:05d>.txt`` + list files."""
    for name, frames in yowo_files(videos, class_ids).items():
        folder = root / "labels" / name
        folder.mkdir(parents=True, exist_ok=True)
        for f, text in frames.items():
            (folder / f"{f:05d}.txt").write_text(text)
    for fname, names in (("trainlist.txt", trainlist), ("testlist.txt", testlist)):
        if names is not None:
            # frame-level lines, as YOWO writes them
            lines = [f"labels/{n}/{f:05d}.txt" for n in names for f in sorted(videos[n])]
            (root / fname).write_text("\n".join(lines) + "\n")
    return root


def write_yowo_zip(path: Path, videos: dict, class_ids: dict[str, int],
                   prefix: str = "groundtruths") -> Path:
    """Flat layout ``<prefix>/<class>_<video>_<frame:05d>.txt`` in a zip."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(f"{prefix}/", "")
        for name, frames in yowo_files(videos, class_ids).items():
            cls, video = name.split("/")
            for f, text in frames.items():
                z.writestr(f"{prefix}/{cls}_{video}_{f:05d}.txt", text)
    return path


# ------------------------------------------------------------------------------ temporal
def write_thumos(root: Path, per_split: dict[str, dict[str, list[tuple[str, float, float]]]]
                 ) -> Path:
    """``{split ("val"/"test"): {class or "Ambiguous": [(video, start, end)]}}``."""
    for split, per_class in per_split.items():
        folder = root / f"annotations_{split}"
        folder.mkdir(parents=True, exist_ok=True)
        for cls, rows in per_class.items():
            (folder / f"{cls}_{split}.txt").write_text(
                "".join(f"{v}  {s:.1f} {e:.1f}\n" for v, s, e in rows))
        (folder / "readme.txt").write_text("THUMOS CHALLENGE 2014\n")
    return root


def write_actionformer(path: Path, videos: dict, classes: list[str]) -> Path:
    """``videos``: ``{name: {"subset", "fps", "duration", "annotations": [(label, s, e)]}}``."""
    db = {}
    for name, v in videos.items():
        db[name] = {"subset": v["subset"], "duration": v["duration"], "fps": v["fps"],
                    "annotations": [{"label": lab, "segment": [s, e],
                                     "segment(frames)": [s * v["fps"], e * v["fps"]],
                                     "label_id": classes.index(lab)}
                                    for lab, s, e in v["annotations"]]}
    path.write_text(json.dumps({"version": "Thumos14-30fps", "database": db}, indent=1))
    return path


def write_activitynet(path: Path, videos: dict) -> Path:
    """``videos``: ``{id: {"subset", "duration", "annotations": [(label, s, e)]}}``."""
    db = {name: {"subset": v["subset"], "duration": v["duration"], "resolution": "640x360",
                 "url": f"https://www.youtube.com/watch?v={name}",
                 "annotations": [{"segment": [s, e], "label": lab}
                                 for lab, s, e in v["annotations"]]}
          for name, v in videos.items()}
    path.write_text(json.dumps({"version": "VERSION 1.3", "taxonomy": [], "database": db}))
    return path


def write_bsn(root: Path, videos: dict, classes: list[str] | None) -> Path:
    """``videos``: ``{"v_id": {"subset", "num_frames", "fps", "annotations": [(l, s, e)]}}``."""
    root.mkdir(parents=True, exist_ok=True)
    anno = {name: {"duration_second": v["num_frames"] / v["fps"],
                   "duration_frame": v["num_frames"],
                   "annotations": [{"segment": [s, e], "label": lab}
                                   for lab, s, e in v["annotations"]],
                   "feature_frame": v["num_frames"] // 16 * 16}
            for name, v in videos.items()}
    (root / "anet_anno_action.json").write_text(json.dumps(anno))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["video", "numFrame", "seconds", "fps", "rfps", "subset", "featureFrame"])
    for name, v in videos.items():
        w.writerow([name, v["num_frames"], round(v["num_frames"] / v["fps"], 2),
                    float(round(v["fps"])), v["fps"], v["subset"], v["num_frames"] // 16 * 16])
    (root / "video_info_new.csv").write_text(buf.getvalue())
    if classes is not None:
        (root / "action_name.csv").write_text("action\n" + "".join(f"{c}\n" for c in classes))
    return root
