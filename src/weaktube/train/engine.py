"""Training as two plain functions, ``train_one_epoch`` and ``evaluate``, plus ``fit`` that wires
data, model, optimiser, checkpoints and logging for one stage.

Source stage (eqs. 19-20): GL = Loss_cls + Loss_loc on the keyframe head (branches 1 and 3);
IL = Loss_clip on the per-frame head (branches 2 and 4). The detector feeds branch 2's maps
detached into the fusion, so one backward of GL + IL with two parameter groups (lr alpha for
"internal", lambda * alpha for "global") is exactly eq. 7's update.

DDP: launched under ``torchrun``, each rank draws its own share of clips; gradients are averaged
by DistributedDataParallel. AMP: ``train.amp`` autocasts (bf16 on CPU, fp16 with a GradScaler on
CUDA).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from weaktube.config import ExperimentConfig, config_differences, flatten_config, to_dict
from weaktube.data.dataset import ClipDataset, FrameStore, collate_clips, keyframe_index
from weaktube.data.video import find_video
from weaktube.fileio import append_jsonl, atomic_write_json, atomic_write_text, temporaries_of
from weaktube.infer.detect import detect_videos
from weaktube.losses.detection import clip_loss, total, yolo_loss
from weaktube.model import (
    Detector,
    DetectorConfig,
    build_detector,
    detector_demo,
    detector_paper,
    detector_small,
    load_hara_checkpoint,
)
from weaktube.model.anchors import anchors_for
from weaktube.structures import AnnotationSet
from weaktube.train.checkpoint import inference_weights, load_checkpoint, save_checkpoint
from weaktube.train.ema import ModelEma
from weaktube.train.precision import resolve_amp
from weaktube.train.weak import WeakLoss

# Model variants selectable by name from configs (``model.variant``): tiny factories.
VARIANTS = {"demo": detector_demo, "small": detector_small, "paper": detector_paper}

LossFn = Callable[[torch.nn.Module, dict], dict[str, torch.Tensor]]


class NonFiniteLossError(RuntimeError):
    """Too many consecutive non-finite losses: training diverged."""


@dataclass
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed(device: torch.device) -> DistInfo:
    """Initialise torch.distributed when launched by torchrun (``WORLD_SIZE`` > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if device.type == "cuda":
        # the current device, not only the tensors' device: else every process's pin-memory
        # thread (and NCCL's first context) lands on GPU 0, which then runs out of memory first
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistInfo(dist.get_rank(), dist.get_world_size(), local_rank)


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def finite_everywhere(loss: torch.Tensor) -> bool:
    """``loss`` is finite in every process (all skip a step together, or none does)."""
    ok = torch.isfinite(loss.detach()).float()
    if world_size() > 1:
        dist.all_reduce(ok, op=dist.ReduceOp.MIN)
    return bool(ok.item())


def average_gradients(model: torch.nn.Module) -> None:
    """Mean of every parameter's gradient over the processes, in one all-reduce.

    For losses that call a model's sub-forwards (the target stage: ``forward_location`` then
    ``forward_global``), which DistributedDataParallel's hooks never see. A parameter without a
    gradient in this process counts as a zero gradient, so every process sends the same sizes;
    one that no process has a gradient for keeps none, so that the optimiser skips it (weight
    decay and momentum included) as it would in a single process.
    """
    world = world_size()
    params = [p for p in model.parameters() if p.requires_grad]
    if world <= 1 or not params:
        return
    had = torch.tensor([float(p.grad is not None) for p in params])  # [P]
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    # one all-reduce: the gradients, then per parameter how many processes had one
    flat = torch.cat([p.grad.reshape(-1) for p in params] + [had.to(params[0].grad)])
    dist.all_reduce(flat)
    flat[: -len(params)] /= world
    offset = 0
    for p, anywhere in zip(params, flat[-len(params):].tolist(), strict=True):
        n = p.numel()
        p.grad.copy_(flat[offset : offset + n].view_as(p.grad))
        offset += n
        if anywhere == 0:  # no process had a gradient: the optimiser skips it, as in one process
            p.grad = None


def broadcast_buffers(model: torch.nn.Module) -> None:
    """Every process takes rank 0's buffers (batch-norm running statistics), as
    DistributedDataParallel does before each forward: for the target stage, which averages its
    gradients by hand (:func:`average_gradients`) and would otherwise let each process's
    statistics drift apart (the checkpoint keeps rank 0's, a resumed run all of them)."""
    if world_size() <= 1:
        return
    for b in model.buffers():
        dist.broadcast(b, 0)


def loader_workers(requested: int, device: torch.device, world: int = 1) -> int:
    """``data.workers`` with ``-1`` (auto) resolved: none on the CPU, where the cores already
    train (and the tracker's threads share them); on a GPU, where one process cannot prepare
    clips as fast as the GPU consumes them (61 clips/s without workers against ~1000 clips/s
    for the demo model's steps on an H100, docs/RESULTS.md), up to 8 per process.

    ``world``: the processes that share this machine's CPUs (torchrun's
    ``LOCAL_WORLD_SIZE``, not the global world size of a multi-node job)."""
    if requested < -1:
        raise ValueError(f"data.workers must be -1 (auto) or >= 0, got {requested}")
    if requested >= 0:
        return requested
    if device.type == "cpu":
        return 0
    return max(0, min(8, (os.cpu_count() or 1) // max(1, world) - 1))


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("--device cuda requested but CUDA is not available")
        return torch.device("cuda", local_rank)
    return torch.device(name)


def source_loss(model: torch.nn.Module, batch: dict, cfg: ExperimentConfig,
                anchors: torch.Tensor, num_classes: int) -> dict[str, torch.Tensor]:
    """Named terms of the source-domain loss: ``key_*`` (GL, eq. 19) and ``clip_*`` (IL, eq. 20)."""
    out = model(batch["clip"])
    terms = yolo_loss(out.key.float(), anchors, batch["key_boxes"], batch["key_labels"],
                      num_classes, cfg.loss, prefix="key_")
    terms.update(clip_loss(out.frames.float(), anchors, batch["frame_boxes"],
                           batch["frame_valid"], cfg.loss))
    return terms


def batch_origin(batch: dict, limit: int = 4) -> str:
    """Where a batch's clips come from, for an error message: ``video@keyframe, ...``."""
    videos, frames = batch.get("video"), batch.get("frame")
    if not videos or frames is None:
        return "unknown clips"
    pairs = [f"{v}@{int(f)}" for v, f in zip(videos, frames.tolist(), strict=False)]
    more = f" and {len(pairs) - limit} more" if len(pairs) > limit else ""
    return ", ".join(pairs[:limit]) + more


def train_one_epoch(model: torch.nn.Module, loss_fn: LossFn, loader, optimizer,
                    scheduler, device: torch.device, epoch: int, cfg: ExperimentConfig,
                    log_path: Path | None, iteration: int = 0, scaler=None,
                    progress: bool = True, sync_grads: bool = False,
                    ema: ModelEma | None = None,
                    amp: bool | None = None,
                    checkpoint: Callable[[int, int], None] | None = None,
                    teacher: torch.nn.Module | None = None,
                    ) -> tuple[int, dict[str, float]]:
    """One pass over ``loader``. Returns the new global iteration and the epoch's mean terms.

    ``amp``: autocast or not (``None``: ``cfg.train.amp`` resolved for ``device``, see
    :func:`~weaktube.train.precision.resolve_amp`).
    ``ema``: updated from the model's weights after every optimiser step.
    ``sync_grads``: average the gradients over the processes by hand after each backward (for a
    ``loss_fn`` that bypasses the DDP wrapper's forward; see :func:`average_gradients`); the
    model's buffers, and ``teacher``'s (a mean teacher that ``loss_fn`` updates from the model,
    batch-norm statistics of this process's batch included), then become rank 0's.
    ``checkpoint(iteration, batches)``: called after every ``train.checkpoint_every``-th
    optimiser step inside the pass (not after its last batch), ``batches`` = the batches of
    ``loader`` consumed so far, skipped ones included."""
    model.train()
    core = model.module if isinstance(model, DistributedDataParallel) else model
    tc = cfg.train
    sums: dict[str, float] = {}
    steps, nonfinite, skipped, t0, seen = 0, 0, 0, time.perf_counter(), 0
    autocast_dtype = torch.bfloat16 if device.type == "cpu" else torch.float16
    use_amp = resolve_amp(tc.amp, device) if amp is None else amp
    bar = tqdm(loader, desc=f"epoch {epoch}", unit="batch", disable=not progress,
               dynamic_ncols=True)
    num_batches = len(loader) if hasattr(loader, "__len__") else None
    for consumed, batch in enumerate(bar, 1):
        batch = {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v
                 for k, v in batch.items()}
        with torch.autocast(device.type, dtype=autocast_dtype, enabled=use_amp):
            terms = loss_fn(model, batch)
        loss = total(terms)
        if not finite_everywhere(loss):
            nonfinite += 1
            skipped += 1
            optimizer.zero_grad(set_to_none=True)
            if nonfinite >= tc.max_nonfinite:
                raise NonFiniteLossError(
                    f"epoch {epoch}, iteration {iteration}: {nonfinite} consecutive non-finite "
                    f"losses ({ {k: float(v.detach()) for k, v in terms.items()} }); last "
                    f"batch: {batch_origin(batch)}")
            continue
        optimizer.zero_grad(set_to_none=True)
        (scaler.scale(loss) if scaler is not None else loss).backward()
        if sync_grads:  # before unscale_: every process's GradScaler then sees the same grads
            average_gradients(model)
            broadcast_buffers(model)  # rank 0's batch-norm statistics, as DDP keeps them
            if teacher is not None:
                broadcast_buffers(teacher)
        if scaler is not None:
            scaler.unscale_(optimizer)
        params = [p for p in model.parameters() if p.grad is not None]
        # total norm of the (unscaled) gradients, measured before any clipping
        grad_norm = torch.nn.utils.get_total_norm([p.grad for p in params])
        # a finite loss can still give non-finite (or overflowing) gradients: skip that step
        # too, or one bad element turns every weight into NaN. With a GradScaler this is also
        # its own overflow skip, made here so that it is counted: the scale backs off
        # (update() without step()), and max_nonfinite such steps in a row abort the run
        # (a halved scale 20 times over is no longer a scale that is too high).
        if not finite_everywhere(grad_norm):
            nonfinite += 1
            skipped += 1
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.update()
            if nonfinite >= tc.max_nonfinite:
                raise NonFiniteLossError(
                    f"epoch {epoch}, iteration {iteration}: {nonfinite} consecutive steps with "
                    f"non-finite gradients (last loss terms: "
                    f"{ {k: round(float(v.detach()), 5) for k, v in terms.items()} }); last "
                    f"batch: {batch_origin(batch)}")
            continue
        if tc.grad_clip > 0:
            torch.nn.utils.clip_grads_with_norm_(params, tc.grad_clip, grad_norm)
        if scaler is not None:
            scaler.step(optimizer)  # the gradients are finite: the scaler steps
            scaler.update()
        else:
            optimizer.step()
        scheduler.step()
        if ema is not None:
            ema.update(core)
        nonfinite = 0
        iteration += 1
        steps += 1
        seen += len(batch["clip"])
        for k, v in terms.items():
            sums[k] = sums.get(k, 0.0) + float(v.detach())
        sums["loss"] = sums.get("loss", 0.0) + float(loss.detach())
        sums["grad_norm"] = sums.get("grad_norm", 0.0) + float(grad_norm)
        if iteration % tc.log_every == 0 or steps == 1:
            rate = seen / max(time.perf_counter() - t0, 1e-9)
            bar.set_postfix(loss=f"{float(loss.detach()):.3f}", clips_s=f"{rate:.1f}")
            if log_path is not None:
                append_jsonl(log_path, {
                    "epoch": epoch, "iteration": iteration, "loss": float(loss.detach()),
                    "grad_norm": round(float(grad_norm), 4),
                    **{k: round(float(v.detach()), 5) for k, v in terms.items()},
                    "lr": [g["lr"] for g in optimizer.param_groups], "clips_per_s": rate})
        if (checkpoint is not None and tc.checkpoint_every > 0
                and iteration % tc.checkpoint_every == 0 and consumed != num_batches):
            checkpoint(iteration, consumed)
    means = {k: v / max(steps, 1) for k, v in sums.items()}  # grad_norm included
    means["clips_per_s"] = seen / max(time.perf_counter() - t0, 1e-9)
    means["skipped_steps"] = skipped  # non-finite loss or gradients (the GradScaler's too)
    return iteration, means


@torch.no_grad()
def evaluate(model: torch.nn.Module, ann: AnnotationSet, store: FrameStore,
             cfg: ExperimentConfig, device: torch.device, progress: bool = True):
    """Detect on every video of ``ann``, link tubes and segments, and score them all.

    Returns ``(report, detections, tubes, segments)``."""
    from weaktube.evaluate import evaluate_all
    from weaktube.infer.pipeline import tubes_and_segments

    core = model.module if isinstance(model, DistributedDataParallel) else model
    dets = detect_videos(core, ann.videos, store, progress=progress,
                         clip_len=core.clip_len, frame_stride=cfg.data.frame_stride,
                         img_size=core.cfg.img_size, keyframe_stride=cfg.eval.keyframe_stride,
                         batch_size=cfg.eval.batch_size, postprocess=cfg.eval.postprocess,
                         device=device)
    stride = cfg.eval.keyframe_stride
    tubes, segments = tubes_and_segments(dets, ann.num_classes,
                                         {v.name: v.fps for v in ann.videos}, cfg.eval.link,
                                         keyframe_stride=stride)
    report = evaluate_all(ann, detections=dets, tubes=tubes, segments=segments,
                          keyframe_stride=stride)
    return report, dets, tubes, segments


def evaluate_run(model: torch.nn.Module, cfg: ExperimentConfig, ann: AnnotationSet,
                 out_dir: Path, device: torch.device, progress: bool = True) -> dict:
    """Score ``model`` on ``ann``'s test split, writing ``detections.json``, ``tubes.json``,
    ``segments.json`` and ``evaluation.json`` into ``out_dir``. Returns ``{"metrics": ...,
    "per_class_ap": ...}`` (empty when the test split has no videos)."""
    test_ann = ann.split(cfg.data.test_split)
    if not test_ann.videos:
        return {}
    report, dets, tubes, segments = evaluate(model, test_ann, FrameStore(cfg.data.videos), cfg,
                                             device, progress)
    for preds, name in ((dets, "detections"), (tubes, "tubes"), (segments, "segments")):
        dataclasses.replace(preds, classes=list(ann.classes)).save(out_dir / f"{name}.json")
    report.save(out_dir / "evaluation.json")
    return {"metrics": report.metrics, "per_class_ap": report.per_class.get("frame_AP@0.5", {})}


WEAK_MIN_CLIP_LEN = 8  # the tracker + consistency losses were measured to work from here


def warn_short_weak_clips(clip_len: int, cfg: ExperimentConfig) -> None:
    """Warn when the target stage's tracker or consistency loss runs on clips shorter than
    :data:`WEAK_MIN_CLIP_LEN` frames: with the demo's clips of 4 frames 4 apart they added
    nothing over classification-only training (docs/RESULTS.md §8 session 28: 8x fewer
    tracker jobs), while 8 frames 2 apart gained +15.5 (A->B) and +7.7 (B->A) points on
    average. The clip length is the source
    checkpoint's (branch 2 keeps its frames), so the fix is a source model trained on longer
    clips."""
    if (cfg.weak.use_trb or cfg.weak.use_ncb) and clip_len < WEAK_MIN_CLIP_LEN:
        warnings.warn(
            f"target stage on clips of {clip_len} frames ({cfg.data.frame_stride} apart): with "
            f"4-frame clips the tracker and consistency losses added nothing over "
            f"classification-only training (docs/RESULTS.md §8, session 28); train the source "
            f"model with model.clip_len >= {WEAK_MIN_CLIP_LEN} (the ablation suite's 8 frames "
            f"2 apart) for weak transfer", stacklevel=2)


def source_stage_videos(train_ann: AnnotationSet, file: str = "") -> AnnotationSet:
    """The train videos the source stage learns from: all but those with segments and no tubes
    (a weak video of a mixed file), whose acting people have no boxes, so that every action
    keyframe would teach "no one here"; a warning names them. Videos with neither stay
    (background)."""
    weak = {v.name for v in train_ann.videos if v.segments and not v.tubes}
    if not weak:
        return train_ann
    warnings.warn(f"{file}: {len(weak)} train video(s) have segments but no tubes (e.g. "
                  f"{min(weak)!r}); the source stage leaves them out (their people have no boxes, "
                  "so every action frame would teach 'background'); they train with --stage "
                  "target", stacklevel=2)
    return AnnotationSet(list(train_ann.classes),
                         [v for v in train_ann.videos if v.name not in weak])


def build_model_config(cfg: ExperimentConfig, train_ann: AnnotationSet) -> DetectorConfig:
    """The variant's DetectorConfig with k-means anchors and the config's overrides."""
    from weaktube.config import apply_overrides

    mc = cfg.model
    if mc.variant not in VARIANTS:
        raise ValueError(f"unknown model variant {mc.variant!r} (known: {', '.join(VARIANTS)})")
    anchors = anchors_for(train_ann, mc.num_anchors, seed=cfg.train.seed)
    dcfg = VARIANTS[mc.variant](num_classes=train_ann.num_classes, anchors=anchors,
                                clip_len=mc.clip_len, img_size=mc.img_size)
    return apply_overrides(dcfg, mc.overrides, "model.overrides") if mc.overrides else dcfg


def load_pretrained_backbones(model: Detector, cfg: ExperimentConfig, verbose: bool) -> None:
    """Kinetics weights (Hara layout) into branches 1 / 2, listing what did not match."""
    for path, backbone, name in ((cfg.model.pretrained_cls, model.cls_backbone, "branch 1"),
                                 (cfg.model.pretrained_loc, model.loc_backbone, "branch 2")):
        if not path:
            continue
        report = load_hara_checkpoint(backbone, path)
        if verbose:
            print(f"{name}: loaded {path}; missing {len(report.missing)}, unexpected "
                  f"{len(report.unexpected)}, shape mismatches {len(report.shape_mismatch)}"
                  + (f" (first: {report.shape_mismatch[0]})" if report.shape_mismatch else ""))


def load_initial_weights(model: Detector, ckpt: dict, classes: list[str]) -> None:
    """Start from another run's weights (``train.init``): every tensor whose shape matches.

    The keyframe head's last layer holds per-anchor box, objectness and class outputs; its box
    and objectness channels are kept, and its class channels are re-initialised when the class
    lists differ (the paper's transfer settings have different class sets).
    """
    state = inference_weights(ckpt)
    own = model.state_dict()
    same_classes = list(ckpt.get("classes", [])) == list(classes)
    a = model.num_anchors
    loaded = {}
    for name, tensor in state.items():
        if name.startswith("fusion.pred.") and not same_classes:
            # [A*(5+K_src), ...] -> keep the 5 box/objectness rows of each anchor
            new = own[name].clone()
            src = tensor.reshape(a, -1, *tensor.shape[1:])  # -> [A, 5+K_src, ...]
            dst = new.reshape(a, -1, *new.shape[1:])  # -> [A, 5+K, ...]
            dst[:, :5] = src[:, :5]
            loaded[name] = new
        elif name in own and own[name].shape == tensor.shape:
            loaded[name] = tensor
    model.load_state_dict(loaded, strict=False)


def location_teacher(dcfg: DetectorConfig, init: dict, classes: list[str]) -> Detector:
    """A copy of the initial model's branches 2 + 4 (``train.init``), never trained, for
    ``weak.size_teacher`` and ``weak.teacher_decay`` (whose mean teacher then averages the
    trained weights into it, :class:`weaktube.train.weak.WeakLoss`): eval mode (the batch-norm
    statistics it was given), no gradients; only :meth:`Detector.forward_location` works
    (branches 1 + 3 are dropped to save memory).
    Built the same way on a fresh start and on resume, without touching the global RNG."""
    with torch.random.fork_rng(devices=[]):
        teacher = build_detector(dcfg)
    load_initial_weights(teacher, init, classes)
    del teacher.cls_backbone, teacher.fusion  # branches 1 + 3: never run
    return teacher.eval().requires_grad_(False)


def training_clips(ann: AnnotationSet, store: FrameStore, cfg: ExperimentConfig,
                   dcfg: DetectorConfig, seed: int, with_pixels: bool, replay: bool = False
                   ) -> tuple[ClipDataset, torch.Tensor]:
    """The training clips of ``ann`` (every ``data.keyframe_every``-th frame a keyframe) and
    their ``[K]`` sampling weights (``data.positive_fraction`` of the draws on an action)."""
    index = keyframe_index(ann, cfg.data.keyframe_every)
    dataset = ClipDataset(ann, store, index, dcfg.clip_len, cfg.data.frame_stride, dcfg.img_size,
                          cfg.data.augment, seed=seed, with_pixels=with_pixels,
                          flow=dcfg.uses_flow, replay=replay)
    return dataset, torch.as_tensor(index.sampling_weights(cfg.data.positive_fraction))


def mix_weights(weights: torch.Tensor, other: torch.Tensor, share: float) -> torch.Tensor:
    """Sampling weights ``[K]`` and ``[K']`` -> ``[K + K']`` for the concatenated datasets, so
    that a weighted draw comes from the second with probability ``share``."""
    return torch.cat([weights / weights.sum() * (1 - share), other / other.sum() * share])


REPLAY_SEED_OFFSET = 7_919  # replay clips' augmentation seed = train.seed + this


def replay_clips(cfg: ExperimentConfig, dcfg: DetectorConfig, store: FrameStore
                 ) -> tuple[ClipDataset, torch.Tensor]:
    """The source replay of the target stage (``weak.replay_fraction``): clips of the train
    videos with tubes in ``weak.replay`` (flagged ``replay``: class-free box terms in
    :class:`WeakLoss`) and their ``[K]`` sampling weights. Videos come from
    ``weak.replay_videos``, or from ``store`` (data.videos) when that is empty."""
    wc = cfg.weak
    if not wc.replay:
        raise ValueError("weak.replay_fraction > 0 needs weak.replay: the annotation file "
                         "(e.g. the source stage's) whose boxed train videos are replayed")
    ann = AnnotationSet.load(wc.replay).split(cfg.data.train_split)
    ann = ann.subset(v.name for v in ann.videos if v.tubes)
    if not ann.videos:
        raise ValueError(f"{wc.replay}: weak.replay has no {cfg.data.train_split!r} videos "
                         "with tubes to replay")
    if wc.replay_videos:
        store = FrameStore(wc.replay_videos)
    store.preload(ann)
    # its own augmentation stream: ClipDataset seeds by (seed, epoch, index within the dataset)
    return training_clips(ann, store, cfg, dcfg, seed=cfg.train.seed + REPLAY_SEED_OFFSET,
                          with_pixels=True, replay=True)


def make_optimizer(model: Detector, cfg: ExperimentConfig) -> torch.optim.Optimizer:
    """Two parameter groups (eq. 7): internal at alpha, global at lambda * alpha."""
    tc = cfg.train
    groups = model.param_groups()
    params = [{"params": groups["internal"], "lr": tc.lr, "name": "internal"},
              {"params": groups["global"], "lr": tc.lr * tc.global_lr_ratio, "name": "global"}]
    if tc.optimizer == "sgd":
        return torch.optim.SGD(params, lr=tc.lr, momentum=tc.momentum,
                               weight_decay=tc.weight_decay, nesterov=True)
    if tc.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=tc.lr, weight_decay=tc.weight_decay)
    raise ValueError(f"unknown optimizer {tc.optimizer!r} (sgd | adamw)")


MAX_SAMPLER_CATEGORIES = 1 << 24  # torch.multinomial draws from at most 2**24 weights

def check_sampler_size(num_keyframes: int, cfg: ExperimentConfig) -> None:
    """torch.multinomial draws from at most 2**24 weights: more keyframes than that end with
    the field to change named, not torch's message."""
    if num_keyframes > MAX_SAMPLER_CATEGORIES:
        raise ValueError(
            f"{cfg.data.annotations}: {num_keyframes} candidate keyframes in the "
            f"{cfg.data.train_split!r} split, more than the sampler draws from "
            f"({MAX_SAMPLER_CATEGORIES}); raise data.keyframe_every (now "
            f"{cfg.data.keyframe_every})")


def note_resume(out_dir: Path, ckpt: dict, cfg: ExperimentConfig) -> None:
    """A run resumed from ``out_dir/last.pt``: drop the log lines written after the checkpoint
    (that part is trained again), and when the configuration changed since the checkpoint (a
    longer schedule, another lr, ...) warn and record the change in ``resumes.jsonl`` before
    ``config.json`` is overwritten. ``train.epochs`` or ``clips_per_epoch`` changed rebuild
    the lr schedule for the new length: the lr jumps where the run resumes."""
    log = out_dir / "metrics.jsonl"
    if log.exists():
        kept = []
        for line in log.read_text(encoding="utf-8").splitlines(keepends=True):
            try:
                record = json.loads(line)
            except json.JSONDecodeError:  # a line cut by the kill
                break
            if record.get("iteration", -1) > ckpt["iteration"] or record.get(
                    "epoch_end", -1) > ckpt["epoch"]:
                break  # the log is in order: everything from here on is after the checkpoint
            kept.append(line)
        atomic_write_text(log, "".join(kept))
    where = {"after_epoch": ckpt["epoch"], "batches_done": int(ckpt.get("batches_done", 0))}
    old, new = flatten_config(ckpt.get("config", {})), flatten_config(to_dict(cfg))
    changed = {k: [old.get(k), new[k]] for k in config_differences(
        ckpt.get("config", {}), to_dict(cfg), ignore_prefixes=("train.init", "eval."))}
    if changed:
        warnings.warn(f"{out_dir / 'last.pt'}: resuming at epoch {ckpt['epoch'] + 1}, batch "
                      f"{where['batches_done']} with a changed configuration {changed} (old, "
                      f"new); recorded in {out_dir / 'resumes.jsonl'}", stacklevel=3)
        append_jsonl(out_dir / "resumes.jsonl", {**where, "changed": changed})


def make_scheduler(optimizer, total_iters: int, warmup: int):
    """Linear warm-up over ``warmup`` iterations, then linear decay to 0 at ``total_iters``."""
    def factor(it: int) -> float:
        if it < warmup:
            return (it + 1) / warmup
        return max(0.0, 1.0 - (it - warmup) / max(1, total_iters - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def fit(cfg: ExperimentConfig, out_dir: str | os.PathLike, progress: bool = True,
        evaluate_at_end: bool = True) -> dict:
    """Train one stage as configured, writing into ``out_dir``:

    ``last.pt`` (atomic; resumed automatically when present), ``metrics.jsonl`` (a line per
    ``log_every`` iterations and per epoch), ``config.yaml`` (resolved), and when
    ``evaluate_at_end`` ``detections.json`` + ``results.json`` for the test split.
    """
    out_dir = Path(out_dir)
    tc = cfg.train
    if tc.threads:
        torch.set_num_threads(tc.threads)
    info = setup_distributed(torch.device("cuda" if tc.device != "cpu" and
                                          torch.cuda.is_available() else "cpu"))
    device = resolve_device(tc.device, info.local_rank)
    workers = loader_workers(cfg.data.workers, device,
                             int(os.environ.get("LOCAL_WORLD_SIZE", info.world)))
    torch.manual_seed(tc.seed + info.rank)
    ann = AnnotationSet.load(cfg.data.annotations)
    train_ann = ann.split(cfg.data.train_split)
    if not train_ann.videos:
        raise ValueError(f"{cfg.data.annotations}: split {cfg.data.train_split!r} has no videos")
    if tc.stage not in ("source", "target"):
        raise ValueError(f"train.stage={tc.stage!r}: expected 'source' or 'target'")
    boxed = [v for v in train_ann.videos if v.tubes]
    if tc.stage == "source" and not boxed:
        raise ValueError(f"{cfg.data.annotations}: the {cfg.data.train_split!r} split has no "
                         "boxes; the source stage needs tubes (use --stage target)")
    if tc.stage == "source":
        train_ann = source_stage_videos(train_ann, cfg.data.annotations)
    if tc.stage == "target":
        if not tc.init:
            raise ValueError("train.stage=target needs train.init (the source checkpoint)")
        if not any(v.segments for v in train_ann.videos):
            raise ValueError(f"{cfg.data.annotations}: the {cfg.data.train_split!r} split has "
                             "no segments; the target stage learns from temporal labels")
        # videos with tubes keep full supervision (weak.use_boxes), or lose their boxes
        if not cfg.weak.use_boxes:
            train_ann = train_ann.without_boxes(None)
        if info.main and progress:
            boxed_now = sum(bool(v.tubes) for v in train_ann.videos)
            print(f"target stage: {boxed_now} of {len(train_ann.videos)} train videos keep "
                  "their boxes (weak.use_boxes), the others learn from their segments")

    if evaluate_at_end and info.main:  # the test videos are found now, not after training
        for v in ann.split(cfg.data.test_split).videos:
            find_video(cfg.data.videos, v.name, v.path)
    last = out_dir / "last.pt"
    if info.main:  # a run killed while saving left its partial checkpoint file behind
        for stale in temporaries_of(last):
            stale.unlink(missing_ok=True)
    ckpt = load_checkpoint(last) if last.exists() else None
    init = load_checkpoint(tc.init) if tc.init and not ckpt else None
    if ckpt:
        dcfg = DetectorConfig.from_dict(ckpt["detector"])
    elif init:  # keep the initial model's architecture and anchors, adapt the classes
        dcfg = dataclasses.replace(DetectorConfig.from_dict(init["detector"]),
                                   num_classes=train_ann.num_classes)
    else:
        dcfg = build_model_config(cfg, train_ann)
    model = build_detector(dcfg)
    if init:
        load_initial_weights(model, init, ann.classes)
    elif not ckpt:
        load_pretrained_backbones(model, cfg, info.main)
    model = model.to(device)
    anchors = model.anchors
    if tc.stage == "target" and info.main:
        warn_short_weak_clips(dcfg.clip_len, cfg)
    store = FrameStore(cfg.data.videos)
    dataset, weights = training_clips(train_ann, store, cfg, dcfg, seed=tc.seed,
                                      with_pixels=tc.stage == "target")
    check_sampler_size(len(weights), cfg)  # before minutes of decoding
    store.preload(train_ann, progress=progress and info.main)
    datasets = [dataset]
    if tc.stage == "target" and cfg.weak.replay_fraction > 0:
        replay, replay_weights = replay_clips(cfg, dcfg, store)
        datasets.append(replay)
        weights = mix_weights(weights, replay_weights, cfg.weak.replay_fraction)
        check_sampler_size(len(weights), cfg)  # with the replay's keyframes
        dataset = torch.utils.data.ConcatDataset(datasets)  # indices: target, then replay
        if info.main and progress:
            print(f"target stage: {cfg.weak.replay_fraction:.0%} of the clips replayed from "
                  f"{len(replay.ann.videos)} boxed train videos of {cfg.weak.replay} "
                  "(class-free box terms)")
    per_rank = max(tc.batch_size, tc.clips_per_epoch // info.world)
    iters_per_epoch = per_rank // tc.batch_size
    optimizer = make_optimizer(model, cfg)
    scheduler = make_scheduler(optimizer, tc.epochs * iters_per_epoch, tc.warmup_iters)
    use_amp = resolve_amp(tc.amp, device)
    if info.main and progress and tc.amp == "auto":
        print(f"train.amp=auto: {'autocast' if use_amp else 'float32'} on {device.type}"
              + ("" if device.type == "cuda" or use_amp else " (this CPU has no native bf16)"))
    if ckpt and ckpt.get("autocast", use_amp) != use_amp:
        # train.amp=auto on another machine: the run goes on in the other precision
        warnings.warn(f"{last}: epochs 0-{ckpt['epoch']} trained with autocast "
                      f"{ckpt['autocast']}, resuming with autocast {use_amp} "
                      f"(train.amp={tc.amp!r} on {device.type})", stacklevel=2)
    scaler = torch.amp.GradScaler("cuda") if use_amp and device.type == "cuda" else None
    start_epoch, iteration, history, t_train, resume_batches = 0, 0, [], 0.0, 0
    if ckpt:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        if scaler is not None and ckpt.get("scaler"):
            scaler.load_state_dict(ckpt["scaler"])  # the loss scale where the run stopped
        start_epoch, iteration = ckpt["epoch"] + 1, ckpt["iteration"]
        history, t_train = list(ckpt.get("history", [])), float(ckpt.get("train_seconds", 0.0))
        resume_batches = int(ckpt.get("batches_done", 0))  # inside epoch start_epoch
        if info.main:
            note_resume(out_dir, ckpt, cfg)
    if info.world > 1:  # every process starts from rank 0's weights
        for tensor in model.state_dict().values():
            dist.broadcast(tensor, 0)
    ema = ModelEma(model, tc.ema_decay) if tc.ema_decay > 0 else None
    if ema is not None and ckpt and ckpt.get("ema"):
        ema.load_state_dict(ckpt["ema"])
    # The target-stage loss calls the detector's sub-forwards (tracking runs between branch 2
    # and the fusion), which DDP's hooks would not see: its gradients are averaged by hand.
    sync_by_hand = info.world > 1 and tc.stage == "target"
    train_model = (DistributedDataParallel(model, device_ids=[info.local_rank]
                                           if device.type == "cuda" else None)
                   if info.world > 1 and not sync_by_hand else model)
    log_path = out_dir / "metrics.jsonl" if info.main else None
    if info.main:
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out_dir / "config.json", {"experiment": to_dict(cfg),
                                                    "detector": dcfg.to_dict()}, indent=2)
    num_classes = train_ann.num_classes
    teacher = (location_teacher(dcfg, init or load_checkpoint(tc.init), ann.classes).to(device)
               if tc.stage == "target" and cfg.weak.needs_teacher else None)
    weak_loss = (WeakLoss(cfg.weak, cfg.loss, anchors, num_classes, teacher)
                 if tc.stage == "target" else None)
    # a mean teacher's buffers follow each process's batches: rank 0's are shared after each step
    mean_teacher = weak_loss.teacher if weak_loss is not None and weak_loss.teacher_ema else None
    if weak_loss is not None and weak_loss.state_dict() and ckpt:
        if not ckpt.get("weak"):
            raise ValueError(f"{last}: this run has a mean teacher (weak.teacher_decay="
                             f"{cfg.weak.teacher_decay}) but the checkpoint keeps none; start "
                             "the run in a new folder")
        weak_loss.load_state_dict(ckpt["weak"])  # the mean teacher where the run stopped

    def loss_fn(m, batch):
        if weak_loss is not None:
            return weak_loss(m, batch)
        return source_loss(m, batch, cfg, anchors, num_classes)

    def checkpoint_state(epoch_done: int, batches_done: int, it: int, seconds: float) -> dict:
        """Everything a resumed run needs: ``epoch_done`` the last complete epoch (-1: none),
        ``batches_done`` of the next one already trained, ``it`` the global iteration."""
        return {
            "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "epoch": epoch_done,
            "batches_done": batches_done, "iteration": it,
            "config": to_dict(cfg), "detector": dcfg.to_dict(),
            "classes": list(ann.classes), "autocast": use_amp,
            "history": history, "train_seconds": round(seconds, 3),
            **({"scaler": scaler.state_dict()} if scaler is not None else {}),
            **({"ema": ema.state_dict()} if ema is not None else {}),
            **({"weak": weak_loss.state_dict()} if weak_loss is not None else {})}

    for epoch in range(start_epoch, tc.epochs):
        for ds in datasets:
            ds.set_epoch(epoch)
        gen = torch.Generator().manual_seed(tc.seed * 1_000_003 + epoch * 101 + info.rank)
        sampler = torch.utils.data.WeightedRandomSampler(weights, per_rank, replacement=True,
                                                         generator=gen)
        order = list(sampler)  # [per_rank] this epoch's draws (one multinomial, as iterating)
        done = resume_batches if epoch == start_epoch else 0  # batches a killed run trained
        loader = torch.utils.data.DataLoader(
            dataset, batch_size=tc.batch_size, sampler=order[done * tc.batch_size:],
            drop_last=True, num_workers=workers, collate_fn=collate_clips,
            persistent_workers=False, pin_memory=device.type == "cuda")
        t0 = time.perf_counter()

        def save_within(it: int, batches: int, epoch: int = epoch, done: int = done,
                        t0: float = t0, before: float = t_train) -> None:
            if info.main:
                save_checkpoint(last, checkpoint_state(epoch - 1, done + batches, it,
                                                       before + time.perf_counter() - t0))

        iteration, means = train_one_epoch(train_model, loss_fn, loader, optimizer, scheduler,
                                           device, epoch, cfg, log_path, iteration, scaler,
                                           progress and info.main, sync_grads=sync_by_hand,
                                           ema=ema, amp=use_amp, checkpoint=save_within,
                                           teacher=mean_teacher)
        t_train += time.perf_counter() - t0
        history.append({"epoch": epoch, **means})
        if info.main:
            append_jsonl(out_dir / "metrics.jsonl", {"epoch_end": epoch, **means})
            save_checkpoint(last, checkpoint_state(epoch, 0, iteration, t_train))
    if weak_loss is not None:
        weak_loss.close()
    result = {"train_seconds": round(t_train, 1), "epochs": tc.epochs, "iterations": iteration,
              "history": history, "autocast": use_amp,
              # all ranks together (each rank trains at about the same rate)
              "clips_per_s": (round(float(np.mean([h["clips_per_s"] for h in history]))
                                    * info.world, 2) if history else None),
              **({"tracker": weak_loss.stats} if weak_loss is not None else {})}
    if ema is not None:  # training is over: evaluate (and hand back) the weight average
        model.load_state_dict(ema.state)
    if info.world > 1:
        # every process is done training; only rank 0 evaluates (for as long as the test split
        # takes), the others return now instead of waiting in a collective that times out
        dist.barrier()
    if evaluate_at_end and info.main:
        result.update(evaluate_run(model, cfg, ann, out_dir, device, progress))
        atomic_write_json(out_dir / "results.json", result, indent=2)
    return result


