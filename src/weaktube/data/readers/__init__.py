"""Dataset readers: public annotation files -> weaktube's canonical :class:`AnnotationSet`.

One module per source format, one public ``read_*`` function each; :func:`convert` picks the
reader by format name (or detects it). ``docs/DATASETS.md`` documents every format's layout and
conversion rules. Every reader raises one :class:`~weaktube.structures.AnnotationError` naming
the file, video, frame and field on malformed input, and returns a validated set.

Usage::

    ann = convert(Path("pyannot_with_class_names.pkl"))           # format detected
    ann = convert(Path("groundtruths_jhmdb.zip"), "yowo-txt")
    ann = convert(Path("annotations"), "thumos14-txt", video_info=Path("TH14_video_info.json"))
    ann.save("ann.json")
"""

from __future__ import annotations

import inspect
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from weaktube.data.readers._common import ReaderOptionError, load_json, load_pickle
from weaktube.data.readers.act_pkl import read_act_pkl
from weaktube.data.readers.actionformer_json import read_actionformer_json
from weaktube.data.readers.activitynet_json import read_activitynet_json
from weaktube.data.readers.bsn_activitynet import read_bsn_activitynet
from weaktube.data.readers.frames import attach_frame_paths
from weaktube.data.readers.thumos14_txt import read_thumos14_txt
from weaktube.data.readers.ucf24_pyannot import read_ucf24_pyannot, rescale_to_video_sizes
from weaktube.data.readers.yowo_txt import read_yowo_txt
from weaktube.structures import AnnotationError, AnnotationSet

__all__ = [
    "READERS", "ReaderOptionError", "attach_frame_paths", "convert", "detect_format",
    "read_act_pkl", "read_actionformer_json", "read_activitynet_json", "read_bsn_activitynet",
    "read_thumos14_txt", "read_ucf24_pyannot", "read_yowo_txt", "rescale_to_video_sizes",
]

# Format name -> reader ``f(src, **options) -> AnnotationSet``.
READERS: dict[str, Callable[..., AnnotationSet]] = {
    "ucf24-pyannot": read_ucf24_pyannot,
    "act-pkl": read_act_pkl,
    "yowo-txt": read_yowo_txt,
    "thumos14-txt": read_thumos14_txt,
    "actionformer-json": read_actionformer_json,
    "activitynet-json": read_activitynet_json,
    "bsn-activitynet": read_bsn_activitynet,
}

_FLAT_LABEL = re.compile(r"^.+_\d+\.txt$")
_THUMOS_FILE = re.compile(r"^.+_(val|test)\.txt$")


def _formats() -> str:
    return ", ".join(READERS)


def _pickle_format(path: Path) -> list[str]:
    name = path.name.lower()
    if name.startswith("pyannot"):
        return ["ucf24-pyannot"]
    if name.endswith("-gt.pkl"):
        return ["act-pkl"]
    data = load_pickle(path)
    if isinstance(data, dict) and "db" in data:
        return ["ucf24-pyannot"]
    if isinstance(data, dict) and "gttubes" in data:
        return ["act-pkl"]
    return []


def _json_format(path: Path) -> list[str]:
    if path.name == "anet_anno_action.json":
        return ["bsn-activitynet"]
    data = load_json(path)
    if not isinstance(data, dict):
        return []
    if isinstance(data.get("database"), dict):
        entries = [e for e in data["database"].values() if isinstance(e, dict)]
        if entries and all("fps" in e for e in entries):
            return ["actionformer-json"]
        if entries:
            return ["activitynet-json"]
        return []
    values = list(data.values())
    if values and all(isinstance(v, dict) and "duration_second" in v for v in values):
        return ["bsn-activitynet"]
    return []


def _folder_formats(path: Path) -> list[str]:
    found = []
    if (path / "labels").is_dir() or path.name == "labels":
        found.append("yowo-txt")
    elif any(_FLAT_LABEL.match(p.name) and not _THUMOS_FILE.match(p.name)
             for p in path.glob("*.txt")):
        found.append("yowo-txt")
    if any((path / f"annotations_{s}").is_dir() for s in ("val", "test")) or any(
            _THUMOS_FILE.match(p.name) for p in path.glob("*.txt")):
        found.append("thumos14-txt")
    if (path / "anet_anno_action.json").is_file():
        found.append("bsn-activitynet")
    if list(path.glob("pyannot*.pkl")):
        found.append("ucf24-pyannot")
    if list(path.glob("*-GT.pkl")):
        found.append("act-pkl")
    return found


def detect_format(src: str | os.PathLike) -> str:
    """The format name of ``src`` (file or folder) when exactly one format fits.

    Raises :class:`AnnotationError` listing the formats when none or several fit.
    """
    path = Path(src)
    if not path.exists():
        raise AnnotationError("not found", file=path)
    if path.is_dir():
        found = _folder_formats(path)
    else:
        suffix = path.suffix.lower()
        found = {".zip": lambda p: ["yowo-txt"], ".pkl": _pickle_format,
                 ".pickle": _pickle_format, ".json": _json_format,
                 ".csv": lambda p: ["bsn-activitynet"] if p.name == "video_info_new.csv"
                 else []}.get(suffix, lambda p: [])(path)
    if len(found) == 1:
        return found[0]
    if not found:
        raise AnnotationError(f"cannot tell the annotation format; pass one of: {_formats()}",
                              file=path)
    raise AnnotationError(f"ambiguous source: it fits {', '.join(found)}; pass one of them as "
                          f"the format", file=path)


def convert(src: str | os.PathLike, format: str | None = None, **options: Any) -> AnnotationSet:
    """Read ``src`` in ``format`` (detected when None) into a validated :class:`AnnotationSet`.

    ``options`` are passed to the format's reader (``READERS[format]``); an option it does not
    take, or a bad option value, raises :class:`ReaderOptionError` (a ``ValueError``); a bad
    source raises :class:`AnnotationError`.
    """
    path = Path(src)
    if format is None:
        format = detect_format(path)
    if format == "bsn-activitynet" and path.suffix.lower() == ".csv":
        path = path.parent  # the video-info csv stands for the folder holding the json
    if format not in READERS:
        raise AnnotationError(f"unknown format {format!r}; known formats: {_formats()}",
                              file=path)
    read = READERS[format]
    accepted = [p for p in inspect.signature(read).parameters if p != "src"]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ReaderOptionError(f"format {format!r} takes no option(s) {unknown}; it takes "
                         f"{accepted}")
    return read(path, **options)
