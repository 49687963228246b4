"""The target stage: training from temporal labels (paper eqs. 13-18, 21-22).

Clips of training videos that have tubes keep full supervision (``WeakConfig.use_boxes``: the
source stage's terms, named ``sup_*``); the rest of this docstring is about the others.

One training step on a batch of weak clips (keyframe class from the segment covering it, -1 for
background time):

1. branches 2 + 4 run first: per-frame boxes and objectness (``frames``) and features;
2. the network's own per-frame boxes (top box per frame, detached; or a teacher's with
   ``weak.teacher_decay``) that are confident and persist over the previous frames seed a
   classical tracker, run on a thread pool **while** branches 1 + 3 compute the keyframe head
   (OpenCV and torch both release the GIL);
3. GL (eq. 21): keyframe class = the segment's label; keyframe box = the tracker's propagation
   of the network's (or teacher's) box in frame N-2 to the keyframe (with ``use_trb``), else
   class and objectness (no box terms) at the own (or teacher's) keyframe box; background clips:
   "no object" everywhere;
4. IL (eq. 22): ``L_TRB`` (per-frame predictions pulled towards the tracker's boxes, with a
   tolerance) + ``rho * L_NCB`` (neighbour consistency of the per-frame target features);
   segment frames without a tracker box: objectness at the own (or teacher's) top box (no box
   terms); background clips also get branch 4's "no object" term.

Every choice the paper leaves open is listed in ``docs/WEAK.md``.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from weaktube.losses.consistency import neighbour_consistency_loss, target_features
from weaktube.losses.detection import DetectionLossConfig, clip_loss, grid_cell, yolo_loss
from weaktube.losses.size import size_loss
from weaktube.losses.tracking import tracking_loss
from weaktube.model.box_ops import torch_iou_paired, xyxy_to_cxcywh
from weaktube.model.decode import decode_boxes
from weaktube.model.detector import location_maps
from weaktube.structures import AMBIGUOUS_FRAME
from weaktube.tracking.propagate import PropagationJob, propagate_many
from weaktube.train.ema import ModelEma


@dataclass
class WeakConfig:
    use_trb: bool = True  # tracking-regularisation loss (and tracker boxes as keyframe targets)
    use_ncb: bool = True  # neighbour-consistency loss
    rho: float = 0.2  # weight of L_NCB in IL (paper: 0.2)
    eps: float = 1.0  # softmax temperature of L_NCB (paper: 1.0)
    tracker: str = "kcf"  # kcf | mil | csrt | mosse
    direction: str = "backward"  # tracker runs i+1 -> i (eq. 13) | forward | both
    seed_conf: float = 0.3  # a per-frame box seeds the tracker only with objectness >= this
    persist_frames: int = 2  # ... and if the previous k frames' boxes were confident too
    persist_iou: float = 0.3  # ... and overlap it by this IoU (the box "persists")
    skip_first: int = 1  # the first frames of a clip never seed (paper §4.5)
    tolerance_iou: float = 0.7  # no box loss once the prediction overlaps the tracker's this much
    # False: tracker boxes supervise the box centre (xy) only, not its size (wh). KCF, MOSSE and
    # MIL keep the size they were given (the network's own, clipped to the frame), so their
    # size carries no information of its own (docs/WEAK.md, docs/RESULTS.md §8)
    track_size: bool = False
    # Tracker targets whose seed box or tracked box reaches within this many pixels of the
    # clip's edge are dropped: the tracker starts from, and returns, only the part inside the
    # frame, so such a box is narrower than the actor. Negative: keep all (docs/WEAK.md).
    border_px: float = -1.0
    # True: a target made from the network's own boxes (self-labels, tracker boxes) trains the
    # anchor that produced the own box in that frame instead of the best shape match. False
    # (the shape match): every top box moved to one anchor within a target run and the boxes
    # drifted with it (docs/WEAK.md "Anchor drift")
    keep_anchor: bool = True
    # True: clips of training videos that have tubes get the source stage's supervised terms
    # (GL and Loss_clip on their true boxes) inside the target stage, the others the weak terms:
    # few boxes + temporal labels in one run (Table 1's setting). False: every train box is
    # dropped and every video is weak (docs/WEAK.md "Videos with boxes")
    use_boxes: bool = True
    tracker_workers: int = 2  # threads for the tracker
    # True: the box *sizes* of the self-made targets are anchored to a frozen copy of the initial
    # (source) model's branches 2 + 4, which the caller passes to WeakLoss as ``teacher``: per
    # frame and at the keyframe, a target with the own (or tracked) centre and the teacher's
    # width and height, where the teacher's top box overlaps the own one by persist_iou (the
    # same person). Without it no weak term constrains sizes and they drift (docs/WEAK.md
    # "Size anchor"). Costs one no-grad forward of branches 2 + 4 per step.
    size_teacher: bool = False
    # ... with a tolerance: no size loss once the prediction overlaps that target this much
    # (0.85: a concentric box 18 % taller, or 8 % larger both ways)
    size_tolerance_iou: float = 0.85
    # True: the frames of an action clip that lie outside every segment get branch 4's "no
    # object" term, like every frame of a background clip and like the source stage's frames
    # without a box; right when the segments mark every action instance (the premise of the
    # background clips). False: such frames contribute nothing (docs/WEAK.md "Clips"; measured
    # on B->A: lower scores on idle frames, fewer people found, -5 points: off)
    outside_negative: bool = False
    # Where the pseudo-boxes come from (the tracker's seeds, the self-labels, keep_anchor's
    # anchor). 0: the network's own per-frame boxes in this step (the paper). In (0, 1): a mean
    # teacher, branches 2 + 4 in eval mode whose weights are this exponential average of the
    # network's, updated before every step and starting from the initial (source) model;
    # 1: that initial model, frozen. The caller passes the teacher to WeakLoss (built by
    # weaktube.train.engine.location_teacher). One update per loss evaluation, so a step skipped
    # for a non-finite loss still moves it (towards unchanged weights). Not in the paper
    # (docs/WEAK.md, "Where the pseudo-boxes come from"); one no-grad forward of branches 2 + 4
    # per step
    teacher_decay: float = 0.0
    # Source replay (not in the paper): this share of the clips drawn (weighted, with
    # replacement) comes from the train videos with tubes of another annotation file,
    # ``replay`` (the source stage's file; videos under ``replay_videos``, default
    # data.videos), and trains boxes and objectness of
    # branches 3 and 4 on their true boxes, class-free (its classes are not the target's): the
    # location branches keep a supervised anchor while the target clips have none. The target
    # clips per epoch drop by this share (train.clips_per_epoch counts both). 0: off
    # (docs/WEAK.md "Source replay")
    replay_fraction: float = 0.0
    replay: str = ""  # weaktube/annotations@1 file whose train videos with tubes are replayed
    replay_videos: str = ""  # their video root ("" = data.videos)
    # False: replay clips train branch 4 only (per-frame boxes, Loss_clip), not the keyframe head,
    # whose objectness and class then learn from the target clips alone
    replay_keyframe: bool = True

    @property
    def needs_teacher(self) -> bool:
        """Whether WeakLoss needs a teacher (``size_teacher`` or ``teacher_decay > 0``)."""
        return self.size_teacher or self.teacher_decay > 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.teacher_decay <= 1.0:
            raise ValueError(f"weak.teacher_decay={self.teacher_decay}: expected 0 (the "
                             "network's own boxes) to 1 (the frozen initial model)")
        if not 0.0 <= self.replay_fraction < 1.0:
            raise ValueError(f"weak.replay_fraction={self.replay_fraction}: expected a share "
                             "of the batch in [0, 1)")


def top_frame_index(frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Where each frame's top box is: ``[B, N, A, 5, H', W']`` -> its index into the flattened
    ``A*H'*W'`` predictions ``[B, N]`` and all objectness scores ``[B, N, A*H'*W']``."""
    b, n = frames.shape[:2]
    conf = frames[:, :, :, 4].sigmoid().reshape(b, n, -1)  # [B, N, A, H', W'] -> [B, N, A*H'*W']
    return conf.argmax(-1), conf


