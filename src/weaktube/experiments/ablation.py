"""``weaktube bench ablation``: the paper's Tables 1 and 2 on the synthetic benchmark.

Every number is the frame-mAP@0.5 (percent) that :func:`weaktube.train.engine.fit` computes at
the end of a run on the test split of the file it trained on (the test split always keeps its
boxes). Domains: **A** = the synthetic ``source.json`` classes, **B** = ``target.json`` (disjoint
class sets, different looks; ``docs/SYNTHETIC.md``).

Data
----
The benchmark is rendered once per preset into ``out_dir/data`` with the fixed data seed
:data:`DATA_SEED`, whatever the training seeds: a training seed changes the initialisation, the
clip sampling, the augmentation and Table 1's choice of boxed videos, never the videos, so the
spread over seeds is training noise on one benchmark. An existing ``out_dir/data`` is reused when
its ``synth.json`` has the same data seed and synthetic config.

Runs, per training seed
-----------------------
Table 2, directions ``A->B`` and ``B->A`` (``B->A`` swaps the files: the source stage trains on
``target.json``, the weak rows on ``source_weak.json``):

* ``source``: source stage on the source domain's file (full boxes). Not a Table 2 row itself:
  its ``last.pt`` initialises every other run of the direction, and its score on its own domain's
  test split is the row ``source_only_in_domain``.
* ``baseline_scel``, ``trbl``, ``ncbl``, ``trbl_ncbl``: target stage on the target domain's weak
  file, from the source checkpoint, with ``weak.use_trb`` / ``weak.use_ncb`` off/on.
* ``oracle``: **source** stage on the target domain's file with its true boxes, from the source
  checkpoint, with the *target* budget, so it differs from the weak rows only in supervision.

Opt-in (run only when ``only`` names it; not in the paper):

* ``trbl_ncbl_pseudo``: a pseudo-tube round after ``trbl_ncbl``. That run's checkpoint detects
  on the target domain's train videos, and inside each weak segment the best chain of its boxes
  becomes a tube (:mod:`weaktube.infer.pseudo`; ``pseudo_labels.json`` and
  ``pseudo_report.json``, with the labels' agreement with the true boxes, in the run folder).
  Then the **source** stage trains on those tubes exactly as the oracle trains on the true ones
  (from the source checkpoint, with the target budget): the two differ only in where the boxes
  come from.
* ``trbl_ncbl_pseudo_tight``: the same with every pseudo-box shrunk by GrabCut to the
  foreground inside it (``PseudoConfig.tighten``).

Trackers (table ``trackers``; direction ``A->B`` only, to bound the cost): ``tracker_kcf`` is the
``trbl_ncbl`` run (KCF is the default tracker; its number is reused, not re-run);
``tracker_mil``, ``tracker_csrt``, ``tracker_mosse`` re-run ``trbl_ncbl`` with ``weak.tracker``.

Table 1 (direction ``A``, inside domain A), x in :data:`BOXED_PERCENTS`:

* ``boxed_<x>``: source stage on ``annotations/seed<s>/boxed_<x>.json`` = the boxed train videos
  + the test split. ``boxed_100`` is the ``A->B`` ``source`` run (the same data, budget and
  seed), not trained twice.
* ``boxed_<x>_weak`` (x < 100): target stage from ``boxed_<x>``'s checkpoint on
  ``mixed_<x>.json`` = every train video, only the boxed ones with tubes (the paper's dataset),
  + the test split: "then weakly trained on the rest" while the boxed videos keep their boxes
  (``weak.use_boxes``: their clips get the supervised terms, the others the weak ones).
* ``weak_<x>.json`` (the unboxed train videos alone, tubes removed) is written beside them; no
  row trains on it since session 5 (a continuation on it alone, without the boxed videos, lost
  points in 3 of 4 runs: docs/RESULTS.md §8).

Which videos keep their boxes (:func:`boxed_order`, :func:`boxed_count`): the train videos are
ordered once per training seed, stratified by class (a seeded shuffle within each class, then
round-robin over the classes in a seeded order), and ``boxed_<x>`` takes the first
``boxed_count(n, x)`` of them, so the subsets are nested (20 % within 30 % within ...) and every
class keeps boxes as soon as x % of the videos is at least one per class.
``boxed_count(n, x) = floor(n * x / 100 + 0.5)`` (round half up), at least 1, and at most
``n - 1`` for x < 100 so that the weak continuation has a video to learn from.

Budgets: :data:`ABLATION_BUDGETS` (one dict: ``train.*`` overrides per mode and stage) on top of
the demo recipe (:func:`weaktube.demo.demo_config`). Target-stage runs and the oracle use the
shorter ``target`` budget at half the learning rate. ``--budget source.K=V`` / ``target.K=V``
(:func:`resolve_budgets`) changes one of them for a variant of the suite.

Source replay (``--set weak.replay_fraction=F``, not in the paper; docs/WEAK.md): the Table 2
and tracker runs replay the direction's *source* file (``weak.replay`` set by
:func:`run_config` unless given), so a share F of their clips trains boxes class-free on the
source domain's true boxes. Table 1's weak runs have no source domain (their boxed videos keep
their boxes already): replay is off there.

``--quick``: the first training seed, direction ``A->B`` only, rows ``source_only_in_domain``,
``baseline_scel``, ``trbl_ncbl``, ``oracle``, ``boxed_30`` and ``boxed_30_weak``, tiny budgets.

Output
------
``out_dir/runs/<seed>/<A_to_B|B_to_A|A>/<run>/``: one ``fit`` folder per run (``last.pt``,
``results.json``, ...). A run whose ``results.json`` exists is not re-run and an interrupted one
resumes from its ``last.pt``, so a killed suite picks up where it stopped; a run folder whose
``config.json`` disagrees with the config the suite would use raises :class:`AblationError`
(use another ``--out``). ``out_dir/ablation.json`` (atomic, rewritten after every run): ``rows``
(``table``, ``setting``, ``direction``, ``seed``, ``frame_mAP``), ``summary`` (mean and sample
standard deviation over seeds per table/setting/direction; ``std`` is null for one seed),
``checks`` (the issue's target checks, :func:`target_checks`), ``config``, ``runs`` and
``wall_seconds`` (this invocation only; runs found finished cost nothing).

Paired variants (``sources``, ``--sources DIR``): a variant of the target stage (``--set
weak.*``) is best judged on the *same* source models as the suite it is compared with, since
the spread over training seeds (6-17 points in B->A) swamps most single changes. With
``sources``, the source-stage runs (source models, oracles, ``boxed_<x>``) and the benchmark are
read from the finished suite folder DIR, never trained or written there; only the target-stage
runs are trained, into ``out_dir``, starting from DIR's checkpoints; the oracles too when the
target budget (``budgets["target"]``, ``--budget target.*``) differs from the one DIR's
``ablation.json`` recorded, since they train with it. The source stage does not
read ``weak.*``, so those keys may differ from DIR's; any other difference raises
:class:`AblationError`. Other keys of the target stage alone (``target_overrides``,
``--target-set``, e.g. ``train.ema_decay`` or ``train.seed``) apply to the target-stage runs
only (the weak rows, the trackers, ``boxed_<x>_weak``), after their budget; the source-stage
runs, the oracles included, never see them. A value is one value for every suite seed:
``train.seed=100`` trains every target run with seed 100, each from its own seed's source
model (the rows keep the suite seed's number). Keys that place a run in the suite
(:data:`TARGET_FIXED_KEYS`: ``weak.*``, ``train.stage``, ``train.init``, ``data.annotations``)
are refused.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from weaktube.config import (
    ConfigError,
    ExperimentConfig,
    apply_overrides,
    config_differences,
    flatten_config,
    to_dict,
)
from weaktube.data.synthetic import PRESETS, SYNTH_FORMAT, SynthConfig, SynthOutput, generate
from weaktube.demo import demo_config
from weaktube.fileio import atomic_write_json
from weaktube.structures import AnnotationSet, VideoRecord
from weaktube.train.engine import fit

# ---------------------------------------------------------------------------------------- budgets
# Training budgets, as ``train.*`` overrides of the demo recipe (weaktube.demo.DEMO_OVERRIDES:
# AdamW, lr 0.002, batch 8). "source": source-stage runs trained from scratch (the source
# models, Table 1's boxed_<x>); "target": every run that starts from a checkpoint (the weak rows,
# the trackers, the oracle, boxed_<x>_weak): shorter, at half the learning rate.
# Sizing (2-core CPU, demo preset: 100 train + 20 test videos of 80-160 frames per domain).
# "source" is the `make demo` recipe itself (8 x 1536 clips: 61.6 % frame-mAP on domain A);
# at a third of it (6 x 768) the source models scored 25-31 % and every target row stayed at
# 0-5 %, measuring nothing (docs/RESULTS.md §8). The two seeds run as two processes with one
# torch thread each (`--threads 1`, docs/REPRODUCE.md), plus ~60 s per run to load the videos
# and detect, link and score the ~2400 test frames. Per process, on the CPU with native bf16 of
# sessions 1-7 (~16-21 clips/s each): a source run ~11 min, a target run ~4.5 min, the whole
# suite ~140 min; on the AVX2-only CPU of sessions 8-21 in float32 (~9.4 clips/s each): a
# source run ~22 min, a KCF target run ~7.5 min (CSRT twice that), the whole suite (6 source
# and 17 target runs per seed) ~4.4 h (docs/RESULTS.md §8 session 21).
# --quick: 6 runs, 2 x 768 + 4 x 384 clips + 6 evaluations, about 6 min with both cores.
# fp32 throughout (amp off, also pinned in run_ablation's base config): every suite number in
# docs/RESULTS.md §8 was measured so; the demo recipe's bf16 autocast (session 5) is not used.
ABLATION_BUDGETS: dict[str, dict[str, dict]] = {
    "full": {
        "source": {"epochs": 8, "clips_per_epoch": 1536, "lr": 0.002, "warmup_iters": 50,
                   "amp": False},
        "target": {"epochs": 4, "clips_per_epoch": 768, "lr": 0.001, "warmup_iters": 20,
                   "amp": False},
    },
    "quick": {
        "source": {"epochs": 2, "clips_per_epoch": 384, "lr": 0.002, "warmup_iters": 5,
                   "amp": False},
        "target": {"epochs": 1, "clips_per_epoch": 384, "lr": 0.001, "warmup_iters": 5,
                   "amp": False},
    },
}

# The suite's recipe is the demo recipe frozen as it was when the tables of docs/RESULTS.md §8
# were measured: each clip's own detections are scored (the paper's frame-mAP; no class pooling
# over neighbouring keyframes nor over a keyframe's anchors, so the rows measure training
# alone), in float32 whatever the CPU or the budgets, and without the demo recipe's later
# additions (hue/saturation jitter, weight average, the class trained at every overlapping
# anchor, clips of 4 frames 4 apart: the suite keeps 8 frames 2 apart). A variant of the suite
# changes these with `--set`.
SUITE_PINS: dict = {
    "model": {"clip_len": 8},
    "eval": {"postprocess": {"class_window_s": 0.0, "class_vote_iou": 0.0}},
    "loss": {"class_iou": 0.0, "class_iou_norm": False},
    "train": {"amp": False, "ema_decay": 0.0},
    "data": {"frame_stride": 2, "augment": {"hue": 0.0, "saturation": 1.0}},
}

DATA_SEED = 0  # the synthetic benchmark's seed, fixed: training seeds never change the videos
DIRECTIONS = ("A->B", "B->A")
DIRECTION_FOLDERS = {"A->B": "A_to_B", "B->A": "B_to_A", "A": "A"}  # shell-friendly folder names
WEAK_ROWS = {  # Table 2's target-stage rows: weak.* overrides
    "baseline_scel": {"use_trb": False, "use_ncb": False},
    "trbl": {"use_trb": True, "use_ncb": False},
    "ncbl": {"use_trb": False, "use_ncb": True},
    "trbl_ncbl": {"use_trb": True, "use_ncb": True},
}
TRACKERS = ("kcf", "mil", "csrt", "mosse")  # kcf = the trbl_ncbl run
BOXED_PERCENTS = (20, 30, 50, 70, 100)
# rows run only when --only names them (a second round after the paper's method)
PSEUDO_ROWS = {"trbl_ncbl_pseudo": False, "trbl_ncbl_pseudo_tight": True}  # name: tighten
OPT_IN_SETTINGS = tuple(PSEUDO_ROWS)
QUICK_SETTINGS = ("source_only_in_domain", "baseline_scel", "trbl_ncbl", "oracle", "boxed_30",
                  "boxed_30_weak")
# config keys that may differ between a run folder and a resumed suite (they do not change results)
# the target checks (percentage points / ratio); reported, never tuned to
CHECK_ORACLE_GAP = 15.0  # Baseline+SCEL at least this far below the oracle
CHECK_ORACLE_RATIO = 0.9  # +TRBL+NCBL at least this share of the oracle
CHECK_WEAK_GAIN = 10.0  # +TRBL+NCBL at least this far above Baseline+SCEL


class AblationError(ConfigError):
    """The output folder holds runs made with another config, or a bad ``only`` setting."""


# ------------------------------------------------------------------------------- derived files
def video_class(video: VideoRecord) -> int:
    """A video's class: the label of its first tube, else of its first segment, else -1."""
    if video.tubes:
        return int(video.tubes[0].label)
    if video.segments:
        return int(video.segments[0].label)
    return -1


