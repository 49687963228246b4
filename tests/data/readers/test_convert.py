"""``convert`` / ``detect_format``: format detection on the real sources, dispatch, errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.data.readers.builders import write_act_pkl
from weaktube.data.readers import READERS, ReaderOptionError, convert, detect_format
from weaktube.structures import AnnotationError, AnnotationSet


@pytest.mark.parametrize("rel, fmt", [
    ("ucf24/annotations/pyannot_with_class_names.pkl", "ucf24-pyannot"),
    ("ucf24/annotations", "ucf24-pyannot"),
    ("jhmdb21/groundtruths_jhmdb.zip", "yowo-txt"),
    ("thumos14/official_txt", "thumos14-txt"),
    ("thumos14/official_txt/annotations_test", "thumos14-txt"),
    ("thumos14/actionformer_json/thumos14.json", "actionformer-json"),
    ("activitynet", "bsn-activitynet"),
    ("activitynet/anet_anno_action.json", "bsn-activitynet"),
    ("activitynet/video_info_new.csv", "bsn-activitynet"),
])
def test_detects_real_sources(shared_data, rel, fmt):
    assert detect_format(shared_data / rel) == fmt


@pytest.mark.parametrize("rel", ["thumos14/mmtad_json/TH14_video_info.json",
                                 "thumos14/mmtad_json/thumos14_val.json", "jhmdb21",
                                 "README.md"])
def test_undetectable_sources_list_the_formats(shared_data, rel):
    with pytest.raises(AnnotationError, match="cannot tell the annotation format") as e:
        detect_format(shared_data / rel)
    for name in READERS:
        assert name in str(e.value)


def test_convert_dispatches_and_passes_options(shared_data, tmp_path):
    ann = convert(shared_data / "ucf24" / "annotations",
                  testlist=shared_data / "ucf24" / "annotations" / "testlist01.txt")
    assert len(ann.split("test")) == 910
    ann = convert(shared_data / "jhmdb21" / "groundtruths_jhmdb.zip", "yowo-txt", split="val")
    assert {v.split for v in ann.videos} == {"val"}
    # the canonical file round-trips
    ann.save(tmp_path / "ann.json")
    assert AnnotationSet.load(tmp_path / "ann.json").to_dict() == ann.to_dict()
    with pytest.warns(UserWarning) as record:
        assert len(convert(shared_data / "activitynet" / "video_info_new.csv")) == 19228
    assert any("12 zero-length" in str(w.message) for w in record)


def test_convert_errors(shared_data, tmp_path):
    src = shared_data / "thumos14" / "official_txt"
    with pytest.raises(AnnotationError, match="unknown format 'thumos'; known formats: "
                                              "ucf24-pyannot, act-pkl"):
        convert(src, "thumos")
    with pytest.raises(ReaderOptionError, match=r"takes no option\(s\) \['fsp'\]; it takes "
                                                r"\['video_info', 'fps'"):
        convert(src, "thumos14-txt", fsp=25)
    # a bad option value is the caller's error, not the file's
    for fmt, option in (("thumos14-txt", {"fps": -1}), ("thumos14-txt", {"out_of_range": "x"}),
                        ("yowo-txt", {"box_base": 2})):
        with pytest.raises(ReaderOptionError) as e:
            convert(src, fmt, **option)
        assert not isinstance(e.value, AnnotationError)
    with pytest.raises(AnnotationError, match="not found"):
        convert(tmp_path / "nothing")
    # a folder that fits two formats
    shutil.copy(shared_data / "ucf24" / "annotations" / "pyannot_with_class_names.pkl",
                tmp_path)
    write_act_pkl(tmp_path / "JHMDB-GT.pkl", ["a"], {}, [[]], [[]])
    with pytest.raises(AnnotationError, match="ambiguous source: it fits ucf24-pyannot, "
                                              "act-pkl"):
        convert(tmp_path)
    with pytest.raises(AnnotationError, match="no annotated segment"):
        # an ActivityNet json without any instance has no class list
        (tmp_path / "anet.json").write_text('{"database": {"x": {"subset": "testing", '
                                            '"duration": 3}}}')
        convert(tmp_path / "anet.json")


def test_pickle_sniffing(tmp_path: Path):
    p = write_act_pkl(tmp_path / "renamed.pkl", ["a"], {}, [[]], [[]])
    assert detect_format(p) == "act-pkl"
    p.write_bytes(b"garbage")
    with pytest.raises(AnnotationError, match="cannot unpickle"):
        detect_format(p)
