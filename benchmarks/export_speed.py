"""Inference speed of an exported detector: eager PyTorch, ``torch.export`` (.pt2) and ONNX
Runtime, on the same uint8 clips.

    python benchmarks/export_speed.py --checkpoint runs/demo/train/last.pt [--threads 2]
        [--batch 1 --batch 8] [--repeats 20] [--out export_speed.json]
    python benchmarks/export_speed.py --variant paper [--batch 1]   # random weights, 16x224

Each path runs :class:`weaktube.infer.export.DeployedDetector`'s computation (uint8 frames
in, decoded boxes out): ``eager`` the module itself under ``torch.inference_mode``, ``pt2``
the program ``weaktube export`` saved, reloaded with ``torch.export.load``, ``onnxruntime``
the ONNX file in a CPU session with ``--threads`` intra-op threads. Reported per batch size:
the median and fastest milliseconds per call after two warm-up calls, and clips per second at
the median; the largest absolute output difference to eager; the export's own seconds.
``--variant demo|small|paper`` builds a random-weight checkpoint of that variant (24 classes,
its default clip) instead of reading one: speed does not depend on the weights.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from weaktube.fileio import atomic_write_json
from weaktube.infer.export import DeployedDetector, example_clips, export_checkpoint
from weaktube.model import DEFAULT_ANCHORS, build_detector
from weaktube.train.checkpoint import inference_model, load_checkpoint, save_checkpoint
from weaktube.train.engine import VARIANTS  # model.variant -> factory, as training builds it


def random_checkpoint(variant: str, path: Path) -> Path:
    """A checkpoint of ``variant`` with random weights (24 classes, the variant's clip)."""
    torch.manual_seed(0)
    dcfg = VARIANTS[variant](24, DEFAULT_ANCHORS)
    model = build_detector(dcfg)
    save_checkpoint(path, {"model": model.state_dict(), "detector": dcfg.to_dict(),
                           "classes": [f"c{i}" for i in range(24)],
                           "config": {"data": {"frame_stride": 1}, "eval": {}}})
    return path


def time_calls(fn, clip, repeats: int) -> tuple[float, float]:
    """Median and fastest milliseconds of ``fn(clip)`` after two warm-up calls."""
    for _ in range(2):
        fn(clip)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn(clip)
        times.append(1000 * (time.perf_counter() - t))
    return statistics.median(times), min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint")
    src.add_argument("--variant", choices=sorted(VARIANTS))
    ap.add_argument("--batch", type=int, action="append")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="export_speed.json")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    import onnxruntime

    batches = a.batch or [1, 8]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        ckpt_path = Path(a.checkpoint) if a.checkpoint else random_checkpoint(
            a.variant, tmp / "random.pt")
        model = inference_model(load_checkpoint(ckpt_path)).float()
        deployed = DeployedDetector(model).eval()
        clip_len, size = model.cfg.clip_len, model.cfg.img_size
        export_s = {}
        for suffix in (".pt2", ".onnx"):
            t = time.perf_counter()
            export_checkpoint(ckpt_path, tmp / f"model{suffix}")
            export_s[suffix[1:]] = round(time.perf_counter() - t, 1)
        program = torch.export.load(tmp / "model.pt2").module()
        opts = onnxruntime.SessionOptions()
        opts.intra_op_num_threads = a.threads
        opts.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(str(tmp / "model.onnx"), opts,
                                               providers=["CPUExecutionProvider"])

        def eager(clip):
            with torch.inference_mode():
                return [t.numpy() for t in deployed(clip)]

        def pt2(clip):
            with torch.inference_mode():
                return [t.numpy() for t in program(clip)]

        def ort(clip):
            return session.run(None, {"clip": clip.numpy()})

        rows = []
        for batch in batches:
            clip = example_clips(batch, clip_len, size, seed=2)
            want = eager(clip)
            for name, fn in (("eager", eager), ("pt2", pt2), ("onnxruntime", ort)):
                diff = max(float(np.abs(w - g).max()) for w, g in zip(want, fn(clip)))
                med, best = time_calls(fn, clip, a.repeats)
                row = {"path": name, "batch": batch, "ms_median": round(med, 2),
                       "ms_fastest": round(best, 2),
                       "clips_per_s": round(1000 * batch / med, 2), "max_abs_diff": diff}
                rows.append(row)
                print(row, flush=True)
    out = {"source": a.checkpoint or f"random {a.variant}", "clip": [clip_len, 3, size, size],
           "threads": a.threads, "repeats": a.repeats, "export_seconds": export_s,
           "torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
           "loadavg_1min": os.getloadavg()[0], "rows": rows}
    atomic_write_json(a.out, out, indent=2)
    print(out)


if __name__ == "__main__":
    main()