def boxed_count(num_videos: int, percent: int) -> int:
    """How many of ``num_videos`` train videos keep their boxes at ``percent`` %.

    ``floor(n * x / 100 + 0.5)`` (round half up), at least 1, at most ``n - 1`` below 100 %
    (the weak continuation needs a video) and ``n`` at 100 %."""
    if not 0 < percent <= 100:
        raise ValueError(f"boxed percentage must lie in (0, 100], got {percent}")
    if num_videos < 2 and percent < 100:
        raise ValueError(f"{num_videos} train video(s) cannot be split into boxed and unboxed")
    k = (num_videos * percent * 2 + 100) // 200  # integer floor(n * x / 100 + 0.5)
    return num_videos if percent == 100 else min(num_videos - 1, max(1, k))


def boxed_order(train: AnnotationSet, seed: int) -> list[str]:
    """The train videos' names in the order they receive boxes (a prefix per percentage).

    Stratified by class: a seeded shuffle within each class, then round-robin over the classes in
    a seeded order. Depends only on ``seed`` and the set of (name, class) pairs, not on the
    file's video order."""
    rng = np.random.default_rng([DATA_SEED, seed, 101])  # 101: the Table 1 stream
    by_class: dict[int, list[str]] = {}
    for name in sorted(v.name for v in train.videos):
        by_class.setdefault(video_class(train[name]), []).append(name)
    classes = [sorted(by_class)[i] for i in rng.permutation(len(by_class))]
    shuffled = {c: [by_class[c][i] for i in rng.permutation(len(by_class[c]))] for c in classes}
    rounds = max((len(v) for v in shuffled.values()), default=0)
    return [shuffled[c][r] for r in range(rounds) for c in classes if r < len(shuffled[c])]


