"""Aggregate Table-2 ablation suites run on the same source models: rows, diagnosis, paired gains.

    python benchmarks/ablation_pairs.py --direction 'B->A' \\
        --suite main=/tmp/s20/bar_s0 --suite main=/tmp/s20/bar_s1 \\
        --suite t100=/tmp/s20/bar100_s0 --suite t100=/tmp/s20/bar100_s1

Each ``--suite ARM=DIR`` is one ``weaktube bench ablation --json --out DIR`` folder (any seeds;
the benchmark is ``DIR/data``, or for a ``--sources`` suite the data of the suite it names, as
recorded in its ``ablation.json``). Per
(setting, arm) it prints the frame-mAP@0.5 per seed and its mean, and from
``frame_diagnosis.diagnose`` on the target domain's test split the class-agnostic AP, the share of
people localised and the class accuracy on them. Then TRBL+NCBL minus Baseline+SCEL paired on
(seed, arm), its mean and standard error, and the ratio of the TRBL+NCBL mean to the oracle's.
The summary lines pool every arm given (pass the arms of one recipe, e.g. its target seeds);
with several arms, the same lines follow for each arm alone, prefixed ``[ARM]``, its ratio taken
to the arm's own oracle runs, or to every arm's when the arm has none.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from weaktube.structures import AnnotationSet, Detections

sys.path.insert(0, str(Path(__file__).resolve().parent))
from frame_diagnosis import diagnose  # noqa: E402

TEST_FILE = {"B->A": "source.json", "A->B": "target.json"}  # the target domain's annotations


def parse_suite(text: str) -> tuple[str, Path]:
    arm, sep, folder = text.partition("=")
    if not sep or not arm or not folder:
        raise argparse.ArgumentTypeError(f"--suite {text!r}: expected ARM=DIR")
    return arm, Path(folder)


def collect(direction: str, suites: list[tuple[str, Path]]) -> dict:
    """``{(setting, arm): {seed: (frame_mAP, class_agnostic_AP, localised, class_accuracy)}}``."""
    rows: dict = {}
    for arm, folder in suites:
        path = folder / "ablation.json"
        if not path.exists():
            raise SystemExit(f"{path}: not found "
                             f"(run `weaktube bench ablation --json --out {folder}`)")
        suite = json.loads(path.read_text(encoding="utf-8"))
        home = Path(suite["config"].get("sources") or folder)  # where the benchmark was rendered
        gt = AnnotationSet.load(home / "data" / TEST_FILE[direction]).split("test")
        for r in suite["rows"]:
            if r["direction"] != direction:
                continue
            seed = int(r["seed"])
            run = folder / "runs" / str(seed) / direction.replace("->", "_to_") / r["setting"]
            d = diagnose(gt, Detections.load(run / "detections.json"))
            rows.setdefault((r["setting"], arm), {})[seed] = (
                r["frame_mAP"], d["class_agnostic_frame_AP@0.5"], d["gt_boxes_localised"],
                d["class_accuracy_on_localised"])
    return rows


def report(direction: str, rows: dict) -> list[str]:
    out = [f"| {direction} | per seed | mean | class-agnostic AP | people localised | "
           "class right on localised |", "| --- | --- | --- | --- | --- | --- |"]
    for (setting, arm), by_seed in rows.items():
        seeds = sorted(by_seed)

        def cell(i: int, fmt: str, by_seed: dict = by_seed, seeds: list = seeds) -> str:
            return " / ".join(format(by_seed[s][i], fmt) for s in seeds)

        maps = [by_seed[s][0] for s in seeds]
        out.append(f"| {setting} ({arm}) | {cell(0, '.1f')} | {statistics.mean(maps):.1f} | "
                   f"{cell(1, '.1f')} | {cell(2, '.3f')} | {cell(3, '.3f')} |")
    out += summary(rows)
    arms = list(dict.fromkeys(arm for _, arm in rows))
    if len(arms) > 1:  # each arm alone (its own oracle, or every arm's when it has none)
        own_oracle = {arm for setting, arm in rows if setting == "oracle"}
        for arm in arms:
            out += [f"[{arm}] {line}" for line in summary(
                rows, arm, oracle_arms=None if arm not in own_oracle else {arm})]
    return out


def summary(rows: dict, arm: str | None = None, oracle_arms: set[str] | None = None
            ) -> list[str]:
    """The paired TRBL+NCBL - SCEL differences, the row means and the ratio to the oracle, over
    every arm (``arm`` None) or one; the oracle's runs come from ``oracle_arms`` (None: all)."""
    arms = None if arm is None else {arm}

    def values(name: str, among: set[str] | None) -> list[float]:
        return [v[0] for (st, a), by_seed in rows.items()
                if st == name and (among is None or a in among) for v in by_seed.values()]

    diffs = [rows[("trbl_ncbl", a)][s][0] - rows[("baseline_scel", a)][s][0]
             for (setting, a), by_seed in rows.items()
             if setting == "trbl_ncbl" and (arms is None or a in arms)
             for s in sorted(by_seed) if s in rows.get(("baseline_scel", a), {})]
    out = []
    if diffs:
        se = statistics.stdev(diffs) / len(diffs) ** 0.5 if len(diffs) > 1 else float("nan")
        out.append(f"trbl_ncbl - scel, paired: {', '.join(f'{d:+.1f}' for d in diffs)}; "
                   f"mean {statistics.mean(diffs):+.1f} ± {se:.1f} (se)")
    tr, sc = values("trbl_ncbl", arms), values("baseline_scel", arms)
    orc = values("oracle", oracle_arms)
    if tr and orc:
        sd = f" ± {statistics.stdev(tr):.1f}" if len(tr) > 1 else ""
        out.append(f"trbl_ncbl {statistics.mean(tr):.1f}{sd} (n={len(tr)}), scel "
                   f"{statistics.mean(sc) if sc else float('nan'):.1f} (n={len(sc)}), oracle "
                   f"{statistics.mean(orc):.1f} (n={len(orc)})")
        out.append(f"ratio trbl_ncbl / oracle: {statistics.mean(tr) / statistics.mean(orc):.2f}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--direction", choices=sorted(TEST_FILE), required=True)
    ap.add_argument("--suite", type=parse_suite, action="append", required=True,
                    metavar="ARM=DIR", help="an ablation --json output folder (repeatable)")
    a = ap.parse_args()
    print("\n".join(report(a.direction, collect(a.direction, a.suite))))


if __name__ == "__main__":
    main()
