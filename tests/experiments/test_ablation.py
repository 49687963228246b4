"""The ablation driver: derived Table 1 files, plan and resumption (with a recording stand-in for
``fit``), summary arithmetic, the ``--json`` line, and one real end-to-end run of two rows."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from weaktube.config import ConfigError, config_differences, to_dict
from weaktube.data import synthetic as syn
from weaktube.experiments import ablation as abl
from weaktube.structures import AnnotationSet, Segment, Tube, VideoRecord

# A benchmark small enough to render in about a second: 6 train + 3 test videos per domain.
TINY = dict(num_train=6, num_test=3, num_frames=(36, 44), instance_frames=(14, 20),
            min_idle_frames=4, min_gap_frames=4, two_instance_prob=0.0,
            distractor_actors=(0, 1), objects=(0, 1))
# Microscopic training: one epoch of 32 clips, 64 px, 4-frame clips.
TINY_BUDGETS = {
    "source": {"epochs": 1, "clips_per_epoch": 32, "lr": 0.002, "warmup_iters": 1},
    "target": {"epochs": 1, "clips_per_epoch": 32, "lr": 0.001, "warmup_iters": 1},
}
TINY_OVERRIDES = {"model": {"clip_len": 4, "img_size": 64}, "eval": {"batch_size": 64}}


# ------------------------------------------------------------------------------ hand-built data
def _video(name: str, split: str, label: int | None, boxed: bool = True) -> VideoRecord:
    tubes, segments = [], []
    if label is not None:
        boxes = np.tile(np.array([[10.0, 10.0, 40.0, 60.0]], np.float32), (5, 1))  # [5, 4]
        tubes = [Tube(label, 2, boxes)] if boxed else []
        segments = [Segment(label, 2 / 25, 7 / 25)]
    return VideoRecord(name, 20, 160, 120, 25.0, split, tubes, segments)


def _dataset(n_train: int = 12, n_classes: int = 3) -> AnnotationSet:
    videos = [_video(f"tr_{i:02d}", "train", i % n_classes) for i in range(n_train)]
    videos += [_video(f"te_{i:02d}", "test", i % n_classes) for i in range(3)]
    return AnnotationSet([f"c{k}" for k in range(n_classes)], videos)


# ------------------------------------------------------------------------ boxed subset helpers
@pytest.mark.parametrize("n, pct, expected", [
    (40, 20, 8), (40, 30, 12), (40, 50, 20), (40, 70, 28), (40, 100, 40),
    (6, 20, 1), (6, 30, 2), (6, 50, 3), (6, 70, 4), (6, 100, 6),
    (5, 50, 3),  # 2.5 rounds half up
    (5, 30, 2),  # 1.5 rounds half up
    (2, 20, 1),  # 0.4 -> 0, raised to the minimum of 1
    (10, 95, 9),  # 9.5 -> 10, capped at n - 1: one video left for the weak continuation
    (1, 100, 1),
])
def test_boxed_count_known_answers(n, pct, expected):
    assert abl.boxed_count(n, pct) == expected


@pytest.mark.parametrize("n, pct", [(10, 0), (10, 101), (10, -5), (1, 50)])
def test_boxed_count_rejects_bad_input(n, pct):
    with pytest.raises(ValueError):
        abl.boxed_count(n, pct)


def test_boxed_subset_disjoint_complete_and_deterministic():
    ann = _dataset()
    train = {v.name for v in ann.videos if v.split == "train"}
    for pct in abl.BOXED_PERCENTS:
        boxed, unboxed = abl.boxed_subset(ann, pct, seed=3)
        assert len(boxed) == abl.boxed_count(12, pct)
        assert not set(boxed) & set(unboxed)
        assert set(boxed) | set(unboxed) == train
        assert (boxed, unboxed) == abl.boxed_subset(ann, pct, seed=3)
    # the seed matters: some other seed picks another 30 % subset
    picks = {tuple(abl.boxed_subset(ann, 30, seed=s)[0]) for s in range(6)}
    assert len(picks) > 1


def test_boxed_subsets_are_nested_stratified_and_order_free():
    ann = _dataset(n_train=12, n_classes=3)
    label = {v.name: v.tubes[0].label for v in ann.videos}
    previous: set[str] = set()
    for pct in abl.BOXED_PERCENTS:
        boxed = set(abl.boxed_subset(ann, pct, seed=1)[0])
        assert previous <= boxed
        previous = boxed
        # stratified: class counts differ by at most one
        counts = np.bincount([label[n] for n in boxed], minlength=3)
        assert counts.max() - counts.min() <= 1, (pct, counts)
    shuffled = AnnotationSet(ann.classes, list(reversed(ann.videos)))
    assert abl.boxed_subset(shuffled, 50, seed=1) == abl.boxed_subset(ann, 50, seed=1)


def test_table1_files(tmp_path):
    ann = _dataset()
    boxed, unboxed = abl.boxed_subset(ann, 30, seed=2)
    paths = abl.write_table1_files(ann, tmp_path, 30, seed=2)
    assert paths == abl.table1_paths(tmp_path, 30, 2)
    test_names = {f"te_{i:02d}" for i in range(3)}

    b = AnnotationSet.load(paths.boxed)
    assert {v.name for v in b.split("train").videos} == set(boxed)
    assert all(v.tubes for v in b.videos)
    assert {v.name for v in b.split("test").videos} == test_names

    w = AnnotationSet.load(paths.weak)
    assert {v.name for v in w.split("train").videos} == set(unboxed)
    assert all(not v.tubes and v.segments for v in w.split("train").videos)
    assert all(v.tubes for v in w.split("test").videos)  # scored against true boxes
    assert {v.name for v in w.split("test").videos} == test_names

    m = AnnotationSet.load(paths.mixed)
    assert [v.name for v in m.videos] == [v.name for v in ann.videos]
    for v in m.split("train").videos:
        assert bool(v.tubes) == (v.name in boxed), v.name
        assert v.segments

    paths100 = abl.write_table1_files(ann, tmp_path, 100, seed=2)
    assert not paths100.weak.exists()  # nothing left to learn weakly from
    assert len(AnnotationSet.load(paths100.boxed).split("train").videos) == 12


# ---------------------------------------------------------------------------- summary arithmetic
def _rows(values: dict[tuple[str, str, str], list[float]]) -> list[dict]:
    return [{"table": t, "setting": s, "direction": d, "seed": i, "frame_mAP": v}
            for (t, s, d), vs in values.items() for i, v in enumerate(vs)]


def test_summary_mean_std_and_checks():
    rows = _rows({
        ("2", "baseline_scel", "A->B"): [10.0, 20.0],
        ("2", "trbl_ncbl", "A->B"): [38.0, 40.0],
        ("2", "oracle", "A->B"): [40.0, 44.0],
        ("2", "baseline_scel", "B->A"): [30.0],
        ("2", "trbl_ncbl", "B->A"): [35.0],
        ("2", "oracle", "B->A"): [40.0],
        ("1", "boxed_30", "A"): [5.0, 6.0, 10.0],
        ("2", "baseline_scel", "X"): [1.0],  # no oracle: no check for this direction
    })
    summary = abl.summarize(rows)
    by = {(s["table"], s["setting"], s["direction"]): s for s in summary}
    assert by["2", "baseline_scel", "A->B"]["mean"] == 15.0
    assert by["2", "baseline_scel", "A->B"]["std"] == pytest.approx(math.sqrt(50.0), abs=1e-4)
    assert by["2", "baseline_scel", "A->B"]["n"] == 2
    assert by["2", "baseline_scel", "A->B"]["seeds"] == [0, 1]
    assert by["1", "boxed_30", "A"]["mean"] == 7.0
    assert by["1", "boxed_30", "A"]["std"] == pytest.approx(math.sqrt(14 / 2), abs=1e-4)  # ddof 1
    assert by["2", "oracle", "B->A"]["std"] is None  # one seed
    assert [(s["setting"], s["direction"]) for s in summary][:2] == [
        ("baseline_scel", "A->B"), ("trbl_ncbl", "A->B")]  # order of first appearance

    checks = {c["direction"]: c for c in abl.target_checks(summary)}
    assert set(checks) == {"A->B", "B->A"}
    ab = checks["A->B"]  # means: baseline 15, trbl_ncbl 39, oracle 42
    assert ab["oracle_minus_baseline"] == 27.0 and ab["baseline_15_below_oracle"] is True
    assert ab["trbl_ncbl_over_oracle"] == pytest.approx(39 / 42, abs=1e-4)
    assert ab["trbl_ncbl_90pct_of_oracle"] is True
    assert ab["trbl_ncbl_minus_baseline"] == 24.0 and ab["trbl_ncbl_10_above_baseline"] is True
    ba = checks["B->A"]  # 30 / 35 / 40: every check fails
    assert ba["oracle_minus_baseline"] == 10.0 and ba["baseline_15_below_oracle"] is False
    assert ba["trbl_ncbl_over_oracle"] == 0.875 and ba["trbl_ncbl_90pct_of_oracle"] is False
    assert ba["trbl_ncbl_minus_baseline"] == 5.0 and ba["trbl_ncbl_10_above_baseline"] is False


def test_checks_boundaries_and_zero_oracle():
    rows = _rows({("2", "baseline_scel", "A->B"): [10.0], ("2", "trbl_ncbl", "A->B"): [22.5],
                  ("2", "oracle", "A->B"): [25.0],
                  ("2", "baseline_scel", "B->A"): [0.0], ("2", "trbl_ncbl", "B->A"): [0.0],
                  ("2", "oracle", "B->A"): [0.0]})
    checks = {c["direction"]: c for c in abl.target_checks(abl.summarize(rows))}
    ab = checks["A->B"]  # exactly on every threshold: 15 points, 90 %, 12.5 >= 10
    assert ab["baseline_15_below_oracle"] and ab["trbl_ncbl_90pct_of_oracle"]
    assert ab["trbl_ncbl_10_above_baseline"]
    ba = checks["B->A"]
    assert ba["trbl_ncbl_over_oracle"] is None
    assert not ba["baseline_15_below_oracle"] and not ba["trbl_ncbl_10_above_baseline"]


def test_format_table_and_json_line():
    rows = _rows({("2", "baseline_scel", "A->B"): [10.0, 20.0], ("1", "boxed_30", "A"): [5.5]})
    table = abl.format_table(rows)
    lines = table.splitlines()
    assert "frame-mAP" in lines[0]
    assert any("baseline_scel" in ln and "A->B" in ln and "15.0 ±  7.1" in ln for ln in lines)
    assert any("boxed_30" in ln and "5.5 ±    -" in ln for ln in lines)
    text = abl.json_line(rows)
    assert "\n" not in text
    assert json.loads(text) == {"rows": rows}
    assert "oracle - baseline_scel" in abl.format_checks(abl.target_checks(
        abl.summarize(_rows({("2", "baseline_scel", "A->B"): [1.0],
                             ("2", "trbl_ncbl", "A->B"): [2.0],
                             ("2", "oracle", "A->B"): [3.0]}))))


def test_config_differences():
    saved = {"train": {"lr": 0.001, "device": "cpu", "epochs": 2}, "old_key": 1,
             "model": {"overrides": {"a": 1}}}
    want = {"train": {"lr": 0.002, "device": "cuda", "epochs": 2}, "new_key": 2,
            "model": {"overrides": {"a": 2}}}
    assert config_differences(saved, want) == ["model.overrides", "train.lr"]
    # a field added to the schema after the run was made: equal to its default -> the run's
    # behaviour, no difference; anything else (a variant of the suite) -> a difference
    old_run = {"train": {"lr": 0.002}}
    assert config_differences(old_run, {"train": {"lr": 0.002, "ema_decay": 0.0}}) == []
    assert config_differences(old_run, {"train": {"lr": 0.002, "ema_decay": 0.99}}) == [
        "train.ema_decay"]


# --------------------------------------------------------------------- driver with a stand-in fit
@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("abl") / "data"
    syn.generate(syn.SynthConfig(**TINY), seed=abl.DATA_SEED, out_dir=root, progress=False)
    return root


def _suite_dir(tmp_path: Path, tiny_data: Path) -> Path:
    """A fresh suite folder whose data/ is the rendered tiny benchmark (reused, not re-rendered)."""
    out = tmp_path / "suite"
    shutil.copytree(tiny_data, out / "data")
    return out


class RecordingFit:
    """Stands in for ``fit``: records each call, writes config.json, last.pt and results.json
    (frame-mAP = a number derived from the run folder) as the real one does."""

    def __init__(self):
        self.calls: list[dict] = []

    @staticmethod
    def score(folder: Path) -> float:
        return float(sum(folder.as_posix().encode()) % 997) / 10.0

    def __call__(self, cfg, out_dir, progress=True, evaluate_at_end=True):
        out_dir = Path(out_dir)
        if cfg.train.init:
            assert Path(cfg.train.init).exists(), f"{out_dir} starts from a missing checkpoint"
        self.calls.append({"folder": out_dir, "stage": cfg.train.stage, "init": cfg.train.init,
                           "annotations": cfg.data.annotations, "weak": cfg.weak,
                           "epochs": cfg.train.epochs, "lr": cfg.train.lr,
                           "seed": cfg.train.seed})
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "config.json").write_text(json.dumps({"experiment": to_dict(cfg)}))
        (out_dir / "last.pt").write_bytes(b"")
        result = {"metrics": {"frame_mAP@0.5": self.score(out_dir)}, "train_seconds": 0.0}
        (out_dir / "results.json").write_text(json.dumps(result))
        return result


def _run(out: Path, fake: RecordingFit, monkeypatch, **kw):
    monkeypatch.setattr(abl, "fit", fake)
    kw.setdefault("seeds", [0, 1])
    kw.setdefault("quick", False)
    return abl.run_ablation(out, "demo", progress=False, synth=syn.SynthConfig(**TINY),
                            budgets=TINY_BUDGETS, **kw)


def test_full_plan_wiring_and_resume(tmp_path, tiny_data, monkeypatch):
    out = _suite_dir(tmp_path, tiny_data)
    fake = RecordingFit()
    res = _run(out, fake, monkeypatch)
    calls = {c["folder"].relative_to(out).as_posix(): c for c in fake.calls}
    # per seed: 2 source models, 2 x (4 weak rows + oracle), 3 trackers, 4 boxed + 4 boxed_weak
    assert len(fake.calls) == len(calls) == 2 * (2 + 10 + 3 + 8)
    data = (out / "data").as_posix()
    for seed in (0, 1):
        src_a, src_b = calls[f"runs/{seed}/A_to_B/source"], calls[f"runs/{seed}/B_to_A/source"]
        assert (src_a["stage"], src_a["init"], src_a["seed"]) == ("source", "", seed)
        assert src_a["annotations"] == f"{data}/source.json"
        assert src_b["annotations"] == f"{data}/target.json"
        for direction, weak_file, full_file in (("A_to_B", "target_weak", "target"),
                                                ("B_to_A", "source_weak", "source")):
            init = (out / f"runs/{seed}/{direction}/source/last.pt").as_posix()
            for name, flags in abl.WEAK_ROWS.items():
                c = calls[f"runs/{seed}/{direction}/{name}"]
                assert (c["stage"], c["init"]) == ("target", init)
                assert c["annotations"] == f"{data}/{weak_file}.json"
                assert (c["weak"].use_trb, c["weak"].use_ncb) == (flags["use_trb"],
                                                                  flags["use_ncb"])
                assert (c["epochs"], c["lr"]) == (1, 0.001)  # the target budget
            oracle = calls[f"runs/{seed}/{direction}/oracle"]
            assert (oracle["stage"], oracle["init"]) == ("source", init)
            assert oracle["annotations"] == f"{data}/{full_file}.json"
            assert oracle["lr"] == 0.001
        for tracker in ("mil", "csrt", "mosse"):
            c = calls[f"runs/{seed}/A_to_B/tracker_{tracker}"]
            assert c["weak"].tracker == tracker and c["weak"].use_trb and c["weak"].use_ncb
        assert not any(k.startswith(f"runs/{seed}/B_to_A/tracker") for k in calls)
        for pct in (20, 30, 50, 70):
            boxed = calls[f"runs/{seed}/A/boxed_{pct}"]
            weak = calls[f"runs/{seed}/A/boxed_{pct}_weak"]
            assert boxed["stage"] == "source" and boxed["lr"] == 0.002
            assert boxed["annotations"].endswith(f"annotations/seed{seed}/boxed_{pct}.json")
            assert weak["stage"] == "target"
            assert weak["init"] == (out / f"runs/{seed}/A/boxed_{pct}/last.pt").as_posix()
            assert weak["annotations"].endswith(f"annotations/seed{seed}/mixed_{pct}.json")
        assert f"runs/{seed}/A/boxed_100" not in calls

    # rows: every setting once per seed, numbers read back from each run's results.json
    rows = {(r["table"], r["setting"], r["direction"], r["seed"]): r["frame_mAP"]
            for r in res.rows}
    assert len(rows) == len(res.rows) == 2 * (12 + 4 + 9)
    score = RecordingFit.score
    for seed in (0, 1):
        assert rows["2", "trbl", "B->A", seed] == pytest.approx(
            score(out / f"runs/{seed}/B_to_A/trbl"))
        assert rows["trackers", "tracker_kcf", "A->B", seed] == rows["2", "trbl_ncbl", "A->B",
                                                                     seed]
        assert rows["1", "boxed_100", "A", seed] == rows["2", "source_only_in_domain", "A->B",
                                                         seed]
    saved = json.loads((out / "ablation.json").read_text())
    assert set(saved) >= {"rows", "summary", "checks", "config", "wall_seconds"}
    assert saved["rows"] == res.rows
    assert {c["direction"] for c in saved["checks"]} == {"A->B", "B->A"}
    assert len(saved["summary"]) == 25
    assert {s["n"] for s in saved["summary"]} == {2}

    # a second invocation finds every run finished: no training, the same rows
    again = RecordingFit()
    res2 = _run(out, again, monkeypatch)
    assert again.calls == [] and res2.rows == res.rows
    # a run killed before its results.json is re-run, alone
    (out / "runs/1/B_to_A/ncbl/results.json").unlink()
    third = RecordingFit()
    _run(out, third, monkeypatch)
    assert [c["folder"] for c in third.calls] == [out / "runs/1/B_to_A/ncbl"]


def test_quick_only_and_errors(tmp_path, tiny_data, monkeypatch):
    out = _suite_dir(tmp_path, tiny_data)
    fake = RecordingFit()
    res = _run(out, fake, monkeypatch, seeds=[5, 6], quick=True)
    assert sorted(c["folder"].relative_to(out).as_posix() for c in fake.calls) == sorted(
        f"runs/5/{p}" for p in ("A_to_B/source", "A_to_B/baseline_scel", "A_to_B/trbl_ncbl",
                                "A_to_B/oracle", "A/boxed_30", "A/boxed_30_weak"))
    assert [r["setting"] for r in res.rows] == list(abl.QUICK_SETTINGS)
    assert {r["seed"] for r in res.rows} == {5}

    # --only: the row and the runs it starts from
    out2 = _suite_dir(tmp_path / "b", tiny_data)
    fake2 = RecordingFit()
    res = _run(out2, fake2, monkeypatch, seeds=[0], only=["boxed_50_weak", "tracker_kcf"])
    assert [c["folder"].relative_to(out2).as_posix() for c in fake2.calls] == [
        "runs/0/A_to_B/source", "runs/0/A_to_B/trbl_ncbl", "runs/0/A/boxed_50",
        "runs/0/A/boxed_50_weak"]
    assert [r["setting"] for r in res.rows] == ["tracker_kcf", "boxed_50_weak"]
    with pytest.raises(abl.AblationError, match="unknown setting"):
        _run(out2, RecordingFit(), monkeypatch, seeds=[0], only=["trbl_ncbl_typo"])
    with pytest.raises(abl.AblationError, match="unknown setting"):
        _run(out2, RecordingFit(), monkeypatch, seeds=[0], quick=True, only=["ncbl"])
    # --direction: one direction's rows (and only the runs they need)
    out3 = _suite_dir(tmp_path / "c", tiny_data)
    fake3 = RecordingFit()
    res = _run(out3, fake3, monkeypatch, seeds=[0], only=["source_only_in_domain", "oracle"],
               directions=["B->A"])
    assert [c["folder"].relative_to(out3).as_posix() for c in fake3.calls] == [
        "runs/0/B_to_A/source", "runs/0/B_to_A/oracle"]
    assert {r["direction"] for r in res.rows} == {"B->A"}
    with pytest.raises(abl.AblationError, match="unknown direction"):
        _run(out3, RecordingFit(), monkeypatch, seeds=[0], quick=True, directions=["B->A"])

    # a run folder made with another config is not silently reused
    cfg_path = out2 / "runs/0/A/boxed_50/config.json"
    saved = json.loads(cfg_path.read_text())
    saved["experiment"]["train"]["lr"] = 0.5
    cfg_path.write_text(json.dumps(saved))
    with pytest.raises(abl.AblationError, match="train.lr"):
        _run(out2, RecordingFit(), monkeypatch, seeds=[0], only=["boxed_50"])
    # another benchmark in a folder that holds runs is refused, not re-rendered under them
    with pytest.raises(abl.AblationError, match="differs"):
        monkeypatch.setattr(abl, "fit", RecordingFit())
        abl.run_ablation(out2, "demo", [0], False, progress=False,
                         synth=syn.SynthConfig(**{**TINY, "num_test": 4}), budgets=TINY_BUDGETS)


def test_budget_overrides_reach_the_runs_they_name(tmp_path, tiny_data, monkeypatch):
    """`--budget target.epochs=E`: every run that starts from a checkpoint (the oracle too)
    trains E epochs, the source models keep theirs; bad keys and values fail before any run."""
    full = abl.resolve_budgets(False)
    assert full == abl.ABLATION_BUDGETS["full"] and full is not abl.ABLATION_BUDGETS["full"]
    changed = abl.resolve_budgets(False, {"target": {"epochs": 8, "lr": 0.0005}})
    assert changed["target"] == {**abl.ABLATION_BUDGETS["full"]["target"], "epochs": 8,
                                 "lr": 0.0005}
    assert changed["source"] == abl.ABLATION_BUDGETS["full"]["source"]
    assert abl.ABLATION_BUDGETS["full"]["target"]["epochs"] == 4  # the table is not mutated
    assert abl.resolve_budgets(True, {"source": {"epochs": 3}})["source"]["clips_per_epoch"] == \
        abl.ABLATION_BUDGETS["quick"]["source"]["clips_per_epoch"]
    for bad, error, match in [({"tgt": {"epochs": 1}}, abl.AblationError, "--budget tgt"),
                              ({"target": 3}, abl.AblationError, "--budget target"),
                              ({"target": {"seed": 1}}, abl.AblationError, "target.seed"),
                              ({"target": {"epochs": "x"}}, ConfigError, "train.epochs"),
                              ({"source": {"epochs": 0}}, ConfigError, "source.epochs=0"),
                              ({"target": {"lr": -0.1}}, ConfigError, "target.lr")]:
        with pytest.raises(error, match=match):
            abl.resolve_budgets(False, bad)

    out = _suite_dir(tmp_path, tiny_data)
    fake = RecordingFit()
    budgets = {"source": dict(TINY_BUDGETS["source"]),
               "target": {**TINY_BUDGETS["target"], "epochs": 3}}
    monkeypatch.setattr(abl, "fit", fake)
    res = abl.run_ablation(out, "demo", [0], False, progress=False, directions=["B->A"],
                           only=["baseline_scel", "oracle"], synth=syn.SynthConfig(**TINY),
                           budgets=budgets)
    epochs = {c["folder"].name: c["epochs"] for c in fake.calls}
    assert epochs == {"source": 1, "baseline_scel": 3, "oracle": 3}
    assert res.config["budgets"]["target"]["epochs"] == 3

    # under --sources: DIR's oracle is read while the target budget is DIR's, and trained in
    # --out (from DIR's source model) once it differs; the source models are read either way
    fake = RecordingFit()
    monkeypatch.setattr(abl, "fit", fake)
    same = abl.run_ablation(tmp_path / "same", "demo", [0], False, progress=False,
                            directions=["B->A"], only=["baseline_scel", "oracle"],
                            synth=syn.SynthConfig(**TINY), budgets=budgets, sources=out)
    assert [c["folder"] for c in fake.calls] == [tmp_path / "same/runs/0/B_to_A/baseline_scel"]
    oracle = [r["frame_mAP"] for r in res.rows if r["setting"] == "oracle"]
    assert [r["frame_mAP"] for r in same.rows if r["setting"] == "oracle"] == oracle
    fake = RecordingFit()
    monkeypatch.setattr(abl, "fit", fake)
    longer = {**budgets, "target": {**budgets["target"], "epochs": 5}}
    abl.run_ablation(tmp_path / "longer", "demo", [0], False, progress=False,
                     directions=["B->A"], only=["baseline_scel", "oracle"],
                     synth=syn.SynthConfig(**TINY), budgets=longer, sources=out)
    assert [(c["folder"], c["epochs"]) for c in fake.calls] == [
        (tmp_path / "longer/runs/0/B_to_A/baseline_scel", 5),
        (tmp_path / "longer/runs/0/B_to_A/oracle", 5)]
    assert all(c["init"] == (out / "runs/0/B_to_A/source/last.pt").as_posix()
               for c in fake.calls)


def test_replay_reads_the_direction_source_file(tmp_path, tiny_data, monkeypatch):
    """`--set weak.replay_fraction=F`: Table 2 and tracker runs replay their direction's source
    file; Table 1's weak runs (no source domain) run without replay; a given file is kept."""
    out = _suite_dir(tmp_path, tiny_data)
    fake = RecordingFit()
    _run(out, fake, monkeypatch, seeds=[0], only=["trbl_ncbl", "tracker_mil", "boxed_30_weak"],
         overrides={"weak": {"replay_fraction": 0.25}})
    weak = {c["folder"].relative_to(out).as_posix(): c["weak"] for c in fake.calls
            if c["stage"] == "target"}
    data = (out / "data").as_posix()
    assert weak["runs/0/A_to_B/trbl_ncbl"].replay == f"{data}/source.json"
    assert weak["runs/0/B_to_A/trbl_ncbl"].replay == f"{data}/target.json"
    assert weak["runs/0/A_to_B/tracker_mil"].replay == f"{data}/source.json"
    assert all(w.replay_fraction == 0.25 for k, w in weak.items() if "/A/" not in k)
    assert (weak["runs/0/A/boxed_30_weak"].replay_fraction,
            weak["runs/0/A/boxed_30_weak"].replay) == (0.0, "")
    given = RecordingFit()
    _run(tmp_path / "given", given, monkeypatch, seeds=[0], only=["trbl_ncbl"],
         directions=["B->A"], overrides={"weak": {"replay_fraction": 0.25, "replay": "x.json"}})
    assert [c["weak"].replay for c in given.calls if c["stage"] == "target"] == ["x.json"]


