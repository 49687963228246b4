"""The command line: every subcommand has --help; bad input ends with one clear line, exit 2."""

import argparse
import json
import subprocess
import sys

import pytest

from weaktube.cli import build_parser, main

SUBCOMMANDS = [["synth"], ["data", "check"], ["data", "convert"], ["data", "frames"], ["train"],
               ["detect"],
               ["evaluate"], ["pseudo-label"], ["export"], ["demo"], ["bench", "ablation"]]


def _leaf_commands(parser, prefix=()):
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        return [list(prefix)]
    return [c for name, p in subs[0].choices.items() for c in _leaf_commands(p, (*prefix, name))]


def test_every_subcommand_is_listed():
    assert sorted(_leaf_commands(build_parser())) == sorted(SUBCOMMANDS)


@pytest.mark.parametrize("cmd", SUBCOMMANDS)
def test_help(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        main([*cmd, "--help"])
    assert e.value.code == 0
    assert "usage: weaktube" in capsys.readouterr().out


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "weaktube.cli", "--help"], capture_output=True,
                         text=True, check=True)
    assert "synth" in out.stdout and "evaluate" in out.stdout


def _write(path, obj):
    path.write_text(json.dumps(obj))
    return str(path)


GOOD = {"classes": ["a"], "videos": [{"name": "v1", "num_frames": 5, "width": 40, "height": 30,
                                      "fps": 10, "split": "test",
                                      "tubes": [{"label": 0, "start_frame": 1,
                                                 "boxes": [[1, 1, 10, 10], [2, 2, 11, 11]]}],
                                      "segments": []}]}


