"""Cost and scale of the optical-flow input (``weaktube.data.flow.clip_flow``) per training clip.

Samples ``--clips`` keyframe clips of ``DATA/source.json`` as training sees them (no
augmentation), times :func:`clip_flow` on their uint8 frames on one OpenCV thread, and reports
the flow's standard deviation and its 99th-percentile magnitude (input pixels; clip frames 1..N-1).

    .venv/bin/python benchmarks/flow_speed.py runs/demo/data --clips 150
"""

from __future__ import annotations

import argparse
import json
import time

import cv2
import numpy as np

from weaktube.data.dataset import ClipDataset, FrameStore, keyframe_index
from weaktube.data.flow import clip_flow
from weaktube.structures import AnnotationSet


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("data", help="a synthetic benchmark folder (source.json, videos/)")
    p.add_argument("--clips", type=int, default=150)
    p.add_argument("--clip-len", type=int, default=8)
    p.add_argument("--frame-stride", type=int, default=2)
    p.add_argument("--img-size", type=int, default=128)
    a = p.parse_args()
    cv2.setNumThreads(1)
    ann = AnnotationSet.load(f"{a.data}/source.json")
    index = keyframe_index(ann)
    ds = ClipDataset(ann, FrameStore(f"{a.data}/videos"), index, a.clip_len, a.frame_stride,
                     a.img_size, None, with_pixels=True)
    pick = np.random.default_rng(0).choice(len(ds), size=min(a.clips, len(ds)), replace=False)
    clips = [(ds[int(i)]["pixels"].numpy(), ds[int(i)]["frame_indices"].numpy()) for i in pick]
    clip_flow(*clips[0])  # warm-up
    t = time.perf_counter()
    flows = [clip_flow(pixels, idx) for pixels, idx in clips]
    ms = (time.perf_counter() - t) / len(clips) * 1e3
    moving = np.stack([f[:, 1:] for f in flows])  # [C, 2, N-1, S, S]
    magnitude = np.sqrt((moving ** 2).sum(axis=1))  # [C, N-1, S, S]
    print(json.dumps({"clips": len(clips), "clip_len": a.clip_len, "img_size": a.img_size,
                      "ms_per_clip": round(ms, 2), "flow_std": round(float(moving.std()), 3),
                      "magnitude_p99": round(float(np.percentile(magnitude, 99)), 2)}))


if __name__ == "__main__":
    main()
