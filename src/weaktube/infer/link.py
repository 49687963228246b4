"""Link per-frame detections into action tubes, per video and class, and trim them in time.

Two linkers, chosen by ``LinkConfig.method``:

* ``"greedy"`` (online; ACT, Kalogeiton et al. 2017 / Singh et al. ICCV 2017): frames in order;
  active tubes, best score first, each take the unassigned detection of their class with the
  highest ``score + iou_weight * IoU`` among those with ``IoU >= iou_threshold`` to the tube's
  last box; unmatched detections with ``score >= start_threshold`` start tubes; a tube that
  misses more than ``max_gap`` consecutive frames ends.
* ``"viterbi"`` (offline; Gkioxari & Malik 2015 / Saha et al. 2016): per class, the path through
  the video maximising ``sum of scores + iou_weight * sum of IoUs of consecutive boxes`` (links
  need the same IoU gate and may skip up to ``max_gap`` frames), extracted repeatedly, each
  time removing the detections used.

Both then share the same finishing: a 2-state Viterbi over each tube's per-frame scores trims
it to where the action is (``trim``); missed frames are either interpolated (``fill_gaps``) or
split the tube in two; short tubes are dropped; a tube's score is the mean (or top-k mean) of
its box scores. Details, defaults and complexity: ``docs/LINKING.md``.

Boxes are absolute pixels ``[x1, y1, x2, y2]``; frames are 0-based indices; IoU is continuous
(no +1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from weaktube.boxes import np_iou_paired
from weaktube.infer.temporal import mask_runs, two_state_viterbi, video_index
from weaktube.structures import AnnotationError, Detections, TubePredictions

LINK_METHODS = ("greedy", "viterbi")


@dataclass
class LinkConfig:
    """Parameters of :func:`link_tubes` (see ``docs/LINKING.md``)."""

    # "greedy": online frame-by-frame linking (ACT / Singh et al. 2017); "viterbi": best paths
    # over the whole video, extracted one after the other (Gkioxari & Malik 2015, Saha 2016).
    method: str = "greedy"
    min_score: float = 0.01  # detections scoring below this are ignored
    top_k: int = 10  # per (video, frame, class) only the top_k highest-scoring detections link
    iou_threshold: float = 0.3  # a link needs IoU >= this between consecutive boxes of a tube
    iou_weight: float = 1.0  # lambda: a link's gain is the new box's score + lambda * IoU
    # greedy: an unmatched detection starts a tube only when its score is >= this;
    # viterbi: paths of a class are extracted while one of its detections >= this is unused.
    start_threshold: float = 0.3
    max_gap: int = 3  # a tube may miss up to this many consecutive frames; one more ends it
    max_paths: int = 10  # viterbi only: at most this many paths per (video, class)
    trim: bool = True  # cut tubes to where the action is (2-state Viterbi on the box scores)
    trim_threshold: float = 0.2  # trimming: frames scoring below this lean to "background"
    trim_penalty: float = 1.0  # trimming: cost of each action<->background switch (score*frames)
    # False: a tube missing a frame is split there into two tubes (TubePredictions needs one
    # box per frame); True: the missing boxes are linearly interpolated from the neighbours.
    fill_gaps: bool = False
    min_length: int = 5  # output tubes shorter than this many frames are dropped
    score_top_k: int = 0  # tube score: mean of all its box scores (0) or of its k best

    def __post_init__(self) -> None:
        if self.method not in LINK_METHODS:
            raise ValueError(f"method must be one of {LINK_METHODS}, got {self.method!r}")
        for name in ("top_k", "max_paths", "min_length"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("max_gap", "score_top_k", "iou_weight", "trim_penalty"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 <= self.iou_threshold <= 1.0:
            raise ValueError(f"iou_threshold must be in [0, 1], got {self.iou_threshold}")


# ----------------------------------------------------------------------------- validation
def check_detections(dets: Detections, num_classes: int | None = None) -> None:
    """Raise :class:`AnnotationError` naming the video, frame and field of the first bad row."""
    n = len(dets.scores)
    for name in ("videos", "frames", "labels", "boxes"):
        if len(getattr(dets, name)) != n:
            raise AnnotationError(f"has {len(getattr(dets, name))} rows but there are {n} "
                                  "scores", field=name)
    boxes = np.asarray(dets.boxes, np.float64)
    if boxes.shape != (n, 4):
        raise AnnotationError(f"must be [D, 4], got shape {boxes.shape}", field="boxes")
    frames = np.asarray(dets.frames)
    labels = np.asarray(dets.labels)
    scores = np.asarray(dets.scores, np.float64)
    if n == 0:
        return
    k = num_classes
    checks = (
        ("frame", frames < 0, "must be >= 0"),
        ("label", (labels < 0) | (labels >= (k if k is not None else np.inf)),
         "is not a class index" + (f" 0..{k - 1}" if k is not None else "")),
        ("score", ~np.isfinite(scores), "is not finite"),
        ("boxes", ~np.isfinite(boxes).all(axis=1), "is not finite"),
        ("boxes", (boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1]),
         "needs x1 <= x2 and y1 <= y2"),
    )
    values = {"frame": frames, "label": labels, "score": scores, "boxes": boxes}
    for name, bad, msg in checks:
        if np.any(bad):
            i = int(np.argmax(bad))
            raise AnnotationError(f"detection {i}: {name} {values[name][i].tolist()} {msg}",
                                  video=str(dets.videos[i]), frame=int(frames[i]), field=name)


# ------------------------------------------------------------------------------- linkers
def greedy_assign(gain: np.ndarray) -> np.ndarray:
    """Sequential greedy assignment, rows in priority order: ``[A, M] -> [A]``.

    Row 0 takes its highest-gain column, row 1 its highest among the columns left, and so on;
    ``-inf`` marks a forbidden pair; ties go to the lowest column. Returns each row's column, or
    -1. Vectorised: each round accepts the longest prefix of rows whose best columns differ,
    which gives exactly the sequential result.
    """
    gain = np.array(gain, dtype=np.float64)  # copy: taken columns are overwritten
    a = gain.shape[0]
    out = np.full(a, -1, np.int64)
    if gain.size == 0:
        return out
    rows = np.arange(a)
    while len(rows):
        g = gain[rows]  # [R, M]
        best = g.argmax(axis=1)  # [R]
        ok = np.isfinite(g[np.arange(len(rows)), best])
        rows, best = rows[ok], best[ok]  # rows with nothing left now never get anything
        if not len(rows):
            break
        _, first = np.unique(best, return_index=True)
        repeat = np.ones(len(best), dtype=bool)
        repeat[first] = False  # True where an earlier row wants the same column
        stop = int(np.argmax(repeat)) if repeat.any() else len(best)
        out[rows[:stop]] = best[:stop]
        gain[:, best[:stop]] = -np.inf
        rows = rows[stop:]
    return out


def _frame_slices(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted ``frames [M]`` -> (distinct frames [F], first row [F], end row [F])."""
    uniq, first = np.unique(frames, return_index=True)
    return uniq, first, np.append(first[1:], len(frames))