def test_data_check_ok_and_errors(tmp_path, capsys):
    assert main(["data", "check", _write(tmp_path / "ok.json", GOOD)]) == 0
    assert "valid" in capsys.readouterr().out
    bad = json.loads(json.dumps(GOOD))
    bad["videos"][0]["tubes"][0]["boxes"][1] = [2, 2, 50, 11]  # outside the 40 px frame
    assert main(["data", "check", _write(tmp_path / "bad.json", bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.json" in err[0] and "video 'v1'" in err[0]
    assert "frame 2" in err[0] and "outside" in err[0]
    # missing video under --videos
    assert main(["data", "check", str(tmp_path / "ok.json"), "--videos", str(tmp_path)]) == 2
    assert "video 'v1'" in capsys.readouterr().err
    # empty split
    assert main(["data", "check", str(tmp_path / "ok.json"), "--split", "train"]) == 2
    assert "split 'train' has no videos" in capsys.readouterr().err


def test_evaluate_json_last_line(tmp_path, capsys):
    gt = _write(tmp_path / "gt.json", GOOD)
    dets = _write(tmp_path / "d.json", {"format": "weaktube/detections@1", "detections": [
        {"video": "v1", "frame": 1, "label": 0, "score": 0.9, "box": [1, 1, 10, 10]},
        {"video": "v1", "frame": 2, "label": 0, "score": 0.8, "box": [2, 2, 11, 11]},
        {"video": "v1", "frame": 3, "label": 0, "score": 0.7, "box": [2, 2, 11, 11]}]})
    assert main(["evaluate", "--gt", gt, "--detections", dets, "--json",
                 "--pr-curves", str(tmp_path / "pr")]) == 0
    assert (tmp_path / "pr" / "pr_frame_AP_0.5.png").stat().st_size > 1000
    last = capsys.readouterr().out.strip().splitlines()[-1]
    # 3 detections, 2 ground-truth boxes: TP, TP, FP -> raw PR area = 100 %
    assert json.loads(last) == {"metrics": {"frame_mAP@0.5": 100.0}}


def test_evaluate_refuses_predictions_of_another_class_list(tmp_path, capsys):
    gt = _write(tmp_path / "gt.json", {**GOOD, "classes": ["a", "b"]})
    rows = [{"video": "v1", "frame": 1, "label": 0, "score": 0.9, "box": [1, 1, 10, 10]}]
    for classes, message in ((["b", "a"], "label 0 is 'b' here but 'a'"),
                             (["a"], "1 classes here, 2 in the ground truth")):
        dets = _write(tmp_path / "d.json", {"format": "weaktube/detections@1",
                                            "classes": classes, "detections": rows})
        assert main(["evaluate", "--gt", gt, "--detections", dets]) == 2
        err = capsys.readouterr().err
        assert "d.json" in err and message in err and "classes" in err
    same = _write(tmp_path / "same.json", {"format": "weaktube/detections@1",
                                           "classes": ["a", "b"], "detections": rows})
    assert main(["evaluate", "--gt", gt, "--detections", same]) == 0


def test_missing_checkpoint(tmp_path, capsys):
    assert main(["detect", "--checkpoint", str(tmp_path / "x.pt"), "--video", "v.mp4",
                 "--out", str(tmp_path / "d.json")]) == 2
    assert "x.pt" in capsys.readouterr().err


def test_render_needs_one_video(tmp_path):
    with pytest.raises(SystemExit, match="--render needs --video"):
        main(["detect", "--checkpoint", str(tmp_path / "x.pt"), "--annotations", "a.json",
              "--videos", "v", "--render", str(tmp_path / "r.mp4"),
              "--out", str(tmp_path / "d.json")])
    assert not (tmp_path / "r.mp4").exists()
    for extra, message in ((["--render", "r.avi"], "expected an .mp4 path"),
                           (["--render", "r.mp4", "--render-tubes", "0"], "expected 1 or more"),
                           (["--keyframe-stride", "0"], "--keyframe-stride 0: expected 1"),
                           (["--batch-size", "-1"], "--batch-size -1: expected 1"),
                           (["--fps", "0"], "--fps 0.0: expected a positive"),
                           (["--keyframe-stride", "4", "--no-fill-gaps"], "gap filling")):
        with pytest.raises(SystemExit, match=message):
            main(["detect", "--checkpoint", str(tmp_path / "x.pt"), "--video", "v.mp4",
                  *extra, "--out", str(tmp_path / "d.json")])


def test_bench_ablation_threads_reach_the_runs(monkeypatch, tmp_path, capsys):
    """`--threads N` becomes the `train.threads` override of every run of the suite."""
    import weaktube.experiments.ablation as ab

    seen = {}

    def fake_run_ablation(out_dir, preset, seeds, quick, **kw):
        seen.update(kw, seeds=seeds, quick=quick)
        return ab.AblationResult([], [], [], {})

    monkeypatch.setattr(ab, "run_ablation", fake_run_ablation)
    assert main(["bench", "ablation", "--seed", "1", "--threads", "1",
                 "--out", str(tmp_path)]) == 0
    assert seen["overrides"] == {"train": {"threads": 1}} and seen["seeds"] == [1]
    assert main(["bench", "ablation", "--quick", "--out", str(tmp_path)]) == 0
    assert seen["overrides"] is None and seen["seeds"] == [0] and seen["quick"]
    # --set: a variant of the whole suite (any config key), merged with --threads
    assert main(["bench", "ablation", "--set", "data.augment.hue=0.5", "--set",
                 "train.ema_decay=0.998", "--threads", "1", "--out", str(tmp_path)]) == 0
    assert seen["overrides"] == {"data": {"augment": {"hue": 0.5}},
                                 "train": {"ema_decay": 0.998, "threads": 1}}
    assert seen["budgets"] == abl_budgets(False)
    # --budget: one training budget of the suite changed, the other kept
    assert main(["bench", "ablation", "--budget", "target.epochs=8", "--quick",
                 "--out", str(tmp_path)]) == 0
    assert seen["budgets"]["target"] == {**abl_budgets(True)["target"], "epochs": 8}
    assert seen["budgets"]["source"] == abl_budgets(True)["source"]
    capsys.readouterr()
    assert main(["bench", "ablation", "--budget", "target.seed=3", "--out", str(tmp_path)]) == 2
    assert "target.seed" in capsys.readouterr().err


def abl_budgets(quick: bool) -> dict:
    from weaktube.experiments.ablation import ABLATION_BUDGETS
    return ABLATION_BUDGETS["quick" if quick else "full"]


def test_synth_set_overrides_preset_fields(tmp_path, capsys):
    out = tmp_path / "s"
    args = ["synth", "--preset", "demo", "--seed", "3", "--out", str(out),
            "--set", "num_train=1", "--set", "num_test=1", "--set", "num_frames=[40,44]",
            "--set", "instance_frames=[24,30]"]
    assert main(args) == 0
    meta = json.loads((out / "synth.json").read_text())
    assert meta["config"]["num_train"] == 1 and meta["config"]["num_frames"] == [40, 44]
    src = json.loads((out / "source.json").read_text())
    assert [v["split"] for v in src["videos"]] == ["train", "test"]
    assert all(40 <= v["num_frames"] <= 44 for v in src["videos"])
    capsys.readouterr()
    # an unknown field and an invalid value: one clear line, exit 2, nothing written
    assert main(["synth", "--out", str(tmp_path / "u"), "--set", "num_trains=3"]) == 2
    assert "num_trains" in capsys.readouterr().err
    assert main(["synth", "--out", str(tmp_path / "n"), "--set", "num_train=-1"]) == 2
    assert "num_train" in capsys.readouterr().err
    assert not (tmp_path / "u").exists() and not (tmp_path / "n").exists()


def test_train_flags_become_config_keys(monkeypatch, tmp_path, capsys):
    """`weaktube train --stage target --init CKPT ...`: each flag sets its config key, next to
    `--set` (here the source replay of docs/WEAK.md)."""
    import weaktube.train.launch as launch

    seen = {}

    def fake_run_training(cfg, out):
        seen.update(cfg=cfg, out=out)
        return {"history": [], "train_seconds": 0.0}

    monkeypatch.setattr(launch, "run_training", fake_run_training)
    assert main(["train", "--stage", "target", "--init", "src/last.pt", "--annotations", "w.json",
                 "--videos", "vids", "--seed", "3", "--set", "weak.replay=s.json",
                 "--set", "weak.replay_fraction=0.25", "--out", str(tmp_path / "t")]) == 0
    cfg = seen["cfg"]
    assert (cfg.train.stage, cfg.train.init, cfg.train.seed) == ("target", "src/last.pt", 3)
    assert (cfg.data.annotations, cfg.data.videos) == ("w.json", "vids")
    assert (cfg.weak.replay, cfg.weak.replay_fraction) == ("s.json", 0.25)
    assert json.loads(capsys.readouterr().out)["train_seconds"] == 0.0
    # a share outside [0, 1) is refused by the config: one line, exit 2
    assert main(["train", "--set", "weak.replay_fraction=1.5", "--out", str(tmp_path / "u")]) == 2
    assert "weak.replay_fraction=1.5: expected a share" in capsys.readouterr().err


def test_data_frames_and_check_on_the_folders(tmp_path, capsys):
    """Frames of a real video written as a folder (missing videos named before anything is
    written), then ``data check --videos`` on the folder root; a frame count off by one named."""
    import cv2
    import numpy as np

    videos = tmp_path / "videos"
    videos.mkdir()
    writer = cv2.VideoWriter(str(videos / "v1.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10,
                             (40, 30))
    for i in range(5):
        writer.write(np.full((30, 40, 3), 40 * i, np.uint8))
    writer.release()
    ann = _write(tmp_path / "ok.json", GOOD)
    two = json.loads(json.dumps(GOOD))
    two["videos"].append({**two["videos"][0], "name": "v2"})
    assert main(["data", "frames", _write(tmp_path / "two.json", two), "--videos", str(videos),
                 "--out", str(tmp_path / "f")]) == 2
    assert "video 'v2'" in capsys.readouterr().err and not (tmp_path / "f").exists()
    assert main(["data", "frames", ann, "--videos", str(videos), "--out",
                 str(tmp_path / "f")]) == 0
    assert "wrote 5 frames of 1 videos" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "f" / "v1").iterdir()) == [
        f"{i:05d}.jpg" for i in range(1, 6)]
    assert main(["data", "check", ann, "--videos", str(tmp_path / "f")]) == 0
    capsys.readouterr()
    (tmp_path / "f" / "v1" / "00005.jpg").unlink()
    assert main(["data", "check", ann, "--videos", str(tmp_path / "f")]) == 2
    err = capsys.readouterr().err
    assert "ok.json" in err and "video 'v1'" in err and "num_frames" in err


def test_stride_and_quality_out_of_range_are_refused(tmp_path):
    gt = _write(tmp_path / "gt.json", GOOD)
    dets = _write(tmp_path / "d.json", {"format": "weaktube/detections@1", "detections": []})
    with pytest.raises(SystemExit, match="--keyframe-stride must be >= 1, got 0"):
        main(["evaluate", "--gt", gt, "--detections", dets, "--keyframe-stride", "0"])
    with pytest.raises(SystemExit, match="--quality must be 1..100, got 0"):
        main(["data", "frames", gt, "--videos", str(tmp_path), "--out", str(tmp_path / "f"),
              "--quality", "0"])