def top_frame_boxes(frames: torch.Tensor, anchors: torch.Tensor) -> tuple[torch.Tensor,
                                                                        torch.Tensor,
                                                                        torch.Tensor]:
    """Per-frame top box: ``[B, N, A, 5, H', W']`` -> boxes ``[B, N, 4]`` (normalised xyxy),
    objectness ``[B, N]`` and the anchor that produced it ``[B, N]`` (``0..A-1``)."""
    b, n, a = frames.shape[:3]
    boxes = decode_boxes(frames, anchors).reshape(b, n, -1, 4)  # [B, N, A*H'*W', 4]
    best, conf = top_frame_index(frames)  # [B, N], [B, N, A*H'*W']
    top = torch.gather(boxes, 2, best[..., None, None].expand(b, n, 1, 4))[:, :, 0]
    return top, torch.gather(conf, 2, best[..., None])[..., 0], best // (conf.shape[-1] // a)


def select_seeds(boxes: torch.Tensor, conf: torch.Tensor, covered: torch.Tensor,
                 cfg: WeakConfig) -> torch.Tensor:
    """``[B, N]`` bool: frames whose box may seed the tracker — inside the action segment,
    confident, not among the first ``skip_first`` frames, and persisting (confident and
    overlapping) over the previous ``persist_frames`` frames."""
    ok = (conf >= cfg.seed_conf) & covered
    ok[:, : cfg.skip_first] = False
    seeds = ok.clone()
    n = boxes.shape[1]
    for k in range(1, cfg.persist_frames + 1):
        prev_ok = torch.zeros_like(ok)
        prev_ok[:, k:] = ok[:, :-k] & (torch_iou_paired(boxes[:, k:], boxes[:, :-k])
                                       >= cfg.persist_iou)
        prev_ok[:, :k] = ok[:, :k]  # no earlier frames in the clip: nothing to contradict
        seeds &= prev_ok if k < n else ok
    return seeds