def boxed_subset(ann: AnnotationSet, percent: int, seed: int,
                 train_split: str = "train") -> tuple[list[str], list[str]]:
    """``(boxed, unboxed)`` train video names (each sorted) for ``percent`` % boxed videos."""
    train = ann.split(train_split)
    order = boxed_order(train, seed)
    k = boxed_count(len(order), percent)
    return sorted(order[:k]), sorted(order[k:])


@dataclass(frozen=True)
class Table1Files:
    """The derived annotation files of one (percentage, seed)."""

    boxed: Path  # boxed train videos (with tubes) + test split
    weak: Path  # unboxed train videos (tubes removed, segments kept) + test split
    mixed: Path  # every video; the unboxed train videos without tubes (the paper's dataset)


def table1_paths(ann_dir: Path, percent: int, seed: int) -> Table1Files:
    d = Path(ann_dir) / f"seed{seed}"
    return Table1Files(d / f"boxed_{percent}.json", d / f"weak_{percent}.json",
                       d / f"mixed_{percent}.json")


def table1_annotations(ann: AnnotationSet, percent: int, seed: int, train_split: str = "train"
                       ) -> tuple[AnnotationSet, AnnotationSet, AnnotationSet]:
    """``(boxed, weak, mixed)`` annotation sets; every non-train video is kept in all three."""
    boxed, unboxed = boxed_subset(ann, percent, seed, train_split)
    unboxed_set = set(unboxed)
    others = [v.name for v in ann.videos if v.split != train_split]
    boxed_ann = ann.subset([*boxed, *others])
    weak_ann = ann.subset([*unboxed, *others]).without_boxes(train_split)
    stripped = {v.name: v for v in ann.subset(unboxed).without_boxes(train_split).videos}
    mixed_ann = AnnotationSet(list(ann.classes), [stripped[v.name] if v.name in unboxed_set
                                                  else v for v in ann.videos])
    return boxed_ann, weak_ann, mixed_ann


def write_table1_files(ann: AnnotationSet, ann_dir: Path, percent: int, seed: int,
                       train_split: str = "train") -> Table1Files:
    """Write (atomically) the derived files of one (percentage, seed); returns their paths."""
    paths = table1_paths(ann_dir, percent, seed)
    boxed_ann, weak_ann, mixed_ann = table1_annotations(ann, percent, seed, train_split)
    paths.boxed.parent.mkdir(parents=True, exist_ok=True)
    boxed_ann.save(paths.boxed)
    mixed_ann.save(paths.mixed)
    if percent < 100:
        weak_ann.save(paths.weak)
    return paths


