"""Class pooling over neighbouring keyframes (weaktube.infer.smooth) on hand-built tensors."""

import torch

import weaktube.infer.smooth as smooth_mod
from weaktube.infer.smooth import smooth_class_probs
from weaktube.model.box_ops import torch_iou


def _track(t: int = 9, k: int = 3):
    """One actor box drifting right, one far-away box; class 0 everywhere except keyframe 4."""
    boxes = torch.zeros(t, 2, 4)
    for i in range(t):
        boxes[i, 0] = torch.tensor([0.10 + 0.01 * i, 0.1, 0.40 + 0.01 * i, 0.6])
        boxes[i, 1] = torch.tensor([0.7, 0.7, 0.9, 0.9])
    obj = torch.tensor([[0.9, 0.5]]).repeat(t, 1)  # [T, N]
    cls = torch.zeros(t, 2, k)
    cls[:, 0, 0] = 0.8
    cls[4, 0] = torch.tensor([0.1, 0.7, 0.0])  # one clip sees the wrong class
    cls[:, 1, 2] = 0.6  # the far box keeps its own class
    return boxes, obj, cls


def test_window_zero_is_identity():
    boxes, obj, cls = _track()
    assert torch.equal(smooth_class_probs(boxes, obj, cls, 0), cls)


def test_pooling_fixes_one_wrong_clip_and_keeps_unrelated_boxes():
    boxes, obj, cls = _track()
    out = smooth_class_probs(boxes, obj, cls, window=3)
    assert out[4, 0].argmax() == 0  # outvoted by the overlapping neighbours
    assert out[4, 0, 1] < 0.2
    # the far box never overlaps the actor: its probabilities are untouched
    assert torch.allclose(out[:, 1], cls[:, 1])
    # a box whose neighbours all agree keeps its value
    assert torch.allclose(out[0, 0], torch.tensor([0.8, 0.0, 0.0]))
    assert out.shape == cls.shape and torch.isfinite(out).all()


def test_boxes_without_overlap_do_not_mix():
    boxes, obj, cls = _track()
    boxes[:, 0] += torch.arange(9).float()[:, None]  # the actor box jumps far every keyframe
    out = smooth_class_probs(boxes, obj, cls, window=2)
    assert torch.allclose(out[:, 0], cls[:, 0])


def test_only_candidates_are_pooled():
    boxes, obj, cls = _track()
    out = smooth_class_probs(boxes, obj, cls, window=3, candidates=1)
    assert torch.allclose(out[:, 1], cls[:, 1])  # the less confident box is not a candidate
    assert out[4, 0].argmax() == 0


def _brute_force(boxes, obj, cls, window):
    """The definition, one box at a time (all boxes are candidates)."""
    t, n, _ = cls.shape
    out = cls.clone()
    for i in range(t):
        for b in range(n):
            acc, weight = cls[i, b] * obj[i, b], obj[i, b].clone()
            for u in range(max(0, i - window), min(t, i + window + 1)):
                if u == i:
                    continue
                val, j = (torch_iou(boxes[i, b : b + 1], boxes[u])[0] * obj[u]).max(0)
                acc, weight = acc + val * cls[u, j], weight + val
            out[i, b] = acc / weight if weight > 0 else cls[i, b]
    return out


def test_matches_the_definition_across_chunks(monkeypatch):
    g = torch.Generator().manual_seed(0)
    t, n, k = 11, 5, 4
    xy = torch.rand(t, n, 2, generator=g) * 0.6
    boxes = torch.cat([xy, xy + 0.2 + 0.2 * torch.rand(t, n, 2, generator=g)], dim=-1)
    obj = torch.rand(t, n, generator=g)
    obj[3, 2] = 0.0  # no weight of its own
    cls = torch.rand(t, n, k, generator=g)
    expected = _brute_force(boxes, obj, cls, window=3)
    monkeypatch.setattr(smooth_mod, "CHUNK", 4)  # several chunks per offset
    out = smooth_class_probs(boxes, obj, cls, window=3, candidates=n)
    assert torch.allclose(out, expected, atol=1e-6)
    assert torch.equal(smooth_class_probs(boxes, obj, cls, 3, candidates=0), cls)