@dataclass
class TrackerTargets:
    """Tracker boxes as loss targets (normalised xyxy)."""

    frame_boxes: torch.Tensor  # [B, N, 1, 4]
    frame_valid: torch.Tensor  # [B, N, 1]
    key_boxes: torch.Tensor  # [B, 1, 4] the keyframe's box, tracked from frame N-2
    key_valid: torch.Tensor  # [B]
    jobs: int
    failures: int
    at_border: int = 0  # results dropped by ``WeakConfig.border_px``


def build_jobs(pixels: np.ndarray, boxes: np.ndarray, seeds: np.ndarray, covered: np.ndarray,
               direction: str) -> list[tuple[int, int, int, PropagationJob]]:
    """Tracker jobs ``(clip, from_frame, to_frame, job)``: ``pixels [B, N, S, S, 3]`` uint8,
    ``boxes [B, N, 4]`` pixels, ``seeds``/``covered`` ``[B, N]`` bool."""
    b, n = seeds.shape
    out = []
    steps = {"backward": (-1,), "forward": (1,), "both": (-1, 1)}[direction]
    for i in range(b):
        for j in np.nonzero(seeds[i])[0]:
            for d in steps:
                t = j + d
                if 0 <= t < n and covered[i, t]:
                    out.append((i, int(j), int(t), PropagationJob(pixels[i], int(j), boxes[i, j],
                                                                 (int(t),))))
        # eq. 21: the keyframe's box target is frame N-2's box tracked forward
        if n >= 2 and seeds[i, n - 2] and direction == "backward":
            out.append((i, n - 2, n - 1, PropagationJob(pixels[i], n - 2, boxes[i, n - 2],
                                                        (n - 1,))))
    return out


def near_border(box: np.ndarray, size: int, margin: float) -> bool:
    """``[4]`` xyxy pixels of a ``size`` x ``size`` frame: does it reach within ``margin`` pixels
    of (or beyond) an edge?"""
    return bool(box[0] < margin or box[1] < margin or box[2] > size - margin
                or box[3] > size - margin)


