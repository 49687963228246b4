"""The target-stage loss (WeakLoss) on a tiny real detector: which terms a batch gets, and that
self-labelled objectness keeps the detector detecting where only background clips would
silence it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from weaktube.losses.detection import DetectionLossConfig
from weaktube.model import BackboneConfig, DetectorConfig, build_detector
from weaktube.structures import AMBIGUOUS_FRAME
from weaktube.train.weak import WeakConfig, WeakLoss, top_frame_boxes

ANCHORS = ((0.2, 0.3), (0.5, 0.8))


def _model(seed: int = 0, prior_prob: float = 0.01):
    torch.manual_seed(seed)
    cfg = DetectorConfig(prior_prob=prior_prob,
        num_classes=3, clip_len=4, img_size=64, anchors=ANCHORS,
        cls_backbone=BackboneConfig.resnet(10, width=8, stem_width=8),
        loc_backbone=BackboneConfig.resnet(10, width=8, stem_width=8,
                                           temporal_strides=(1, 1, 1, 1)),
        fusion_channels=16, frame_head_channels=8)
    return build_detector(cfg)


def _batch(labels: list[int]) -> dict:
    g = torch.Generator().manual_seed(1)
    b = len(labels)
    clip = torch.randn(b, 3, 4, 64, 64, generator=g)
    pixels = (np.random.default_rng(0).random((b, 4, 64, 64, 3)) * 255).astype(np.uint8)
    seg = torch.tensor(labels)
    frame_segment = seg.view(-1, 1).expand(b, 4).clone()
    return {"clip": clip, "pixels": torch.from_numpy(pixels), "segment_label": seg,
            "frame_segment": frame_segment}


def _loss(model, batch, cfg):
    wl = WeakLoss(cfg, DetectionLossConfig(), model.anchors, 3)
    try:
        return wl(model, batch)
    finally:
        wl.close()


def test_terms_per_batch_kind():
    model = _model()
    off = WeakConfig(use_trb=False, use_ncb=False)
    terms = _loss(model, _batch([0, 2, -1, -1]), off)
    assert {"bg_key_noobj", "bg_frames_noobj", "self_key_obj", "self_key_noobj",
            "self_key_cls", "self_frames_obj", "self_frames_noobj"} <= set(terms)
    assert not any(k.endswith(("xy", "wh")) for k in terms)  # no box terms without a tracker
    assert all(torch.isfinite(v) for v in terms.values())
    only_bg = _loss(model, _batch([-1, -1]), off)
    assert "self_key_obj" not in only_bg and only_bg.get("self_frames_obj", 0) == 0
    with_ncb = _loss(model, _batch([1, 1]), WeakConfig(use_trb=False, use_ncb=True))
    assert "ncb" in with_ncb


def _top_conf(model, batch) -> tuple[float, float]:
    """Mean keyframe-head max objectness and branch-4 top objectness."""
    with torch.no_grad():
        out = model(batch["clip"])
        key = out.key[:, :, 4].sigmoid().amax(dim=(1, 2, 3)).mean().item()
        _, conf, _ = top_frame_boxes(out.frames, model.anchors)
    return key, conf.mean().item()


def test_self_labelled_objectness_stops_the_collapse():
    """The same steps, with and without action clips in the batch: background clips alone drive
    objectness down; action clips' self-labelled objectness holds it up."""
    results = {}
    for name, labels in (("background_only", [-1, -1, -1, -1]), ("mixed", [0, 1, 2, -1])):
        model = _model().train()
        opt = torch.optim.SGD(model.parameters(), lr=0.05)
        batch = _batch(labels)
        for _ in range(15):
            terms = _loss(model, batch, WeakConfig(use_trb=False, use_ncb=False))
            opt.zero_grad()
            sum(terms.values()).backward()
            opt.step()
        results[name] = _top_conf(model.eval(), _batch([0, 1, 2, -1]))
    assert results["mixed"][0] > 2 * results["background_only"][0]
    assert results["mixed"][1] > 2 * results["background_only"][1]


def test_track_size_off_drops_the_size_terms_only():
    model = _model()
    batch = _batch([0, 1, 2, 0])
    kw = dict(use_ncb=False, seed_conf=0.0, persist_iou=0.0)  # every frame may seed a track
    full = _loss(model, batch, WeakConfig(**kw, track_size=True))
    centre = _loss(model, batch, WeakConfig(**kw, track_size=False))
    assert {"trb_xy", "trb_wh", "trb_obj"} <= set(full)
    assert "trb_xy" in centre and "trb_obj" in centre and "trb_wh" not in centre
    assert "key_wh" not in centre
    assert torch.allclose(full["trb_xy"], centre["trb_xy"])


