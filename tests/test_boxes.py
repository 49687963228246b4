import numpy as np
import torch

from weaktube.boxes import np_iou, np_iou_paired
from weaktube.model.box_ops import torch_iou, torch_nms, with_size_of, xyxy_to_cxcywh


def test_iou_known_values():
    a = np.array([[0, 0, 10, 10]])
    b = np.array([[5, 0, 15, 10], [20, 20, 30, 30]])
    # overlap 5x10 = 50; union 100 + 100 - 50 = 150
    np.testing.assert_allclose(np_iou(a, b), [[50 / 150, 0.0]])
    # +1 pixel convention: 11x11 boxes, overlap 6x11 = 66, union 121 + 121 - 66 = 176
    np.testing.assert_allclose(np_iou(a, b, plus_one=True)[0, 0], 66 / 176)
    np.testing.assert_allclose(np_iou_paired(a, b[:1]), [50 / 150])
    np.testing.assert_allclose(torch_iou(torch.tensor(a, dtype=torch.float32),
                                         torch.tensor(b, dtype=torch.float32)).numpy(),
                               [[50 / 150, 0.0]], rtol=1e-6)


def test_nms_keeps_best_and_disjoint():
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], dtype=torch.float32)
    scores = torch.tensor([0.5, 0.9, 0.4])
    assert torch_nms(boxes, scores, 0.5).tolist() == [1, 2]
    assert torch_nms(boxes, scores, 0.9).tolist() == [1, 0, 2]


def test_with_size_of_keeps_one_centre_and_the_other_size():
    a = torch.tensor([[0.1, 0.2, 0.3, 0.6]])  # centre (0.2, 0.4)
    b = torch.tensor([[0.5, 0.5, 0.9, 0.6]])  # size 0.4 x 0.1
    out = xyxy_to_cxcywh(with_size_of(a, b))
    torch.testing.assert_close(out, torch.tensor([[0.2, 0.4, 0.4, 0.1]]))
