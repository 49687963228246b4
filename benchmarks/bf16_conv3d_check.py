"""The CPU bf16 conv3d weight-gradient bug (docs/MODEL.md "bf16 on CPU"): per input shape
``[B, C, T, H, W]``, how many of ``--trials`` random calls of a plain 3x3x3 ``conv3d`` (padding 1)
in bf16 give a weight gradient that is non-finite or above 1e4 (float32 gives ~10).

    .venv/bin/python benchmarks/bf16_conv3d_check.py [--trials 60]
"""

from __future__ import annotations

import argparse
import json

import torch

SHAPES = [(2, 32, t, h, h) for t in (1, 2, 4, 8) for h in (8, 16)] + [(8, 16, 8, 32, 32)]


def bad_calls(shape: tuple[int, ...], trials: int, gen: torch.Generator) -> int:
    b, c, t, h, w = shape
    bad = 0
    for _ in range(trials):
        x = torch.randn(b, c, t, h, w, generator=gen)
        up = torch.randn(b, c, t, h, w, generator=gen)
        weight = (torch.randn(c, c, 3, 3, 3, generator=gen) * 0.05).bfloat16().requires_grad_()
        torch.nn.functional.conv3d(x.bfloat16(), weight, padding=1).backward(up.bfloat16())
        peak = weight.grad.float().abs().max()
        bad += int(not torch.isfinite(peak) or peak > 1e4)
    return bad


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=60)
    a = ap.parse_args()
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(0)
    rows = [{"shape": list(s), "bad": bad_calls(s, a.trials, gen), "trials": a.trials}
            for s in SHAPES]
    for r in rows:
        print(json.dumps(r), flush=True)
    print(json.dumps({"torch": torch.__version__, "rows": rows}))


if __name__ == "__main__":
    main()