def test_tracker_targets_at_the_frame_edge_are_dropped_when_asked():
    from weaktube.train.weak import run_tracker

    rng = np.random.default_rng(0)
    pixels = np.full((1, 4, 64, 64, 3), 90, np.uint8)  # [B, N, S, S, 3]
    patch = rng.integers(0, 255, size=(24, 20, 3), dtype=np.uint8)
    for t in range(4):
        pixels[0, t, 20:44, 0:20] = patch  # a textured object touching the left edge
        pixels[0, t, 10:34, 36:56] = patch[::-1]  # and one well inside
    inner = torch.tensor([36.0, 10.0, 56.0, 34.0]) / 64
    edge = torch.tensor([0.0, 20.0, 20.0, 44.0]) / 64
    covered = np.ones((1, 4), bool)
    seeds = np.array([[False, True, True, True]])
    for box, border_px, kept in ((edge, -1.0, True), (edge, 1.0, False), (inner, 1.0, True)):
        boxes = box.view(1, 1, 4).expand(1, 4, 4).numpy()
        out = run_tracker(pixels, boxes, seeds, covered, WeakConfig(border_px=border_px))
        assert out.jobs > 0 and out.failures == 0
        assert bool(out.frame_valid.any()) is kept, (box, border_px)
        assert (out.at_border > 0) is (not kept)


def test_top_frame_anchor_and_keep_anchor_runs():
    frames = torch.full((1, 2, 3, 5, 2, 2), -5.0)  # [B, N, A, 5, H', W']
    frames[0, 0, 2, 4, 1, 0] = 3.0  # frame 0: anchor 2 is the most confident
    frames[0, 1, 1, 4, 0, 1] = 3.0  # frame 1: anchor 1
    anchors = torch.tensor([[0.1, 0.2], [0.2, 0.4], [0.4, 0.8]])
    assert top_frame_boxes(frames, anchors)[2].tolist() == [[2, 1]]
    model = _model()
    terms = _loss(model, _batch([0, 1]), WeakConfig(use_trb=True, use_ncb=False,
                                                   keep_anchor=True, seed_conf=0.0))
    assert all(torch.isfinite(v) for v in terms.values()) and "self_key_obj" in terms


def _boxed(batch: dict, boxed: list[bool]) -> dict:
    """Mark clips as coming from videos with tubes, with one true box per frame."""
    b, n = len(boxed), batch["clip"].shape[2]
    box = torch.tensor([0.3, 0.2, 0.6, 0.9])
    return {**batch, "boxed": torch.tensor(boxed),
            "key_boxes": box.expand(b, 1, 4).clone(),
            "key_labels": torch.ones(b, 1, dtype=torch.long),
            "frame_boxes": box.expand(b, n, 1, 4).clone(),
            "frame_valid": torch.ones(b, n, 1, dtype=torch.bool)}


def test_boxed_clips_get_the_supervised_terms_and_only_them():
    model = _model()
    off = WeakConfig(use_trb=True, use_ncb=True)
    batch = _boxed(_batch([0, 2, -1, -1]), [True, False, True, False])
    terms = _loss(model, batch, off)
    assert {"sup_key_xy", "sup_key_wh", "sup_key_obj", "sup_key_cls", "sup_clip_xy",
            "sup_clip_obj"} <= set(terms)
    assert all(torch.isfinite(v) for v in terms.values())
    # every clip boxed: every weak term is absent or exactly zero (no tracker seed, no NCB, no
    # background clip)
    all_boxed = _loss(model, _boxed(_batch([0, 2, -1, -1]), [True] * 4), off)
    weak_terms = {k: float(v.detach()) for k, v in all_boxed.items() if not k.startswith("sup_")}
    assert all(v == 0.0 for v in weak_terms.values()), weak_terms
    assert float(all_boxed["sup_key_obj"].detach()) > 0
    # none boxed: the weak terms exactly as without the flag
    plain = _loss(model, _batch([0, 2, -1, -1]), WeakConfig(use_trb=False, use_ncb=True))
    flagged = _loss(model, _boxed(_batch([0, 2, -1, -1]), [False] * 4),
                    WeakConfig(use_trb=False, use_ncb=True))
    assert plain.keys() == flagged.keys()
    assert all(torch.equal(plain[k], flagged[k]) for k in plain)


def _replayed(batch: dict, replay: list[bool]) -> dict:
    """Mark clips as replayed from another dataset: boxed, and labelled with a class (7) that
    the 3-class model does not have."""
    out = _boxed(batch, replay)
    return {**out, "replay": torch.tensor(replay),
            "key_labels": torch.where(out["key_labels"] >= 0, 7, -1)}


