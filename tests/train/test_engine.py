"""``train_one_epoch``'s guard: steps whose loss *or* gradients are not finite are skipped (the
weights stay as they were), and too many in a row abort with a clear error."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from weaktube.config import ExperimentConfig, apply_overrides
from weaktube.structures import AnnotationSet, Segment, Tube, VideoRecord
from weaktube.train.engine import NonFiniteLossError, make_scheduler, train_one_epoch


class _InfGrad(torch.autograd.Function):
    """Identity forward (a finite loss), infinite gradient backward."""

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return torch.full_like(grad, float("inf"))


def _loss(model: nn.Module, batch: dict) -> dict[str, torch.Tensor]:
    y = model(batch["clip"]).sum()
    kind = batch["kind"]
    if kind == "nan_loss":
        y = y * float("nan")
    elif kind == "inf_grad":
        y = _InfGrad.apply(y)
    elif kind == "huge_grad":  # finite, but its square overflows float32
        y = y * 1e30
    return {"term": y}


def _run(kinds: list[str], max_nonfinite: int = 20, grad_clip: float = 10.0,
         scaler: bool = False):
    """``scaler``: the CUDA float16 path's GradScaler (its CPU flavour: same bookkeeping)."""
    torch.manual_seed(0)
    model = nn.Linear(2, 1)
    cfg = apply_overrides(ExperimentConfig(), {"train": {"max_nonfinite": max_nonfinite,
                                                         "grad_clip": grad_clip}})
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    sched = make_scheduler(opt, len(kinds), 0)
    batches = [{"clip": torch.ones(1, 2), "kind": k, "video": [f"vid{i}"],
                "frame": torch.tensor([7 * i])} for i, k in enumerate(kinds)]
    before = [p.detach().clone() for p in model.parameters()]
    it, means = train_one_epoch(model, _loss, batches, opt, sched, torch.device("cpu"), 0, cfg,
                                None, progress=False,
                                scaler=torch.amp.GradScaler("cpu") if scaler else None)
    return model, before, it, means


@pytest.mark.parametrize("scaler", [False, True])
@pytest.mark.parametrize("grad_clip", [10.0, 0.0])
@pytest.mark.parametrize("kind", ["nan_loss", "inf_grad", "huge_grad"])
def test_bad_step_is_skipped_and_weights_stay_finite(kind, grad_clip, scaler):
    model, before, it, means = _run([kind], grad_clip=grad_clip, scaler=scaler)
    assert it == 0 and means["skipped_steps"] == 1
    for p, q in zip(model.parameters(), before):
        assert torch.equal(p, q)
    model, _, it, means = _run(["ok", kind, "ok"], grad_clip=grad_clip, scaler=scaler)
    assert it == 2 and means["skipped_steps"] == 1
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_scaler_path_aborts_on_persistent_bad_gradients_and_names_the_batch():
    """With a GradScaler, steps whose gradients stay non-finite count towards
    ``max_nonfinite`` (they used to pass as the scaler's own skips, the schedule running on
    with frozen weights); the error names the last batch's clips."""
    with pytest.raises(NonFiniteLossError, match=r"non-finite gradients.*vid3@21"):
        _run(["ok"] + ["inf_grad"] * 3, max_nonfinite=3, scaler=True)
    with pytest.raises(NonFiniteLossError, match=r"non-finite losses.*vid2@14"):
        _run(["nan_loss"] * 3, max_nonfinite=3, scaler=True)
    model, _, it, means = _run(["ok", "inf_grad", "inf_grad", "ok"], max_nonfinite=3,
                               scaler=True)
    assert it == 2 and means["skipped_steps"] == 2


def test_good_steps_move_the_weights():
    model, before, it, means = _run(["ok", "ok"])
    assert it == 2 and means["skipped_steps"] == 0 and means["grad_norm"] > 0
    assert not torch.equal(model.weight, before[0])


def test_too_many_bad_steps_in_a_row_abort():
    with pytest.raises(NonFiniteLossError, match="non-finite gradients"):
        _run(["ok", "inf_grad", "inf_grad", "inf_grad"], max_nonfinite=3)
    with pytest.raises(NonFiniteLossError, match="non-finite losses"):
        _run(["nan_loss"] * 3, max_nonfinite=3)
    _run(["inf_grad", "inf_grad", "ok", "inf_grad", "inf_grad"], max_nonfinite=3)  # not in a row


