import torch
import torch.nn.functional as F

from weaktube.losses.consistency import (
    ncb_weights,
    neighbour_consistency_loss,
    neighbour_similarities,
    target_features,
)


def test_zero_when_neighbours_are_identical():
    f = F.normalize(torch.randn(3, 1, 16), dim=-1).expand(3, 8, 16)
    assert neighbour_consistency_loss(f).abs() < 1e-6


def test_positive_and_gradient_raises_similarity():
    torch.manual_seed(0)
    raw = torch.randn(2, 8, 16, requires_grad=True)
    opt = torch.optim.SGD([raw], lr=5.0)
    feats = F.normalize(raw, dim=-1)
    before = neighbour_similarities(feats).detach()
    loss0 = neighbour_consistency_loss(feats)
    assert loss0 > 0
    for _ in range(20):
        loss = neighbour_consistency_loss(F.normalize(raw, dim=-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = neighbour_similarities(F.normalize(raw, dim=-1)).detach()
    # pairs share frames, and far pairs weigh less, so single pairs may move either way;
    # neighbours as a whole become more similar
    assert after.mean() > before.mean() + 0.05, (before.mean(), after.mean())
    assert neighbour_consistency_loss(F.normalize(raw, dim=-1)) < loss0


def test_weights_follow_the_text():
    # pair 0 far apart, pair 1 close: the far pair weighs less; weights carry no gradient
    sim = torch.tensor([[0.0, 0.9]], requires_grad=True)
    w = ncb_weights(sim)
    assert w[0, 0] < w[0, 1] and not w.requires_grad
    # N = 3 frames: w_i = (1/3) (1 - dist_i / sum dist) with dist = (1.0, 0.1)
    torch.testing.assert_close(w, torch.tensor([[(1 - 1 / 1.1) / 3, (1 - 0.1 / 1.1) / 3]]))


def test_target_features_follow_the_map():
    feat = torch.zeros(1, 2, 3, 2, 2)
    feat[0, :, 0, 0, 0] = 1.0  # channel 0 lives in cell (0, 0)
    feat[0, :, 1, 1, 1] = 1.0  # channel 1 in cell (1, 1)
    maps = torch.zeros(1, 2, 2, 2)
    maps[0, 0, 0, 0] = 1.0
    maps[0, 1, 1, 1] = 1.0
    out = target_features(feat, maps)
    assert out[0, 0].argmax() == 0 and out[0, 1].argmax() == 1
    torch.testing.assert_close(out.norm(dim=-1), torch.ones(1, 2))