def test_replayed_clips_get_class_free_box_terms_and_only_them():
    model = _model()
    cfg = WeakConfig(use_trb=True, use_ncb=True)
    terms = _loss(model, _replayed(_batch([0, 2, -1, -1]), [True, False, True, False]), cfg)
    assert {"replay_key_xy", "replay_key_wh", "replay_key_obj", "replay_key_noobj",
            "replay_clip_xy", "replay_clip_wh", "replay_clip_obj"} <= set(terms)
    assert "replay_key_cls" not in terms and not any(k.startswith("sup_") for k in terms)
    assert all(torch.isfinite(v) for v in terms.values())
    frames_only = _loss(model, _replayed(_batch([0, 2, -1, -1]), [True, False, True, False]),
                        WeakConfig(use_trb=True, use_ncb=True, replay_keyframe=False))
    replayed = {k for k in frames_only if k.startswith("replay_")}
    assert replayed == {k for k in terms if k.startswith("replay_clip_")}
    # every clip replayed: every weak term absent or exactly zero, as for boxed clips
    everything = _loss(model, _replayed(_batch([0, 2, -1, -1]), [True] * 4), cfg)
    rest = {k: float(v.detach()) for k, v in everything.items() if not k.startswith("replay_")}
    assert all(v == 0.0 for v in rest.values()), rest
    # a replay flag on a clip without tubes means nothing: it stays weak
    weak = _loss(model, {**_batch([0, 2]), "replay": torch.tensor([True, True])},
                 WeakConfig(use_trb=False, use_ncb=True))
    assert "ncb" in weak and not any(k.startswith("replay_") for k in weak)


@pytest.mark.parametrize("kind", ["sup", "replay"])
def test_boxed_clips_pull_the_keyframe_box_to_the_truth(kind):
    """A few steps on boxed (or replayed) clips only: the keyframe head's loss on the true box
    falls."""
    model = _model().train()
    opt = torch.optim.SGD(model.parameters(), lr=0.02)
    mark = _boxed if kind == "sup" else _replayed
    batch = mark(_batch([-1, -1]), [True, True])
    cfg = WeakConfig(use_trb=False, use_ncb=False)
    first = None
    for _ in range(10):
        terms = _loss(model, batch, cfg)
        loss = sum(terms.values())
        box = float((terms[f"{kind}_key_xy"] + terms[f"{kind}_key_wh"]).detach())
        first = box if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    last = _loss(model, batch, cfg)
    assert float((last[f"{kind}_key_xy"] + last[f"{kind}_key_wh"]).detach()) < 0.8 * first


# ------------------------------------------------------------------- size anchor (size_teacher)
def _teacher_loss(model, teacher, batch, cfg):
    wl = WeakLoss(cfg, DetectionLossConfig(), model.anchors, 3, teacher=teacher)
    try:
        return wl(model, batch)
    finally:
        wl.close()


def _taller(model, log_scale: float):
    """A copy of ``model`` whose branch-4 and keyframe boxes are ``exp(log_scale)`` times taller
    (the h output of every anchor shifted)."""
    import copy

    m = copy.deepcopy(model)
    a = model.num_anchors
    with torch.no_grad():
        m.frame_head.pred.bias.view(a, -1)[:, 3] += log_scale  # [A*5] -> [A, 5]: x, y, w, h, obj
        m.fusion.pred.bias.view(a, -1)[:, 3] += log_scale  # [A*(5+K)] -> [A, 5+K]
    return m


def _log_h(model, clip) -> float:
    """Mean log height of branch 4's top box per frame."""
    with torch.no_grad():
        boxes = top_frame_boxes(model.forward_location(clip)[0], model.anchors)[0]
    return float(torch.log(boxes[..., 3] - boxes[..., 1]).mean())


def test_size_teacher_needs_a_teacher():
    import pytest

    with pytest.raises(ValueError, match="size_teacher"):
        WeakLoss(WeakConfig(size_teacher=True), DetectionLossConfig(), torch.ones(2, 2), 3)
    with pytest.raises(ValueError, match="keep_anchor"):
        WeakLoss(WeakConfig(size_teacher=True, keep_anchor=False), DetectionLossConfig(),
                 torch.ones(2, 2), 3, teacher=torch.nn.Identity())