# ----------------------------------------------------------------------------------------- plan
@dataclass(frozen=True)
class RunSpec:
    """One ``fit`` call."""

    key: str  # "<seed>/<direction>/<name>", unique in the suite
    folder: str  # relative to out_dir: runs/<seed>/<direction folder>/<name>
    seed: int
    stage: str  # source | target
    budget: str  # "source" | "target": which ABLATION_BUDGETS entry
    annotations: Path
    init: str | None = None  # key of the run whose last.pt initialises this one
    weak: dict = field(default_factory=dict)  # weak.* overrides
    table1: tuple[int, int] | None = None  # (percent, seed) whose derived files this run reads
    # the direction's source-domain file: weak.replay of a Table 2 / tracker run when
    # weak.replay_fraction > 0 (Table 1's weak runs keep their boxed videos: no replay)
    replay: Path | None = None
    # pseudo-tube round: key of the weak run whose checkpoint labels ``annotations``' train
    # videos (the run then trains on those labels), and the file with their true boxes (only
    # to report the labels' agreement; never trained on)
    pseudo_of: str | None = None
    truth: Path | None = None
    pseudo_tighten: bool = False  # PseudoConfig.tighten of the labels


@dataclass(frozen=True)
class RowSpec:
    """One reported number: the frame-mAP of ``run``."""

    table: str  # "1" | "2" | "trackers"
    setting: str
    direction: str  # "A->B" | "B->A" | "A"
    seed: int
    run: str  # RunSpec.key


def run_folder(key: str) -> str:
    """``"0/A->B/trbl"`` -> ``"runs/0/A_to_B/trbl"`` (relative to the suite's out_dir)."""
    seed, direction, name = key.split("/")
    return f"runs/{seed}/{DIRECTION_FOLDERS[direction]}/{name}"


def _run(seed: int, direction: str, name: str, **kw) -> RunSpec:
    key = f"{seed}/{direction}/{name}"
    return RunSpec(key=key, folder=run_folder(key), seed=seed, **kw)


def plan_suite(data: SynthOutput, ann_dir: Path, seeds: Sequence[int], quick: bool
               ) -> tuple[list[RunSpec], list[RowSpec]]:
    """Every run (in dependency order) and every row of the suite, before ``only`` filtering."""
    runs: list[RunSpec] = []
    rows: list[RowSpec] = []
    files = {"A": (data.source, data.source_weak), "B": (data.target, data.target_weak)}
    for seed in (seeds[:1] if quick else seeds):
        for direction in (DIRECTIONS[:1] if quick else DIRECTIONS):
            src, tgt = direction.split("->")
            src_run = _run(seed, direction, "source", stage="source", budget="source",
                           annotations=files[src][0])
            runs.append(src_run)
            rows.append(RowSpec("2", "source_only_in_domain", direction, seed, src_run.key))
            for name, weak in WEAK_ROWS.items():
                r = _run(seed, direction, name, stage="target", budget="target",
                         annotations=files[tgt][1], init=src_run.key, weak=dict(weak),
                         replay=files[src][0])
                runs.append(r)
                rows.append(RowSpec("2", name, direction, seed, r.key))
            oracle = _run(seed, direction, "oracle", stage="source", budget="target",
                          annotations=files[tgt][0], init=src_run.key)
            runs.append(oracle)
            rows.append(RowSpec("2", "oracle", direction, seed, oracle.key))
            for name, tighten in PSEUDO_ROWS.items():
                pseudo = _run(seed, direction, name, stage="source", budget="target",
                              annotations=files[tgt][1], init=src_run.key,
                              pseudo_of=f"{seed}/{direction}/trbl_ncbl", truth=files[tgt][0],
                              pseudo_tighten=tighten)
                runs.append(pseudo)
                rows.append(RowSpec("2", name, direction, seed, pseudo.key))
            if direction == "A->B":
                for tracker in TRACKERS:
                    key = f"{seed}/{direction}/trbl_ncbl"
                    if tracker != "kcf":
                        r = _run(seed, direction, f"tracker_{tracker}", stage="target",
                                 budget="target", annotations=files[tgt][1], init=src_run.key,
                                 weak={**WEAK_ROWS["trbl_ncbl"], "tracker": tracker},
                                 replay=files[src][0])
                        runs.append(r)
                        key = r.key
                    rows.append(RowSpec("trackers", f"tracker_{tracker}", direction, seed, key))
        for pct in BOXED_PERCENTS:
            if pct == 100:  # the A->B source run: same data, budget and seed
                rows.append(RowSpec("1", "boxed_100", "A", seed, f"{seed}/A->B/source"))
                continue
            paths = table1_paths(ann_dir, pct, seed)
            boxed = _run(seed, "A", f"boxed_{pct}", stage="source", budget="source",
                         annotations=paths.boxed, table1=(pct, seed))
            weak = _run(seed, "A", f"boxed_{pct}_weak", stage="target", budget="target",
                        annotations=paths.mixed, init=boxed.key, table1=(pct, seed))
            runs += [boxed, weak]
            rows += [RowSpec("1", f"boxed_{pct}", "A", seed, boxed.key),
                     RowSpec("1", f"boxed_{pct}_weak", "A", seed, weak.key)]
    if quick:
        rows = [r for r in rows if r.setting in QUICK_SETTINGS]
        runs = _needed_runs(runs, rows)
    return runs, rows


def _needed_runs(runs: list[RunSpec], rows: list[RowSpec]) -> list[RunSpec]:
    """The runs ``rows`` read, with the runs they start from or are labelled by (``init``,
    ``pseudo_of``, recursively), in plan order."""
    by_key = {r.key: r for r in runs}
    need: set[str] = set()
    todo = [row.run for row in rows]
    while todo:
        key = todo.pop()
        if key in need:
            continue
        need.add(key)
        todo += [k for k in (by_key[key].init, by_key[key].pseudo_of) if k is not None]
    return [r for r in runs if r.key in need]