def _split_by(ids: np.ndarray, rows: np.ndarray) -> list[np.ndarray]:
    """Group ``rows`` by ``ids`` (stable, so each group keeps its order), groups by id."""
    if not len(ids):
        return []
    order = np.argsort(ids, kind="stable")
    ids, rows = ids[order], rows[order]
    return np.split(rows, np.flatnonzero(np.diff(ids)) + 1)


def _all_distinct(x: np.ndarray) -> bool:
    """True when no value occurs twice in the 1-d array ``x``."""
    if len(x) < 2:
        return True
    xs = np.sort(x)
    return not bool((xs[1:] == xs[:-1]).any())


def link_candidates(frames: np.ndarray, labels: np.ndarray, boxes: np.ndarray,
                    cfg: LinkConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every allowed link between two detections of one video: ``(src [E], dst [E], iou [E])``.

    ``src -> dst`` when both have the same label, ``1 <= frames[dst] - frames[src] <= max_gap
    + 1`` and ``IoU >= iou_threshold``. Sorted by ``(frames[dst], dst, src)``. Fully vectorised:
    the pairs come from one sort by (label, frame) and one paired IoU.
    """
    m = len(frames)
    if m == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    span = int(frames.max()) + cfg.max_gap + 3  # key = label * span + frame never collides
    key = labels * span + frames
    order = np.argsort(key, kind="stable")
    skey = key[order]
    lo = np.searchsorted(skey, skey + 1, side="left")  # [M] first candidate of each position
    hi = np.searchsorted(skey, skey + cfg.max_gap + 1, side="right")  # [M] exclusive end
    count = hi - lo
    total = int(count.sum())
    src_pos = np.repeat(np.arange(m), count)  # [E]
    offset = np.arange(total) - np.repeat(np.cumsum(count) - count, count)  # [E] 0.. per src
    dst_pos = np.repeat(lo, count) + offset
    src, dst = order[src_pos], order[dst_pos]
    iou = np_iou_paired(boxes[src], boxes[dst])  # [E]
    ok = iou >= cfg.iou_threshold
    src, dst, iou = src[ok], dst[ok], iou[ok]
    by_dst = np.lexsort((src, dst, frames[dst]))
    return src[by_dst], dst[by_dst], iou[by_dst]


def link_greedy(frames: np.ndarray, labels: np.ndarray, scores: np.ndarray, boxes: np.ndarray,
                cfg: LinkConfig) -> list[np.ndarray]:
    """Online greedy linking of one video's detections, all classes at once.

    Inputs are the video's detections sorted by frame: ``frames [M]`` (0-based), ``labels
    [M]``, ``scores [M]``, ``boxes [M, 4]`` pixels. Returns one array of row indices per tube,
    in frame order (strictly increasing frames, holes of at most ``cfg.max_gap`` frames).
    Classes never interact: a tube only takes detections of its own class.
    """
    m = len(frames)
    src, dst, iou = link_candidates(frames, labels, boxes, cfg)
    gain = scores[dst] + cfg.iou_weight * iou  # [E] value of extending src's tube with dst
    edge_frame = frames[dst]
    # Tube state, indexed by tube id (a tube starts from one row, so there are at most M).
    last_row = np.zeros(m, np.int64)
    last_frame = np.zeros(m, np.int64)
    score_sum = np.zeros(m)
    count = np.zeros(m, np.int64)
    owner = np.full(m, -1, np.int64)  # [M] id of the active tube whose last box is this row
    active = np.zeros(0, np.int64)  # ids of the active tubes
    link_tube, link_row = [], []  # per frame: (tube id [L], detection row [L])
    next_id = 0
    uniq, first, end = _frame_slices(frames)
    edge_lo = np.searchsorted(edge_frame, uniq, side="left")  # [F] links into each frame
    edge_hi = np.searchsorted(edge_frame, uniq, side="right")
    for f, a, b, e0, e1 in zip(uniq, first, end, edge_lo, edge_hi):
        idle = f - last_frame[active] - 1 > cfg.max_gap
        if idle.any():
            owner[last_row[active[idle]]] = -1
            active = active[~idle]
        taken = np.zeros(b - a, dtype=bool)
        tube = owner[src[e0:e1]]  # [E_f] tube each candidate link would extend, -1 = none
        live = tube >= 0
        if live.any():
            tube, d, g = tube[live], dst[e0:e1][live] - a, gain[e0:e1][live]
            if _all_distinct(tube) and _all_distinct(d):  # no competition: take every link
                ids, rows = tube, a + d
            else:
                cand, which = np.unique(tube, return_inverse=True)  # tubes with a candidate
                priority = np.lexsort((cand, -score_sum[cand] / count[cand]))  # best, oldest
                rank = np.empty(len(cand), np.int64)
                rank[priority] = np.arange(len(cand))
                table = np.full((len(cand), b - a), -np.inf)  # [A_f, M_f] in priority order
                table[rank[which], d] = g
                pick = greedy_assign(table)
                hit = np.flatnonzero(pick >= 0)
                ids, rows = cand[priority[hit]], a + pick[hit]
            owner[last_row[ids]] = -1
            owner[rows] = ids
            last_row[ids] = rows
            last_frame[ids] = f
            score_sum[ids] += scores[rows]
            count[ids] += 1
            taken[rows - a] = True
            link_tube.append(ids)
            link_row.append(rows)
        new = a + np.flatnonzero(~taken & (scores[a:b] >= cfg.start_threshold))
        ids = np.arange(next_id, next_id + len(new))
        next_id += len(new)
        last_row[ids], last_frame[ids], score_sum[ids], count[ids] = new, f, scores[new], 1
        owner[new] = ids
        active = np.concatenate([active, ids])
        link_tube.append(ids)
        link_row.append(new)
    if not link_tube:
        return []
    return _split_by(np.concatenate(link_tube), np.concatenate(link_row))


def _best_paths(frames: np.ndarray, scores: np.ndarray, on: np.ndarray, src: np.ndarray,
                dst: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dynamic programme over the detections ``on`` (links sorted by destination frame).

    Returns ``best [M]``: the best total ``sum scores + sum weights`` of a path ending at each
    row (``-inf`` for rows not on), and ``back [M]``: the previous row on that path (-1 = it
    starts there).
    """
    best = np.where(on, scores, -np.inf)
    back = np.full(len(scores), -1, np.int64)
    live = on[src] & on[dst]
    src, dst, weight = src[live], dst[live], weight[live]
    if not len(src):
        return best, back
    # Links grouped by destination frame (then destination); sources lie in earlier frames.
    cut = np.flatnonzero(np.diff(frames[dst])) + 1
    for lo, hi in zip(np.concatenate([[0], cut]), np.concatenate([cut, [len(dst)]])):
        cand = best[src[lo:hi]] + weight[lo:hi]  # [E_f]
        d = dst[lo:hi]
        order = np.lexsort((-cand, d))  # per destination, best candidate first (stable)
        d_sorted = d[order]
        first = np.concatenate([[True], d_sorted[1:] != d_sorted[:-1]])
        top = order[first]
        best[d[top]] = scores[d[top]] + cand[top]
        back[d[top]] = src[lo:hi][top]
    return best, back


def link_viterbi(frames: np.ndarray, labels: np.ndarray, scores: np.ndarray,
                 boxes: np.ndarray, cfg: LinkConfig) -> list[np.ndarray]:
    """Repeated best-path extraction over one video's detections (inputs as
    :func:`link_greedy`). Returns one array of row indices per path, in frame order.

    Each round runs one dynamic programme for every class still extracting, takes each class's
    best path (the highest ``sum scores + iou_weight * sum IoUs``), and removes its detections.
    A class stops when none of its unused detections scores ``>= start_threshold`` or after
    ``max_paths`` paths.
    """
    src, dst, iou = link_candidates(frames, labels, boxes, cfg)
    weight = cfg.iou_weight * iou
    unused = np.ones(len(frames), dtype=bool)
    num_paths: dict[int, int] = {}
    paths = []
    while True:
        strong = np.unique(labels[unused & (scores >= cfg.start_threshold)])
        active = [int(c) for c in strong if num_paths.get(int(c), 0) < cfg.max_paths]
        if not active:
            break
        on = unused & np.isin(labels, active)
        best, back = _best_paths(frames, scores, on, src, dst, weight)
        for c in active:
            rows_c = np.flatnonzero(on & (labels == c))
            end = int(rows_c[np.argmax(best[rows_c])])
            path = [end]
            while back[path[-1]] >= 0:
                path.append(int(back[path[-1]]))
            path_rows = np.asarray(path[::-1], np.int64)
            paths.append(path_rows)
            unused[path_rows] = False
            num_paths[c] = num_paths.get(c, 0) + 1
    return paths


# ------------------------------------------------------------------------------ finishing
def _tube_score(scores: np.ndarray, top_k: int) -> float:
    """Mean of the box scores, or of the ``top_k`` best when ``top_k > 0``."""
    if top_k > 0 and len(scores) > top_k:
        scores = np.sort(scores)[-top_k:]
    return float(scores.mean())


def finish_tubes(paths: list[np.ndarray], frames: np.ndarray, scores: np.ndarray,
                 boxes: np.ndarray, cfg: LinkConfig) -> list[tuple[int, int, np.ndarray, float]]:
    """Trim, fill or split, filter and score linked paths of one video.

    ``paths``: row-index arrays into ``frames [M]``, ``scores [M]``, ``boxes [M, 4]``. Returns
    ``(path index, start_frame, boxes [T, 4] float64, score)`` per output tube.

    1. Each path's per-frame scores over its span (first to last frame; missed frames get the
       score linearly interpolated from their neighbours) go through :func:`two_state_viterbi`
       with reward ``score - trim_threshold`` and ``trim_penalty`` per switch; every action run
       is kept (one path can give several tubes). ``trim=False`` keeps the whole span.
    2. Each run is cut to its first and last detected frame. ``fill_gaps``: missed frames get
       linearly interpolated boxes; otherwise the run is split at every missed frame.
    3. Tubes shorter than ``min_length`` frames are dropped; a tube's score is the mean (or
       ``score_top_k`` mean) of its detected boxes' scores (interpolated boxes do not count).
    """
    spans = np.array([frames[p[-1]] - frames[p[0]] + 1 for p in paths], np.int64)
    keep = np.flatnonzero(spans >= cfg.min_length)  # trimming and splitting only shorten
    if not len(keep):
        return []
    width = int(spans[keep].max())
    dense = np.zeros((len(keep), width))  # [N, T_max] per-frame scores over each span
    for i, pi in enumerate(keep):
        p = paths[pi]
        rel = frames[p] - frames[p[0]]
        dense[i, : spans[pi]] = np.interp(np.arange(spans[pi]), rel, scores[p])
    if cfg.trim:
        action = two_state_viterbi(dense - cfg.trim_threshold, cfg.trim_penalty, spans[keep])
    else:
        action = np.arange(width)[None, :] < spans[keep][:, None]  # [N, T_max]
    out = []
    for i, pi in enumerate(keep):
        p = paths[pi]
        f0 = int(frames[p[0]])
        rel = frames[p] - f0  # [n] detected frames, relative to the span start
        for r0, r1 in zip(*mask_runs(action[i])):
            inside = np.flatnonzero((rel >= r0) & (rel < r1))
            if not len(inside):
                continue
            if cfg.fill_gaps:
                pieces = [inside]
            else:
                pieces = np.split(inside, np.flatnonzero(np.diff(rel[inside]) > 1) + 1)
            for piece in pieces:
                first, last = int(rel[piece[0]]), int(rel[piece[-1]])
                if last - first + 1 < cfg.min_length:
                    continue
                rows = p[piece]
                t = np.arange(first, last + 1)
                tube_boxes = np.stack([np.interp(t, rel[piece], boxes[rows, c])
                                       for c in range(4)], axis=1)  # 4 x [T] -> [T, 4]
                out.append((int(pi), f0 + first, tube_boxes,
                            _tube_score(scores[rows], cfg.score_top_k)))
    return out


# ---------------------------------------------------------------------------------- driver
def _candidates(dets: Detections,
                cfg: LinkConfig) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Rows kept for linking (``score >= min_score``, top ``top_k`` per video, frame and
    class), ordered by video, frame, descending score. Returns ``(rows [R], video [R],
    names [V])``: each row's index into the sorted distinct video names."""
    names, vid = video_index(dets.videos)
    frames = np.asarray(dets.frames, np.int64)
    labels = np.asarray(dets.labels, np.int64)
    scores = np.asarray(dets.scores, np.float64)
    keep = np.flatnonzero(scores >= cfg.min_score)
    # One int64 key per (video, frame) and per (video, frame, class); lexsort is stable, so
    # equal scores keep the input order.
    video_frame = vid[keep] * (int(frames.max()) + 1) + frames[keep]
    group = video_frame * (int(labels.max()) + 1) + labels[keep]
    order = np.lexsort((-scores[keep], group))
    g = group[order]
    first = np.concatenate([[True], g[1:] != g[:-1]])
    start = np.maximum.accumulate(np.where(first, np.arange(len(g)), 0))
    rank = np.arange(len(g)) - start  # 0 for the best detection of each (video, frame, class)
    best = order[rank < cfg.top_k]
    rows = keep[best[np.lexsort((-scores[keep][best], video_frame[best]))]]
    return rows, vid[rows], names


def link_tubes(dets: Detections, cfg: LinkConfig | None = None,
               num_classes: int | None = None) -> TubePredictions:
    """Per-frame detections -> action tubes, per video and class.

    ``dets``: any number of videos; frames 0-based, boxes absolute pixels. ``num_classes``:
    when given, labels must be below it. Returns tubes sorted by video name, then label, then
    descending score; boxes ``[T, 4]`` float64 pixels, one per frame from ``start_frame``.
    Bad input raises :class:`AnnotationError` naming the video, frame and field.
    """
    cfg = cfg or LinkConfig()
    check_detections(dets, num_classes)
    if len(dets) == 0:
        return TubePredictions.empty()
    rows, vid, names = _candidates(dets, cfg)
    frames_all = np.asarray(dets.frames, np.int64)
    labels_all = np.asarray(dets.labels, np.int64)
    scores_all = np.asarray(dets.scores, np.float64)
    boxes_all = np.asarray(dets.boxes, np.float64)
    linker = link_greedy if cfg.method == "greedy" else link_viterbi
    out_v, out_l, out_s, out_f, out_b = [], [], [], [], []
    cut = np.flatnonzero(np.diff(vid)) + 1  # rows of one video are contiguous
    for lo, hi in zip(np.concatenate([[0], cut]), np.concatenate([cut, [len(rows)]])):
        r = rows[lo:hi]
        if not len(r):
            continue
        frames, labels, scores, boxes = (frames_all[r], labels_all[r], scores_all[r],
                                         boxes_all[r])
        paths = linker(frames, labels, scores, boxes, cfg)
        tubes = finish_tubes(paths, frames, scores, boxes, cfg)
        tubes.sort(key=lambda t: (labels[paths[t[0]][0]], -t[3], t[1]))
        for pi, start, tube_boxes, score in tubes:
            out_v.append(names[vid[lo]])
            out_l.append(int(labels[paths[pi][0]]))
            out_s.append(score)
            out_f.append(start)
            out_b.append(tube_boxes)
    if not out_v:
        return TubePredictions.empty()
    return TubePredictions(np.array(out_v, object), np.array(out_l, np.int64),
                           np.array(out_s, np.float64), np.array(out_f, np.int64), out_b)