# ------------------------------------------------------------------------- real end-to-end run
def test_end_to_end_two_rows_real_fit(tmp_path, tiny_data, capsys):
    out = _suite_dir(tmp_path, tiny_data)
    res = abl.run_ablation(out, "demo", [0], quick=True, device="cpu",
                           only=["baseline_scel", "trbl_ncbl"], progress=True,
                           synth=syn.SynthConfig(**TINY), budgets=TINY_BUDGETS,
                           overrides=TINY_OVERRIDES)
    assert [(r["setting"], r["direction"], r["seed"]) for r in res.rows] == [
        ("baseline_scel", "A->B", 0), ("trbl_ncbl", "A->B", 0)]
    for r in res.rows:
        assert 0.0 <= r["frame_mAP"] <= 100.0
    for name in ("source", "baseline_scel", "trbl_ncbl"):
        folder = out / "runs/0/A_to_B" / name
        results = json.loads((folder / "results.json").read_text())
        assert (folder / "last.pt").exists() and "frame_mAP@0.5" in results["metrics"]
    tgt = json.loads((out / "runs/0/A_to_B/trbl_ncbl/config.json").read_text())["experiment"]
    assert tgt["train"]["stage"] == "target"
    assert tgt["train"]["init"] == str(out / "runs/0/A_to_B/source/last.pt")
    assert tgt["model"]["img_size"] == 64 and tgt["model"]["clip_len"] == 4
    # the suite's frozen recipe, whatever the demo recipe has become (and whatever the CPU)
    assert (tgt["train"]["amp"], tgt["train"]["ema_decay"]) == (False, 0.0)
    assert (tgt["data"]["augment"]["hue"], tgt["data"]["augment"]["saturation"]) == (0.0, 1.0)
    assert tgt["eval"]["postprocess"]["class_window_s"] == 0.0
    assert tgt["eval"]["postprocess"]["class_vote_iou"] == 0.0
    assert tgt["loss"]["class_iou"] == 0.0
    assert tgt["loss"]["class_iou_norm"] is False
    assert "tracker" in json.loads((out / "runs/0/A_to_B/trbl_ncbl/results.json").read_text())
    printed = capsys.readouterr().out
    assert "baseline_scel" in printed and "frame-mAP" in printed
    assert json.loads((out / "ablation.json").read_text())["rows"] == res.rows


