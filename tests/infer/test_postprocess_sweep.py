"""benchmarks/postprocess_sweep.py: decoding once and post-processing per setting scores exactly
what detection with that setting scores."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

from tests.benchmark_scripts import BENCHMARKS, load_benchmark
from weaktube.data.dataset import FrameStore
from weaktube.evaluate.frame_map import frame_ap
from weaktube.infer.detect import detect_videos, postprocess_from_checkpoint
from weaktube.structures import AnnotationSet
from weaktube.train.checkpoint import inference_model, load_checkpoint

SCRIPT = BENCHMARKS / "postprocess_sweep.py"


def test_sweep_rows_equal_detection_with_each_setting(tiny_run, tmp_path):
    data, run = tiny_run
    ckpt = load_checkpoint(run / "last.pt")
    ann = AnnotationSet.load(data / "source.json").split("test")
    store = FrameStore(data / "videos")
    sweep = load_benchmark("postprocess_sweep").sweep
    rows = sweep(ckpt, ann, store, votes=[0.0, 0.5], windows=[0.0, 0.5], progress=False)
    assert [(r["class_vote_iou"], r["class_window_s"]) for r in rows] == [
        (0.0, 0.0), (0.0, 0.5), (0.5, 0.0), (0.5, 0.5)]
    model = inference_model(ckpt)
    cfg = ckpt["config"]
    for row in rows:
        post = dataclasses.replace(postprocess_from_checkpoint(ckpt),
                                   class_vote_iou=row["class_vote_iou"],
                                   class_window_s=row["class_window_s"])
        dets = detect_videos(model, ann.videos, store, progress=False,
                             clip_len=model.clip_len, frame_stride=cfg["data"]["frame_stride"],
                             img_size=model.cfg.img_size, postprocess=post)
        assert row["frame_mAP@0.5"] == frame_ap(ann, dets).mean_ap * 100.0
        assert 0.0 <= row["class_accuracy_on_localised"] <= 1.0
    out = tmp_path / "sweep.json"
    subprocess.run([sys.executable, str(SCRIPT), str(run / "last.pt"), str(data / "source.json"),
                    str(data / "videos"), "--vote", "0", "0.6", "--out", str(out)],
                   check=True, capture_output=True)
    saved = json.loads(out.read_text())["rows"]
    assert [r["class_vote_iou"] for r in saved] == [0.0, 0.6]
    assert saved[0]["frame_mAP@0.5"] == rows[1]["frame_mAP@0.5"]  # vote 0, window 0.5
