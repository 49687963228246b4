"""The ``weaktube`` command line. Each subcommand parses its arguments and calls library
functions; nothing below this module reads ``argparse`` namespaces."""

from __future__ import annotations

import os

# Before torch loads its OpenMP runtime: idle OpenMP threads sleep instead of spinning. On a
# small CPU shared with other work (the tracker's threads, a data loader, another job) spinning
# threads stall each other; measured on 2 cores with one other busy process, a demo training
# step took 4.9 s spinning and 0.36 s passive (docs/RESULTS.md). Users may override it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from weaktube.config import ConfigError
from weaktube.data.readers import ReaderOptionError
from weaktube.data.video import VideoError
from weaktube.infer.export import ExportError
from weaktube.structures import AnnotationError
from weaktube.train.checkpoint import CheckpointError

EXIT_BAD_INPUT = 2


def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="YAML file of config overrides (see configs/)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config key, e.g. train.lr=0.01 (repeatable)")


def cmd_synth(a: argparse.Namespace) -> int:
    from weaktube.config import apply_overrides, parse_set
    from weaktube.data.synthetic import PRESETS, generate

    cfg = apply_overrides(PRESETS[a.preset](), parse_set(a.set), where="synth")
    out = generate(cfg, seed=a.seed, out_dir=Path(a.out), progress=True)
    print(f"wrote the {a.preset!r} synthetic benchmark (seed {a.seed}) to {a.out}")
    for k, v in vars(out).items():
        print(f"  {k}: {v}")
    return 0


def cmd_data_check(a: argparse.Namespace) -> int:
    from weaktube.data.video import VideoError, check_record_geometry, find_video, probe_video
    from weaktube.structures import AnnotationSet

    ann = AnnotationSet.load(a.file)
    stats = ann.statistics()
    if a.split and not ann.split(a.split).videos:
        raise AnnotationError(f"split {a.split!r} has no videos", file=a.file, field="split")
    if a.videos:
        checked = 0
        for v in ann.videos:
            try:
                path = find_video(a.videos, v.name, v.path)
                info = probe_video(path)
            except VideoError as e:
                raise AnnotationError(str(e), file=a.file, video=v.name, field="path") from None
            check_record_geometry(v, path, info.num_frames, (info.width, info.height), a.file)
            checked += 1
        stats["videos_decoded_and_checked"] = checked
    print(json.dumps(stats, indent=2))
    print(f"OK: {a.file} is a valid weaktube/annotations@1 file")
    return 0


def cmd_data_convert(a: argparse.Namespace) -> int:
    from weaktube.config import parse_set
    from weaktube.data.readers import convert, rescale_to_video_sizes
    from weaktube.data.video import VideoError, find_video, probe_video

    ann = convert(Path(a.src), a.format, **parse_set(a.opt))
    if a.videos:
        sizes, missing = {}, []
        for v in ann.videos:
            try:
                info = probe_video(find_video(a.videos, v.name, v.path), count_frames=False)
            except VideoError:
                missing.append(v.name)
                continue
            sizes[v.name] = (info.width, info.height)
        if a.only_present:
            ann = ann.subset(sizes)
        elif missing:
            print(f"note: {len(missing)} of {len(ann.videos)} videos not found under "
                  f"{a.videos} (first: {missing[0]}); their boxes keep the annotation's size")
        ann = rescale_to_video_sizes(ann, sizes)
    ann.save(a.out)
    s = ann.statistics()
    print(f"wrote {a.out}: {s['videos']} videos, {s['classes']} classes, splits "
          f"{ {k: v['videos'] for k, v in s['splits'].items()} }")
    return 0