def test_paired_variant_reads_the_source_runs_of_another_suite(tmp_path, tiny_data,
                                                               monkeypatch):
    """``sources``: a weak.* variant trains only its target-stage runs, from the other suite's
    checkpoints, and reports that suite's source and oracle rows; it never trains or writes
    there, and refuses an unfinished or mismatched source run."""
    base = _suite_dir(tmp_path / "base", tiny_data)
    only = ["source_only_in_domain", "baseline_scel", "trbl_ncbl", "oracle"]
    first = _run(base, RecordingFit(), monkeypatch, seeds=[0], only=only, directions=["B->A"])
    before = sorted(p.as_posix() for p in base.rglob("*"))
    variant = tmp_path / "variant"
    fake = RecordingFit()
    res = _run(variant, fake, monkeypatch, seeds=[0], only=only, directions=["B->A"],
               overrides={"weak": {"size_teacher": True}}, sources=base)
    assert [c["folder"] for c in fake.calls] == [variant / "runs/0/B_to_A/baseline_scel",
                                                 variant / "runs/0/B_to_A/trbl_ncbl"]
    init = (base / "runs/0/B_to_A/source/last.pt").as_posix()
    assert all(c["init"] == init and c["weak"].size_teacher for c in fake.calls)
    assert all(c["annotations"] == (base / "data/source_weak.json").as_posix()
               for c in fake.calls)
    assert sorted(p.as_posix() for p in base.rglob("*")) == before  # nothing written there
    assert not (variant / "data").exists()
    shown = {r["run"]: r["folder"] for r in res.runs}  # where each run lives, as ablation.json says
    assert shown["0/B->A/source"] == str(base.resolve() / "runs/0/B_to_A/source")
    assert shown["0/B->A/trbl_ncbl"] == "runs/0/B_to_A/trbl_ncbl"
    rows = {r["setting"]: r["frame_mAP"] for r in res.rows}
    base_rows = {r["setting"]: r["frame_mAP"] for r in first.rows}
    assert rows["oracle"] == base_rows["oracle"]
    assert rows["source_only_in_domain"] == base_rows["source_only_in_domain"]
    assert rows["trbl_ncbl"] == pytest.approx(
        RecordingFit.score(variant / "runs/0/B_to_A/trbl_ncbl"))
    # target-stage keys of any section: the target runs take them, DIR's runs are still valid
    fake = RecordingFit()
    res = _run(tmp_path / "v6", fake, monkeypatch, seeds=[0], only=only, directions=["B->A"],
               target_overrides={"train": {"seed": 7}}, sources=base)
    assert [c["seed"] for c in fake.calls] == [7, 7] and len(fake.calls) == 2
    assert {r["setting"]: r["frame_mAP"] for r in res.rows}["oracle"] == base_rows["oracle"]
    assert res.config["target_overrides"] == {"train": {"seed": 7}}
    assert sorted(p.as_posix() for p in base.rglob("*")) == before
    with pytest.raises(abl.AblationError, match="train.seed"):  # v6's runs had seed 7
        _run(tmp_path / "v6", RecordingFit(), monkeypatch, seeds=[0], only=only,
             directions=["B->A"], sources=base)
    # keys that define the rows, and unknown keys, are refused before anything trains
    fake = RecordingFit()
    for bad, match in (({"weak": {"use_trb": True}}, "weak.use_trb"),
                       ({"train": {"init": "x.pt"}}, "train.init"),
                       ({"train": {"sede": 1}}, "sede")):
        with pytest.raises(ConfigError, match=match):
            _run(tmp_path / "v7", fake, monkeypatch, seeds=[0], only=only, directions=["B->A"],
                 target_overrides=bad, sources=base)
    assert fake.calls == [] and not (tmp_path / "v7").exists()
    # a source run made with another (non-weak) config is refused, an unfinished one too
    with pytest.raises(abl.AblationError, match="data.augment.hue"):
        _run(tmp_path / "v2", RecordingFit(), monkeypatch, seeds=[0], only=only,
             directions=["B->A"], overrides={"data": {"augment": {"hue": 0.3}}}, sources=base)
    with pytest.raises(abl.AblationError, match="not finished"):
        _run(tmp_path / "v3", RecordingFit(), monkeypatch, seeds=[1], only=only,
             directions=["B->A"], sources=base)
    with pytest.raises(abl.AblationError, match="no suite"):
        _run(tmp_path / "v4", RecordingFit(), monkeypatch, seeds=[0], sources=tmp_path / "none")
    # a suite folder without its benchmark is not rendered into
    (tmp_path / "bare" / "runs").mkdir(parents=True)
    with pytest.raises(abl.AblationError, match="never renders"):
        _run(tmp_path / "v5", RecordingFit(), monkeypatch, seeds=[0], sources=tmp_path / "bare")
    assert not (tmp_path / "bare" / "data").exists()


