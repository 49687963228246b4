"""Training in two CPU processes joined by DDP over gloo (weaktube.train.launch), and resume."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from weaktube.config import apply_overrides
from weaktube.data.synthetic import SynthConfig, generate
from weaktube.demo import demo_config
from weaktube.train.checkpoint import load_checkpoint
from weaktube.train.engine import average_gradients, broadcast_buffers, finite_everywhere
from weaktube.train.launch import run_training

TINY = dict(num_train=4, num_test=2, num_frames=(30, 36), instance_frames=(12, 16),
            min_idle_frames=4, min_gap_frames=4, two_instance_prob=0.0,
            distractor_actors=(0, 0), objects=(0, 0))
RECIPE = {"model": {"clip_len": 4, "img_size": 64},
          "train": {"epochs": 2, "clips_per_epoch": 16, "batch_size": 2, "warmup_iters": 1,
                    "device": "cpu", "threads": 1, "log_every": 1,
                    # fp32: bf16 steps are sometimes skipped (docs/DESIGN.md), the counts below
                    # need every step
                    "amp": False},
          "eval": {"keyframe_stride": 6}}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    generate(SynthConfig(**TINY), seed=3, out_dir=root, progress=False)
    return root


def test_two_processes_train_together_and_resume(data, tmp_path):
    cfg = apply_overrides(demo_config(data), {**RECIPE, "train": {**RECIPE["train"],
                                                                  "procs": 2}})
    run = tmp_path / "run"
    result = run_training(cfg, run, progress=False)
    # each process draws half of clips_per_epoch: 8 clips = 4 steps of 2 per epoch
    assert result["iterations"] == 2 * 4
    saved = json.loads((run / "results.json").read_text())
    assert 0.0 <= saved["metrics"]["frame_mAP@0.5"] <= 100.0
    assert (run / "detections.json").is_file() and (run / "evaluation.json").is_file()
    # one metrics file (rank 0), one line per logged step and per epoch
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert sum("epoch_end" in x for x in lines) == 2
    assert all(torch.isfinite(torch.tensor(x["loss"])) for x in lines if "loss" in x)
    ckpt = load_checkpoint(run / "last.pt")
    assert ckpt["epoch"] == 1 and ckpt["iteration"] == 8
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())

    # a longer schedule in the same folder resumes from epoch 2 instead of starting over
    longer = apply_overrides(cfg, {"train": {"epochs": 3}})
    again = run_training(longer, run, progress=False, evaluate_at_end=False)
    assert again["iterations"] == 3 * 4 and [h["epoch"] for h in again["history"]] == [0, 1, 2]
    # the schedule changed where it resumed: said, and kept on record next to the new config
    notes = [json.loads(x) for x in (run / "resumes.jsonl").read_text().splitlines()]
    assert notes == [{"after_epoch": 1, "batches_done": 0, "changed": {"train.epochs": [2, 3]}}]

    # the target stage (gradients averaged by hand: its loss calls the sub-forwards) from it
    # with a mean teacher, whose buffers are shared from rank 0 as the model's are
    weak = apply_overrides(cfg, {"data": {"annotations": str(data / "target_weak.json")},
                                 "train": {"stage": "target", "init": str(run / "last.pt"),
                                           "epochs": 1},
                                 "weak": {"teacher_decay": 0.99}})
    target = run_training(weak, tmp_path / "target", progress=False)
    assert target["iterations"] == 4 and "tracker" in target
    assert 0.0 <= target["metrics"]["frame_mAP@0.5"] <= 100.0


def _sync_worker(rank: int, rendezvous: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank,
                            world_size=2)
    try:
        model = torch.nn.Linear(3, 2)
        model.unused = torch.nn.Parameter(torch.ones(4))  # no process gives it a gradient
        torch.nn.init.constant_(model.weight, 1.0)
        model(torch.full((1, 3), float(rank + 1))).sum().backward()  # rank 0: 1, rank 1: 2
        model.bias.grad = None if rank == 1 else model.bias.grad  # missing here: counts 0
        average_gradients(model)
        assert torch.allclose(model.weight.grad, torch.full((2, 3), 1.5)), model.weight.grad
        assert torch.allclose(model.bias.grad, torch.full((2,), 0.5)), model.bias.grad
        assert model.unused.grad is None  # the optimiser skips it, as in one process
        # batch-norm statistics drift apart per process; every process takes rank 0's
        bn = torch.nn.BatchNorm1d(2)
        bn(torch.randn(8, 2, generator=torch.Generator().manual_seed(rank)))
        broadcast_buffers(bn)
        stats = torch.stack([bn.running_mean, bn.running_var])
        gathered = [torch.zeros_like(stats) for _ in range(2)]
        dist.all_gather(gathered, stats)
        assert torch.equal(gathered[0], gathered[1]) and int(bn.num_batches_tracked) == 1
        # one process with a non-finite loss makes every process skip the step
        assert finite_everywhere(torch.tensor(float("nan") if rank == 1 else 1.0)) is False
        assert finite_everywhere(torch.tensor(1.0)) is True
    finally:
        dist.destroy_process_group()


def _teacher_worker(rank: int, rendezvous: str) -> None:
    """train_one_epoch with sync_grads: a teacher whose batch-norm statistics the loss moves
    with this process's own batch ends each step with rank 0's, as the model does."""
    from weaktube.config import ExperimentConfig
    from weaktube.train.engine import make_scheduler, train_one_epoch

    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank,
                            world_size=2)
    try:
        torch.manual_seed(0)
        model, teacher = torch.nn.Linear(2, 1), torch.nn.BatchNorm1d(2)
        gen = torch.Generator().manual_seed(rank)  # each process its own batches

        def loss_fn(m, batch):
            teacher(batch["clip"])  # train mode: running statistics of this process's batch
            return {"term": m(batch["clip"]).sum()}

        batches = [{"clip": torch.randn(4, 2, generator=gen) * (rank + 1)} for _ in range(3)]
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        train_one_epoch(model, loss_fn, batches, opt, make_scheduler(opt, 3, 0),
                        torch.device("cpu"), 0, ExperimentConfig(), None, progress=False,
                        sync_grads=True, teacher=teacher)
        stats = torch.stack([teacher.running_mean, teacher.running_var])
        gathered = [torch.zeros_like(stats) for _ in range(2)]
        dist.all_gather(gathered, stats)
        assert torch.equal(gathered[0], gathered[1]), gathered
        assert not torch.equal(stats, torch.stack([torch.zeros(2), torch.ones(2)]))  # moved
    finally:
        dist.destroy_process_group()


def test_a_mean_teachers_buffers_follow_rank_0():
    with tempfile.TemporaryDirectory() as tmp:
        mp.start_processes(_teacher_worker, args=(str(Path(tmp) / "rdzv"),), nprocs=2,
                           join=True, start_method="spawn")


def test_average_gradients_and_finite_flag_across_two_processes():
    with tempfile.TemporaryDirectory() as tmp:
        mp.start_processes(_sync_worker, args=(str(Path(tmp) / "rdzv"),), nprocs=2,
                           join=True, start_method="spawn")


def test_procs_refuses_cuda_and_zero(data, tmp_path):
    cfg = apply_overrides(demo_config(data), RECIPE)
    with pytest.raises(ValueError, match="train.procs=0"):
        run_training(apply_overrides(cfg, {"train": {"procs": 0}}), tmp_path / "a")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            run_training(apply_overrides(cfg, {"train": {"procs": 2, "device": "cuda"}}),
                         tmp_path / "b")