def cmd_data_frames(a: argparse.Namespace) -> int:
    from weaktube.data.frames import extract_frames
    from weaktube.data.video import find_video
    from weaktube.structures import AnnotationSet

    if not 1 <= a.quality <= 100:
        raise SystemExit(f"data frames: --quality must be 1..100, got {a.quality}")

    ann = AnnotationSet.load(a.file)
    if a.split:
        ann = ann.split(a.split)
        if not ann.videos:
            raise AnnotationError(f"split {a.split!r} has no videos", file=a.file,
                                  field="split")
    for v in ann.videos:  # every video is found before anything is written
        find_video(a.videos, v.name, v.path)
    t0 = time.perf_counter()
    stats = extract_frames(ann, a.videos, a.out, ext=a.ext, quality=a.quality)
    print(f"wrote {stats.frames} frames of {stats.videos} videos to {a.out} "
          f"({stats.skipped} already there) in {time.perf_counter() - t0:.1f} s; train and "
          f"detect with --videos {a.out}")
    return 0


def cmd_train(a: argparse.Namespace) -> int:
    from weaktube.config import load_config
    from weaktube.train.launch import run_training

    sets = list(a.set)
    for key, val in (("data.annotations", a.annotations), ("data.videos", a.videos),
                     ("train.device", a.device), ("train.seed", a.seed),
                     ("train.procs", a.procs),
                     ("train.stage", a.stage), ("train.init", a.init)):
        if val is not None:
            sets.append(f"{key}={val}")
    cfg = load_config(a.config, sets)
    result = run_training(cfg, a.out)
    print(json.dumps({k: v for k, v in result.items() if k != "history"}, indent=2))
    return 0


def cmd_detect(a: argparse.Namespace) -> int:
    import torch

    from weaktube.data.dataset import FrameStore
    from weaktube.data.video import iter_video
    from weaktube.infer.detect import detect_frames, detect_videos, postprocess_from_checkpoint
    from weaktube.structures import AnnotationSet
    from weaktube.train.checkpoint import inference_model, load_checkpoint
    from weaktube.train.engine import resolve_device

    if a.render and not a.video:
        raise SystemExit("detect: --render needs --video (one video file or frame folder)")
    if a.render and Path(a.render).suffix.lower() != ".mp4":
        raise SystemExit(f"detect: --render {a.render!r}: expected an .mp4 path")
    if a.render_tubes < 1:
        raise SystemExit(f"detect: --render-tubes {a.render_tubes}: expected 1 or more")
    for flag, value in (("--keyframe-stride", a.keyframe_stride), ("--batch-size", a.batch_size)):
        if value < 1:
            raise SystemExit(f"detect: {flag} {value}: expected 1 or more")
    if a.fps <= 0:
        raise SystemExit(f"detect: --fps {a.fps}: expected a positive frame rate")
    if a.no_fill_gaps and a.keyframe_stride > 1:
        raise SystemExit(f"detect: --no-fill-gaps with --keyframe-stride {a.keyframe_stride}: "
                         "every frame between two keyframes would end a tube; link with gap "
                         "filling (the default)")
    device = resolve_device(a.device)
    ckpt = load_checkpoint(a.checkpoint, map_location=device)
    model = inference_model(ckpt)
    dcfg = model.cfg
    frame_stride = ckpt["config"]["data"]["frame_stride"]
    post = postprocess_from_checkpoint(ckpt)
    if a.class_window is not None:
        post = dataclasses.replace(post, class_window_s=a.class_window)
    if a.class_vote is not None:
        post = dataclasses.replace(post, class_vote_iou=a.class_vote)
    kw = dict(clip_len=dcfg.clip_len, frame_stride=frame_stride, img_size=dcfg.img_size,
              keyframe_stride=a.keyframe_stride, batch_size=a.batch_size, postprocess=post,
              device=device)
    with torch.inference_mode():
        if a.video:  # decoded as a stream: only network-size frames are kept
            video_fps = read_fps(a.video, a.fps)
            dets = detect_frames(model, iter_video(a.video), Path(a.video).stem, fps=video_fps,
                                 **kw)
        else:
            if not (a.annotations and a.videos):
                raise SystemExit("detect: give --video FILE, or --annotations and --videos")
            ann = AnnotationSet.load(a.annotations)
            ann = ann.split(a.split) if a.split else ann
            dets = detect_videos(model, ann.videos, FrameStore(a.videos), **kw)
    classes = list(ckpt["classes"])  # the label space, recorded in every prediction file
    dets = dataclasses.replace(dets, classes=classes)
    dets.save(a.out)
    from weaktube.infer.link import LinkConfig
    from weaktube.infer.pipeline import tubes_and_segments

    if a.video:
        fps = video_fps
    else:
        fps = {v.name: v.fps for v in ann.videos}
    # a tube survives 3 missed keyframes (max_gap counts keyframes: 4n - 1 frames at stride n)
    link = LinkConfig(method=a.link, fill_gaps=not a.no_fill_gaps)
    tubes, segments = tubes_and_segments(dets, dcfg.num_classes, fps, link,
                                         keyframe_stride=a.keyframe_stride)
    out = Path(a.out)
    tubes_path = a.tubes or out.with_name(out.stem + ".tubes.json")
    segments_path = a.segments or out.with_name(out.stem + ".segments.json")
    dataclasses.replace(tubes, classes=classes).save(tubes_path)
    dataclasses.replace(segments, classes=classes).save(segments_path)
    print(f"wrote {len(dets)} detections to {a.out}, {len(tubes)} tubes to {tubes_path}, "
          f"{len(segments)} segments to {segments_path}")
    if a.render:
        from weaktube.viz.render import render_tubes

        drawn = render_tubes(a.render, iter_video(a.video), Path(a.video).stem, tubes,
                             ckpt.get("classes", []), fps=video_fps, min_score=a.render_min_score,
                             max_tubes=a.render_tubes)
        print(f"wrote {a.render} ({drawn} tubes drawn)")
    return 0


