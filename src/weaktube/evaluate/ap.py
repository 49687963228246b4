"""Precision/recall curves, the two AP integrals in use, and the per-class result records.

* :func:`ap_raw_trapezoid` — ACT / MOC (``pr_to_ap``): the raw precision/recall curve, starting
  at (recall 0, precision 1), integrated with the trapezoid rule:
  ``sum_i (r_i - r_{i-1}) * (p_i + p_{i-1}) / 2``.
* :func:`ap_interpolated` — PASCAL VOC 2010+ "all points", ActivityNet
  (``interpolated_prec_rec``), YOWO: precision replaced by its monotone envelope
  ``max_{j >= i} p_j``, summed over the points where recall changes, with sentinels
  (r=0, p=0) in front and (r=1, p=0) at the end.

Every AP here is a fraction in [0, 1]; reports convert to percent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


def precision_recall(is_tp: np.ndarray, num_gt: int) -> tuple[np.ndarray, np.ndarray]:
    """``[P]`` TP flags in score order -> precision ``[P]``, recall ``[P]`` after each one."""
    tp = np.cumsum(np.asarray(is_tp, dtype=bool), dtype=np.float64)
    precision = tp / np.arange(1, len(tp) + 1, dtype=np.float64)
    recall = tp / num_gt if num_gt > 0 else np.zeros_like(tp)
    return precision, recall


def ap_raw_trapezoid(precision: np.ndarray, recall: np.ndarray) -> float:
    """ACT's AP: trapezoids under the raw curve from (r=0, p=1) through every point."""
    p = np.concatenate([[1.0], np.asarray(precision, np.float64)])
    r = np.concatenate([[0.0], np.asarray(recall, np.float64)])
    return float(np.sum(np.diff(r) * (p[1:] + p[:-1]) * 0.5))


def ap_interpolated(precision: np.ndarray, recall: np.ndarray) -> float:
    """VOC / ActivityNet AP: area under the monotone precision envelope."""
    mpre = np.concatenate([[0.0], np.asarray(precision, np.float64), [0.0]])
    mrec = np.concatenate([[0.0], np.asarray(recall, np.float64), [1.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]  # envelope: max precision at recall >= r
    idx = np.nonzero(mrec[1:] != mrec[:-1])[0] + 1
    return float(np.sum((mrec[idx] - mrec[idx - 1]) * mpre[idx]))


@dataclass
class ClassAP:
    """One class at one threshold.

    ``precision`` / ``recall`` ``[num_scored]``: the curve after each scored prediction of the
    class, in evaluation order (descending score). ``ap`` is NaN when the class has no ground
    truth; such classes are left out of the mean.
    """

    label: int
    name: str
    ap: float
    num_gt: int
    num_scored: int
    num_tp: int
    precision: np.ndarray = field(repr=False)
    recall: np.ndarray = field(repr=False)


@dataclass
class APResult:
    """All classes of one metric at one threshold.

    ``ignored`` counts predictions kept off the curves on purpose, by reason: ``"unknown_video"``
    (video not in the ground truth), ``"unannotated_frame"`` (YOWO profile),
    ``"ambiguous_overlap"`` (unmatched segment overlapping an ambiguous one).
    """

    metric: str
    threshold: float
    classes: list[ClassAP]
    ignored: dict[str, int] = field(default_factory=dict)

    @property
    def num_ignored(self) -> int:
        return int(sum(self.ignored.values()))

    @property
    def mean_ap(self) -> float:
        """Mean AP over the classes that have ground truth; NaN when none has."""
        aps = [c.ap for c in self.classes if c.num_gt > 0]
        return float(np.mean(aps)) if aps else math.nan

    def ap_by_class(self) -> dict[str, float]:
        return {c.name: c.ap for c in self.classes}


def class_aps(labels: np.ndarray, is_tp: np.ndarray, num_gt: np.ndarray, names: list[str],
              interpolated: bool) -> list[ClassAP]:
    """Per-class AP from scored predictions already in evaluation order.

    ``labels [P]`` sorted by class (then by descending score inside a class), ``is_tp [P]``,
    ``num_gt [K]`` ground-truth count per class. ``interpolated`` picks :func:`ap_interpolated`
    over :func:`ap_raw_trapezoid`.
    """
    integrate = ap_interpolated if interpolated else ap_raw_trapezoid
    k = len(names)
    bounds = np.searchsorted(labels, np.arange(k + 1))  # class c is labels[bounds[c]:bounds[c+1]]
    out = []
    for c in range(k):
        flags = is_tp[bounds[c]:bounds[c + 1]]
        n = int(num_gt[c])
        precision, recall = precision_recall(flags, n)
        ap = integrate(precision, recall) if n > 0 else math.nan
        out.append(ClassAP(c, names[c], ap, n, len(flags), int(flags.sum()), precision, recall))
    return out
