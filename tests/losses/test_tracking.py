import torch

from weaktube.losses.detection import DetectionLossConfig, assign_targets
from weaktube.losses.tracking import tracking_loss
from weaktube.model.box_ops import torch_iou_paired
from weaktube.model.decode import decode_boxes

ANCHORS = torch.tensor([[0.1, 0.2], [0.3, 0.6]])
CFG = DetectionLossConfig()


def _exact(box):
    """``[1, 1, 2, 5, 4, 4]`` (B, N, A, 5, H', W') raw per-frame predictions that decode
    exactly to ``box`` at its responsible anchor."""
    asg = assign_targets(box[None, None], torch.tensor([[0]]), ANCHORS, 4, 4)
    raw = torch.zeros(1, 2, 5, 4, 4)
    raw[:, :, 4] = -10.0
    o = asg.obj[0]
    a = o.nonzero()[0, 0]
    raw[0, :, 0][o] = torch.logit(asg.txy[0][o][:, 0])
    raw[0, :, 1][o] = torch.logit(asg.txy[0][o][:, 1])
    raw[0, :, 2][o] = torch.log(asg.wh[0][o][:, 0] / ANCHORS[a, 0])
    raw[0, :, 3][o] = torch.log(asg.wh[0][o][:, 1] / ANCHORS[a, 1])
    raw[0, :, 4][o] = 10.0
    return raw[None]


def test_zero_when_the_prediction_is_the_trackers_box():
    box = torch.tensor([0.3, 0.2, 0.55, 0.8])
    frames = _exact(box)
    terms = tracking_loss(frames, ANCHORS, box.view(1, 1, 1, 4), torch.ones(1, 1, 1, dtype=bool),
                          CFG)
    assert sum(terms.values()) < 2e-3


def test_tolerance_and_pull_towards_the_tracker():
    target = torch.tensor([0.3, 0.2, 0.55, 0.8]).view(1, 1, 1, 4)
    valid = torch.ones(1, 1, 1, dtype=bool)
    # a prediction close to the tracker's box (IoU > 0.7): no box terms at all
    near = _exact(torch.tensor([0.31, 0.21, 0.56, 0.8]))
    t = tracking_loss(near, ANCHORS, target, valid, CFG, tolerance_iou=0.7)
    assert t["trb_xy"] == 0 and t["trb_wh"] == 0
    # a far prediction is pulled towards the tracker's box by gradient steps
    raw = _exact(torch.tensor([0.05, 0.1, 0.3, 0.6])).clone().requires_grad_(True)
    opt = torch.optim.SGD([raw], lr=0.3)

    def iou():
        o = assign_targets(target[0], torch.tensor([[0]]), ANCHORS, 4, 4).obj[0]
        return torch_iou_paired(decode_boxes(raw.detach()[0, 0], ANCHORS)[o], target[0, 0])[0]

    before = iou()
    for _ in range(40):
        loss = sum(tracking_loss(raw, ANCHORS, target, valid, CFG, tolerance_iou=0.95).values())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert iou() > max(0.8, before + 0.2)


def test_untracked_frames_contribute_nothing():
    frames = torch.randn(1, 3, 2, 5, 4, 4, requires_grad=True)
    boxes = torch.tensor([0.3, 0.2, 0.55, 0.8]).view(1, 1, 1, 4).expand(1, 3, 1, 4)
    valid = torch.tensor([[[True], [False], [False]]])
    sum(tracking_loss(frames, ANCHORS, boxes, valid, CFG).values()).backward()
    assert frames.grad[0, 0].abs().sum() > 0
    assert frames.grad[0, 1:].abs().sum() == 0