def read_fps(video: str, default: float) -> float:
    from weaktube.data.video import probe_video

    return probe_video(video, count_frames=False).fps or default  # None: frame folders


def cmd_evaluate(a: argparse.Namespace) -> int:
    from weaktube.evaluate import evaluate_all, format_per_class_table, per_class_rows

    if a.keyframe_stride < 1:
        raise SystemExit(f"evaluate: --keyframe-stride must be >= 1, got {a.keyframe_stride}")
    from weaktube.structures import AnnotationSet, Detections

    gt = AnnotationSet.load(a.gt)
    gt = gt.split(a.split) if a.split else gt
    if not gt.videos:
        raise AnnotationError(f"split {a.split!r} has no videos", file=a.gt, field="split")
    from weaktube.evaluate.matching import check_classes

    dets = Detections.load(a.detections) if a.detections else None
    if dets is not None:
        check_classes(dets.classes, gt.classes, a.detections)
    kwargs = {}
    if a.tubes:
        from weaktube.structures import TubePredictions
        kwargs["tubes"] = TubePredictions.load(a.tubes)
        check_classes(kwargs["tubes"].classes, gt.classes, a.tubes)
    if a.segments:
        from weaktube.structures import SegmentPredictions
        kwargs["segments"] = SegmentPredictions.load(a.segments)
        check_classes(kwargs["segments"].classes, gt.classes, a.segments)
    report = evaluate_all(gt, detections=dets, protocol=a.protocol,
                          keyframe_stride=a.keyframe_stride, **kwargs)
    print(format_per_class_table(per_class_rows(report)))
    for key, val in report.metrics.items():
        print(f"{key:<28} {val:6.2f}")
    for key, val in report.counts.items():
        if "ignored" in key and val:
            print(f"note: {val} predictions ignored ({key})")
    if a.out:
        report.save(a.out)
    if a.pr_curves:
        from weaktube.evaluate import save_pr_curves

        folder = Path(a.pr_curves)
        curves = {"frame_AP@0.5": report.frame, "video_AP@0.5": report.video.get(0.5),
                  "temporal_AP@0.5": report.temporal.get(0.5)}
        for name, result in curves.items():
            if result is not None:
                save_pr_curves(result, folder / f"pr_{name.replace('@', '_')}.png", title=name)
    if a.json:
        print(json.dumps({"metrics": report.metrics}))
    return 0