def select(runs: list[RunSpec], rows: list[RowSpec], only: Sequence[str] | None,
           directions: Sequence[str] | None = None) -> tuple[list[RunSpec], list[RowSpec]]:
    """Keep the rows whose setting is in ``only`` and whose direction is in ``directions``
    (all when None; Table 1's direction is ``"A"``) and the runs they need. The
    :data:`OPT_IN_SETTINGS` rows are kept only when ``only`` names them."""
    if not only:
        rows = [r for r in rows if r.setting not in OPT_IN_SETTINGS]
    for field_name, wanted in (("direction", directions), ("setting", only)):
        if not wanted:
            continue
        known = list(dict.fromkeys(getattr(r, field_name) for r in rows))
        unknown = [w for w in wanted if w not in known]
        if unknown:
            raise AblationError(f"unknown {field_name}(s) {unknown} for this suite; known: "
                                f"{', '.join(known)}")
        rows = [r for r in rows if getattr(r, field_name) in set(wanted)]
    return _needed_runs(runs, rows), rows


# ---------------------------------------------------------------------------------- running
def run_config(base: ExperimentConfig, spec: RunSpec, budgets: dict,
               init_folder: Path | None, target_overrides: dict | None = None,
               annotations: Path | None = None) -> ExperimentConfig:
    """The ``ExperimentConfig`` of one run: ``base`` + the budget + the run's overrides;
    ``init_folder``: the folder of the run ``spec.init`` names; ``target_overrides``: nested
    overrides applied last, to target-stage runs only; ``annotations``: the file trained on
    when not ``spec.annotations`` (a pseudo-tube round's labels)."""
    train = {**budgets[spec.budget], "stage": spec.stage, "seed": spec.seed,
             "init": str(init_folder / "last.pt") if spec.init else ""}
    cfg = apply_overrides(base, {"data": {"annotations": str(annotations or spec.annotations)},
                                 "train": train, "weak": dict(spec.weak)})
    if target_overrides and spec.stage == "target":
        cfg = apply_overrides(cfg, target_overrides)
    if spec.stage == "target" and cfg.weak.replay_fraction > 0 and not cfg.weak.replay:
        # source replay: the direction's source file; Table 1 (no source domain): off
        cfg = apply_overrides(cfg, {"weak": {"replay": str(spec.replay)} if spec.replay
                                    else {"replay_fraction": 0.0}})
    return cfg


# keys that define a run's place in the suite: a target-stage override may not change them
# (weak.* variants go in ``overrides``: the source stage never reads them, and the rows keep
# their own use_trb / use_ncb / tracker)
TARGET_FIXED_KEYS = ("weak.", "train.stage", "train.init", "data.annotations")


def check_target_overrides(target_overrides: dict | None) -> None:
    """Raise :class:`ConfigError` for an unknown key or a bad value, and
    :class:`AblationError` for a key of :data:`TARGET_FIXED_KEYS`, before anything runs."""
    if not target_overrides:
        return
    try:
        apply_overrides(ExperimentConfig(), target_overrides)
    except ConfigError as e:
        raise ConfigError(f"--target-set: {e}") from None
    fixed = [k for k in flatten_config(target_overrides) if k.startswith(TARGET_FIXED_KEYS)]
    if fixed:
        raise AblationError(f"--target-set {', '.join(fixed)}: these keys define the suite's "
                            "runs (weak.* variants: --set, which the source stage ignores)")


BUDGET_KEYS = ("epochs", "clips_per_epoch", "lr", "warmup_iters", "amp", "batch_size")


def resolve_budgets(quick: bool, budget_overrides: dict | None = None) -> dict:
    """``ABLATION_BUDGETS["quick" | "full"]`` with ``budget_overrides`` (``{"target": {"epochs":
    8}}``, from ``--budget target.epochs=8``) applied. Raises :class:`AblationError` for a key
    other than ``source.<k>`` / ``target.<k>`` with ``k`` in :data:`BUDGET_KEYS`, and
    :class:`ConfigError` for a value ``train.<k>`` refuses."""
    budgets = copy.deepcopy(ABLATION_BUDGETS["quick" if quick else "full"])
    for budget, keys in (budget_overrides or {}).items():
        if budget not in budgets or not isinstance(keys, dict):
            raise AblationError(f"--budget {budget}: expected source.<key> or target.<key> "
                                "(source: the source models and boxed_<x>; target: every run "
                                "that starts from a checkpoint, the oracle included)")
        unknown = [k for k in keys if k not in BUDGET_KEYS]
        if unknown:
            raise AblationError(f"--budget {budget}.{unknown[0]}: not a budget key (known: "
                                f"{', '.join(BUDGET_KEYS)}; other train.* keys: --set)")
        try:
            apply_overrides(ExperimentConfig(), {"train": keys})
        except ConfigError as e:
            raise ConfigError(f"--budget {budget}: {e}") from None
        for key, value in keys.items():
            if key != "amp" and (value < 0 or (value == 0 and key != "warmup_iters")):
                raise ConfigError(f"--budget {budget}.{key}={value}: expected "
                                  f"{'>= 0' if key == 'warmup_iters' else '> 0'}")
        budgets[budget].update(keys)
    return budgets


def check_run_folder(folder: Path, cfg: ExperimentConfig) -> None:
    """Raise :class:`AblationError` when ``folder`` holds a run made with another config (a
    source-stage run's ``weak.*``, which it never reads, may differ)."""
    path = folder / "config.json"
    if not path.exists():
        return
    saved = json.loads(path.read_text(encoding="utf-8")).get("experiment", {})
    ignore = ("weak.",) if cfg.train.stage == "source" else ()
    diff = config_differences(saved, to_dict(cfg), ignore)
    if diff:
        raise AblationError(f"{folder}: holds a run made with another config (differs in "
                            f"{', '.join(diff[:5])}); use another --out or delete the folder")


