"""Run one training stage in one process, or in several CPU processes that train together.

``train.procs`` > 1 (CPU only) starts that many processes on this machine, each with
``train.threads`` torch threads (0: this machine's usable cores shared out), joined over gloo
(a file rendezvous in a private temporary folder, so two launches never meet): each draws its
own share of ``clips_per_epoch`` and ``train.batch_size`` is per process. So the global batch
is ``procs * batch_size`` and an epoch has ``1/procs`` of the optimiser steps of one process
with the same batch size, at the same learning rate: keep ``procs * batch_size`` equal to
compare recipes. Rank 0 alone writes ``metrics.jsonl`` (its own losses) and the checkpoint;
``clips_per_s`` in the result counts all processes. The test split is scored afterwards in
this process, with all threads. GPUs: launch under ``torchrun`` instead (one process per GPU;
``train.procs`` stays 1). Whether it pays on a given CPU is measured by
``benchmarks/train_procs.py`` (on this project's 2-core machine: within run-to-run noise).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from weaktube.config import ExperimentConfig
from weaktube.fileio import atomic_write_json

RESULT_FILE = "train_result.json"  # rank 0's return value, handed to the launching process


def usable_cores() -> int:
    """Cores this process may run on (CPU affinity and container limits included)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def threads_per_proc(cfg: ExperimentConfig) -> int:
    """``train.threads`` or the usable cores shared out over ``train.procs`` (at least 1)."""
    return cfg.train.threads or max(1, usable_cores() // cfg.train.procs)


def _worker(rank: int, cfg: ExperimentConfig, out_dir: str, rendezvous: str,
            progress: bool) -> None:
    from weaktube.train.engine import fit

    procs = cfg.train.procs
    os.environ.update({"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(procs)})
    torch.set_num_threads(threads_per_proc(cfg))
    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank,
                            world_size=procs)
    try:
        result = fit(cfg, out_dir, progress=progress and rank == 0, evaluate_at_end=False)
        if rank == 0:
            atomic_write_json(Path(out_dir) / RESULT_FILE, result)
    finally:
        dist.destroy_process_group()


def run_training(cfg: ExperimentConfig, out_dir: str | os.PathLike, progress: bool = True,
                 evaluate_at_end: bool = True) -> dict:
    """:func:`weaktube.train.engine.fit`, in ``train.procs`` processes when asked.

    Same outputs as ``fit`` (``last.pt``, ``metrics.jsonl``, ``results.json`` ...). Scripts
    that call this with ``train.procs`` > 1 need the ``if __name__ == "__main__":`` guard
    (the processes are spawned)."""
    from weaktube.structures import AnnotationSet
    from weaktube.train.checkpoint import inference_model, load_checkpoint
    from weaktube.train.engine import evaluate_run, fit, resolve_device

    procs = cfg.train.procs
    if procs < 1:
        raise ValueError(f"train.procs={procs}: expected >= 1")
    if procs == 1 or cfg.train.epochs == 0 or int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return fit(cfg, out_dir, progress=progress, evaluate_at_end=evaluate_at_end)
    device = resolve_device(cfg.train.device)
    if device.type != "cpu":
        raise ValueError(f"train.procs={procs} trains CPU processes; on GPUs launch with "
                         "torchrun --nproc_per_node G (one process per GPU)")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / RESULT_FILE).unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="weaktube_rdzv_") as tmp:
        mp.start_processes(_worker, args=(cfg, str(out_dir), str(Path(tmp) / "rendezvous"),
                                          progress),
                           nprocs=procs, join=True, start_method="spawn")
    result = json.loads((out_dir / RESULT_FILE).read_text(encoding="utf-8"))
    if evaluate_at_end:
        ckpt = load_checkpoint(out_dir / "last.pt")
        model = inference_model(ckpt)
        threads = torch.get_num_threads()
        torch.set_num_threads(threads_per_proc(cfg) * procs)
        try:
            result.update(evaluate_run(model, cfg, AnnotationSet.load(cfg.data.annotations),
                                       out_dir, device, progress))
        finally:
            torch.set_num_threads(threads)
        atomic_write_json(out_dir / "results.json", result, indent=2)
    return result