def cmd_pseudo_label(a: argparse.Namespace) -> int:
    from weaktube.infer.pseudo import PseudoConfig, pseudo_tubes, tube_agreement
    from weaktube.structures import AnnotationSet, Detections

    ann = AnnotationSet.load(a.annotations)
    if not ann.split(a.split).videos:
        raise AnnotationError(f"split {a.split!r} has no videos", file=a.annotations,
                              field="split")
    if a.tighten and not a.videos:
        raise SystemExit("pseudo-label: --tighten needs --videos ROOT")
    cfg = PseudoConfig(split=a.split, smooth=a.smooth, min_score=a.min_score,
                       max_gap=a.max_gap, iou_weight=a.iou_weight, tighten=a.tighten,
                       tighten_margin=a.tighten_margin)
    store = None
    if a.videos:
        from weaktube.data.dataset import FrameStore
        store = FrameStore(a.videos)
    out, report = pseudo_tubes(ann, Detections.load(a.detections), cfg, store)
    out.save(a.out)
    score = "-" if report.mean_path_score is None else f"{report.mean_path_score:.3f}"
    print(f"{report.videos_out} of {report.videos_in} {a.split} videos labelled, "
          f"{report.tubes} pseudo-tubes (mean path score {score}) -> {a.out}")
    for name, why in report.dropped.items():
        print(f"left out {name}: {why}")
    summary = {"videos_in": report.videos_in, "videos_out": report.videos_out,
               "tubes": report.tubes, "mean_path_score": report.mean_path_score}
    if a.gt:
        agreement = tube_agreement(out, AnnotationSet.load(a.gt), a.split)
        print("against " + a.gt + ": " + ", ".join(
            f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
            for k, v in agreement.items()))
        summary["agreement"] = agreement
    if a.json:
        print(json.dumps(summary))
    return 0


def cmd_export(a: argparse.Namespace) -> int:
    from weaktube.infer.export import export_checkpoint

    meta = export_checkpoint(a.checkpoint, a.out)
    check = (f"max |saved - eager| = {meta['max_abs_diff']:.2g} on a batch of "
             f"{meta['checked_batch']}" if meta["checked"]
             else "not checked (onnxruntime is not installed)")
    print(f"exported {a.checkpoint} -> {a.out} ({meta['model_format']}; input [B, "
          f"{meta['clip_len']}, {meta['img_size']}, {meta['img_size']}, 3] uint8 RGB; "
          f"{len(meta['classes'])} classes); {check}; metadata -> {a.out}.json")
    return 0


def cmd_demo(a: argparse.Namespace) -> int:
    from weaktube.demo import run_demo

    run_demo(Path(a.out), seed=a.seed, preset=a.preset, device=a.device)
    return 0


