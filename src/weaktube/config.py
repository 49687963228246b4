"""Experiment configuration: plain dataclasses with commented defaults, YAML overrides on top.

A YAML file in ``configs/`` holds overrides only, nested like the dataclasses::

    train:
      epochs: 20
      lr: 0.02
    model:
      variant: small

``--set train.lr=0.01`` on the command line does the same for one key. The resolved config
(including the detector's full :class:`~weaktube.model.detector.DetectorConfig`, anchors
included) is stored in every checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import os
import typing
from dataclasses import dataclass, field
from typing import Any

import yaml

from weaktube.data.transforms import AugmentConfig
from weaktube.infer.link import LinkConfig
from weaktube.losses.detection import DetectionLossConfig
from weaktube.model.decode import PostprocessConfig
from weaktube.train.precision import check_amp
from weaktube.train.weak import WeakConfig


@dataclass
class DataConfig:
    annotations: str = ""  # weaktube/annotations@1 file
    videos: str = ""  # video root: <root>/<name>.mp4 or <root>/<name>/ frame folders
    train_split: str = "train"
    test_split: str = "test"
    frame_stride: int = 1  # frames between consecutive frames of a clip
    keyframe_every: int = 1  # candidate training keyframes: every k-th frame
    positive_fraction: float = 0.75  # share of sampled training clips whose keyframe has a box
    # DataLoader worker processes (frames are decoded once, in memory, before they fork);
    # -1 = auto: 0 on the CPU (every core trains), on CUDA min(8, CPUs per GPU - 1)
    workers: int = -1
    augment: AugmentConfig = field(default_factory=AugmentConfig)


@dataclass
class ModelChoice:
    variant: str = "demo"  # detector factory: demo | small | paper (weaktube.model.VARIANTS)
    num_anchors: int = 5  # anchors from k-means on the training boxes (paper: 5)
    clip_len: int = 8  # N frames per clip (paper: 16)
    img_size: int = 128  # square input side, multiple of 32 (paper: 416)
    overrides: dict = field(default_factory=dict)  # extra DetectorConfig fields, e.g. widths
    # Kinetics checkpoints in Hara et al.'s 3D-ResNets-PyTorch layout (a path; never downloaded)
    pretrained_cls: str = ""  # -> branch 1 (e.g. resnext-101-kinetics.pth)
    pretrained_loc: str = ""  # -> branch 2 (only if its widths match the checkpoint)


@dataclass
class TrainConfig:
    stage: str = "source"  # source (boxes) | target (temporal labels; boxes where present)
    init: str = ""  # checkpoint to start from (the source model for the target stage)
    epochs: int = 10
    clips_per_epoch: int = 2048  # clips drawn (weighted, with replacement) per epoch
    batch_size: int = 16
    optimizer: str = "sgd"  # sgd (the paper's) | adamw
    lr: float = 0.05  # alpha: learning rate of branches 2 and 4 (internal loss); paper 0.05
    global_lr_ratio: float = 0.1  # lambda: branches 1 and 3 learn at lambda * alpha (eq. 7)
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_iters: int = 100  # linear warm-up, then linear decay to 0 (paper: linear decay)
    grad_clip: float = 10.0  # max gradient norm (0 = off)
    ema_decay: float = 0.0  # weight average for evaluation/export (0 = off; e.g. 0.998)
    amp: bool | str = False  # autocast: bf16 on CPU, fp16 (+ GradScaler) on CUDA; "auto" = on
    # where the hardware makes it fast (CUDA, or a CPU with AVX-512 BF16 / AMX), else fp32
    device: str = "auto"  # auto | cpu | cuda
    seed: int = 0
    log_every: int = 10  # iterations between metric lines
    checkpoint_every: int = 0  # also save last.pt every N iterations inside an epoch (0: at
    # epoch ends only); a killed run resumes mid-epoch, drawing the same remaining clips
    max_nonfinite: int = 20  # consecutive non-finite losses tolerated (steps skipped) before abort
    threads: int = 0  # torch CPU threads per process (0 = torch's default; with procs > 1,
    # the cores shared out)
    procs: int = 1  # CPU processes training together (DDP over gloo, weaktube.train.launch);
    # GPUs: torchrun instead

    def __post_init__(self) -> None:
        check_amp(self.amp)
        if self.checkpoint_every < 0:
            raise ValueError(f"train.checkpoint_every={self.checkpoint_every}: expected >= 0 "
                             "(iterations; 0 = at epoch ends only)")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"train.ema_decay={self.ema_decay}: expected 0 <= decay < 1 "
                             "(0 = no weight average)")


@dataclass
class EvalConfig:
    keyframe_stride: int = 1  # detect on every k-th frame of test videos
    batch_size: int = 32
    postprocess: PostprocessConfig = field(default_factory=PostprocessConfig)
    # tube linking; gaps are filled because a split at every missed frame ruins video-mAP
    link: LinkConfig = field(default_factory=lambda: LinkConfig(fill_gaps=True))

    def __post_init__(self) -> None:
        if self.keyframe_stride < 1:
            raise ValueError(f"eval.keyframe_stride={self.keyframe_stride}: expected >= 1")
        if self.keyframe_stride > 1 and not self.link.fill_gaps:
            raise ValueError(f"eval.keyframe_stride={self.keyframe_stride} needs "
                             "eval.link.fill_gaps: without it every tube ends at its first "
                             "keyframe")


@dataclass
class ExperimentConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelChoice = field(default_factory=ModelChoice)
    loss: DetectionLossConfig = field(default_factory=DetectionLossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    weak: WeakConfig = field(default_factory=WeakConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


class ConfigError(ValueError):
    """An unknown key or a value of the wrong type in a config file or ``--set``."""


def apply_overrides(cfg: Any, overrides: dict, where: str = "") -> Any:
    """Return a copy of dataclass ``cfg`` with the nested ``overrides`` applied (type-checked)."""
    if not isinstance(overrides, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {overrides!r}")
    hints = typing.get_type_hints(type(cfg))
    changes = {}
    names = {f.name for f in dataclasses.fields(cfg)}
    for key, val in overrides.items():
        path = f"{where}.{key}" if where else key
        if key not in names:
            raise ConfigError(f"unknown config key {path!r} (known: {', '.join(sorted(names))})")
        cur = getattr(cfg, key)
        if dataclasses.is_dataclass(cur):
            changes[key] = apply_overrides(cur, val, path)
        else:
            changes[key] = _coerce(val, hints[key], path)
    try:
        return dataclasses.replace(cfg, **changes)
    except ValueError as e:  # a config dataclass's own check (``__post_init__``) refused a value
        raise ConfigError(str(e)) from None


def _coerce(val: Any, typ: Any, path: str) -> Any:
    if typ is float and isinstance(val, int) and not isinstance(val, bool):
        return float(val)
    if typ is dict:
        if not isinstance(val, dict):
            raise ConfigError(f"{path}: expected a mapping, got {val!r}")
        return val
    if typing.get_origin(typ) is tuple and isinstance(val, list):
        return tuple(val)  # YAML has no tuples: `--set num_frames=[80,120]`
    if typ in (int, float, str, bool) and not (isinstance(val, typ) and
                                               not (typ is int and isinstance(val, bool))):
        raise ConfigError(f"{path}: expected {typ.__name__}, got {val!r}")
    return val


def parse_set(items: list[str]) -> dict:
    """``["train.lr=0.01", "model.variant=small"]`` -> nested dict (values parsed as YAML)."""
    out: dict = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key=value")
        key, raw = item.split("=", 1)
        node = out
        parts = key.strip().split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = yaml.safe_load(raw)
    return out


def load_config(path: str | os.PathLike | None = None, sets: list[str] | None = None,
                base: ExperimentConfig | None = None) -> ExperimentConfig:
    """Defaults <- YAML file <- ``--set`` items."""
    cfg = base or ExperimentConfig()
    if path:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
        try:
            cfg = apply_overrides(cfg, data)
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from None
    if sets:
        cfg = apply_overrides(cfg, parse_set(sets))
    return cfg


def to_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg)


def from_dict(d: dict) -> ExperimentConfig:
    return apply_overrides(ExperimentConfig(), d)


# keys whose value does not change what a run trains (machine settings, evaluation batching)
RUN_NEUTRAL_KEYS = frozenset({"train.device", "train.threads", "data.workers",
                              "eval.batch_size", "train.checkpoint_every"})


def flatten_config(d: dict, prefix: str = "") -> dict[str, Any]:
    """``{"train": {"lr": 0.1}}`` -> ``{"train.lr": 0.1}`` (the ``--set`` spelling); a
    ``model.overrides`` dict stays one value."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict) and v and k != "overrides":
            out.update(flatten_config(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def config_differences(saved: dict, expected: dict, ignore_prefixes: tuple[str, ...] = ()
                       ) -> list[str]:
    """Keys (``a.b.c``) of the flattened configs (:func:`to_dict` form) whose values differ,
    except :data:`RUN_NEUTRAL_KEYS` and keys starting with one of ``ignore_prefixes``. A key
    the saved run lacks (a field added to the config schema since) counts as its
    :class:`ExperimentConfig` default, which is the behaviour the run was made with; a key only
    the saved run has (a field removed since) is ignored."""
    a = flatten_config(json.loads(json.dumps(saved)))
    b = flatten_config(json.loads(json.dumps(expected)))
    defaults = flatten_config(json.loads(json.dumps(to_dict(ExperimentConfig()))))
    return sorted(k for k in b if k not in RUN_NEUTRAL_KEYS
                  and not k.startswith(ignore_prefixes) and (
                      (k in a and a[k] != b[k])
                      or (k not in a and k in defaults and b[k] != defaults[k])))
