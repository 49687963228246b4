import torch

from weaktube.losses.detection import (
    DetectionLossConfig,
    assign_targets,
    clip_loss,
    total,
    yolo_loss,
)
from weaktube.model.box_ops import torch_iou
from weaktube.model.decode import decode_boxes

ANCHORS = torch.tensor([[0.1, 0.2], [0.3, 0.6]])
CFG = DetectionLossConfig()


def test_assignment_cell_and_anchor():
    boxes = torch.tensor([[[0.55, 0.05, 0.85, 0.65]]])  # centre (0.7, 0.35), 0.3 x 0.6
    asg = assign_targets(boxes, torch.tensor([[2]]), ANCHORS, 4, 4)
    assert asg.obj.sum() == 1
    b, a, i, j = asg.obj.nonzero()[0].tolist()
    assert (b, a, i, j) == (0, 1, 1, 2)  # anchor 1 has the same shape; row 1, column 2
    torch.testing.assert_close(asg.txy[0, 1, 1, 2], torch.tensor([0.8, 0.4]))
    assert asg.label[0, 1, 1, 2] == 2


def test_assignment_with_a_fixed_anchor():
    boxes = torch.tensor([[[0.55, 0.05, 0.85, 0.65], [0.05, 0.05, 0.15, 0.25]]])
    labels = torch.tensor([[0, 1]])
    # box 0 would go to anchor 1 by shape; fixed to anchor 0. Box 1: -1 keeps the shape match
    asg = assign_targets(boxes, labels, ANCHORS, 4, 4, torch.tensor([[0, -1]]))
    got = {tuple(x) for x in asg.obj.nonzero().tolist()}
    assert got == {(0, 0, 1, 2), (0, 0, 0, 0)}
    assert asg.label[0, 0, 1, 2] == 0 and asg.label[0, 0, 0, 0] == 1
    # the loss follows the assignment: the fixed anchor gets the objectness target
    raw = torch.zeros(1, 2, 5, 4, 4, requires_grad=True)
    yolo_loss(raw, ANCHORS, boxes[:, :1], labels[:, :1], 0, CFG,
              anchor_index=torch.tensor([[0]]))["obj"].backward()
    assert raw.grad[0, 0, 4, 1, 2] < 0 and raw.grad[0, 1, 4, 1, 2] == 0


def _exact_raw(boxes, labels, k):
    """Raw predictions whose responsible anchors decode exactly to the targets."""
    asg = assign_targets(boxes, labels, ANCHORS, 4, 4)
    raw = torch.zeros(1, 2, 5 + k, 4, 4)
    raw[:, :, 4] = -10.0
    o = asg.obj[0]
    txy = asg.txy[0][o]
    raw[0, :, 0][o] = torch.logit(txy[:, 0])
    raw[0, :, 1][o] = torch.logit(txy[:, 1])
    anc = ANCHORS[:, None, None, :].expand(2, 4, 4, 2)[o]
    raw[0, :, 2][o] = torch.log(asg.wh[0][o][:, 0] / anc[:, 0])
    raw[0, :, 3][o] = torch.log(asg.wh[0][o][:, 1] / anc[:, 1])
    raw[0, :, 4][o] = 10.0
    return raw


def test_box_terms_vanish_at_the_target():
    boxes = torch.tensor([[[0.1, 0.1, 0.3, 0.5], [0.5, 0.3, 0.9, 0.9]]])
    labels = torch.tensor([[0, 1]])
    raw = _exact_raw(boxes, labels, 2)
    terms = yolo_loss(raw, ANCHORS, boxes, labels, 2, CFG)
    assert terms["xy"] < 1e-8 and terms["wh"] < 1e-8
    assert terms["obj"] < 1e-2 and terms["noobj"] < 1e-2
    decoded = decode_boxes(raw, ANCHORS)[0][assign_targets(boxes, labels, ANCHORS, 4, 4).obj[0]]
    torch.testing.assert_close(decoded, boxes[0], atol=1e-5, rtol=0)


def test_gradient_steps_move_the_box_towards_the_target():
    boxes = torch.tensor([[[0.3, 0.2, 0.6, 0.8]]])
    labels = torch.tensor([[1]])
    raw = torch.zeros(1, 2, 7, 4, 4, requires_grad=True)
    opt = torch.optim.SGD([raw], lr=0.5)
    o = assign_targets(boxes, labels, ANCHORS, 4, 4).obj[0]

    def iou():
        return torch_iou(decode_boxes(raw.detach(), ANCHORS)[0][o], boxes[0])[0, 0].item()

    before, losses = iou(), []
    for _ in range(30):
        loss = total(yolo_loss(raw, ANCHORS, boxes, labels, 2, CFG))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert iou() > max(before, 0.9)
    assert losses[-1] < 0.2 * losses[0]


