"""Which precision a run trains in: ``train.amp`` resolved against the hardware.

bf16 autocast pays on a CPU only where it has native bf16 arithmetic (AVX-512 BF16 or AMX
tiles): there oneDNN's bf16 3D convolutions are faster than fp32 (the demo recipe: 32.5 -> 40.7
clips/s, docs/RESULTS.md §1). Without them (e.g. an AVX2-only CPU) oneDNN emulates bf16 and a
demo training step runs 31-36x slower than in fp32 (docs/RESULTS.md §1, session 8). ``"auto"``
therefore turns autocast on for CUDA (fp16) and for such CPUs (bf16), and off elsewhere.
"""

from __future__ import annotations

import warnings

import torch


def cpu_has_fast_bf16() -> bool:
    """True when this CPU has native bf16 arithmetic (AVX-512 BF16 or AMX tiles)."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)


def check_amp(amp: object) -> None:
    """Raise ValueError unless ``amp`` is one of ``train.amp``'s values: true, false or "auto"."""
    if not (isinstance(amp, bool) or amp == "auto"):
        raise ValueError(f"train.amp={amp!r}: expected true, false or auto")


def resolve_amp(amp: bool | str, device: torch.device) -> bool:
    """``train.amp`` (true, false or "auto") -> whether to autocast on ``device``.

    An explicit ``true`` is honoured, with a warning on a CPU without native bf16."""
    check_amp(amp)
    if amp == "auto":
        return device.type == "cuda" or (device.type == "cpu" and cpu_has_fast_bf16())
    if amp and device.type == "cpu" and not cpu_has_fast_bf16():
        warnings.warn("train.amp=true on a CPU without AVX-512 BF16 or AMX: bf16 autocast is "
                      "emulated there and training runs many times slower than fp32 "
                      "(train.amp=auto picks fp32 on such a CPU)", stacklevel=2)
    return amp