def suite_budgets(suite_dir: Path) -> dict:
    """The training budgets a finished suite folder recorded in its ``ablation.json``
    (``{}`` when it has none)."""
    path = suite_dir / "ablation.json"
    if not path.exists():
        return {}
    return json.loads(path.read_text(encoding="utf-8")).get("config", {}).get("budgets") or {}


def frame_map(results: dict, folder: Path) -> float:
    value = results.get("metrics", {}).get("frame_mAP@0.5")
    if value is None or not math.isfinite(value):
        raise AblationError(f"{folder / 'results.json'}: no finite metrics.frame_mAP@0.5")
    return float(value)


def ensure_benchmark(data_dir: Path, synth: SynthConfig, out_dir: Path, progress: bool,
                     render: bool = True) -> SynthOutput:
    """Render the benchmark into ``data_dir``, or reuse it when its ``synth.json`` matches
    (:data:`DATA_SEED` and ``synth``). ``render=False``: reuse only (another suite's folder,
    ``--sources``), else raise :class:`AblationError`."""
    out = SynthOutput(data_dir, data_dir / "videos", data_dir / "source.json",
                      data_dir / "target.json", data_dir / "source_weak.json",
                      data_dir / "target_weak.json", data_dir / "synth.json")
    want = json.loads(json.dumps(dataclasses.asdict(synth)))
    if out.meta.exists():
        meta = json.loads(out.meta.read_text(encoding="utf-8"))
        same = (meta.get("format") == SYNTH_FORMAT and meta.get("seed") == DATA_SEED
                and meta.get("config") == want)
        if same and all(p.exists() for p in (out.source, out.target, out.source_weak,
                                             out.target_weak)):
            return out
        runs = out_dir / "runs"
        if runs.is_dir() and any(runs.iterdir()):
            raise AblationError(f"{out.meta}: the benchmark in {data_dir} differs from the one "
                                f"asked for, and {runs} holds runs trained on it; use another "
                                "--out")
    if not render:
        raise AblationError(f"{data_dir}: no finished benchmark matching this suite's "
                            "(--sources reads it, never renders it)")
    return generate(synth, seed=DATA_SEED, out_dir=data_dir, progress=progress)


@dataclass
class AblationResult:
    rows: list[dict]  # {"table", "setting", "direction", "seed", "frame_mAP"} (percent)
    summary: list[dict]  # per (table, setting, direction): mean, std, n, seeds
    checks: list[dict]  # per direction: the target checks (target_checks)
    config: dict
    runs: list[dict] = field(default_factory=list)  # per run: folder, seconds, reused
    wall_seconds: float = 0.0

    def to_dict(self) -> dict:
        return {"rows": self.rows, "summary": self.summary, "checks": self.checks,
                "config": self.config, "runs": self.runs,
                "wall_seconds": round(self.wall_seconds, 1)}


def write_ablation_json(path: Path, result: AblationResult) -> None:
    """``ablation.json``, atomically."""
    atomic_write_json(path, result.to_dict(), indent=2)


def json_line(rows: list[dict]) -> str:
    """The ``--json`` contract: one line, exactly ``{"rows": [...]}``."""
    return json.dumps({"rows": rows}, separators=(", ", ": "))


