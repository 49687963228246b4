"""Cost and speed of the detector variants: parameters, FLOPs, forward time, training throughput.

    .venv/bin/python benchmarks/speed.py [--quick] [--threads 2] [--out results.json]
    python benchmarks/speed.py --device cuda [--amp] --out speed_cuda.json   # on a GPU

- Parameters per branch (branch 1 = ``cls_backbone``, 2 = ``loc_backbone``, 3 = ``fusion``,
  4 = ``frame_head``) and in total.
- FLOPs from ``torch.utils.flop_counter.FlopCounterMode``, which counts a multiply-add as
  **2 FLOPs** (checked at start-up on a Linear layer). Counted on the ``meta`` device: no
  compute, so any width and size is cheap to count. Convolutions and matmuls only (BN, ReLU,
  pooling are not counted).
- Forward time per clip: batch 1, eval mode, ``no_grad``, median of ``--repeats`` runs after
  one warm-up run (and the fastest run); per-backbone times too.
- Training throughput of the demo model: batch 16, forward + backward + SGD step on a
  stand-in loss (sum of squared outputs; the real losses cost little next to the network),
  at the median and at the fastest step after warm-up.

With ``--device cuda`` every timed call ends with ``torch.cuda.synchronize()``, the
paper-size model's training throughput is measured too (batch 8, 16x3x224x224), and ``--amp``
runs forward and backward under float16 autocast (what ``train.amp`` does on CUDA).

The machine is shared: timings are noisy (the 1-minute load average is recorded).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from dataclasses import replace

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from weaktube.fileio import atomic_write_json
from weaktube.model import (
    DEFAULT_ANCHORS,
    Detector,
    DetectorConfig,
    build_detector,
    detector_demo,
    detector_paper,
    detector_small,
)
from weaktube.model.resnet3d import ResNet3d

BRANCHES = ("cls_backbone", "loc_backbone", "fusion", "frame_head")
NUM_CLASSES = 24
CPU = torch.device("cpu")


def check_flop_convention() -> int:
    """FLOPs FlopCounterMode reports per multiply-add (2 in current PyTorch)."""
    with torch.device("meta"):
        lin = nn.Linear(10, 5, bias=False)
        x = torch.empty(1, 10)
    with FlopCounterMode(display=False) as fc:
        lin(x)
    per_mac = fc.get_total_flops() // 50  # 10 x 5 multiply-adds
    assert per_mac in (1, 2), per_mac
    return per_mac


def count_params(model: Detector) -> dict[str, int]:
    out = {b: sum(p.numel() for p in getattr(model, b).parameters()) for b in BRANCHES}
    out["total"] = sum(p.numel() for p in model.parameters())
    return out


def count_flops(cfg: DetectorConfig, clip_len: int, size: int) -> dict[str, float]:
    """GFLOPs per branch and total for one clip ``[1, 3, clip_len, size, size]``."""
    with torch.device("meta"):
        model = build_detector(cfg).eval()
        clip = torch.empty(1, 3, clip_len, size, size)
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        model(clip)
    per_module = fc.get_flop_counts()
    out = {b: sum(per_module.get(f"Detector.{b}", {}).values()) / 1e9 for b in BRANCHES}
    out["total"] = fc.get_total_flops() / 1e9
    return out


def backbone_gflops(backbone_cfg, clip_len: int, size: int) -> float:
    with torch.device("meta"):
        m = ResNet3d(backbone_cfg)
        x = torch.empty(1, 3, clip_len, size, size)
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        m(x)
    return fc.get_total_flops() / 1e9


def run_times(fn, repeats: int, warmup: int = 1,
              device: torch.device = CPU) -> list[float]:
    """Wall-clock seconds of ``repeats`` calls of ``fn`` after ``warmup`` untimed calls
    (on CUDA each call is followed by a synchronisation, so the time is the device's)."""
    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return times


def forward_times(model: Detector, clip_len: int, size: int, repeats: int,
                  device: torch.device = CPU,
                  amp: bool = False) -> dict[str, float]:
    """Seconds per clip (batch 1, eval, no_grad): median for the whole detector and each
    backbone alone, and the minimum for the detector (less sensitive to other jobs)."""
    model.eval().to(device)
    clip = torch.randn(1, 3, clip_len, size, size, device=device)
    clip_cl = clip.contiguous(memory_format=torch.channels_last_3d)  # as Detector does on CPU
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.float16, enabled=amp):
        det = run_times(lambda: model(clip), repeats, device=device)
        out = {
            "detector_s": statistics.median(det),
            "detector_min_s": min(det),
            "cls_backbone_s": statistics.median(run_times(
                lambda: model.cls_backbone(model.branch1_input(clip_cl)), repeats,
                device=device)),
            "loc_backbone_s": statistics.median(
                run_times(lambda: model.loc_backbone(model.branch2_input(clip_cl)), repeats,
                          device=device)),
        }
    model.cpu()
    return out


