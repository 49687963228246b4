"""Run one training stage in one process, or in several CPU processes that train together.

``train.procs`` > 1 (CPU only) starts that many processes on this machine, each with
``train.threads`` torch threads (0: the cores shared out), joined by DistributedDataParallel
over gloo: each draws its own share of ``clips_per_epoch`` and ``train.batch_size`` is per
process, so the global batch is ``procs * batch_size``. On a small model this beats one process
with the same threads (intra-op parallelism of a narrow 3D CNN scales poorly: docs/RESULTS.md).
The test split is scored afterwards in this process, with all threads. GPUs: launch under
``torchrun`` instead (one process per GPU; ``train.procs`` stays 1).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import torch
import torch.multiprocessing as mp

from weaktube.config import ExperimentConfig
from weaktube.fileio import atomic_write_json


def free_port() -> int:
    """A TCP port nothing listens on now (for the rendezvous of the local processes)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(rank: int, cfg: ExperimentConfig, out_dir: str, port: int, progress: bool,
            results) -> None:
    from weaktube.train.engine import fit

    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
                       "RANK": str(rank), "LOCAL_RANK": str(rank),
                       "WORLD_SIZE": str(cfg.train.procs)})
    result = fit(cfg, out_dir, progress=progress and rank == 0, evaluate_at_end=False)
    torch.distributed.destroy_process_group()
    if rank == 0:
        results.put(result)


def threads_per_proc(cfg: ExperimentConfig) -> int:
    """``train.threads`` or the machine's cores shared out over ``train.procs`` (at least 1)."""
    return cfg.train.threads or max(1, (os.cpu_count() or 1) // cfg.train.procs)


def run_training(cfg: ExperimentConfig, out_dir: str | os.PathLike, progress: bool = True,
                 evaluate_at_end: bool = True) -> dict:
    """:func:`weaktube.train.engine.fit`, in ``train.procs`` processes when asked.

    Same outputs as ``fit`` (``last.pt``, ``metrics.jsonl``, ``results.json`` ...)."""
    import dataclasses

    from weaktube.data.dataset import FrameStore  # noqa: F401  (import before fork-free spawn)
    from weaktube.model import DetectorConfig, build_detector
    from weaktube.structures import AnnotationSet
    from weaktube.train.checkpoint import load_checkpoint
    from weaktube.train.engine import evaluate_run, fit, resolve_device

    procs = cfg.train.procs
    if procs < 1:
        raise ValueError(f"train.procs={procs}: expected >= 1")
    if procs == 1 or int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return fit(cfg, out_dir, progress=progress, evaluate_at_end=evaluate_at_end)
    device = resolve_device(cfg.train.device)
    if device.type != "cpu":
        raise ValueError(f"train.procs={procs} trains CPU processes; on GPUs launch with "
                         "torchrun --nproc_per_node G (one process per GPU)")
    child = dataclasses.replace(cfg, train=dataclasses.replace(
        cfg.train, threads=threads_per_proc(cfg)))
    ctx = mp.get_context("spawn")
    results = ctx.SimpleQueue()
    mp.start_processes(_worker, args=(child, str(out_dir), free_port(), progress, results),
                       nprocs=procs, join=True, start_method="spawn")
    result = results.get()
    if evaluate_at_end:
        out_dir = Path(out_dir)
        ckpt = load_checkpoint(out_dir / "last.pt")
        model = build_detector(DetectorConfig.from_dict(ckpt["detector"]))
        model.load_state_dict(ckpt["model"])
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads * procs)
        result.update(evaluate_run(model, cfg, AnnotationSet.load(cfg.data.annotations),
                                   out_dir, device, progress))
        atomic_write_json(out_dir / "results.json", result, indent=2)
    return result