def run_ablation(out_dir: Path, preset: str, seeds: list[int], quick: bool,
                 device: str = "auto", only: list[str] | None = None, progress: bool = True,
                 directions: list[str] | None = None,
                 *, synth: SynthConfig | None = None, budgets: dict | None = None,
                 overrides: dict | None = None, sources: Path | None = None,
                 target_overrides: dict | None = None) -> AblationResult:
    """Run (or resume) the ablation suite into ``out_dir``; see the module docstring.

    ``preset``: the synthetic benchmark and demo recipe (``demo`` | ``bench``). ``seeds``:
    training seeds (``quick`` uses the first). ``only``: settings to report (their runs and the
    runs those start from are run); ``directions``: likewise, ``"A->B"``, ``"B->A"``, ``"A"``.
    Keyword-only, for tests and custom studies: ``synth``
    replaces the preset's :class:`SynthConfig`, ``budgets`` replaces
    ``ABLATION_BUDGETS["quick" | "full"]``, ``overrides`` are applied to the base config.
    ``sources``: a finished suite folder whose benchmark and source-stage runs are used instead
    of training them (paired variants; see the module docstring). ``target_overrides``: applied
    to the target-stage runs only, after their budget.

    With ``progress``: a bar over the runs and a line per finished run. The summary is for the
    caller to print (:func:`format_table`, :func:`format_checks`).
    """
    t0 = time.perf_counter()
    if preset not in PRESETS:
        raise AblationError(f"unknown preset {preset!r} (known: {', '.join(PRESETS)})")
    if not seeds:
        raise AblationError("need at least one training seed")
    if len(set(seeds)) != len(seeds):
        raise AblationError(f"duplicate training seeds {seeds}")
    check_target_overrides(target_overrides)
    out_dir = Path(out_dir).resolve()
    home = Path(sources).resolve() if sources else out_dir  # the benchmark and source runs
    if sources and not (home / "runs").is_dir():
        raise AblationError(f"--sources {sources}: no suite there (no runs/ folder)")
    if sources and home == out_dir:
        raise AblationError("--sources must name another suite folder than --out")
    out_dir.mkdir(parents=True, exist_ok=True)
    synth = synth or PRESETS[preset]()
    budgets = copy.deepcopy(budgets or resolve_budgets(quick))
    data = ensure_benchmark(home / "data", synth, home, progress, render=not sources)
    ann_dir = home / "annotations"
    runs, rows = select(*plan_suite(data, ann_dir, list(seeds), quick), only, directions)

    base = apply_overrides(demo_config(data.root, preset, device), SUITE_PINS)
    if overrides:
        base = apply_overrides(base, overrides)
    source_ann = AnnotationSet.load(data.source)
    for pct, seed in sorted({r.table1 for r in runs if r.table1 is not None}):
        if not sources:  # DIR's own files, written when its suite ran
            write_table1_files(source_ann, ann_dir, pct, seed, base.data.train_split)
    by_key = {r.key: r for r in runs}

    # Under --sources the oracles are read from DIR, unless this suite's target budget (which
    # the oracles train with) differs from DIR's: then they are trained here, from DIR's models.
    own_oracles = bool(sources) and suite_budgets(home).get("target") not in (None,
                                                                            budgets["target"])

    def read_from_sources(spec: RunSpec) -> bool:
        return (bool(sources) and spec.stage == "source" and spec.pseudo_of is None
                and not (own_oracles and spec.budget == "target"))

    def folder_of(spec: RunSpec) -> Path:
        return (home if read_from_sources(spec) else out_dir) / spec.folder

    config = {"preset": preset, "data_seed": DATA_SEED, "seeds": list(seeds), "quick": quick,
              "device": device, "only": list(only) if only else None, "budgets": budgets,
              "sources": str(home) if sources else None,
              "target_overrides": target_overrides or None,
              "base": to_dict(base), "synth": dataclasses.asdict(synth),
              "directions": list(dict.fromkeys(r.direction for r in rows))}
    result = AblationResult([], [], [], config)
    scores: dict[str, float] = {}
    bar = tqdm(total=len(runs), desc="ablation", unit="run", disable=not progress,
               dynamic_ncols=True)
    for spec in runs:
        bar.set_postfix_str(spec.key)
        folder = folder_of(spec)
        labels = folder / PSEUDO_LABELS if spec.pseudo_of else None
        cfg = run_config(base, spec, budgets,
                         folder_of(by_key[spec.init]) if spec.init else None, target_overrides,
                         annotations=labels)
        check_run_folder(folder, cfg)
        reused = (folder / "results.json").exists()
        t_run = time.perf_counter()
        if not reused and read_from_sources(spec):
            raise AblationError(f"{folder}: not finished; --sources reads source-stage runs "
                                "and never trains them (finish that suite first)")
        if labels is not None:
            labeller = folder_of(by_key[spec.pseudo_of]) / "last.pt"
            if labels.exists():
                check_pseudo_labels(folder, labeller)
            elif not reused:
                write_pseudo_labels(labeller, spec, cfg, folder, progress)
        if not reused:
            fit(cfg, folder, progress=False, evaluate_at_end=True)
        results = json.loads((folder / "results.json").read_text(encoding="utf-8"))
        scores[spec.key] = frame_map(results, folder)
        seconds = time.perf_counter() - t_run
        shown = spec.folder if folder == out_dir / spec.folder else str(folder)  # DIR's: absolute
        result.runs.append({"run": spec.key, "folder": shown, "reused": reused,
                            "seconds": round(seconds, 1),
                            "train_seconds": results.get("train_seconds")})
        result.rows = [_row(r, scores[r.run]) for r in rows if r.run in scores]
        result.wall_seconds = time.perf_counter() - t0
        write_ablation_json(out_dir / "ablation.json", result)
        if progress:
            how = "found finished" if reused else f"{seconds:.0f} s"
            tqdm.write(f"[seed {spec.seed}] {spec.key.split('/', 1)[1]:<24} frame-mAP "
                       f"{scores[spec.key]:5.1f} %  ({how})")
        bar.update(1)
    bar.close()
    result.rows = [_row(r, scores[r.run]) for r in rows]
    result.summary = summarize(result.rows)
    result.checks = target_checks(result.summary)
    result.wall_seconds = time.perf_counter() - t0
    write_ablation_json(out_dir / "ablation.json", result)
    return result


PSEUDO_LABELS = "pseudo_labels.json"  # in a pseudo-tube round's run folder
PSEUDO_REPORT = "pseudo_report.json"


def write_pseudo_labels(checkpoint: Path, spec: RunSpec, cfg: ExperimentConfig, folder: Path,
                        progress: bool) -> dict:
    """A pseudo-tube round's labels: ``checkpoint`` detects on the train videos of
    ``spec.annotations`` (the weak file), :func:`~weaktube.infer.pseudo.pseudo_tubes` turns the
    detections inside its segments into tubes, written to ``folder/pseudo_labels.json``; their
    counts and agreement with ``spec.truth`` go to ``folder/pseudo_report.json`` (both atomic).
    Returns the report; raises :class:`AblationError` when no video could be labelled."""
    import torch

    from weaktube.data.dataset import FrameStore
    from weaktube.infer.detect import detect_checkpoint
    from weaktube.infer.pseudo import PseudoConfig, pseudo_tubes, tube_agreement
    from weaktube.train.engine import resolve_device

    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    t0 = time.perf_counter()
    weak = AnnotationSet.load(spec.annotations)
    split = cfg.data.train_split
    store = FrameStore(cfg.data.videos)  # detection streams; tightening decodes into it
    dets = detect_checkpoint(checkpoint, weak.split(split).videos, store,
                             device=resolve_device(cfg.train.device),
                             batch_size=cfg.eval.batch_size, progress=progress)
    labelled, report = pseudo_tubes(weak, dets, PseudoConfig(split=split,
                                                             tighten=spec.pseudo_tighten), store)
    folder.mkdir(parents=True, exist_ok=True)
    out = {"checkpoint": str(checkpoint), "checkpoint_sha256": file_sha256(checkpoint),
           "weak": str(spec.annotations),
           **dataclasses.asdict(report), "seconds": round(time.perf_counter() - t0, 1)}
    if spec.truth is not None:
        out["agreement"] = tube_agreement(labelled, AnnotationSet.load(spec.truth), split)
    atomic_write_json(folder / PSEUDO_REPORT, out, indent=2)
    if report.videos_out == 0:
        raise AblationError(f"{folder}: {checkpoint} labelled none of the {report.videos_in} "
                            f"{split} videos of {spec.annotations} (why, per video: "
                            f"{folder / PSEUDO_REPORT})")
    labelled.save(folder / PSEUDO_LABELS)
    return out


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes (read in 1 MiB blocks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def check_pseudo_labels(folder: Path, checkpoint: Path) -> None:
    """Raise :class:`AblationError` when ``folder``'s pseudo-labels were written by another
    ``checkpoint`` than the one there now (the labelling run was trained again since): a round
    on stale labels is never resumed or reused. Reports that predate the hash are trusted."""
    report_path = folder / PSEUDO_REPORT
    if not report_path.exists():
        raise AblationError(f"{folder}: {PSEUDO_LABELS} without its {PSEUDO_REPORT}; delete the "
                            "folder to label and train the round again")
    want = json.loads(report_path.read_text(encoding="utf-8")).get("checkpoint_sha256")
    if want is not None and checkpoint.exists() and file_sha256(checkpoint) != want:
        raise AblationError(f"{folder}: its pseudo-labels came from an earlier {checkpoint} "
                            "(the run was trained again since); delete the folder to label "
                            "and train the round again")


def _row(spec: RowSpec, value: float) -> dict:
    return {"table": spec.table, "setting": spec.setting, "direction": spec.direction,
            "seed": spec.seed, "frame_mAP": round(value, 4)}


# ------------------------------------------------------------------------------- summaries
def summarize(rows: list[dict]) -> list[dict]:
    """Mean and sample standard deviation (ddof 1; None for one seed) of ``frame_mAP`` over
    seeds, per (table, setting, direction), in the order of first appearance."""
    groups: dict[tuple[str, str, str], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["table"], r["setting"], r["direction"]), []).append(r)
    out = []
    for (table, setting, direction), rs in groups.items():
        vals = np.array([r["frame_mAP"] for r in rs], dtype=np.float64)
        std = float(vals.std(ddof=1)) if len(vals) > 1 else None
        out.append({"table": table, "setting": setting, "direction": direction,
                    "mean": round(float(vals.mean()), 4),
                    "std": round(std, 4) if std is not None else None,
                    "n": len(vals), "seeds": [r["seed"] for r in rs]})
    return out