def train_throughput(cfg: DetectorConfig, batch: int, steps: int,
                     device: torch.device = CPU,
                     amp: bool = False) -> tuple[float, float]:
    """Training clips per second (forward + backward + SGD step): at the median step time and
    at the fastest step."""
    torch.manual_seed(0)
    model = build_detector(cfg).train().to(device)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    clip = torch.randn(batch, 3, cfg.clip_len, cfg.img_size, cfg.img_size, device=device)

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
            out = model(clip)
            loss = out.key.float().pow(2).mean() + out.frames.float().pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    times = run_times(step, steps, warmup=2, device=device)
    return batch / statistics.median(times), batch / min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    ap.add_argument("--quick", action="store_true", help="skip the 416x416 case")
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    ap.add_argument("--repeats", type=int, default=5, help="timed forward runs per case")
    ap.add_argument("--train-steps", type=int, default=6, help="timed demo training steps")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--amp", action="store_true",
                    help="float16 autocast (CUDA only; on the CPU see train.amp's bf16)")
    args = ap.parse_args()
    if args.amp and args.device != "cuda":
        ap.error("--amp is for --device cuda")
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    variants = {
        "demo": detector_demo(NUM_CLASSES, DEFAULT_ANCHORS),
        "small": detector_small(NUM_CLASSES, DEFAULT_ANCHORS),
        "paper": detector_paper(NUM_CLASSES, DEFAULT_ANCHORS),
    }
    cases = [("demo", 8, 128), ("small", 16, 224), ("paper", 16, 224)]
    if not args.quick:
        cases.append(("paper", 16, 416))

    results: dict = {
        "torch": torch.__version__,
        "threads": args.threads,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "amp_float16": args.amp,
        "load_average_1min": os.getloadavg()[0],
        "flops_per_multiply_add": check_flop_convention(),
        "params": {},
        "cases": [],
    }
    models = {name: build_detector(cfg) for name, cfg in variants.items()}
    for name, model in models.items():
        results["params"][name] = count_params(model)

    for name, n, size in cases:
        flops = count_flops(variants[name], n, size)
        times = forward_times(models[name], n, size, args.repeats, device, args.amp)
        results["cases"].append({"variant": name, "clip": [n, 3, size, size],
                                 "gflops": flops, **times})
        print(f"  measured {name} {n}x3x{size}x{size}", flush=True)

    # Why branch 2 is narrow: cost of a T-keeping 34-layer location branch by width (16x224)
    paper_loc = variants["paper"].loc_backbone
    results["loc_width_sweep_gflops_16x224"] = {
        w: backbone_gflops(replace(paper_loc, width=w, stem_width=w), 16, 224)
        for w in (16, 24, 32, 64)
    }
    results["loc_full_width_hara_stem_gflops_16x224"] = backbone_gflops(
        replace(paper_loc, width=64, stem_width=64, conv1_t_size=7), 16, 224)

    median_rate, best_rate = train_throughput(variants["demo"], 16, args.train_steps, device,
                                              args.amp)
    results["demo_train_clips_per_s"] = median_rate
    results["demo_train_clips_per_s_best_step"] = best_rate
    if device.type == "cuda":  # the paper-size model trains only on a GPU
        median_rate, best_rate = train_throughput(variants["paper"], 8, args.train_steps,
                                                  device, args.amp)
        results["paper_train_clips_per_s"] = median_rate
        results["paper_train_clips_per_s_best_step"] = best_rate
        results["cuda_max_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    results["load_average_1min_end"] = os.getloadavg()[0]

    # table
    print(f"\nparameters (M), torch {torch.__version__}, {args.threads} threads")
    print(f"{'variant':<8}" + "".join(f"{b:>14}" for b in (*BRANCHES, "total")))
    for name, p in results["params"].items():
        print(f"{name:<8}" + "".join(f"{p[b] / 1e6:>14.2f}" for b in (*BRANCHES, "total")))
    print(f"\nGFLOPs (1 multiply-add = {results['flops_per_multiply_add']} FLOPs) and forward "
          "time per clip (batch 1, eval)")
    print(f"{'case':<18}" + "".join(f"{b:>14}" for b in (*BRANCHES, "total"))
          + f"{'detector s':>12}{'(min)':>8}{'cls s':>8}{'loc s':>8}")
    for c in results["cases"]:
        n, _, h, _ = c["clip"]
        label = f"{c['variant']} {n}x{h}"
        g = c["gflops"]
        print(f"{label:<18}" + "".join(f"{g[b]:>14.2f}" for b in (*BRANCHES, "total"))
              + f"{c['detector_s']:>12.3f}{c['detector_min_s']:>8.3f}{c['cls_backbone_s']:>8.3f}"
              + f"{c['loc_backbone_s']:>8.3f}")
    print("\nlocation branch (34 layers, T kept) GFLOPs at 16x224 by width:",
          {w: round(v, 1) for w, v in results["loc_width_sweep_gflops_16x224"].items()},
          f"(width 64 with Hara's 7x7x7 stem: "
          f"{results['loc_full_width_hara_stem_gflops_16x224']:.1f})")
    print(f"demo training: {results['demo_train_clips_per_s']:.1f} clips/s at the median step, "
          f"{results['demo_train_clips_per_s_best_step']:.1f} at the fastest "
          f"(batch 16, 8x3x128x128, {args.threads} threads)")
    if "paper_train_clips_per_s" in results:
        print(f"paper training: {results['paper_train_clips_per_s']:.1f} clips/s at the median "
              f"step, {results['paper_train_clips_per_s_best_step']:.1f} at the fastest "
              f"(batch 8, 16x3x224x224); peak GPU memory "
              f"{results['cuda_max_memory_gib']:.1f} GiB")
    print(f"device: {results['device']}, float16 autocast: {args.amp}")
    print(f"1-min load average at start / end: {results['load_average_1min']:.2f} / "
          f"{results['load_average_1min_end']:.2f} (on {os.cpu_count()} CPUs)")

    if args.out:
        atomic_write_json(args.out, results, indent=2)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