# ------------------------------------------------------------------ the opt-in pseudo-tube round
class RecordingLabeller:
    """Stands in for ``write_pseudo_labels``: records the call and writes the weak file's truth
    (``spec.truth``) as the labels, so the stand-in fit has a file to point at, and a report
    with the labelling checkpoint's hash."""

    def __init__(self):
        self.calls: list[tuple[Path, Path]] = []

    def __call__(self, checkpoint, spec, cfg, folder, progress):
        self.calls.append((Path(checkpoint), Path(folder)))
        folder.mkdir(parents=True, exist_ok=True)
        report = {"checkpoint_sha256": abl.file_sha256(checkpoint)}
        (folder / abl.PSEUDO_REPORT).write_text(json.dumps(report))
        shutil.copy(spec.truth, folder / abl.PSEUDO_LABELS)
        return report


def test_pseudo_round_is_opt_in_and_trains_like_the_oracle_on_its_labels(tmp_path, tiny_data,
                                                                          monkeypatch):
    out = _suite_dir(tmp_path, tiny_data)
    labeller = RecordingLabeller()
    monkeypatch.setattr(abl, "write_pseudo_labels", labeller)
    fake = RecordingFit()
    res = _run(out, fake, monkeypatch, seeds=[0], only=["trbl_ncbl_pseudo", "oracle"])
    folders = [c["folder"].relative_to(out).as_posix() for c in fake.calls]
    for direction in ("A_to_B", "B_to_A"):
        run = f"runs/0/{direction}"
        # the weak run it labels with comes first, the round after it
        assert folders.index(f"{run}/trbl_ncbl") < folders.index(f"{run}/trbl_ncbl_pseudo")
        c = next(c for c in fake.calls if c["folder"] == out / run / "trbl_ncbl_pseudo")
        oracle = next(c for c in fake.calls if c["folder"] == out / run / "oracle")
        assert (c["stage"], c["init"], c["lr"], c["epochs"]) == (
            oracle["stage"], oracle["init"], oracle["lr"], oracle["epochs"])
        assert c["annotations"] == (out / run / "trbl_ncbl_pseudo" / abl.PSEUDO_LABELS
                                    ).as_posix()
        assert (out / run / "trbl_ncbl" / "last.pt", out / run / "trbl_ncbl_pseudo"
                ) in labeller.calls
    assert len(labeller.calls) == 2
    assert {r["setting"] for r in res.rows} == {"trbl_ncbl_pseudo", "oracle"}
    checks = json.loads((out / "ablation.json").read_text())["checks"]
    assert checks == []  # the paper's checks need baseline_scel and trbl_ncbl rows
    # resumed: nothing labelled or trained again
    again = RecordingLabeller()
    monkeypatch.setattr(abl, "write_pseudo_labels", again)
    _run(out, RecordingFit(), monkeypatch, seeds=[0], only=["trbl_ncbl_pseudo", "oracle"])
    assert again.calls == []
    # the labelling run trained again (another last.pt): its old labels are not trusted
    (out / "runs/0/A_to_B/trbl_ncbl/last.pt").write_bytes(b"retrained")
    with pytest.raises(abl.AblationError, match="trained again since"):
        _run(out, RecordingFit(), monkeypatch, seeds=[0], only=["trbl_ncbl_pseudo"])
    (out / "runs/0/A_to_B/trbl_ncbl_pseudo" / abl.PSEUDO_REPORT).unlink()
    with pytest.raises(abl.AblationError, match="without its"):
        _run(out, RecordingFit(), monkeypatch, seeds=[0], only=["trbl_ncbl_pseudo"])
    # not named: not run (the full plan without --only has no such row)
    d = out / "data"
    data = syn.SynthOutput(d, d / "videos", d / "source.json", d / "target.json",
                           d / "source_weak.json", d / "target_weak.json", d / "synth.json")
    runs, rows = abl.select(*abl.plan_suite(data, out / "annotations", [0], False), None)
    assert not any(r.setting == "trbl_ncbl_pseudo" for r in rows)
    assert not any(r.pseudo_of for r in runs)