def target_checks(summary: list[dict]) -> list[dict]:
    """The issue's target checks per Table 2 direction, on the means over seeds:

    * ``baseline_15_below_oracle``: oracle - baseline_scel >= 15 points (the benchmark is hard
      enough for weak supervision to matter);
    * ``trbl_ncbl_90pct_of_oracle``: trbl_ncbl >= 0.9 * oracle;
    * ``trbl_ncbl_10_above_baseline``: trbl_ncbl - baseline_scel >= 10 points.

    A direction is listed when its three means exist; ``trbl_ncbl_over_oracle`` is None when the
    oracle is 0."""
    means = {(s["setting"], s["direction"]): s["mean"] for s in summary if s["table"] == "2"}
    out = []
    for direction in dict.fromkeys(d for _, d in means):
        try:
            base, weak, oracle = (means[(k, direction)]
                                  for k in ("baseline_scel", "trbl_ncbl", "oracle"))
        except KeyError:
            continue
        out.append({
            "direction": direction, "baseline_scel": base, "trbl_ncbl": weak, "oracle": oracle,
            "oracle_minus_baseline": round(oracle - base, 4),
            "baseline_15_below_oracle": bool(oracle - base >= CHECK_ORACLE_GAP),
            "trbl_ncbl_over_oracle": round(weak / oracle, 4) if oracle > 0 else None,
            "trbl_ncbl_90pct_of_oracle": bool(weak >= CHECK_ORACLE_RATIO * oracle),
            "trbl_ncbl_minus_baseline": round(weak - base, 4),
            "trbl_ncbl_10_above_baseline": bool(weak - base >= CHECK_WEAK_GAIN),
        })
        for name in PSEUDO_ROWS:  # the opt-in second round: reported beside, not a target
            pseudo = means.get((name, direction))
            if pseudo is not None:
                out[-1][f"{name}_over_oracle"] = (round(pseudo / oracle, 4) if oracle > 0
                                                  else None)
    return out


def _fmt_mean_std(mean: float, std: float | None) -> str:
    return f"{mean:6.1f} ± {std:4.1f}" if std is not None else f"{mean:6.1f} ±    -"


def format_table(rows: list[dict]) -> str:
    """The summary (mean ± std over seeds) as an aligned text table, one line per
    (table, setting, direction)."""
    summary = summarize(rows)
    head = f"{'table':<9} {'setting':<22} {'direction':<9} {'frame-mAP (%)':>15} {'seeds':>5}"
    lines = [head, "-" * len(head)]
    for s in summary:
        lines.append(f"{s['table']:<9} {s['setting']:<22} {s['direction']:<9} "
                     f"{_fmt_mean_std(s['mean'], s['std']):>15} {s['n']:>5}")
    return "\n".join(lines)


def format_checks(checks: list[dict]) -> str:
    """The target checks, one line each, with the numbers they compare."""
    if not checks:
        return "target checks: not computable (need baseline_scel, trbl_ncbl and oracle)"
    lines = ["target checks (means over seeds; reported, not tuned to):"]
    for c in checks:
        ratio = c["trbl_ncbl_over_oracle"]
        lines += [
            f"  {c['direction']}: oracle - baseline_scel = {c['oracle_minus_baseline']:.1f} "
            f">= {CHECK_ORACLE_GAP:g}: {c['baseline_15_below_oracle']}",
            f"  {c['direction']}: trbl_ncbl / oracle = "
            f"{'n/a' if ratio is None else f'{ratio:.2f}'} >= {CHECK_ORACLE_RATIO:g}: "
            f"{c['trbl_ncbl_90pct_of_oracle']}",
            f"  {c['direction']}: trbl_ncbl - baseline_scel = {c['trbl_ncbl_minus_baseline']:.1f} "
            f">= {CHECK_WEAK_GAIN:g}: {c['trbl_ncbl_10_above_baseline']}",
        ]
        for name in PSEUDO_ROWS:
            if c.get(f"{name}_over_oracle") is not None:
                lines.append(f"  {c['direction']}: {name} / oracle = "
                             f"{c[f'{name}_over_oracle']:.2f} (a second round, not in the paper)")
    return "\n".join(lines)