def run_tracker(pixels: np.ndarray, boxes: np.ndarray, seeds: np.ndarray, covered: np.ndarray,
                cfg: WeakConfig) -> TrackerTargets:
    """Track every seed box to its neighbour frame(s); average when two seeds land on one frame.

    ``pixels [B, N, S, S, 3]`` uint8; ``boxes [B, N, 4]`` normalised. Returns normalised targets.
    """
    b, n, s = pixels.shape[:3]
    px = boxes * s
    jobs = build_jobs(pixels, px, seeds, covered, cfg.direction)
    sums = np.zeros((b, n, 4))
    counts = np.zeros((b, n))
    key_sum, key_n = np.zeros((b, 4)), np.zeros(b)
    failures = at_border = 0
    if jobs:
        results = propagate_many([j for *_, j in jobs], cfg.tracker, workers=cfg.tracker_workers)
        for (i, j, t, _), res in zip(jobs, results):
            if not res.ok[0]:
                failures += 1
                continue
            if cfg.border_px >= 0 and (near_border(px[i, j], s, cfg.border_px)
                                       or near_border(res.boxes[0], s, cfg.border_px)):
                at_border += 1
                continue
            box = res.boxes[0] / s
            if t == n - 1 and j == n - 2:
                key_sum[i] += box
                key_n[i] += 1
            if not (t == n - 1 and j == n - 2 and cfg.direction == "backward"):
                sums[i, t] += box
                counts[i, t] += 1
    frame_boxes = sums / np.maximum(counts, 1)[..., None]
    key = key_sum / np.maximum(key_n, 1)[:, None]
    return TrackerTargets(
        frame_boxes=torch.as_tensor(frame_boxes, dtype=torch.float32)[:, :, None],
        frame_valid=torch.as_tensor(counts > 0)[:, :, None],
        key_boxes=torch.as_tensor(key, dtype=torch.float32)[:, None],
        key_valid=torch.as_tensor(key_n > 0),
        jobs=len(jobs), failures=failures, at_border=at_border)


def _subset_loss(raw: torch.Tensor, mask: torch.Tensor, fn) -> dict[str, torch.Tensor]:
    """Apply a per-batch loss to the clips in ``mask`` only, rescaled to a per-B average."""
    if not mask.any():
        return {}
    terms = fn(raw[mask], mask)
    scale = float(mask.sum()) / len(mask)
    return {k: v * scale for k, v in terms.items()}


def _frames_noobj(frames: torch.Tensor, mask: torch.Tensor, anchors: torch.Tensor,
                  loss_cfg: DetectionLossConfig) -> torch.Tensor:
    """Branch 4's "no object" term in the frames ``mask [B, N]`` of ``frames [B, N, A, 5, H',
    W']``, each frame weighted 1 / (B * N) like a frame of Loss_clip."""
    b, n = mask.shape
    fr = frames.float()[mask][None]  # [B, N, A, 5, H', W'] -> [1, F, A, 5, H', W']
    f = fr.shape[1]
    none = torch.zeros(1, f, 1, dtype=torch.bool, device=fr.device)  # [1, F, 1] no box
    t = clip_loss(fr, anchors, torch.zeros(1, f, 1, 4, device=fr.device), none, loss_cfg,
                  prefix="frames_")  # mean over the F frames
    return t["frames_noobj"] * f / (b * n)