def cmd_bench_ablation(a: argparse.Namespace) -> int:
    from weaktube.config import parse_set
    from weaktube.experiments.ablation import (
        format_checks,
        format_table,
        json_line,
        resolve_budgets,
        run_ablation,
    )

    seeds = a.seed if a.seed else ([0] if a.quick else [0, 1])
    overrides = parse_set(a.set + ([f"train.threads={a.threads}"] if a.threads else []))
    result = run_ablation(Path(a.out), a.preset, seeds, a.quick, device=a.device,
                          only=a.only or None, progress=True,
                          directions=a.direction or None, overrides=overrides or None,
                          sources=Path(a.sources) if a.sources else None,
                          target_overrides=parse_set(a.target_set) or None,
                          budgets=resolve_budgets(a.quick, parse_set(a.budget)))
    print(format_table(result.rows))
    print(format_checks(result.checks))
    print(f"wall time {result.wall_seconds:.0f} s; results in {Path(a.out) / 'ablation.json'}")
    if a.json:
        print(json_line(result.rows))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="weaktube", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("synth", help="render the built-in synthetic benchmark")
    s.add_argument("--preset", choices=["demo", "bench"], default="demo")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", required=True, help="output folder")
    s.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one SynthConfig field of the preset, e.g. num_train=400 or "
                        "source.prefix=src (repeatable; docs/SYNTHETIC.md)")
    s.set_defaults(func=cmd_synth)

    d = sub.add_parser("data", help="annotation files: check, convert; videos -> frame folders")
    dsub = d.add_subparsers(dest="data_command", required=True)
    c = dsub.add_parser("check", help="validate a weaktube/annotations@1 file, print statistics")
    c.add_argument("file")
    c.add_argument("--videos", help="video root: also decode every video and check it")
    c.add_argument("--split", help="fail when this split has no videos")
    c.set_defaults(func=cmd_data_check)
    v = dsub.add_parser("convert", help="convert a dataset's annotations to weaktube's format")
    v.add_argument("src")
    v.add_argument("--format", help="source format (auto-detected when unambiguous)")
    v.add_argument("--opt", action="append", default=[], metavar="KEY=VALUE",
                   help="reader option, e.g. testlist=testlist01.txt or fps=30 (repeatable; "
                        "see docs/DATASETS.md)")
    v.add_argument("--videos", help="video root: rescale boxes to each video's real size")
    v.add_argument("--only-present", action="store_true",
                   help="with --videos: keep only the videos found there")
    v.add_argument("--out", required=True)
    v.set_defaults(func=cmd_data_convert)
    f = dsub.add_parser("frames", help="decode every video once into a frame folder "
                                       "(OUT/<name>/00001.jpg, ...): clips then read only "
                                       "their own frames (datasets larger than memory)")
    f.add_argument("file", help="annotation file (weaktube/annotations@1)")
    f.add_argument("--videos", required=True, help="video root")
    f.add_argument("--out", required=True, help="frame root (use it as --videos afterwards)")
    f.add_argument("--split", help="only this split's videos")
    f.add_argument("--ext", choices=["jpg", "png"], default="jpg",
                   help="jpg (quality --quality; pixel values change by a few levels) or png "
                        "(lossless, ~4.6x the space of jpg)")
    f.add_argument("--quality", type=int, default=95, help="JPEG quality 1..100")
    f.set_defaults(func=cmd_data_frames)

    t = sub.add_parser("train", help="train a detector (source stage: boxes; target stage: "
                                     "temporal labels, from a source checkpoint)")
    _add_config_args(t)
    t.add_argument("--annotations", help="annotation file (data.annotations)")
    t.add_argument("--videos", help="video root (data.videos)")
    t.add_argument("--stage", choices=["source", "target"])
    t.add_argument("--init", help="checkpoint to start from (train.init): the source model "
                                  "for --stage target")
    t.add_argument("--device", choices=["auto", "cpu", "cuda"])
    t.add_argument("--seed", type=int)
    t.add_argument("--procs", type=int,
                   help="CPU processes training together, DDP over gloo (train.procs); "
                        "GPUs: torchrun")
    t.add_argument("--out", required=True, help="run folder (resumes from its last.pt)")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("detect", help="run a checkpoint over videos -> detections@1 JSON")
    e.add_argument("--checkpoint", required=True)
    e.add_argument("--video", help="one video file or frame folder")
    e.add_argument("--annotations", help="annotation file listing the videos")
    e.add_argument("--videos", help="video root")
    e.add_argument("--split", default="test", help="split of --annotations (default test)")
    e.add_argument("--keyframe-stride", type=int, default=1)
    e.add_argument("--batch-size", type=int, default=32)
    e.add_argument("--class-window", type=float, default=None, metavar="SECONDS",
                   help="pool each box's class probabilities over the overlapping boxes of "
                        "keyframes within +- SECONDS (default: the run's "
                        "eval.postprocess.class_window_s, 0.5 for runs that predate it; "
                        "0: each clip alone, as runs before pooling were scored)")
    e.add_argument("--class-vote", type=float, default=None, metavar="IOU",
                   help="pool each box's class probabilities over the boxes of its keyframe "
                        "that overlap it by IOU, weighted by objectness (default: the run's "
                        "eval.postprocess.class_vote_iou, 0.7 for runs that predate it; "
                        "0: each anchor's own)")
    e.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    e.add_argument("--link", choices=["greedy", "viterbi"], default="greedy",
                   help="tube linking algorithm (docs/LINKING.md)")
    e.add_argument("--no-fill-gaps", action="store_true",
                   help="split tubes at missed frames instead of interpolating")
    e.add_argument("--fps", type=float, default=25.0, help="fps of a frame folder (--video)")
    e.add_argument("--tubes", help="tubes@1 output (default: next to --out)")
    e.add_argument("--segments", help="segments@1 output (default: next to --out)")
    e.add_argument("--out", required=True, help="detections@1 output")
    e.add_argument("--render", metavar="OUT.mp4",
                   help="with --video: also write the video with its action tubes drawn")
    e.add_argument("--render-tubes", type=int, default=5, metavar="K",
                   help="--render draws the K best tubes (default 5)")
    e.add_argument("--render-min-score", type=float, default=0.1, metavar="S",
                   help="--render skips tubes scoring below S (default 0.1)")
    e.set_defaults(func=cmd_detect)

    v = sub.add_parser("evaluate", help="frame/video/temporal mAP against ground truth")
    v.add_argument("--gt", required=True, help="annotation file")
    v.add_argument("--split", default="test", help="ground-truth split scored (default test)")
    v.add_argument("--detections")
    v.add_argument("--tubes")
    v.add_argument("--segments")
    v.add_argument("--protocol", choices=["act", "yowo"], default="act")
    v.add_argument("--keyframe-stride", type=int, default=1,
                   help="the --keyframe-stride the detections were made with: frame-mAP is "
                        "scored on those keyframes only (every n-th frame and the last)")
    v.add_argument("--out", help="also write the full report (per class, counts) as JSON")
    v.add_argument("--pr-curves", metavar="DIR", help="write per-class PR curves as PNG")
    v.add_argument("--json", action="store_true", help="last stdout line: {\"metrics\": ...}")
    v.set_defaults(func=cmd_evaluate)

    q = sub.add_parser("pseudo-label", help="detections inside the weak segments -> "
                       "pseudo-tubes: a boxed annotation file (a second weak round)")
    q.add_argument("--annotations", required=True, help="weak annotation file (segments)")
    q.add_argument("--detections", required=True, help="detections@1 of a checkpoint on "
                   "--split's videos (weaktube detect --split train)")
    q.add_argument("--out", required=True, help="annotations@1 output with the tubes")
    q.add_argument("--split", default="train", help="split labelled (default train); other "
                   "splits are copied")
    q.add_argument("--smooth", type=int, default=5, help="moving average of the boxes over "
                   "this many frames (default 5; 1: none)")
    q.add_argument("--min-score", type=float, default=0.0, help="leave out a video whose "
                   "segment's path scores lower on average (default 0)")
    q.add_argument("--max-gap", type=int, default=8, help="frames a path may skip (default 8)")
    q.add_argument("--iou-weight", type=float, default=1.0, help="path gain: score + this * "
                   "IoU with the previous box (default 1)")
    q.add_argument("--tighten", action="store_true", help="shrink every box to the foreground "
                   "GrabCut finds in it (needs --videos; helps on the synthetic benchmark, hurts "
                   "on real UCF101-24 clips: docs/WEAK.md)")
    q.add_argument("--tighten-margin", type=float, default=0.1, help="GrabCut's rectangle: the "
                   "box grown by this share of its size per side (default 0.1)")
    q.add_argument("--videos", help="video root (for --tighten)")
    q.add_argument("--gt", help="a file with the true tubes of the same videos: print how well "
                   "the pseudo-tubes match them")
    q.add_argument("--json", action="store_true", help="last stdout line: the counts as JSON")
    q.set_defaults(func=cmd_pseudo_label)

    b = sub.add_parser("bench", help="benchmarks that train (the paper's ablations)")
    bsub = b.add_subparsers(dest="bench_command", required=True)
    ab = bsub.add_parser("ablation", help="Tables 1 and 2 analogue on the synthetic benchmark")
    ab.add_argument("--preset", choices=["demo", "bench"], default="demo")
    ab.add_argument("--seed", type=int, action="append", default=[],
                    help="training seed (repeatable; default 0 and 1, --quick: 0)")
    ab.add_argument("--quick", action="store_true", help="one seed, A->B, a few rows, tiny "
                    "budgets (minutes)")
    ab.add_argument("--only", nargs="+", action="extend", metavar="SETTING",
                    help="run only these settings (repeatable); trbl_ncbl_pseudo and "
                    "trbl_ncbl_pseudo_tight (a pseudo-tube round after trbl_ncbl, without / with "
                    "GrabCut tightening; not in the paper) run only when named")
    ab.add_argument("--direction", action="append", default=[], choices=["A->B", "B->A", "A"],
                    help="run only this direction's rows (repeatable; A = Table 1)")
    ab.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    ab.add_argument("--threads", type=int, default=0, help="torch CPU threads per run (0: "
                    "torch's default); e.g. 1 to run one seed per core in two processes")
    ab.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a key of every run's config, e.g. data.augment.hue=0.5 "
                    "(repeatable; a variant of the suite: give it its own --out)")
    ab.add_argument("--target-set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a key of the target-stage runs only (the weak rows, "
                    "trackers, boxed_<x>_weak; not the source models or oracles), e.g. "
                    "train.ema_decay=0.998, or train.seed=100 (one seed for every --seed's "
                    "target runs); repeatable; with --sources, a paired variant of the target "
                    "stage; weak.* keys go in --set")
    ab.add_argument("--budget", action="append", default=[], metavar="KEY=VALUE",
                    help="change a training budget of the suite: source.<k> (the source "
                    "models, boxed_<x>) or target.<k> (every run that starts from a checkpoint, "
                    "oracle included), k in epochs, clips_per_epoch, lr, warmup_iters, amp, "
                    "batch_size; e.g. target.epochs=8 (repeatable; give the variant its own "
                    "--out)")
    ab.add_argument("--sources", metavar="DIR", help="a finished suite folder: take its "
                    "benchmark and source-stage runs (source models, oracles, boxed_<x>) "
                    "instead of training them, so that a --set weak.* variant is compared on "
                    "the same source models (paired)")
    ab.add_argument("--json", action="store_true", help="last stdout line: {\"rows\": ...}")
    ab.add_argument("--out", default="runs/ablation")
    ab.set_defaults(func=cmd_bench_ablation)

    x = sub.add_parser("export", help="a checkpoint -> a deployable model (torch.export .pt2 "
                       "or ONNX .onnx) with its metadata (docs/EXPORT.md)")
    x.add_argument("--checkpoint", required=True, help="a training run's last.pt")
    x.add_argument("--out", required=True, help="model.pt2 (torch.export) or model.onnx (ONNX; "
                   "needs pip install 'weaktube[export]'); metadata goes to OUT.json")
    x.set_defaults(func=cmd_export)

    m = sub.add_parser("demo", help="synthetic data -> train -> evaluate -> rendered video")
    m.add_argument("--out", default="runs/demo")
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--preset", choices=["demo", "bench"], default="demo")
    m.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    m.set_defaults(func=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (AnnotationError, VideoError, CheckpointError, ConfigError, FileNotFoundError,
            ReaderOptionError, ExportError) as e:
        print(f"weaktube: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