def test_pseudo_round_with_sources_trains_here_from_the_other_suites_source_model(
        tmp_path, tiny_data, monkeypatch):
    base = _suite_dir(tmp_path / "base", tiny_data)
    _run(base, RecordingFit(), monkeypatch, seeds=[0], only=["oracle"], directions=["A->B"])
    monkeypatch.setattr(abl, "write_pseudo_labels", RecordingLabeller())
    fake = RecordingFit()
    variant = tmp_path / "variant"
    res = _run(variant, fake, monkeypatch, seeds=[0], only=["trbl_ncbl_pseudo", "oracle"],
               directions=["A->B"], sources=base)
    assert [c["folder"] for c in fake.calls] == [variant / "runs/0/A_to_B/trbl_ncbl",
                                                 variant / "runs/0/A_to_B/trbl_ncbl_pseudo"]
    assert fake.calls[1]["init"] == (base / "runs/0/A_to_B/source/last.pt").as_posix()
    assert {r["setting"] for r in res.rows} == {"trbl_ncbl_pseudo", "oracle"}


def test_pseudo_round_end_to_end_real_detection(tmp_path, tiny_data):
    out = _suite_dir(tmp_path, tiny_data)
    kw = dict(only=["trbl_ncbl_pseudo"], directions=["A->B"], progress=False,
              synth=syn.SynthConfig(**TINY), budgets=TINY_BUDGETS)
    # the microscopic model's scores are below the detection threshold: nothing is labelled,
    # and the round says so instead of training on an empty file
    with pytest.raises(abl.AblationError, match="labelled none of the 6 train videos"):
        abl.run_ablation(out, "demo", [0], quick=False, device="cpu", overrides=TINY_OVERRIDES,
                         **kw)
    folder = out / "runs/0/A_to_B/trbl_ncbl_pseudo"
    report = json.loads((folder / abl.PSEUDO_REPORT).read_text())
    assert "no detection" in report["dropped"]["tgt_train_0000"]
    assert not (folder / abl.PSEUDO_LABELS).exists() and not (folder / "last.pt").exists()
    # every box kept (threshold 0): a path in every segment
    every_box = {**TINY_OVERRIDES, "eval": {**TINY_OVERRIDES["eval"],
                                            "postprocess": {"conf_threshold": 0.0}}}
    shutil.rmtree(out / "runs")
    kw["only"] = ["trbl_ncbl_pseudo", "trbl_ncbl_pseudo_tight"]
    res = abl.run_ablation(out, "demo", [0], quick=False, device="cpu", overrides=every_box,
                           **kw)
    assert [r["setting"] for r in res.rows] == ["trbl_ncbl_pseudo", "trbl_ncbl_pseudo_tight"]
    # the GrabCut row: the same videos labelled from the same detections, the boxes shrunk
    plain = AnnotationSet.load(out / "runs/0/A_to_B/trbl_ncbl_pseudo" / abl.PSEUDO_LABELS)
    tight = AnnotationSet.load(out / "runs/0/A_to_B/trbl_ncbl_pseudo_tight" / abl.PSEUDO_LABELS)
    assert [v.name for v in tight.videos] == [v.name for v in plain.videos]
    area = {name: sum(float(np.prod(t.boxes[:, 2:] - t.boxes[:, :2], axis=1).sum())
                      for v in ann.split("train").videos for t in v.tubes)
            for name, ann in (("plain", plain), ("tight", tight))}
    assert area["tight"] < area["plain"]
    folder = out / "runs/0/A_to_B/trbl_ncbl_pseudo"
    report = json.loads((folder / abl.PSEUDO_REPORT).read_text())
    assert report["checkpoint"] == str(out / "runs/0/A_to_B/trbl_ncbl/last.pt")
    assert report["checkpoint_sha256"] == abl.file_sha256(Path(report["checkpoint"]))
    assert report["videos_in"] == TINY["num_train"]
    assert report["videos_out"] + len(report["dropped"]) == report["videos_in"]
    labels = AnnotationSet.load(folder / abl.PSEUDO_LABELS)
    truth = AnnotationSet.load(out / "data/target.json")
    weak = AnnotationSet.load(out / "data/target_weak.json")
    for v in labels.split("train").videos:  # one tube per segment, over the segment's frames
        assert [t.label for t in v.tubes] == [s.label for s in weak[v.name].segments]
        assert [(t.start_frame, t.end_frame) for t in v.tubes] == [
            s.frame_range(v.fps) for s in weak[v.name].segments]
    assert labels.split("test").to_dict() == truth.split("test").to_dict()
    agreement = report["agreement"]
    assert 0.0 <= agreement["mean_iou"] <= 1.0 and agreement["boxes"] > 0
    cfg = json.loads((folder / "config.json").read_text())["experiment"]
    assert cfg["train"]["stage"] == "source"
    assert cfg["data"]["annotations"] == str(folder / abl.PSEUDO_LABELS)
    assert cfg["train"]["init"] == str(out / "runs/0/A_to_B/source/last.pt")
    assert 0.0 <= res.rows[0]["frame_mAP"] <= 100.0


def test_suite_pins_keep_the_recipe_of_the_tables(tmp_path):
    """The suite trains with the demo recipe as it was when docs/RESULTS.md §8 was measured,
    whatever the demo recipe became since (session 27: 4-frame clips for the demo only)."""
    from weaktube.config import apply_overrides
    from weaktube.demo import demo_config

    demo = demo_config(tmp_path)
    suite = apply_overrides(demo, abl.SUITE_PINS)
    assert (demo.model.clip_len, demo.data.frame_stride) == (4, 4)
    assert (suite.model.clip_len, suite.data.frame_stride) == (8, 2)
    loss, train = suite.loss, suite.train
    assert (loss.class_iou, loss.class_iou_norm) == (0.0, False)
    assert (train.ema_decay, train.amp) == (0.0, False)
    assert (suite.data.augment.hue, suite.data.augment.saturation) == (0.0, 1.0)
    assert suite.eval.postprocess.class_window_s == 0.0