class WeakLoss:
    """Named terms of the target-stage loss for one batch (a callable holding the thread pool).

    ``batch`` needs ``clip``, ``pixels`` (uint8 ``[B, N, S, S, 3]``, the augmented frames the
    network sees), ``segment_label [B]`` and ``frame_segment [B, N]`` (the label covering each
    clip frame, -1 outside segments, ``AMBIGUOUS_FRAME`` in ambiguous time). Clips flagged
    ``boxed [B]`` (videos with tubes; optional) take the supervised terms ``sup_key_*`` /
    ``sup_clip_*`` on ``key_boxes``, ``key_labels``, ``frame_boxes`` and ``frame_valid`` instead
    of the weak ones. Clips flagged ``replay [B]`` (another dataset's boxed videos,
    ``weak.replay_fraction``) take class-free box and objectness terms ``replay_key_*`` /
    ``replay_clip_*`` on their boxes.
    """

    def __init__(self, cfg: WeakConfig, loss_cfg: DetectionLossConfig, anchors: torch.Tensor,
                 num_classes: int, teacher: torch.nn.Module | None = None) -> None:
        pseudo = cfg.teacher_decay > 0
        if cfg.needs_teacher and teacher is None:
            raise ValueError("weak.size_teacher and weak.teacher_decay > 0 need a teacher: a "
                             "copy of the initial model (weaktube.train.engine.location_teacher)")
        if cfg.size_teacher and pseudo:
            raise ValueError("weak.size_teacher anchors sizes to the frozen initial model; "
                             "with weak.teacher_decay > 0 the pseudo-boxes come from a teacher "
                             "already: use one of the two")
        if cfg.size_teacher and not cfg.keep_anchor:
            raise ValueError("weak.size_teacher needs weak.keep_anchor: its keyframe term "
                             "trains the anchor of the network's own box")
        self.cfg, self.loss_cfg, self.anchors, self.k = cfg, loss_cfg, anchors, num_classes
        self.teacher = teacher if cfg.needs_teacher else None
        # the mean teacher's average lives in the teacher's own tensors (decay 1: frozen)
        self.teacher_ema = (ModelEma(teacher, cfg.teacher_decay, into=teacher, warmup=False)
                            if 0 < cfg.teacher_decay < 1 else None)
        self.pool = ThreadPoolExecutor(max_workers=1) if cfg.use_trb else None
        self.stats = {"tracker_jobs": 0, "tracker_failures": 0, "tracker_at_border": 0}

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()

    def state_dict(self) -> dict:
        """What a resumed run needs beyond the model: the mean teacher's weights, if any."""
        return {"teacher_ema": self.teacher_ema.state_dict()} if self.teacher_ema else {}

    def load_state_dict(self, saved: dict) -> None:
        if self.teacher_ema is not None:
            self.teacher_ema.load_state_dict(saved["teacher_ema"])

    @torch.no_grad()
    def pseudo_source(self, core: torch.nn.Module, clip: torch.Tensor,
                      frames: torch.Tensor) -> torch.Tensor:
        """The per-frame predictions ``[B, N, A, 5, H', W']`` (detached, float) that the
        pseudo-boxes are read from: the network's own ``frames``, or the teacher's on ``clip``
        (``weak.teacher_decay``; a mean teacher first takes its step towards ``core``)."""
        if self.cfg.teacher_decay == 0:
            return frames.detach().float()
        if self.teacher_ema is not None:
            self.teacher_ema.update(core)
        return self.teacher.forward_location(clip)[0].float()

    def __call__(self, model: torch.nn.Module, batch: dict) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        core = getattr(model, "module", model)
        clip = batch["clip"]
        seg = batch["segment_label"]  # [B]
        boxed = batch.get("boxed", torch.zeros_like(seg, dtype=torch.bool)).to(clip.device)
        replay = batch.get("replay", torch.zeros_like(boxed)).to(clip.device) & boxed
        sup = boxed & ~replay  # clips of this dataset's boxed videos
        pos = (seg >= 0) & ~boxed  # weak clips inside a segment
        covered = (batch["frame_segment"] >= 0) & ~boxed[:, None]  # [B, N]
        frames, frame_features = core.forward_location(clip)  # branches 2 + 4
        with torch.no_grad():
            source = self.pseudo_source(core, clip, frames)  # own or teacher's predictions
            boxes, conf, own_anchor = top_frame_boxes(source, self.anchors)
            if not cfg.keep_anchor:  # -1: assign by shape, the paper's default
                own_anchor = torch.full_like(own_anchor, -1)
        future: Future | None = None
        if cfg.use_trb:
            seeds = select_seeds(boxes, conf, covered, cfg)
            future = self.pool.submit(run_tracker, batch["pixels"].cpu().numpy(),
                                      boxes.cpu().numpy(), seeds.cpu().numpy(),
                                      covered.cpu().numpy(), cfg)
        key = core.forward_global(clip, frames)  # branches 1 + 3, overlapping the tracker
        terms: dict[str, torch.Tensor] = {}
        lc = self.loss_cfg
        anchors, k = self.anchors, self.k
        empty = torch.zeros(len(seg), 1, 4, device=clip.device)
        none = torch.full((len(seg), 1), -1, dtype=torch.long, device=clip.device)
        if sup.any():  # clips of boxed videos: the source stage's terms on their true boxes
            terms.update(_subset_loss(key.float(), sup, lambda r, m: yolo_loss(
                r, anchors, batch["key_boxes"][m], batch["key_labels"][m], k, lc,
                prefix="sup_key_")))
            terms.update(_subset_loss(frames.float(), sup, lambda r, m: clip_loss(
                r, anchors, batch["frame_boxes"][m], batch["frame_valid"][m], lc,
                prefix="sup_clip_")))
        if replay.any() and cfg.replay_keyframe:  # another class set's boxes: no class term
            terms.update(_subset_loss(key.float(), replay, lambda r, m: yolo_loss(
                r, anchors, batch["key_boxes"][m], (batch["key_labels"][m] >= 0).long() - 1,
                0, lc, prefix="replay_key_")))  # labels -> 0 (a box) or -1 (padding)
        if replay.any():
            terms.update(_subset_loss(frames.float(), replay, lambda r, m: clip_loss(
                r, anchors, batch["frame_boxes"][m], batch["frame_valid"][m], lc,
                prefix="replay_clip_")))
        # background clips of weak videos: no acting person, in the keyframe head and every frame
        neg = (seg == -1) & ~boxed  # background clips of weak videos
        bg = _subset_loss(key.float(), neg, lambda r, m: yolo_loss(
            r, anchors, empty[m], none[m], k, lc, prefix="bg_key_"))
        terms.update({kk: v for kk, v in bg.items() if kk.endswith("noobj")})
        frame_segment = batch["frame_segment"].to(clip.device)  # [B, N]
        known = frame_segment != AMBIGUOUS_FRAME  # ambiguous time: no term
        empty_frames = neg[:, None] & known  # [B, N] every known frame of a background clip
        if empty_frames.any():
            terms["bg_frames_noobj"] = _frames_noobj(frames, empty_frames, anchors, lc)
        outside = pos[:, None] & (frame_segment == -1)  # [B, N] idle time of action clips
        if cfg.outside_negative and outside.any():
            terms["out_frames_noobj"] = _frames_noobj(frames, outside, anchors, lc)
        targets = future.result() if future is not None else None
        if targets is not None:
            self.stats["tracker_jobs"] += targets.jobs
            self.stats["tracker_failures"] += targets.failures
            self.stats["tracker_at_border"] += targets.at_border
            dev = clip.device
            kb, kv = targets.key_boxes.to(dev), targets.key_valid.to(dev)
            tracked = pos & kv
            labels = seg.view(-1, 1)
            terms.update(_subset_loss(key.float(), tracked, lambda r, m: yolo_loss(
                r, anchors, kb[m], labels[m], k, lc, prefix="key_",
                tolerance_iou=cfg.tolerance_iou, anchor_index=own_anchor[:, -1:][m])))
            if not cfg.track_size:
                terms.pop("key_wh", None)
            untracked = pos & ~kv
        else:
            untracked = pos
        own = boxes.detach()  # [B, N, 4] the network's own (or the teacher's) top box per frame
        # self-labelled objectness and class at the network's own keyframe box (no box terms):
        # the classification-only target training of the SCEL baseline, which also keeps the
        # keyframe head detecting (background clips alone would drive its objectness to 0)
        self_key = _subset_loss(key.float(), untracked, lambda r, m: yolo_loss(
            r, anchors, own[:, -1:][m], seg.view(-1, 1)[m], k, lc, prefix="self_key_",
            box_terms=False, anchor_index=own_anchor[:, -1:][m]))
        terms.update({kk: v for kk, v in self_key.items() if kk[-2:] not in ("xy", "wh")})
        # ... and self-labelled objectness of branch 4 in the segment's frames the tracker gave
        # no box (every such frame when use_trb is off)
        self_valid = covered & pos[:, None]
        if targets is not None:
            self_valid &= ~targets.frame_valid[:, :, 0].to(clip.device)
        self_frames = tracking_loss(frames.float(), anchors, own[:, :, None],
                                    self_valid[:, :, None], lc, prefix="self_frames_",
                                    box_terms=False, anchor_index=own_anchor[:, :, None])
        terms.update({kk: v for kk, v in self_frames.items() if kk[-2:] not in ("xy", "wh")})
        # IL (eq. 22)
        if targets is not None:
            fb = targets.frame_boxes.to(clip.device)
            fv = targets.frame_valid.to(clip.device) & pos[:, None, None]
            trb = tracking_loss(frames.float(), anchors, fb, fv, lc,
                                tolerance_iou=cfg.tolerance_iou,
                                anchor_index=own_anchor[:, :, None])
            if not cfg.track_size:
                trb.pop("trb_wh")
            terms.update(trb)
        if cfg.size_teacher and pos.any():
            key_centres = own[:, -1:]  # [B, 1, 4] where the keyframe target sits
            if targets is not None:
                key_centres = torch.where(tracked[:, None, None], kb, key_centres)
            terms.update(self._size_terms(clip, frames, key, own, own_anchor,
                                          covered & pos[:, None], key_centres))
        if cfg.use_ncb and pos.any():
            feats = target_features(frame_features.float()[pos], location_maps(frames.float()[pos]))
            terms["ncb"] = cfg.rho * neighbour_consistency_loss(feats, cfg.eps) * (
                float(pos.sum()) / len(pos))
        return terms

    def _size_terms(self, clip: torch.Tensor, frames: torch.Tensor, key: torch.Tensor,
                    own: torch.Tensor, own_anchor: torch.Tensor, valid: torch.Tensor,
                    key_centres: torch.Tensor) -> dict[str, torch.Tensor]:
        """The size anchor (``WeakConfig.size_teacher``): ``teach_frames_wh`` pulls branch 4's own
        top box per frame (``own [B, N, 4]``, in the ``valid [B, N]`` frames), and
        ``teach_key_wh`` the keyframe head's box at ``key_centres [B, 1, 4]`` (its own anchor
        there), towards the teacher's width and height in that frame, where the teacher's top box
        is the same person (IoU >= ``persist_iou`` with the own box). Sizes only: centres are the
        tracker's job. ``frames [B, N, A, 5, H', W']`` and ``key [B, A, 5+K, H', W']`` raw,
        ``own_anchor [B, N]``; boxes normalised xyxy. Returns two scalars, normalised like
        Loss_clip (per frame) and GL (per clip). A box that drifts past IoU ``persist_iou`` from
        the teacher's (about 3x its size) is no longer taken for the same person: no pull."""
        cfg, anchors = self.cfg, self.anchors
        coord = self.loss_cfg.lambda_coord
        b, n = own.shape[:2]
        with torch.no_grad():
            t_frames, _ = self.teacher.forward_location(clip)
            t_boxes = top_frame_boxes(t_frames.float(), anchors)[0]  # [B, N, 4]
            same = valid & (torch_iou_paired(t_boxes, own) >= cfg.persist_iou)  # [B, N]
            best = top_frame_index(frames.detach().float())[0]  # [B, N] the own top box
            h, w = key.shape[-2:]
            centre = xyxy_to_cxcywh(key_centres[:, 0])  # [B, 4]
            gi, gj = grid_cell(centre[:, 0], centre[:, 1], h, w)  # [B], [B]
            key_at = (own_anchor[:, -1] * h + gi) * w + gj  # [B] index into A*H'*W'
        pred = decode_boxes(frames.float(), anchors)  # [B, N, A, H', W', 4]
        pred = pred.reshape(b, n, -1, 4)  # -> [B, N, A*H'*W', 4]
        pred = torch.gather(pred, 2, best[..., None, None].expand(b, n, 1, 4))[:, :, 0]
        fr = size_loss(pred.reshape(b * n, 4), t_boxes.reshape(b * n, 4), same.reshape(b * n),
                       cfg.size_tolerance_iou)  # [B, N, 4] -> [B*N, 4]
        kpred = decode_boxes(key.float(), anchors)  # [B, A, H', W', 4]
        kpred = kpred.reshape(b, -1, 4)  # -> [B, A*H'*W', 4]
        kpred = kpred[torch.arange(b, device=key.device), key_at]  # [B, 4]
        ky = size_loss(kpred, t_boxes[:, -1], same[:, -1], cfg.size_tolerance_iou)
        return {"teach_frames_wh": coord * fr / (b * n), "teach_key_wh": coord * ky / b}
