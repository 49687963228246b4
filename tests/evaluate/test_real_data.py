"""Known answers on the real JHMDB-21 and THUMOS'14 annotation files in ../shared/data."""

from __future__ import annotations

import numpy as np
import pytest

from weaktube.evaluate import evaluate_all, frame_ap, temporal_ap

from .helpers import detections, segment_preds
from .real_data import jhmdb_test_set, thumos_test_set
from .reference import box_iou


@pytest.fixture(scope="module")
def jhmdb(shared_data):
    return jhmdb_test_set(shared_data)


@pytest.fixture(scope="module")
def thumos(shared_data):
    return thumos_test_set(shared_data)


def gt_rows(ann, videos):
    return [(v.name, t.start_frame + i, t.label, b) for v in videos for t in v.tubes
            for i, b in enumerate(t.boxes)]


def test_jhmdb_shape(jhmdb):
    assert (len(jhmdb), jhmdb.num_classes) == (268, 21)
    assert sum(len(t.boxes) for v in jhmdb.videos for t in v.tubes) == 9126


def test_jhmdb_perfect_boxes_on_half_the_videos(jhmdb):
    half = jhmdb.videos[::2]
    det = detections([(v, f, c, 1.0, b) for v, f, c, b in gt_rows(jhmdb, half)])
    # Precision stays 1 while recall climbs to the share of the class's boxes that lie in
    # `half`: both AP integrals equal that share.
    total = np.zeros(21)
    found = np.zeros(21)
    for v in jhmdb.videos:
        total[v.tubes[0].label] += len(v.tubes[0].boxes)
    for v in half:
        found[v.tubes[0].label] += len(v.tubes[0].boxes)
    for proto in ("act", "yowo"):
        r = frame_ap(jhmdb, det, 0.5, proto)
        np.testing.assert_allclose([c.ap for c in r.classes], found / total, rtol=0, atol=1e-12)
    full = detections([(v, f, c, 1.0, b) for v, f, c, b in gt_rows(jhmdb, jhmdb.videos)])
    assert evaluate_all(jhmdb, full).metrics == {"frame_mAP@0.5": pytest.approx(100.0)}


def test_jhmdb_shifted_boxes_plus_one_iou(jhmdb):
    # Every box shifted right by a fraction of its width near W/3, where the +1-pixel IoU
    # (W - k) / (W + k) crosses 0.5. Crossing boxes get score 1, the others 0.5, so each
    # class's AP is its share of boxes with IoU >= 0.5 (decided by the reference IoU).
    rows, hits = [], np.zeros(21)
    total = np.zeros(21)
    for j, (v, f, c, b) in enumerate(gt_rows(jhmdb, jhmdb.videos)):
        w = b[2] - b[0] + 1
        k = np.round(w * (0.31, 0.333, 0.34, 0.36)[j % 4])
        moved = b + np.array([k, 0, k, 0], np.float32)
        ok = box_iou([float(x) for x in moved], [float(x) for x in b], plus_one=True) >= 0.5
        rows.append((v, f, c, 1.0 if ok else 0.5, moved))
        hits[c] += ok
        total[c] += 1
    assert 0.2 < hits.sum() / total.sum() < 0.8  # the case really straddles the threshold
    r = frame_ap(jhmdb, detections(rows), 0.5, "act")
    np.testing.assert_allclose([c.ap for c in r.classes], hits / total, rtol=0, atol=1e-12)


def test_thumos_shape(thumos):
    n_amb = sum(s.ambiguous for v in thumos.videos for s in v.segments)
    n_gt = sum(not s.ambiguous for v in thumos.videos for s in v.segments)
    assert (len(thumos), thumos.num_classes, n_gt, n_amb) == (213, 20, 3358, 99)


def test_thumos_perfect_and_shortened_predictions(thumos):
    segs = [(v.name, s) for v in thumos.videos for s in v.segments if not s.ambiguous]
    perfect = segment_preds([(n, s.label, 1.0, s.start, s.end) for n, s in segs])
    rep = evaluate_all(thumos, segments=perfect)
    assert all(v == pytest.approx(100.0) for v in rep.metrics.values())
    # Each prediction = the first 60 % of its segment: tIoU 0.6 with it (equal to the threshold
    # 0.6 counts), and on this data never >= 0.65 with any other segment of its class.
    short = segment_preds([(n, s.label, 1.0, s.start, s.start + 0.6 * (s.end - s.start))
                           for n, s in segs])
    res = temporal_ap(thumos, short)
    for t, r in res.items():
        assert r.mean_ap == (1.0 if t <= 0.6 else 0.0), t


def test_thumos_ambiguous_segments(thumos):
    segs = [(v.name, s) for v in thumos.videos for s in v.segments]
    amb = [(n, 0, 2.0, s.start, s.end) for n, s in segs if s.ambiguous]  # top-ranked, class 0
    gt = [(n, s.label, 1.0, s.start, s.end) for n, s in segs if not s.ambiguous]
    preds = segment_preds(amb + gt)
    r = temporal_ap(thumos, preds, (0.5,))[0.5]
    assert r.mean_ap == 1.0 and r.ignored["ambiguous_overlap"] == len(amb) == 99
    # Kept as false positives, all 99 rank before the n true positives of class 0: precision
    # reaches its maximum n / (n + 99) at the end, so AP = n / (n + 99).
    r2 = temporal_ap(thumos, preds, (0.5,), ignore_ambiguous=False)[0.5]
    n = r2.classes[0].num_gt
    assert r2.classes[0].num_tp == n
    assert r2.classes[0].ap == pytest.approx(n / (n + 99))