def test_vote_pools_overlapping_boxes_of_a_keyframe_by_objectness():
    from weaktube.infer.smooth import vote_class_probs

    # keyframe 0: boxes 0 and 1 cover the same person (IoU 0.81), box 2 is elsewhere;
    # keyframe 1: the same layout with box 1's objectness 0
    box = torch.tensor([[0.1, 0.1, 0.5, 0.9], [0.1, 0.1, 0.45, 0.82], [0.6, 0.6, 0.9, 0.9]])
    boxes = box[None].repeat(2, 1, 1)  # [T, N, 4]
    assert 0.75 < torch_iou(box[:1], box[1:2])[0, 0] < 0.85
    obj = torch.tensor([[0.6, 0.3, 0.9], [0.6, 0.0, 0.9]])
    cls = torch.tensor([[0.2, 0.7], [0.9, 0.1], [0.5, 0.5]])[None].repeat(2, 1, 1)  # [T, N, K]
    assert torch.equal(vote_class_probs(boxes, obj, cls, 0.0), cls)
    out = vote_class_probs(boxes, obj, cls, 0.5)
    want = (0.6 * cls[0, 0] + 0.3 * cls[0, 1]) / 0.9
    torch.testing.assert_close(out[0, 0], want)  # both boxes get the weighted mean
    torch.testing.assert_close(out[0, 1], want)
    torch.testing.assert_close(out[0, 2], cls[0, 2])  # nothing overlaps box 2
    torch.testing.assert_close(out[1, 0], cls[1, 0])  # box 1 has no weight in keyframe 1
    torch.testing.assert_close(out[1, 1], cls[1, 0])  # ... but takes box 0's classes
    # above the pair's IoU nothing is pooled; boxes and objectness are inputs only
    torch.testing.assert_close(vote_class_probs(boxes, obj, cls, 0.9), cls)
    zero = torch.zeros(1, 2)
    torch.testing.assert_close(vote_class_probs(boxes[:1, :2], zero, cls[:1, :2], 0.5), cls[:1, :2])


def test_vote_batches_by_memory_and_gives_the_same_numbers(monkeypatch):
    """``vote_class_probs`` sizes its keyframe batches by box pairs (a 416² input has ~16k
    boxes per keyframe); keyframes are pooled alone, so any batch size gives the same result."""
    from weaktube.infer.smooth import vote_class_probs

    g = torch.Generator().manual_seed(0)
    xy = torch.rand(7, 30, 2, generator=g)
    boxes = torch.cat([xy, xy + 0.1 + 0.3 * torch.rand(7, 30, 2, generator=g)], -1)
    obj = torch.rand(7, 30, generator=g)
    cls = torch.rand(7, 30, 4, generator=g)
    whole = vote_class_probs(boxes, obj, cls, 0.3)
    batches = []
    real_iou = smooth_mod.torch_iou_batched

    def recording_iou(a, b):
        batches.append(len(a))  # keyframes in this batch
        return real_iou(a, b)

    monkeypatch.setattr(smooth_mod, "torch_iou_batched", recording_iou)
    monkeypatch.setattr(smooth_mod, "PAIR_BUDGET", 30 * 30 * 2)  # two keyframes per batch
    torch.testing.assert_close(vote_class_probs(boxes, obj, cls, 0.3), whole, rtol=0, atol=0)
    assert batches == [2, 2, 2, 1]  # [C, 30, 30] with C * 900 <= the budget
    monkeypatch.setattr(smooth_mod, "PAIR_BUDGET", 1)  # one keyframe per batch, never zero
    torch.testing.assert_close(vote_class_probs(boxes, obj, cls, 0.3), whole, rtol=0, atol=0)
    assert not torch.equal(whole, cls)