def test_size_anchor_is_zero_when_the_sizes_agree_and_pulls_drifted_boxes_back():
    """The model as its own teacher: no size loss per frame. A student whose boxes grew 50 %
    taller gets a size loss, and a few gradient steps on it bring its heights back towards the
    teacher's; the other weak terms are unchanged by the option."""
    teacher = _model().eval().requires_grad_(False)
    batch = _batch([0, 1, 2, -1])
    cfg = WeakConfig(use_trb=False, use_ncb=False, size_teacher=True)
    same = _teacher_loss(teacher, teacher, batch, cfg)
    assert {"teach_frames_wh", "teach_key_wh"} <= set(same)
    assert float(same["teach_frames_wh"]) == 0.0
    plain = _loss(teacher, batch, WeakConfig(use_trb=False, use_ncb=False))
    assert all(torch.equal(plain[k], same[k]) for k in plain)

    student = _taller(teacher, np.log(1.5)).eval().requires_grad_(True)
    h0, gap0 = _log_h(teacher, batch["clip"]), _log_h(student, batch["clip"])
    assert gap0 - h0 > 0.3  # the student starts ~0.4 taller in log height
    opt = torch.optim.SGD(student.parameters(), lr=0.05)
    first = None
    for _ in range(10):
        terms = _teacher_loss(student, teacher, batch, cfg)
        loss = terms["teach_frames_wh"] + terms["teach_key_wh"]
        first = float(loss.detach()) if first is None else first
        assert first > 0
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert _log_h(student, batch["clip"]) - h0 < 0.5 * (gap0 - h0)


def test_keyframe_size_term_reads_the_own_anchor():
    """``teach_key_wh`` reads the keyframe head at the anchor of the own top box in the last
    frame: making one anchor's keyframe boxes taller changes the term exactly when some clip's
    own box came from that anchor."""
    import copy

    teacher = _model().eval().requires_grad_(False)
    batch = _batch([0, 1, 2, -1])
    cfg = WeakConfig(use_trb=False, use_ncb=False, size_teacher=True)
    with torch.no_grad():
        own_anchor = top_frame_boxes(teacher.forward_location(batch["clip"])[0],
                                     teacher.anchors)[2]  # [B, N]
    used = set(own_anchor[:3, -1].tolist())  # the three action clips
    base = float(_teacher_loss(teacher, teacher, batch, cfg)["teach_key_wh"])
    changed = set()
    for a in range(teacher.num_anchors):
        student = copy.deepcopy(teacher)
        with torch.no_grad():
            student.fusion.pred.bias.view(teacher.num_anchors, -1)[a, 3] += 1.0  # h of anchor a
        if float(_teacher_loss(student, teacher, batch, cfg)["teach_key_wh"]) != base:
            changed.add(a)
    assert changed == used


# --------------------------------------------------------------- pseudo-box teacher (teacher_decay)
def _location_copy(model):
    """``model``'s branches 2 + 4 as a frozen eval-mode teacher (like ``location_teacher``)."""
    import copy

    teacher = copy.deepcopy(model)
    del teacher.cls_backbone, teacher.fusion
    return teacher.eval().requires_grad_(False)


def test_pseudo_source_is_the_own_boxes_a_frozen_or_a_mean_teacher():
    """decay 0: the network's own per-frame predictions; 1: the teacher's, which stays as it is;
    0.5: the teacher first moves halfway to the network's weights, then predicts."""
    student, other = _model(seed=0).eval(), _model(seed=1).eval()
    clip = _batch([0, 1])["clip"]
    frames = student.forward_location(clip)[0]
    w = "frame_head.pred.weight"
    for decay in (0.0, 1.0, 0.5):
        teacher = _location_copy(other)
        before = teacher.state_dict()[w].clone()
        wl = WeakLoss(WeakConfig(use_trb=False, teacher_decay=decay), DetectionLossConfig(),
                      student.anchors, 3, teacher=teacher)
        got = wl.pseudo_source(student, clip, frames)
        wl.close()
        after = teacher.state_dict()[w]
        if decay == 0.0:
            assert torch.equal(got, frames)
        elif decay == 1.0:
            assert torch.equal(after, before)
            assert torch.equal(got, other.forward_location(clip)[0])
        else:
            torch.testing.assert_close(after, 0.5 * before + 0.5 * student.state_dict()[w])
            assert torch.equal(got, teacher.forward_location(clip)[0])
            assert not torch.equal(got, frames)
    with pytest.raises(ValueError, match="teacher_decay"):
        WeakLoss(WeakConfig(teacher_decay=0.5), DetectionLossConfig(), torch.ones(2, 2), 3)
    with pytest.raises(ValueError, match="one of the two"):
        WeakLoss(WeakConfig(teacher_decay=0.5, size_teacher=True), DetectionLossConfig(),
                 torch.ones(2, 2), 3, teacher=_location_copy(other))
    with pytest.raises(ValueError, match="teacher_decay"):
        WeakConfig(teacher_decay=1.5)


