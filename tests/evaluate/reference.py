"""Slow, loop-per-prediction reference evaluators written straight from the protocol text.

They share no code with ``weaktube.evaluate`` (own IoU, own sorting, own AP integrals) and exist
only to cross-check the vectorised implementation on random cases.
"""

from __future__ import annotations

import math


def box_iou(a, b, plus_one: bool) -> float:
    one = 1.0 if plus_one else 0.0
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]) + one)
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]) + one)
    inter = iw * ih
    area_a = max(0.0, a[2] - a[0] + one) * max(0.0, a[3] - a[1] + one)
    area_b = max(0.0, b[2] - b[0] + one) * max(0.0, b[3] - b[1] + one)
    union = area_a + area_b - inter
    return inter / union if union > 0 else 0.0


def tube_iou(s1: int, boxes1, s2: int, boxes2, plus_one: bool = True) -> float:
    e1, e2 = s1 + len(boxes1) - 1, s2 + len(boxes2) - 1
    lo, hi = max(s1, s2), min(e1, e2)
    if hi < lo:
        return 0.0
    spatial = [box_iou(boxes1[f - s1], boxes2[f - s2], plus_one) for f in range(lo, hi + 1)]
    return (sum(spatial) / len(spatial)) * (hi - lo + 1) / (max(e1, e2) - min(s1, s2) + 1)


def seg_iou(a0, a1, b0, b1) -> float:
    inter = max(0.0, min(a1, b1) - max(a0, b0))
    union = (a1 - a0) + (b1 - b0) - inter
    return inter / union if union > 0 else 0.0


def ap_trapezoid(flags, npos) -> float:
    ap, tp, p_prev, r_prev = 0.0, 0, 1.0, 0.0
    for i, f in enumerate(flags):
        tp += f
        p, r = tp / (i + 1), tp / npos
        ap += (r - r_prev) * (p + p_prev) / 2
        p_prev, r_prev = p, r
    return ap


def ap_interp(flags, npos) -> float:
    tp, prec, rec = 0, [], []
    for i, f in enumerate(flags):
        tp += f
        prec.append(tp / (i + 1))
        rec.append(tp / npos)
    mpre = [0.0] + prec + [0.0]
    mrec = [0.0] + rec + [1.0]
    for i in range(len(mpre) - 2, -1, -1):
        mpre[i] = max(mpre[i], mpre[i + 1])
    return sum((mrec[i] - mrec[i - 1]) * mpre[i] for i in range(1, len(mrec))
               if mrec[i] != mrec[i - 1])


def _greedy(cands_of, order, thr, best_unmatched):
    """cands_of(i) -> (group key, [iou with each gt of the group]); returns flags in order."""
    taken: dict = {}
    flags = []
    for i in order:
        key, ious = cands_of(i)
        used = taken.setdefault(key, [False] * len(ious))
        hit = False
        if best_unmatched:
            best, bj = -1.0, -1
            for j, u in enumerate(ious):
                if not used[j] and u >= thr and u > best:
                    best, bj = u, j
            if bj >= 0:
                used[bj] = hit = True
        elif ious:
            bj = max(range(len(ious)), key=lambda j: (ious[j], -j))
            if ious[bj] >= thr and not used[bj]:
                used[bj] = hit = True
        flags.append(hit)
    return flags


def frame_aps(gt, det, thr, act: bool):
    gtb: dict = {}
    annotated = set()
    for v in gt.videos:
        for t in v.tubes:
            for i, b in enumerate(t.boxes):
                gtb.setdefault((v.name, t.start_frame + i, t.label), []).append(
                    [float(x) for x in b])
                annotated.add((v.name, t.start_frame + i))
    aps = []
    for c in range(gt.num_classes):
        npos = sum(len(b) for k, b in gtb.items() if k[2] == c)
        idx = [i for i in range(len(det)) if det.labels[i] == c and det.videos[i] in gt
               and (act or (det.videos[i], int(det.frames[i])) in annotated)]
        idx.sort(key=lambda i: -float(det.scores[i]))  # Python's sort is stable

        def cands(i, c=c):
            key = (det.videos[i], int(det.frames[i]), c)
            box = [float(x) for x in det.boxes[i]]
            return key, [box_iou(box, g, True) for g in gtb.get(key, [])]

        flags = _greedy(cands, idx, thr, best_unmatched=act)
        aps.append(math.nan if npos == 0 else
                   (ap_trapezoid if act else ap_interp)(flags, npos))
    return aps


def video_aps(gt, tubes, thr):
    gtt: dict = {}
    for v in gt.videos:
        for t in v.tubes:
            gtt.setdefault((v.name, t.label), []).append((t.start_frame, t.boxes.tolist()))
    aps = []
    for c in range(gt.num_classes):
        npos = sum(len(x) for k, x in gtt.items() if k[1] == c)
        idx = [i for i in range(len(tubes)) if tubes.labels[i] == c and tubes.videos[i] in gt]
        idx.sort(key=lambda i: -float(tubes.scores[i]))

        def cands(i, c=c):
            key = (tubes.videos[i], c)
            mine = (int(tubes.start_frames[i]), tubes.boxes[i].tolist())
            return key, [tube_iou(*mine, s, b) for s, b in gtt.get(key, [])]

        flags = _greedy(cands, idx, thr, best_unmatched=True)
        aps.append(math.nan if npos == 0 else ap_trapezoid(flags, npos))
    return aps


def temporal_aps(gt, segs, thr, ignore_ambiguous=True):
    gts: dict = {}
    amb: dict = {}
    for v in gt.videos:
        for s in v.segments:
            if s.ambiguous:
                amb.setdefault(v.name, []).append((s.start, s.end))
            else:
                gts.setdefault((v.name, s.label), []).append((s.start, s.end))
    aps = []
    for c in range(gt.num_classes):
        npos = sum(len(x) for k, x in gts.items() if k[1] == c)
        idx = [i for i in range(len(segs)) if segs.labels[i] == c and segs.videos[i] in gt]
        idx.sort(key=lambda i: -float(segs.scores[i]))

        def cands(i, c=c):
            key = (segs.videos[i], c)
            return key, [seg_iou(segs.starts[i], segs.ends[i], a, b) for a, b in gts.get(key, [])]

        flags = _greedy(cands, idx, thr, best_unmatched=True)
        if ignore_ambiguous:
            keep = []
            for i, f in zip(idx, flags, strict=True):
                overl = any(min(segs.ends[i], b) - max(segs.starts[i], a) > 0
                            for a, b in amb.get(segs.videos[i], []))
                if f or not overl:
                    keep.append(f)
            flags = keep
        aps.append(math.nan if npos == 0 else ap_interp(flags, npos))
    return aps