def test_clip_loss_is_the_mean_over_frames():
    torch.manual_seed(0)
    frames = torch.randn(2, 3, 2, 5, 4, 4)
    fb = torch.rand(2, 3, 1, 4) * 0.4
    fb[..., 2:] += 0.5
    valid = torch.ones(2, 3, 1, dtype=torch.bool)
    valid[1, 2] = False
    got = total(clip_loss(frames, ANCHORS, fb, valid, CFG))
    per_frame = [total(yolo_loss(frames[:, t], ANCHORS, fb[:, t],
                                 valid[:, t].long() - 1, 0, CFG)) for t in range(3)]
    torch.testing.assert_close(got, torch.stack(per_frame).mean())


def test_class_iou_trains_the_class_of_every_anchor_that_boxes_the_person():
    boxes = torch.tensor([[[0.55, 0.05, 0.85, 0.65]]])  # responsible: anchor 1, row 1, column 2
    labels = torch.tensor([[2]])
    raw = _exact_raw(boxes, labels, 3)
    # anchor 0 of the same cell decodes to the same box (its own shape scaled up), a third
    # anchor elsewhere to a box that misses the person
    raw[0, 0, :2, 1, 2] = raw[0, 1, :2, 1, 2]
    raw[0, 0, 2, 1, 2] = torch.log(torch.tensor(0.3 / 0.1))
    raw[0, 0, 3, 1, 2] = torch.log(torch.tensor(0.6 / 0.2))
    dec = decode_boxes(raw, ANCHORS)[0]
    assert torch_iou(dec[0, 1, 2][None], boxes[0])[0, 0] > 0.99
    assert torch_iou(dec[0, 3, 0][None], boxes[0])[0, 0] < 0.5
    grads = {}
    for class_iou in (0.0, 0.5):
        r = raw.clone().requires_grad_(True)
        cfg = DetectionLossConfig(class_iou=class_iou)
        terms = yolo_loss(r, ANCHORS, boxes, labels, 3, cfg)
        terms["cls"].backward()
        grads[class_iou] = r.grad[0, :, 5:]  # [A, K, H', W']
        # the class term is the one-hot BCE summed over the anchors that carry a class target
        anchors = [(1, 1, 2)] + ([(0, 1, 2)] if class_iou else [])
        want = sum(torch.nn.functional.binary_cross_entropy_with_logits(
            raw[0, a, 5:, i, j], torch.tensor([0.0, 0.0, 1.0]), reduction="sum")
            for a, i, j in anchors)
        torch.testing.assert_close(terms["cls"], want)
        # no other term moves with class_iou
        assert set(terms) == {"xy", "wh", "obj", "noobj", "cls"}
    assert grads[0.0][0, :, 1, 2].abs().sum() == 0  # YOLO's rule: only the responsible anchor
    assert grads[0.5][0, 2, 1, 2] < 0  # the overlapping anchor is pushed to class 2 ...
    assert (grads[0.5][0, :2, 1, 2] > 0).all()  # ... and away from the others
    torch.testing.assert_close(grads[0.5][1], grads[0.0][1])  # the responsible one as before
    assert grads[0.5][:, :, 3, 0].abs().sum() == 0  # a box that misses the person: no class


def test_class_iou_norm_gives_each_person_one_extra_class_term():
    boxes = torch.tensor([[[0.55, 0.05, 0.85, 0.65]]])  # responsible: anchor 1, row 1, column 2
    labels = torch.tensor([[2]])
    raw = _exact_raw(boxes, labels, 3)
    # two extra anchors decode to the person's box: anchor 0 of the same cell and anchor 1 of
    # the cell above (its centre pushed to that cell's bottom edge, 0.1 above the person's)
    raw[0, 0, :2, 1, 2] = raw[0, 1, :2, 1, 2]
    raw[0, 0, 2, 1, 2] = torch.log(torch.tensor(0.3 / 0.1))
    raw[0, 0, 3, 1, 2] = torch.log(torch.tensor(0.6 / 0.2))
    raw[0, 1, :4, 0, 2] = raw[0, 1, :4, 1, 2]
    raw[0, 1, 1, 0, 2] = 8.0  # sigmoid ~1: centre at the bottom edge of row 0
    raw[0, :, 5:] = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    dec = decode_boxes(raw, ANCHORS)[0]
    assert torch_iou(dec[1, 0, 2][None], boxes[0])[0, 0] > 0.5
    per = {(a, i, j): torch.nn.functional.binary_cross_entropy_with_logits(
        raw[0, a, 5:, i, j], torch.tensor([0.0, 0.0, 1.0]), reduction="sum")
        for a, i, j in [(1, 1, 2), (0, 1, 2), (1, 0, 2)]}
    got = {}
    for norm in (False, True):
        cfg = DetectionLossConfig(class_iou=0.5, class_iou_norm=norm)
        got[norm] = yolo_loss(raw, ANCHORS, boxes, labels, 3, cfg)["cls"]
    torch.testing.assert_close(got[False], sum(per.values()))
    # the responsible anchor weighs 1; the two extra anchors share one unit
    torch.testing.assert_close(got[True], per[(1, 1, 2)] + (per[(0, 1, 2)] + per[(1, 0, 2)]) / 2)
    # without class_iou the option changes nothing
    off = [yolo_loss(raw, ANCHORS, boxes, labels, 3, DetectionLossConfig(class_iou_norm=n))["cls"]
           for n in (False, True)]
    assert torch.equal(off[0], off[1])
