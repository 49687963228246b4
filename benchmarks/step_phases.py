"""Where a demo-recipe training step spends its time, in float32 and in bf16 autocast.

    python benchmarks/step_phases.py --data DIR [--steps 20] [--batch-size 8] [--threads 2]
        [--precision fp32 --precision bf16] [--profile] [--out step_phases.json]

DIR is a synthetic benchmark (``weaktube synth --preset demo --out DIR``). Each step of the
``make demo`` recipe is timed in phases: preparing the batch (``ClipDataset`` in this process,
as on the CPU), forward, loss, backward, gradient norm, AdamW step and weight-average update.
Prints the median milliseconds per phase, the median whole step and its clips per second, per
precision, and what ``train.amp=auto`` resolves to on this CPU. ``--profile``: also the
``torch.profiler`` table (self CPU time per operator) of the timed float32 steps. Clips are
drawn uniformly (training draws 75 % with a person at the keyframe; the cost per clip is the
same). On a CPU without native bf16 (AVX-512 BF16 / AMX) bf16 steps are very slow: give
``--steps 3`` for them.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time
from pathlib import Path

import torch

from weaktube.config import apply_overrides, parse_set
from weaktube.data.dataset import ClipDataset, FrameStore, collate_clips, keyframe_index
from weaktube.demo import demo_config
from weaktube.fileio import atomic_write_json
from weaktube.losses.detection import total
from weaktube.model import build_detector
from weaktube.structures import AnnotationSet
from weaktube.train.ema import ModelEma
from weaktube.train.engine import build_model_config, make_optimizer, source_loss
from weaktube.train.precision import cpu_has_fast_bf16, resolve_amp

PHASES = ("data", "forward", "loss", "backward", "grad_norm", "optimizer", "ema")


def time_phases(data: Path, steps: int, batch_size: int, bf16: bool, warmup: int = 2,
                profile: bool = False, compile_model: bool = False,
                overrides: dict | None = None) -> dict:
    cfg = apply_overrides(demo_config(data, device="cpu"), overrides or {})
    ann = AnnotationSet.load(cfg.data.annotations).split(cfg.data.train_split)
    dcfg = build_model_config(cfg, ann)
    torch.manual_seed(0)
    model = build_detector(dcfg).train()
    fwd = torch.compile(model) if compile_model else model
    store = FrameStore(cfg.data.videos)
    store.preload(ann)
    dataset = ClipDataset(ann, store, keyframe_index(ann, cfg.data.keyframe_every),
                          dcfg.clip_len, cfg.data.frame_stride, dcfg.img_size,
                          cfg.data.augment, seed=0, flow=dcfg.uses_flow)
    optimizer = make_optimizer(model, cfg)
    ema = ModelEma(model, cfg.train.ema_decay)
    rng = random.Random(0)
    times: dict[str, list[float]] = {k: [] for k in PHASES}
    steps_s: list[float] = []
    prof = None
    for step in range(warmup + steps):
        if profile and step == warmup:
            prof = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU])
            prof.__enter__()
        t = [time.perf_counter()]
        batch = collate_clips([dataset[rng.randrange(len(dataset))] for _ in range(batch_size)])
        t.append(time.perf_counter())
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = fwd(batch["clip"])
            t.append(time.perf_counter())
            # the loss of the training loop (source_loss runs the forward itself: time it apart)
            terms = source_loss(lambda _clip, o=out: o, batch, cfg, model.anchors,
                                ann.num_classes)
        loss = total(terms)
        t.append(time.perf_counter())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        t.append(time.perf_counter())
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.grad is not None],
                                       cfg.train.grad_clip)
        t.append(time.perf_counter())
        optimizer.step()
        t.append(time.perf_counter())
        ema.update(model)
        t.append(time.perf_counter())
        if step >= warmup:
            for name, a, b in zip(PHASES, t, t[1:]):
                times[name].append(b - a)
            steps_s.append(t[-1] - t[0])
    if prof is not None:
        prof.__exit__(None, None, None)
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))
    ms = {k: round(statistics.median(v) * 1000, 1) for k, v in times.items()}
    step_s = statistics.median(steps_s)
    return {"ms_per_step": ms, "step_ms": round(step_s * 1000, 1),
            "clips_per_s": round(batch_size / step_s, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="synthetic benchmark folder (demo preset)")
    ap.add_argument("--steps", type=int, default=20, help="timed steps per precision")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--precision", choices=["fp32", "bf16"], action="append",
                    help="repeatable (default: fp32 only)")
    ap.add_argument("--profile", action="store_true",
                    help="print torch.profiler's operator table of the float32 steps")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a key of the demo recipe, e.g. model.overrides.cls_flow=true")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    res = {"threads": a.threads, "batch_size": a.batch_size, "steps": a.steps, "set": a.set,
           "cpu_capability": torch.backends.cpu.get_cpu_capability(),
           "cpu_has_fast_bf16": cpu_has_fast_bf16(),
           "amp_auto_autocasts": resolve_amp("auto", torch.device("cpu")),
           "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY")}
    for precision in a.precision or ["fp32"]:
        res[precision] = time_phases(Path(a.data), a.steps, a.batch_size, precision == "bf16",
                                     profile=a.profile and precision == "fp32",
                                     compile_model=a.compile, overrides=parse_set(a.set))
        print(precision, json.dumps(res[precision]), flush=True)
    if a.out:
        atomic_write_json(a.out, res, indent=2)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
