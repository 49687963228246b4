"""Overlap measures for evaluation: boxes, tubes and temporal segments, numpy only.

Kept free of torch on purpose, so that the evaluator runs where only numpy is installed; box IoU
is :func:`weaktube.boxes.np_iou_paired` (numpy only).

Conventions:

* boxes are ``[x1, y1, x2, y2]`` in absolute pixels; ``plus_one=True`` counts pixels inclusively
  (width = x2 - x1 + 1), as the ACT / VOC / YOWO evaluation code does;
* tubes cover the frames ``start .. start + T - 1`` inclusive, one box per frame;
* segments are ``[start, end]`` in continuous seconds (no +1).
"""

from __future__ import annotations

import numpy as np

from weaktube.boxes import np_iou_paired

# Pairs handled per numpy batch in the tube IoU; bounds the memory of the per-frame arrays.
_FRAMES_PER_BATCH = 1 << 21


def paired_box_iou(a: np.ndarray, b: np.ndarray, plus_one: bool) -> np.ndarray:
    """``[N, 4] x [N, 4] -> [N]`` IoU of row i of ``a`` with row i of ``b``."""
    return np_iou_paired(a, b, plus_one=plus_one)


def segment_iou(a_start: np.ndarray, a_end: np.ndarray, b_start: np.ndarray,
                b_end: np.ndarray) -> np.ndarray:
    """``[N]`` temporal IoU of segment i of ``a`` with segment i of ``b`` (seconds, no +1)."""
    inter = np.clip(np.minimum(a_end, b_end) - np.maximum(a_start, b_start), 0.0, None)
    union = (a_end - a_start) + (b_end - b_start) - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


class TubeSet:
    """Tubes flattened for vectorised IoU: ``N`` tubes, ``sum(T_i)`` boxes.

    ``starts [N]`` first frame, ``lengths [N]`` frames, ``offsets [N]`` row of each tube's first
    box in ``flat [sum T_i, 4]`` (float64 pixels).
    """

    def __init__(self, starts: np.ndarray, boxes: list[np.ndarray]) -> None:
        self.starts = np.asarray(starts, dtype=np.int64).reshape(-1)
        self.lengths = np.asarray([len(b) for b in boxes], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(np.int64)
        if boxes:
            self.flat = np.concatenate([np.asarray(b, np.float64).reshape(-1, 4) for b in boxes])
        else:
            self.flat = np.zeros((0, 4), np.float64)

    def __len__(self) -> int:
        return len(self.starts)

    @property
    def ends(self) -> np.ndarray:
        """``[N]`` last frame, inclusive."""
        return self.starts + self.lengths - 1


def tube_iou_pairs(a: TubeSet, ia: np.ndarray, b: TubeSet, ib: np.ndarray,
                   plus_one: bool) -> np.ndarray:
    """``[P]`` spatio-temporal IoU of tube ``a[ia[p]]`` with tube ``b[ib[p]]``.

    tube IoU = temporal IoU x mean per-frame box IoU over the frames both tubes cover, with
    frames counted inclusively (tubes over frames 3..5 and 5..9 overlap in one frame:
    temporal IoU 1/7). Tubes without a common frame have IoU 0.
    """
    ia = np.asarray(ia, dtype=np.int64)
    ib = np.asarray(ib, dtype=np.int64)
    out = np.zeros(len(ia), dtype=np.float64)
    sa, ea, sb, eb = a.starts[ia], a.ends[ia], b.starts[ib], b.ends[ib]
    t0 = np.maximum(sa, sb)
    n_common = np.minimum(ea, eb) - t0 + 1  # [P] frames both tubes cover (<= 0: none)
    hull = np.maximum(ea, eb) - np.minimum(sa, sb) + 1
    valid = np.nonzero(n_common > 0)[0]
    if len(valid) == 0:
        return out
    # Batches of pairs whose common frames sum to about _FRAMES_PER_BATCH.
    cum = np.cumsum(n_common[valid])
    cuts = np.searchsorted(cum, np.arange(_FRAMES_PER_BATCH, cum[-1], _FRAMES_PER_BATCH))
    for sel in np.split(valid, np.unique(cuts + 1)):
        if len(sel) == 0:
            continue
        n = n_common[sel]
        pair = np.repeat(np.arange(len(sel)), n)  # [F] which pair each common frame belongs to
        first = np.cumsum(n) - n
        k = np.arange(len(pair)) - first[pair]  # [F] 0-based position inside the common span
        fa = a.offsets[ia[sel]][pair] + (t0[sel] - sa[sel])[pair] + k
        fb = b.offsets[ib[sel]][pair] + (t0[sel] - sb[sel])[pair] + k
        iou = paired_box_iou(a.flat[fa], b.flat[fb], plus_one)
        spatial = np.bincount(pair, weights=iou, minlength=len(sel)) / n
        out[sel] = spatial * n / hull[sel]
    return out


def tube_iou(a_start: int, a_boxes: np.ndarray, b_start: int, b_boxes: np.ndarray,
             plus_one: bool = True) -> float:
    """Spatio-temporal IoU of two tubes (``[T, 4]`` boxes from 0-based frame ``start``)."""
    a = TubeSet(np.array([a_start]), [np.asarray(a_boxes).reshape(-1, 4)])
    b = TubeSet(np.array([b_start]), [np.asarray(b_boxes).reshape(-1, 4)])
    return float(tube_iou_pairs(a, np.array([0]), b, np.array([0]), plus_one)[0])