# ------------------------------------------------------------- fit: target stage on a mixed file
TINY = dict(num_train=4, num_test=2, num_frames=(30, 36), instance_frames=(12, 16),
            min_idle_frames=4, min_gap_frames=4, two_instance_prob=0.0,
            distractor_actors=(0, 0), objects=(0, 0))
RECIPE = {"model": {"clip_len": 4, "img_size": 64},
          "train": {"epochs": 1, "clips_per_epoch": 16, "batch_size": 4, "warmup_iters": 1,
                    "device": "cpu", "threads": 1, "log_every": 1, "amp": False},
          "data": {"positive_fraction": 1.0}}


def test_target_stage_supervises_the_boxed_videos_of_a_mixed_file(tmp_path):
    """Two of four train videos keep their tubes: with ``weak.use_boxes`` their clips log the
    supervised ``sup_*`` terms next to the weak ones; without it, no ``sup_*`` term at all."""
    import json

    from weaktube.data.synthetic import SynthConfig, generate
    from weaktube.demo import demo_config
    from weaktube.structures import AnnotationSet
    from weaktube.train.engine import fit

    data = tmp_path / "data"
    generate(SynthConfig(**TINY), seed=3, out_dir=data, progress=False)
    cfg = apply_overrides(demo_config(data), RECIPE)
    fit(cfg, tmp_path / "source", progress=False, evaluate_at_end=False)
    ann = AnnotationSet.load(data / "source.json")
    train = [v.name for v in ann.videos if v.split == "train"]
    stripped = {v.name: v for v in ann.subset(train[2:]).without_boxes("train").videos}
    mixed = AnnotationSet(list(ann.classes), [stripped.get(v.name, v) for v in ann.videos])
    mixed.save(tmp_path / "mixed.json")
    logged = {}
    for use_boxes in (True, False):
        run = tmp_path / f"target_{use_boxes}"
        tcfg = apply_overrides(cfg, {
            "data": {"annotations": str(tmp_path / "mixed.json")},
            "train": {"stage": "target", "init": str(tmp_path / "source" / "last.pt"),
                      "epochs": 2},
            "weak": {"use_boxes": use_boxes, "use_trb": True, "use_ncb": True}})
        fit(tcfg, run, progress=False, evaluate_at_end=False)
        lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        logged[use_boxes] = {k for x in lines if "iteration" in x for k in x}
    assert {"sup_key_obj", "sup_key_cls", "sup_clip_obj"} <= logged[True]
    assert {"ncb", "self_key_cls"} & logged[True]  # the weak videos still train weakly
    assert not any(k.startswith("sup_") for k in logged[False])


def test_mix_weights_gives_the_second_dataset_its_share():
    from weaktube.train.engine import mix_weights

    w = mix_weights(torch.tensor([1.0, 3.0]), torch.tensor([2.0, 2.0, 4.0]), 0.25)
    assert w.shape == (5,)
    assert torch.allclose(w, torch.tensor([0.1875, 0.5625, 0.0625, 0.0625, 0.125]))


def test_target_stage_replays_the_source_boxes_class_free(tmp_path):
    """``weak.replay_fraction``: the target stage (target domain's weak file, its own classes)
    also draws clips of the source file's boxed train videos and logs their class-free
    ``replay_*`` terms; a missing or box-less replay file is refused by name."""
    import json

    from weaktube.data.synthetic import SynthConfig, generate
    from weaktube.demo import demo_config
    from weaktube.structures import AnnotationSet
    from weaktube.train.engine import fit

    data = tmp_path / "data"
    out = generate(SynthConfig(**TINY), seed=3, out_dir=data, progress=False)
    cfg = apply_overrides(demo_config(data), RECIPE)
    fit(cfg, tmp_path / "source", progress=False, evaluate_at_end=False)
    target = {"data": {"annotations": str(out.target_weak)},
              "train": {"stage": "target", "init": str(tmp_path / "source" / "last.pt")},
              "weak": {"replay_fraction": 0.5, "replay": str(out.source)}}
    fit(apply_overrides(cfg, target), tmp_path / "replay", progress=False,
        evaluate_at_end=False)
    lines = [json.loads(x) for x in (tmp_path / "replay" / "metrics.jsonl").read_text()
             .splitlines()]
    logged = {k for x in lines if "iteration" in x for k in x}
    assert {"replay_key_xy", "replay_key_obj", "replay_clip_obj"} <= logged
    assert "replay_key_cls" not in logged and not any(k.startswith("sup_") for k in logged)
    assert {"self_key_cls", "ncb"} & logged  # the target clips train weakly beside them
    no_file = apply_overrides(cfg, {**target, "weak": {"replay_fraction": 0.5}})
    with pytest.raises(ValueError, match="needs weak.replay"):
        fit(no_file, tmp_path / "no_file", progress=False, evaluate_at_end=False)
    AnnotationSet.load(out.source).without_boxes(None).save(tmp_path / "boxless.json")
    boxless = apply_overrides(cfg, {**target, "weak": {"replay_fraction": 0.5,
                                                       "replay": str(tmp_path / "boxless.json")}})
    with pytest.raises(ValueError, match="boxless.json: weak.replay has no 'train' videos"):
        fit(boxless, tmp_path / "boxless", progress=False, evaluate_at_end=False)


