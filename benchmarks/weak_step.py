"""Cost of a target-stage (weak) training step against a source-stage step, same batch size.

    python benchmarks/weak_step.py --data DIR [--steps 20] [--batch-size 8] [--tracker kcf]
        [--size-teacher | --teacher-decay D] [--out weak_step.json]

DIR is a synthetic benchmark (``weaktube synth --preset demo --out DIR``). Both steps run the
demo detector on real clips (forward, loss, backward, optimiser step); the weak step includes
seed selection and the tracker, which runs on a thread while branches 1 + 3 compute.
``--size-teacher``: the weak step also runs the size anchor's frozen teacher (a copy of the
initial model's branches 2 + 4, ``weak.size_teacher``); ``--teacher-decay``: the pseudo-boxes
come from a teacher (``weak.teacher_decay``; a mean teacher below 1, updated every step). Prints
the median seconds per step and the ratio (issue target: <= 1.3).
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time
from pathlib import Path

import torch

from weaktube.config import ExperimentConfig, apply_overrides
from weaktube.data.dataset import ClipDataset, FrameStore, collate_clips, keyframe_index
from weaktube.demo import DEMO_OVERRIDES
from weaktube.fileio import atomic_write_json
from weaktube.losses.detection import total
from weaktube.model import build_detector
from weaktube.structures import AnnotationSet
from weaktube.train.checkpoint import inference_model, load_checkpoint
from weaktube.train.engine import build_model_config, make_optimizer, source_loss
from weaktube.train.weak import WeakLoss


def time_steps(model, loss_fn, batches, optimizer) -> list[float]:
    out = []
    for batch in batches:
        t0 = time.perf_counter()
        loss = total(loss_fn(model, batch))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--tracker", default="kcf")
    p.add_argument("--init", help="a trained source checkpoint: its confident boxes seed the "
                   "tracker (an untrained network has none, and the step would not track)")
    p.add_argument("--size-teacher", action="store_true", help="weak.size_teacher on")
    p.add_argument("--teacher-decay", type=float, default=0.0, help="weak.teacher_decay")
    p.add_argument("--out")
    a = p.parse_args()
    torch.manual_seed(0)
    cfg = apply_overrides(ExperimentConfig(), DEMO_OVERRIDES)
    cfg = apply_overrides(cfg, {"weak": {"tracker": a.tracker, "size_teacher": a.size_teacher,
                                         "teacher_decay": a.teacher_decay}})
    data = Path(a.data)
    src = AnnotationSet.load(data / "source.json").split("train")
    tgt = AnnotationSet.load(data / "target_weak.json").split("train")
    if a.init:
        ckpt = load_checkpoint(a.init)
        model = inference_model(ckpt).train()
    else:
        model = build_detector(build_model_config(cfg, src))
    optimizer = make_optimizer(model, cfg)
    store = FrameStore(data / "videos")
    n = a.steps + 3  # 3 warm-up steps each

    def batches(ann, pixels):
        ds = ClipDataset(ann, store, keyframe_index(ann), cfg.model.clip_len,
                         cfg.data.frame_stride, cfg.model.img_size, cfg.data.augment, seed=0,
                         with_pixels=pixels, flow=model.cfg.uses_flow)
        g = torch.Generator().manual_seed(0)
        idx = torch.randint(len(ds), (n * a.batch_size,), generator=g).tolist()
        return [collate_clips([ds[i] for i in idx[k:k + a.batch_size]])
                for k in range(0, len(idx), a.batch_size)]

    src_batches, tgt_batches = batches(src, False), batches(tgt, True)
    anchors, k = model.anchors, src.num_classes
    teacher = None
    if cfg.weak.needs_teacher:  # branches 2 + 4, as engine.location_teacher
        teacher = copy.deepcopy(model).eval().requires_grad_(False)
        del teacher.cls_backbone, teacher.fusion
    # same head for both steps
    weak = WeakLoss(cfg.weak, cfg.loss, anchors, src.num_classes, teacher)
    model.train()
    t_src = time_steps(model, lambda m, b: source_loss(m, b, cfg, anchors, k), src_batches,
                       optimizer)[3:]
    t_tgt = time_steps(model, weak, tgt_batches, optimizer)[3:]
    weak.close()
    res = {"batch_size": a.batch_size, "steps": a.steps, "tracker": a.tracker,
           "size_teacher": a.size_teacher, "teacher_decay": a.teacher_decay,
           "threads": torch.get_num_threads(), "load_avg_1min": os.getloadavg()[0],
           "source_step_s": statistics.median(t_src), "target_step_s": statistics.median(t_tgt),
           "tracker_jobs": weak.stats["tracker_jobs"],
           "tracker_failures": weak.stats["tracker_failures"]}
    res["ratio"] = res["target_step_s"] / res["source_step_s"]
    for key, val in res.items():
        print(f"{key:<18} {val:.4f}" if isinstance(val, float) else f"{key:<18} {val}")
    if a.out:
        atomic_write_json(a.out, res, indent=2)


if __name__ == "__main__":
    main()
