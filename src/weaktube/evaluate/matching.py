"""Greedy score-ordered matching of predictions to ground truth, vectorised over groups.

Predictions are processed class by class in descending score (:func:`evaluation_order`); each
one may take one ground-truth instance of its *group* (same class and frame for boxes, same
class and video for tubes and segments). Two rules exist in the field:

* ``best_unmatched=True`` (ACT / MOC, ActivityNet): take the highest-IoU ground truth among
  those not yet taken whose IoU >= threshold; false positive if there is none.
* ``best_unmatched=False`` (PASCAL VOC, YOWO, the AVA / TF object-detection code): look at the
  highest-IoU ground truth overall; true positive only if its IoU >= threshold and it is not
  taken yet, otherwise false positive (even if another free one would have qualified).

Groups never share ground truth, so the k-th prediction of every group can be decided at the
same time: the loop runs over "waves" (k = 0, 1, ...), not over predictions.
"""

from __future__ import annotations

import os

import numpy as np

from weaktube.structures import AnnotationError

# An IoU within this of the threshold counts as reaching it: values equal to the threshold up to
# float rounding (e.g. 0.1 + 0.2 vs 0.3) are matches, as ">=" intends.
IOU_EPS = 1e-9


def evaluation_order(labels: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Indices sorting predictions by class, then by descending score.

    The sort is stable: predictions with equal scores keep their input order.
    """
    return np.lexsort((-np.asarray(scores, np.float64), np.asarray(labels, np.int64)))


def greedy_match(pair_pred: np.ndarray, pair_gt: np.ndarray, pair_iou: np.ndarray,
                 pred_group: np.ndarray, pred_rank: np.ndarray, num_gt: int, threshold: float,
                 best_unmatched: bool) -> tuple[np.ndarray, np.ndarray]:
    """Decide TP / FP for every prediction.

    ``pair_pred [Q]``, ``pair_gt [Q]``, ``pair_iou [Q]``: candidate (prediction, ground truth)
    pairs, both of the same group (pairs missing from the list have IoU 0).
    ``pred_group [N]`` group of each prediction, ``pred_rank [N]`` its position in evaluation
    order. Ties in IoU go to the lower ground-truth index.

    Returns ``is_tp [N]`` bool and ``matched_gt [N]`` (ground-truth index, -1 for none).
    """
    n = len(pred_rank)
    is_tp = np.zeros(n, dtype=bool)
    matched = np.full(n, -1, dtype=np.int64)
    # Pairs below the threshold can never make a TP under either rule, so drop them first:
    # under the VOC rule the best overall pair is then either kept (and still the best) or the
    # prediction has no pair left (and is a FP either way).
    keep = pair_iou >= threshold - IOU_EPS
    pp, pg, pi = pair_pred[keep], pair_gt[keep], pair_iou[keep]
    if len(pp) == 0:
        return is_tp, matched
    # Wave of each candidate prediction = its position among its group's candidates.
    cand = np.unique(pp)
    cand = cand[np.lexsort((pred_rank[cand], pred_group[cand]))]
    g = pred_group[cand]
    new_group = np.concatenate([[True], g[1:] != g[:-1]])
    group_start = np.maximum.accumulate(np.where(new_group, np.arange(len(cand)), 0))
    wave = np.empty(n, dtype=np.int64)
    wave[cand] = np.arange(len(cand)) - group_start
    # Pairs sorted by wave, prediction, descending IoU, ground-truth index.
    order = np.lexsort((pg, -pi, pp, wave[pp]))
    pp, pg = pp[order], pg[order]
    pw = wave[pp]
    bounds = np.searchsorted(pw, np.arange(pw[-1] + 2))
    taken = np.zeros(num_gt, dtype=bool)
    for w in range(len(bounds) - 1):
        p, q = pp[bounds[w]:bounds[w + 1]], pg[bounds[w]:bounds[w + 1]]
        if best_unmatched:
            free = ~taken[q]
            p, q = p[free], q[free]
            if len(p) == 0:
                continue
        first = np.concatenate([[True], p[1:] != p[:-1]])  # best pair of each prediction
        p, q = p[first], q[first]
        if not best_unmatched:
            free = ~taken[q]
            p, q = p[free], q[free]
        is_tp[p] = True
        matched[p] = q
        taken[q] = True
    return is_tp, matched


def pairs_by_key(pred_key: np.ndarray, gt_key: np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                                                      np.ndarray]:
    """All (prediction, ground truth) pairs with equal keys.

    ``pred_key [N]``, ``gt_key [G]`` int64 (negative = no group). Returns ``pair_pred [Q]``,
    ``pair_gt [Q]`` and ``pred_group [N]`` (index of the prediction's key among the distinct
    ground-truth keys; -1 when no ground truth shares it). Ground truth of one key is listed in
    its input order.
    """
    gorder = np.argsort(gt_key, kind="stable")
    skey = gt_key[gorder]
    ukeys, gstart, gcount = np.unique(skey, return_index=True, return_counts=True)
    n = len(pred_key)
    pred_group = np.full(n, -1, dtype=np.int64)
    if len(ukeys) == 0 or n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), pred_group
    pos = np.minimum(np.searchsorted(ukeys, pred_key), len(ukeys) - 1)
    hit = (ukeys[pos] == pred_key) & (pred_key >= 0)
    pred_group[hit] = pos[hit]
    preds = np.nonzero(hit)[0]
    counts = gcount[pos[preds]]
    pair_pred = np.repeat(preds, counts)
    within = np.arange(len(pair_pred)) - np.repeat(np.cumsum(counts) - counts, counts)
    pair_gt = gorder[np.repeat(gstart[pos[preds]], counts) + within]
    return pair_pred, pair_gt, pred_group


def name_index(names: np.ndarray, known: dict[str, int]) -> np.ndarray:
    """``[N]`` index of each name in ``known`` (-1 for names not there)."""
    return np.fromiter((known.get(str(v), -1) for v in names), dtype=np.int64,
                       count=len(names))


def check_classes(predicted: list[str] | None, classes: list[str],
                  file: str | os.PathLike | None = None) -> None:
    """Raise :class:`AnnotationError` when a prediction file's label space (its ``classes``,
    written by ``weaktube detect`` and training runs; ``None``: not recorded, not checked)
    differs from the ground truth's ``classes``: label ``i`` would name another action."""
    if predicted is None or list(predicted) == list(classes):
        return
    for i, (p, g) in enumerate(zip(predicted, classes)):
        if p != g:
            raise AnnotationError(f"label {i} is {p!r} here but {g!r} in the ground truth: the "
                                  "predictions were made for another class list (another "
                                  "converter or class order?)", file=file, field="classes")
    raise AnnotationError(f"{len(predicted)} classes here, {len(classes)} in the ground truth",
                          file=file, field="classes")


def check_columns(preds: object, columns: tuple[str, ...]) -> None:
    """Every named column of a columnar prediction set has one row per score, else
    :class:`AnnotationError` naming the column."""
    n = len(preds)  # type: ignore[arg-type]
    for name in columns:
        if len(getattr(preds, name)) != n:
            raise AnnotationError(f"has {len(getattr(preds, name))} rows but there are {n} "
                                  "scores", field=name)
