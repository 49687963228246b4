"""How many ground-truth boxes come near a frame edge (where the augmentation's reflected border
mirrors a person without a box: docs/DESIGN.md, "Augmentation").

    python benchmarks/edge_boxes.py ANN.json|SOURCE [--format F] [--margin 0.05 --margin 0.1]

ANN is a weaktube annotation file, or any source ``weaktube data convert`` reads (e.g. the
UCF101-24 ``pyannot_with_class_names.pkl``). A box is within margin m of an edge when one of
its sides lies within m x the frame's width (left, right) or height (top, bottom) of the
frame's border. Prints one JSON line: boxes, videos, and per margin the percentage of boxes and
of videos with such a box.
"""

from __future__ import annotations

import argparse
import json
import warnings

import numpy as np

from weaktube.data.readers import convert
from weaktube.structures import AnnotationSet


def edge_fractions(ann: AnnotationSet, margins: list[float]) -> dict:
    """``{"boxes": N, "videos": V, "<m>": {"boxes_pct", "videos_pct"}}`` over every tube box."""
    boxes_near = dict.fromkeys(margins, 0)
    videos_near = dict.fromkeys(margins, 0)
    total = 0
    for v in ann.videos:
        if not v.tubes:
            continue
        b = np.concatenate([np.asarray(t.boxes, np.float64).reshape(-1, 4) for t in v.tubes])
        # distance of the nearest side to its border, as a fraction of the frame: [N]
        d = np.minimum.reduce([b[:, 0] / v.width, b[:, 1] / v.height,
                               1 - b[:, 2] / v.width, 1 - b[:, 3] / v.height])
        total += len(b)
        for m in margins:
            boxes_near[m] += int((d < m).sum())
            videos_near[m] += int((d < m).any())
    out: dict = {"boxes": total, "videos": len(ann.videos)}
    for m in margins:
        out[str(m)] = {"boxes_pct": round(100 * boxes_near[m] / max(total, 1), 1),
                       "videos_pct": round(100 * videos_near[m] / max(len(ann.videos), 1), 1)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src")
    ap.add_argument("--format", help="reader format (detected when omitted)")
    ap.add_argument("--margin", type=float, action="append")
    a = ap.parse_args()
    if a.src.endswith(".json") and a.format is None:
        ann = AnnotationSet.load(a.src)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ann = convert(a.src, a.format)
    print(json.dumps(edge_fractions(ann, a.margin or [0.05, 0.1])))


if __name__ == "__main__":
    main()