def test_flow_model_trains_both_stages_and_evaluates(tmp_path):
    """``cls_flow`` + ``loc_flow``: the source stage, then the target stage with a mean teacher
    (branches 2 + 4 see the flow too) and the end-of-run evaluation, on 5-channel clips."""
    import json

    from weaktube.data.synthetic import SynthConfig, generate
    from weaktube.demo import demo_config
    from weaktube.train.checkpoint import load_checkpoint
    from weaktube.train.engine import fit

    data = tmp_path / "data"
    generate(SynthConfig(**TINY), seed=4, out_dir=data, progress=False)
    cfg = apply_overrides(demo_config(data), RECIPE)
    cfg = apply_overrides(cfg, {"model": {"overrides": {
        "cls_flow": True, "cls_backbone": {"in_channels": 8},
        "loc_flow": True, "loc_backbone": {"in_channels": 5}}}})
    fit(cfg, tmp_path / "source", progress=False, evaluate_at_end=False)
    tcfg = apply_overrides(cfg, {
        "data": {"annotations": str(data / "target_weak.json")},
        "train": {"stage": "target", "init": str(tmp_path / "source" / "last.pt")},
        "weak": {"use_trb": True, "use_ncb": True, "teacher_decay": 0.9}})
    fit(tcfg, tmp_path / "target", progress=False, evaluate_at_end=True)
    ckpt = load_checkpoint(tmp_path / "target" / "last.pt")
    assert ckpt["detector"]["cls_flow"] and ckpt["detector"]["loc_flow"]
    assert ckpt["detector"]["cls_backbone"]["in_channels"] == 8
    result = json.loads((tmp_path / "target" / "results.json").read_text())
    assert 0.0 <= result["metrics"]["frame_mAP@0.5"] <= 100.0
    assert (tmp_path / "target" / "detections.json").is_file()


