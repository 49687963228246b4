"""Anchor shapes from k-means on training boxes (YOLOv2's 1 - IoU distance)."""

from __future__ import annotations

import numpy as np

from weaktube.structures import AnnotationSet


def box_sizes(ann: AnnotationSet, max_boxes: int = 200_000, seed: int = 0) -> np.ndarray:
    """``[M, 2]`` (w, h) of all tube boxes, normalised by their video's width and height."""
    sizes = []
    for v in ann.videos:
        for t in v.tubes:
            wh = (t.boxes[:, 2:] - t.boxes[:, :2]) / np.array([v.width, v.height], np.float32)
            sizes.append(wh)
    if not sizes:
        raise ValueError("anchors: the annotation set has no boxes to cluster")
    wh = np.concatenate(sizes).astype(np.float64)
    if len(wh) > max_boxes:
        wh = wh[np.random.default_rng(seed).choice(len(wh), max_boxes, replace=False)]
    return wh


def wh_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``[N, 2] x [K, 2] -> [N, K]`` IoU of boxes sharing a centre."""
    inter = np.minimum(a[:, None, 0], b[None, :, 0]) * np.minimum(a[:, None, 1], b[None, :, 1])
    return inter / (a[:, None].prod(-1) + b[None, :].prod(-1) - inter)


def kmeans_anchors(wh: np.ndarray, k: int, seed: int = 0, iters: int = 100) -> np.ndarray:
    """``[M, 2]`` box sizes -> ``[k, 2]`` anchors (sorted by area), k-means with 1 - IoU.

    Deterministic for a given ``seed`` (k-means++-style initialisation).
    """
    if len(wh) < k:
        raise ValueError(f"anchors: {len(wh)} boxes are fewer than {k} anchors")
    rng = np.random.default_rng(seed)
    centres = [wh[rng.integers(len(wh))]]
    for _ in range(1, k):  # k-means++: next centre far (in 1 - IoU) from the chosen ones
        d = 1.0 - wh_iou(wh, np.array(centres)).max(1)
        centres.append(wh[rng.choice(len(wh), p=d / d.sum()) if d.sum() > 0 else
                          rng.integers(len(wh))])
    c = np.array(centres)
    for _ in range(iters):
        assign = wh_iou(wh, c).argmax(1)
        new = np.array([np.median(wh[assign == j], 0) if (assign == j).any() else c[j]
                        for j in range(k)])
        if np.allclose(new, c):
            break
        c = new
    return c[np.argsort(c.prod(1))]


def anchors_for(ann: AnnotationSet, k: int, seed: int = 0) -> tuple[tuple[float, float], ...]:
    """Anchors for a detector config: ``k`` (w, h) pairs normalised to the image size."""
    c = kmeans_anchors(box_sizes(ann, seed=seed), k, seed=seed)
    return tuple((round(float(w), 4), round(float(h), 4)) for w, h in c)