def test_teacher_boxes_replace_the_own_boxes_in_every_weak_term():
    """A frozen teacher identical to the network gives exactly the terms of the network's own
    boxes (the teacher's path changes nothing but where the boxes come from); a teacher whose
    boxes sit elsewhere changes the self-labels of branch 4 and of the keyframe head."""
    student = _model().eval()
    batch = _batch([0, 1, 2, -1])
    kw = dict(seed_conf=0.0, persist_iou=0.0)  # every frame may seed a track
    own = _loss(student, batch, WeakConfig(**kw))
    same = _teacher_loss(student, _location_copy(student), batch,
                         WeakConfig(**kw, teacher_decay=1.0))
    assert set(same) == set(own)
    for k, v in own.items():
        torch.testing.assert_close(same[k], v)
    other_model = _model(seed=1).eval()  # its top boxes sit in other cells
    other = _teacher_loss(student, _location_copy(other_model), batch,
                          WeakConfig(**kw, teacher_decay=1.0))
    for k in ("self_frames_obj", "self_key_obj", "self_key_cls"):  # branch 4, keyframe head
        assert other[k].item() != own[k].item(), k


def test_outside_negative_silences_the_non_action_frames_of_action_clips():
    """``outside_negative``: the frames of an action clip outside every segment get branch 4's
    "no object" term, weighted like a background clip's frames; steps on it lower the top
    objectness there and leave the segment's frames detecting. Off: no such term."""
    batch = _batch([0, 1, 2, 0])
    batch["frame_segment"][:, :2] = -1  # the clips' first two frames precede the segment
    off = _loss(_model(), batch, WeakConfig(use_trb=False, use_ncb=False))
    assert "out_frames_noobj" not in off
    on_cfg = WeakConfig(use_trb=False, use_ncb=False, outside_negative=True)
    on = _loss(_model(), batch, on_cfg)
    assert on["out_frames_noobj"] > 0
    assert {k: v.item() for k, v in on.items() if k != "out_frames_noobj"} == pytest.approx(
        {k: v.item() for k, v in off.items()})
    # weighted like a background clip's frames: half the frames of every clip = 2 of 4 bg clips
    bg = _loss(_model(), _batch([-1, -1, 0, 0]), on_cfg)
    assert on["out_frames_noobj"].item() == pytest.approx(bg["bg_frames_noobj"].item(), rel=0.2)
    assert "out_frames_noobj" not in _loss(_model(), _batch([0, 1, 2, 0]), on_cfg)

    def top(model) -> torch.Tensor:  # [N] mean top objectness per frame
        with torch.no_grad():
            return top_frame_boxes(model.eval()(batch["clip"]).frames, model.anchors)[1].mean(0)

    ends = {}
    for flag in (False, True):  # a detector that starts out detecting everywhere
        model = _model(prior_prob=0.5).train()
        start = top(model)
        opt = torch.optim.SGD(model.parameters(), lr=0.05)
        for _ in range(30):
            terms = _loss(model.train(), batch, WeakConfig(use_trb=False, use_ncb=False,
                                                           outside_negative=flag))
            opt.zero_grad()
            sum(terms.values()).backward()
            opt.step()
        ends[flag] = top(model)
    assert start.min() > 0.4
    assert ends[True][:2].max() < 0.5 * ends[False][:2].min()  # outside: silenced
    assert ends[True][2:].min() > 2 * ends[True][:2].max()  # inside: still detecting


def test_ambiguous_frames_take_no_term():
    """Frames in ambiguous time (AMBIGUOUS_FRAME) are neither an action clip's idle time
    (``outside_negative``) nor a background clip's empty frames."""
    on_cfg = WeakConfig(use_trb=False, use_ncb=False, outside_negative=True)
    batch = _batch([0, 1, 2, 0])
    batch["frame_segment"][:, :2] = AMBIGUOUS_FRAME
    assert "out_frames_noobj" not in _loss(_model(), batch, on_cfg)
    bg = _batch([-1, -1, -1, -1])
    full = _loss(_model(), bg, on_cfg)["bg_frames_noobj"].item()
    bg["frame_segment"][:, :2] = AMBIGUOUS_FRAME
    half = _loss(_model(), bg, on_cfg)["bg_frames_noobj"].item()
    assert 0.3 * full < half < 0.7 * full
    bg["frame_segment"][:] = AMBIGUOUS_FRAME  # nothing known in any frame: no term, no NaN
    terms = _loss(_model(), bg, on_cfg)
    assert "bg_frames_noobj" not in terms and all(torch.isfinite(v) for v in terms.values())