@pytest.mark.parametrize("weak", [{"size_teacher": True}, {"teacher_decay": 0.9}])
def test_teachers_resume_where_they_were(tmp_path, monkeypatch, weak):
    """A target run with a teacher, killed after its first epoch and resumed, trains exactly as
    one that was not: ``weak.size_teacher``'s frozen teacher is rebuilt from ``train.init`` (not
    from the resumed weights) and logs the size-anchor terms; ``weak.teacher_decay``'s mean
    teacher comes back from the checkpoint where it was."""
    import json

    import weaktube.train.engine as engine
    from weaktube.data.synthetic import SynthConfig, generate
    from weaktube.demo import demo_config
    from weaktube.train.engine import fit

    data = tmp_path / "data"
    generate(SynthConfig(**TINY), seed=3, out_dir=data, progress=False)
    cfg = apply_overrides(demo_config(data), RECIPE)
    fit(cfg, tmp_path / "source", progress=False, evaluate_at_end=False)
    tcfg = apply_overrides(cfg, {
        "data": {"annotations": str(data / "source_weak.json")},
        "train": {"stage": "target", "init": str(tmp_path / "source" / "last.pt"), "epochs": 2},
        "weak": {**weak, "use_trb": True, "use_ncb": False}})
    fit(tcfg, tmp_path / "whole", progress=False, evaluate_at_end=False)
    save = engine.save_checkpoint

    def save_then_die(path, state):  # killed right after its first checkpoint
        save(path, state)
        raise KeyboardInterrupt

    monkeypatch.setattr(engine, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        fit(tcfg, tmp_path / "split", progress=False, evaluate_at_end=False)
    monkeypatch.setattr(engine, "save_checkpoint", save)
    fit(tcfg, tmp_path / "split", progress=False, evaluate_at_end=False)  # resumes epoch 1

    def logged(run):
        lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        return [x for x in lines if "iteration" in x]

    whole, split = logged(tmp_path / "whole"), logged(tmp_path / "split")
    if "size_teacher" in weak:
        assert {"teach_frames_wh", "teach_key_wh"} <= set(whole[0])
        # the resumed epoch has size terms to get wrong
        assert sum(x["teach_frames_wh"] + x["teach_key_wh"] for x in whole[-2:]) > 0
    else:
        from weaktube.train.checkpoint import load_checkpoint

        w, sp = (load_checkpoint(tmp_path / r / "last.pt") for r in ("whole", "split"))
        assert sp["weak"]["teacher_ema"]["updates"] == w["iteration"] == sp["iteration"]
        for k, v in w["weak"]["teacher_ema"]["state"].items():
            assert torch.equal(sp["weak"]["teacher_ema"]["state"][k], v), k
        from weaktube.train.checkpoint import save_checkpoint

        del sp["weak"]  # a checkpoint without the teacher cannot resume as the same run
        save_checkpoint(tmp_path / "split" / "last.pt", sp)
        longer = apply_overrides(tcfg, {"train": {"epochs": 3}})
        with pytest.raises(ValueError, match="keeps none"), pytest.warns(
                UserWarning, match=r"changed configuration \{'train.epochs': \[2, 3\]\}"):
            fit(longer, tmp_path / "split", progress=False, evaluate_at_end=False)
    assert [x["loss"] for x in split[-2:]] == [x["loss"] for x in whole[-2:]]


# ------------------------------------------------------------------------ data loader workers
def test_loader_workers_auto_and_explicit():
    import os

    from weaktube.train.engine import loader_workers

    cpu, cuda = torch.device("cpu"), torch.device("cuda", 0)  # no GPU needed: nothing runs
    assert loader_workers(-1, cpu) == 0  # the CPU's cores train
    assert loader_workers(-1, cuda) == max(0, min(8, (os.cpu_count() or 1) - 1))
    assert loader_workers(-1, cuda, world=2) <= loader_workers(-1, cuda)  # CPUs shared by GPUs
    assert loader_workers(-1, cuda, world=10_000) == 0  # never below zero
    assert loader_workers(3, cpu) == 3 and loader_workers(0, cuda) == 0
    with pytest.raises(ValueError, match="data.workers"):
        loader_workers(-2, cpu)


def test_fit_is_the_same_with_loader_workers(tmp_path):
    """Each clip's augmentation is seeded by (seed, epoch, index): two worker processes give
    the same batches, so the same losses, as preparing them in the training process."""
    import json

    from weaktube.data.synthetic import SynthConfig, generate
    from weaktube.demo import demo_config
    from weaktube.train.engine import fit

    data = tmp_path / "data"
    generate(SynthConfig(**TINY), seed=4, out_dir=data, progress=False)
    losses = {}
    for workers in (0, 2):
        cfg = apply_overrides(demo_config(data), RECIPE)
        cfg = apply_overrides(cfg, {"data": {"workers": workers}})
        run = tmp_path / f"w{workers}"
        result = fit(cfg, run, progress=False, evaluate_at_end=False)
        assert result["autocast"] is False  # RECIPE pins fp32
        lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        losses[workers] = [x["loss"] for x in lines if "iteration" in x]
    assert len(losses[0]) == 4
    assert losses[2] == losses[0]


def test_resume_in_another_precision_warns(tmp_path):
    """``train.amp=auto`` resolves per machine: a run resumed where it resolves otherwise says
    so (the checkpoint records what the epochs so far were trained with)."""
    from weaktube.data.synthetic import SynthConfig, generate
    from weaktube.demo import demo_config
    from weaktube.train.checkpoint import load_checkpoint, save_checkpoint
    from weaktube.train.engine import fit

    data = tmp_path / "data"
    generate(SynthConfig(**TINY), seed=4, out_dir=data, progress=False)
    cfg = apply_overrides(demo_config(data), RECIPE)
    run = tmp_path / "run"
    fit(cfg, run, progress=False, evaluate_at_end=False)
    ckpt = load_checkpoint(run / "last.pt")
    assert ckpt["autocast"] is False
    ckpt["autocast"] = True  # as if epoch 0 had run on a machine with fast bf16
    save_checkpoint(run / "last.pt", ckpt)
    with pytest.warns(UserWarning, match="changed configuration"), pytest.warns(
            UserWarning, match="epochs 0-0 trained with autocast True, resuming with autocast "
                               "False"):
        fit(apply_overrides(cfg, {"train": {"epochs": 2}}), run, progress=False,
            evaluate_at_end=False)
    assert load_checkpoint(run / "last.pt")["epoch"] == 1


def test_too_many_keyframes_for_the_sampler_name_the_field(tmp_path, monkeypatch):
    """torch.multinomial draws from at most 2**24 weights (ActivityNet at keyframe_every 1-2
    has more): the run stops before training with the field to change, not torch's message."""
    import weaktube.train.engine as engine
    from weaktube.data.synthetic import SynthConfig, generate
    from weaktube.demo import demo_config

    data = tmp_path / "data"
    generate(SynthConfig(**TINY), seed=3, out_dir=data, progress=False)
    cfg = apply_overrides(demo_config(data), RECIPE)
    monkeypatch.setattr(engine, "MAX_SAMPLER_CATEGORIES", 50)  # the tiny set has ~130
    with pytest.raises(ValueError, match=r"candidate keyframes.*data.keyframe_every \(now 1\)"):
        engine.fit(cfg, tmp_path / "run", progress=False, evaluate_at_end=False)
    cfg = apply_overrides(cfg, {"data": {"keyframe_every": 4}})
    engine.fit(cfg, tmp_path / "run", progress=False, evaluate_at_end=False)  # ~33: trains


def test_a_missing_test_video_fails_before_training(tmp_path):
    """The end-of-training evaluation needs the test videos: one that is missing is named
    before any training, not after it."""
    from weaktube.data.synthetic import SynthConfig, generate
    from weaktube.data.video import VideoError
    from weaktube.demo import demo_config
    from weaktube.structures import AnnotationSet
    from weaktube.train.engine import fit

    data = tmp_path / "data"
    generate(SynthConfig(**TINY), seed=3, out_dir=data, progress=False)
    test = AnnotationSet.load(data / "source.json").split("test").videos[0]
    next((data / "videos").glob(f"{test.name}.*")).unlink()
    cfg = apply_overrides(demo_config(data), RECIPE)
    with pytest.raises(VideoError, match=f"video {test.name!r}: not found"):
        fit(cfg, tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "last.pt").exists()
    fit(cfg, tmp_path / "run", progress=False, evaluate_at_end=False)  # trains without it


def test_source_stage_leaves_out_videos_with_segments_but_no_boxes():
    from weaktube.train.engine import source_stage_videos

    boxed = VideoRecord("boxed", 10, 32, 32, 10.0, "train",
                        [Tube(0, 2, np.array([[1, 1, 9, 9]] * 3, np.float32))],
                        [Segment(0, 0.2, 0.5)])
    weak = VideoRecord("weak", 10, 32, 32, 10.0, "train", [], [Segment(0, 0.1, 0.6)])
    empty = VideoRecord("empty", 10, 32, 32, 10.0, "train")  # background: kept
    ann = AnnotationSet(["a"], [boxed, weak, empty])
    with pytest.warns(UserWarning, match=r"ann.json: 1 train video\(s\) .*'weak'.*--stage target"):
        kept = source_stage_videos(ann, "ann.json")
    assert [v.name for v in kept.videos] == ["boxed", "empty"]
    only_boxed = AnnotationSet(["a"], [boxed, empty])
    assert source_stage_videos(only_boxed) is only_boxed


def test_target_stage_warns_on_short_clips():
    from weaktube.train.engine import warn_short_weak_clips

    cfg = ExperimentConfig()
    with pytest.warns(UserWarning, match="clips of 4 frames.*session 28"):
        warn_short_weak_clips(4, cfg)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_short_weak_clips(8, cfg)  # the measured recipe: silent
        # classification only (Baseline+SCEL): no tracker, no consistency loss to starve
        warn_short_weak_clips(4, apply_overrides(cfg, {"weak": {"use_trb": False,
                                                               "use_ncb": False}}))
