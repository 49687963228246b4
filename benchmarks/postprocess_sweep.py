"""Score one checkpoint under several post-processing settings, running the network once.

Each test video goes through the network once (:func:`weaktube.infer.detect.decode_frames`);
every setting of ``--vote`` (``eval.postprocess.class_vote_iou``) x ``--window``
(``class_window_s``) is then post-processed and scored: frame-mAP@0.5 (ACT protocol) and, from
``frame_diagnosis``, the class-agnostic frame AP and the share of localised people whose class
is right. The rest of the run's ``eval.postprocess`` is kept. Paired by construction: the
settings differ in the decoding alone.

    .venv/bin/python benchmarks/postprocess_sweep.py RUN/last.pt DATA/source.json DATA/videos \\
        --vote 0 0.5 --window 0 0.5 --out sweep.json
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import sys
from pathlib import Path

import torch
from tqdm import tqdm

from weaktube.data.dataset import FrameStore
from weaktube.evaluate.frame_map import frame_ap
from weaktube.fileio import atomic_write_json
from weaktube.infer.detect import decode_frames, decoded_detections, postprocess_from_checkpoint
from weaktube.structures import AnnotationSet, Detections
from weaktube.train.checkpoint import inference_model, load_checkpoint

sys.path.insert(0, str(Path(__file__).resolve().parent))
from frame_diagnosis import diagnose  # noqa: E402


def sweep(ckpt: dict, ann: AnnotationSet, store: FrameStore, votes: list[float],
          windows: list[float], progress: bool = True) -> list[dict]:
    """One row per (vote, window): ``{"class_vote_iou", "class_window_s", "frame_mAP@0.5",
    "class_agnostic_frame_AP@0.5", "class_accuracy_on_localised"}`` (mAP in percent)."""
    model = inference_model(ckpt)
    base = postprocess_from_checkpoint(ckpt)
    stride = ckpt["config"]["eval"]["keyframe_stride"]
    decoded = {}
    with torch.inference_mode():
        for v in tqdm(ann.videos, desc="decode", unit="video", disable=not progress):
            decoded[v.name] = decode_frames(
                model, store.video(v), clip_len=model.clip_len,
                frame_stride=ckpt["config"]["data"]["frame_stride"], img_size=model.cfg.img_size,
                keyframe_stride=stride, batch_size=ckpt["config"]["eval"]["batch_size"])
    rows = []
    for vote, window in itertools.product(votes, windows):
        post = dataclasses.replace(base, class_vote_iou=vote, class_window_s=window)
        dets = Detections.concat([decoded_detections(decoded[v.name], v.name, post, v.fps, stride)
                                  for v in ann.videos])
        d = diagnose(ann, dets, keyframe_stride=stride)
        rows.append({"class_vote_iou": vote, "class_window_s": window,
                     "frame_mAP@0.5": frame_ap(ann, dets, keyframe_stride=stride).mean_ap * 100.0,
                     "class_agnostic_frame_AP@0.5": d["class_agnostic_frame_AP@0.5"],
                     "class_accuracy_on_localised": d["class_accuracy_on_localised"]})
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint")
    p.add_argument("annotations")
    p.add_argument("videos")
    p.add_argument("--split", default="test")
    p.add_argument("--vote", type=float, nargs="+", default=[0.0, 0.5],
                   help="class_vote_iou values (0: off)")
    p.add_argument("--window", type=float, nargs="+", default=[0.5],
                   help="class_window_s values in seconds (0: off)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", help="write the rows as JSON here")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    ann = AnnotationSet.load(a.annotations).split(a.split)
    rows = sweep(load_checkpoint(a.checkpoint), ann, FrameStore(a.videos), a.vote, a.window)
    print(f"{'vote IoU':>9} {'window s':>9} {'frame-mAP':>10} {'agnostic AP':>12} {'class ok':>9}")
    for r in rows:
        print(f"{r['class_vote_iou']:9.2f} {r['class_window_s']:9.2f} {r['frame_mAP@0.5']:10.2f} "
              f"{r['class_agnostic_frame_AP@0.5']:12.2f} {r['class_accuracy_on_localised']:9.3f}")
    if a.out:
        atomic_write_json(a.out, {"checkpoint": a.checkpoint, "annotations": a.annotations,
                                  "split": a.split, "rows": rows}, indent=2)


if __name__ == "__main__":
    main()
