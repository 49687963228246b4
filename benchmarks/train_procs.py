"""Training throughput of the demo recipe: one process with T threads vs P processes (DDP).

    .venv/bin/python benchmarks/train_procs.py [--data DIR] [--clips 1024] \
        [--case 1x2x8 --case 2x1x4 ...] [--amp] [--workers 0 --workers 1] \
        [--set model.img_size=96] [--out procs.json]

A case ``PxTxB`` trains one epoch of ``--clips`` clips of the ``make demo`` recipe (real
loader, real losses, AdamW) on the demo preset's source domain in ``P`` processes of ``T``
torch threads, ``B`` clips per process and step (global batch ``P * B``), without evaluation,
and reports the clips per second of the training loop (all processes together) and the wall
time including process start and data loading. The demo preset is rendered into ``--data``
when that folder has no ``source.json``. ``--amp``: bf16 autocast (``train.amp``) in every case.
``--workers W`` (repeatable): every case once per ``data.workers`` value (default: -1, auto,
which is 0 on the CPU).
Prints one JSON line per case, then all as JSON.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import tempfile
import time
from pathlib import Path

from weaktube.config import apply_overrides, parse_set
from weaktube.data.synthetic import PRESETS, generate
from weaktube.demo import demo_config
from weaktube.fileio import atomic_write_json
from weaktube.train.launch import run_training


def parse_case(text: str) -> tuple[int, int, int]:
    try:
        procs, threads, batch = (int(x) for x in text.split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--case {text!r}: expected PxTxB, e.g. 2x1x4") from None
    return procs, threads, batch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="runs/bench_data/demo", help="demo preset folder")
    ap.add_argument("--clips", type=int, default=1024, help="clips per case (one epoch)")
    ap.add_argument("--case", type=parse_case, action="append",
                    help="PxTxB: processes x threads x batch per process (repeatable; "
                         "default 1x2x8 2x1x4 2x1x8)")
    ap.add_argument("--amp", action="store_true", help="train.amp=true (bf16 autocast on CPU)")
    ap.add_argument("--workers", type=int, action="append",
                    help="data.workers (repeatable; default -1 = auto, 0 on the CPU)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a recipe override applied in every case (e.g. model.img_size=96)")
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    a = ap.parse_args()
    data = Path(a.data)
    if not (data / "source.json").exists():
        generate(PRESETS["demo"](), seed=0, out_dir=data, progress=True)
    rows = []
    cases = a.case or [(1, 2, 8), (2, 1, 4), (2, 1, 8)]
    for (procs, threads, batch), workers in itertools.product(cases, a.workers or [-1]):
        cfg = apply_overrides(demo_config(data, device="cpu"), {"train": {
            "procs": procs, "threads": threads, "batch_size": batch, "epochs": 1,
            "clips_per_epoch": a.clips, "amp": a.amp}, "data": {"workers": workers}})
        if a.set:
            cfg = apply_overrides(cfg, parse_set(a.set))
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as run:
            result = run_training(cfg, run, progress=False, evaluate_at_end=False)
        row = {"procs": procs, "threads": threads, "batch_per_proc": batch, "amp": a.amp,
               "workers": workers, "set": a.set,
               "global_batch": procs * batch, "clips_per_s": result["clips_per_s"],
               "train_seconds": result["train_seconds"],
               "wall_seconds": round(time.perf_counter() - t0, 1),
               "load_1min": round(os.getloadavg()[0], 2)}
        print(json.dumps(row), flush=True)
        rows.append(row)
    if a.out:
        atomic_write_json(a.out, {"clips": a.clips, "cases": rows}, indent=2)
    print(json.dumps({"cases": rows}))


if __name__ == "__main__":
    main()
