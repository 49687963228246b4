"""Judge a training-recipe change on held-out synthetic data, in and across domains.

Trains the ``make demo`` recipe (plus ``--set`` overrides) on ``DATA/source.json`` and scores
the result twice: on the source test split (frame-mAP@0.5, the demo's number, and the video and
temporal mAP@0.5 of the linked tubes and segments) and on the
*target* domain's test split class-agnostically (its classes were never seen: the share of
people found there measures how well localisation survives the change of appearance, which is
what the weak stage of the B->A / A->B transfer starts from). With ``train.ema_decay`` > 0 both
the trained weights and their average are scored.

``--domain B`` swaps the files: trains on ``target.json`` (domain B) and scores the class-agnostic
localisation on ``source.json``'s test split (domain A), the start of the ``B->A`` transfer.

Meant for a data seed other than the one the results are reported on (a validation set)::

    weaktube synth --preset demo --seed 1 --out /tmp/val1
    python benchmarks/recipe_check.py --data /tmp/val1 --out /tmp/rc/hue \\
        --set data.augment.hue=0.5 --set train.ema_decay=0.998 --threads 1

``--set train.procs=P`` trains in P CPU processes (DDP over gloo, ``weaktube.train.launch``);
``--threads`` is then per process.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from weaktube.config import apply_overrides, parse_set
from weaktube.data.dataset import FrameStore
from weaktube.demo import demo_config
from weaktube.fileio import atomic_write_json
from weaktube.model import DetectorConfig, build_detector
from weaktube.structures import AnnotationSet
from weaktube.train.checkpoint import load_checkpoint
from weaktube.train.engine import evaluate
from weaktube.train.launch import run_training

sys.path.insert(0, str(Path(__file__).resolve().parent))
from frame_diagnosis import diagnose  # noqa: E402

DOMAIN_FILES = {"A": ("source.json", "target.json"), "B": ("target.json", "source.json")}


def score(model, cfg, data: Path, domain: str = "A") -> dict:
    """frame-mAP on the training domain's test split; class-agnostic diagnosis on the other
    domain's test split. Keys keep the names ``source_*`` (trained-on) and ``target_*`` (other)."""
    own, other = DOMAIN_FILES[domain]
    store = FrameStore(data / "videos")
    out = {}
    src = AnnotationSet.load(data / own).split("test")
    report, dets, _, _ = evaluate(model, src, store, cfg, torch.device("cpu"), progress=False)
    for key in ("frame_mAP@0.5", "video_mAP@0.5", "temporal_mAP@0.5"):  # tubes, segments too
        out[f"source_{key}"] = report.metrics[key]
    d = diagnose(src, dets)
    out["source_class_accuracy_on_localised"] = d["class_accuracy_on_localised"]
    tgt = AnnotationSet.load(data / other).split("test")
    _, dets, _, _ = evaluate(model, tgt, store, cfg, torch.device("cpu"), progress=False)
    d = diagnose(tgt, dets)
    out["target_class_agnostic_AP@0.5"] = d["class_agnostic_frame_AP@0.5"]
    out["target_gt_boxes_localised"] = d["gt_boxes_localised"]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, required=True, help="a `weaktube synth` output folder")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--seed", type=int, default=0, help="training seed")
    p.add_argument("--domain", choices=sorted(DOMAIN_FILES), default="A",
                   help="train on A (source.json, default) or B (target.json)")
    a = p.parse_args()
    cfg = demo_config(a.data, "demo", "cpu", a.seed)
    cfg = apply_overrides(cfg, {"train": {"threads": a.threads}, "data": {
        "annotations": str(a.data / DOMAIN_FILES[a.domain][0])}})
    if a.set:
        cfg = apply_overrides(cfg, parse_set(a.set))
    t0 = time.perf_counter()
    result = run_training(cfg, a.out, progress=False, evaluate_at_end=False)  # train.procs aware
    ckpt = load_checkpoint(a.out / "last.pt")
    model = build_detector(DetectorConfig.from_dict(ckpt["detector"]))
    summary = {"domain": a.domain, "overrides": a.set, "train_seconds": result["train_seconds"],
               "clips_per_s": result["clips_per_s"]}
    model.load_state_dict(ckpt["model"])
    summary["trained"] = score(model, cfg, a.data, a.domain)
    if ckpt.get("ema"):
        model.load_state_dict(ckpt["ema"]["state"])
        summary["ema"] = score(model, cfg, a.data, a.domain)
    summary["total_seconds"] = round(time.perf_counter() - t0, 1)
    atomic_write_json(a.out / "recipe_check.json", summary, indent=2)
    print(summary)


if __name__ == "__main__":
    main()
