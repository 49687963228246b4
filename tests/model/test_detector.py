"""Four-branch detector: shapes per variant, gradient routing, parameter groups, config trip."""

from __future__ import annotations

import dataclasses
import json
import math
import time

import pytest
import torch
import yaml

from weaktube.config import apply_overrides
from weaktube.model import (
    BackboneConfig,
    Detector,
    DetectorConfig,
    DetectorOutput,
    branch_input,
    build_detector,
    detector_demo,
    detector_paper,
    detector_small,
    location_maps,
    with_frame_difference,
)

ANCHORS = ((0.1, 0.25), (0.2, 0.45), (0.35, 0.7), (0.5, 0.85), (0.8, 0.95))


def tiny_config(**overrides) -> DetectorConfig:
    kw = dict(
        num_classes=3, clip_len=4, img_size=64, anchors=((0.2, 0.3), (0.5, 0.8)),
        cls_backbone=BackboneConfig.resnet(10, width=8, stem_width=8),
        loc_backbone=BackboneConfig.resnet(10, width=8, stem_width=8,
                                           temporal_strides=(1, 1, 1, 1)),
        fusion_channels=16, frame_head_channels=8,
    )
    kw.update(overrides)
    return DetectorConfig(**kw)


def _check_output(out: DetectorOutput, b: int, n: int, a: int, k: int, d: int, hw: tuple):
    assert isinstance(out, DetectorOutput)
    assert out.key.shape == (b, a, 5 + k, *hw)
    assert out.frames.shape == (b, n, a, 5, *hw)
    assert out.frame_features.shape == (b, n, d, *hw)
    for t in out:
        assert torch.isfinite(t).all()


def test_tiny_forward_shapes_train_and_eval():
    torch.manual_seed(0)
    model = build_detector(tiny_config())
    clip = torch.randn(2, 3, 4, 64, 96)
    _check_output(model.train()(clip), 2, 4, 2, 3, 64, (2, 3))
    with torch.no_grad():
        _check_output(model.eval()(clip), 2, 4, 2, 3, 64, (2, 3))


def test_demo_variant_forward():
    torch.manual_seed(0)
    cfg = detector_demo(num_classes=24, anchors=ANCHORS)
    assert (cfg.clip_len, cfg.img_size) == (8, 128)
    model = build_detector(cfg).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 8, 128, 128))
    _check_output(out, 2, 8, 5, 24, model.loc_backbone.out_channels, (4, 4))


def test_small_variant_forward_reduced_size():
    torch.manual_seed(0)
    cfg = detector_small(num_classes=21, anchors=ANCHORS, clip_len=8, img_size=64)
    model = build_detector(cfg).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 8, 64, 64))
    _check_output(out, 1, 8, 5, 21, model.loc_backbone.out_channels, (2, 2))


def test_paper_variant_forward_reduced_size():
    torch.manual_seed(0)
    cfg = detector_paper(num_classes=24, anchors=ANCHORS, clip_len=8, img_size=64)
    assert cfg.cls_backbone == BackboneConfig.resnext(50)
    assert cfg.loc_backbone.depth == 34 and cfg.loc_backbone.temporal_downsampling == 1
    model = build_detector(cfg).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 8, 64, 64))
    _check_output(out, 1, 8, 5, 24, model.loc_backbone.out_channels, (2, 2))
    assert model.cls_backbone.out_channels == 2048


@pytest.mark.slow
def test_paper_variant_forward_full_size():
    torch.manual_seed(0)
    model = build_detector(detector_paper(num_classes=24, anchors=ANCHORS)).eval()
    t0 = time.perf_counter()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 16, 224, 224))
    elapsed = time.perf_counter() - t0
    _check_output(out, 1, 16, 5, 24, model.loc_backbone.out_channels, (7, 7))
    assert elapsed < 60.0, f"paper-size forward took {elapsed:.1f} s"


def test_attributes_and_anchor_buffer():
    cfg = tiny_config()
    model = Detector(cfg)
    assert (model.num_anchors, model.num_classes, model.clip_len) == (2, 3, 4)
    assert model.anchors.shape == (2, 2) and model.anchors.dtype == torch.float32
    torch.testing.assert_close(model.anchors, torch.tensor([[0.2, 0.3], [0.5, 0.8]]))
    assert "anchors" in model.state_dict()
    assert "anchors" not in dict(model.named_parameters())


def test_param_groups_partition_every_parameter_once():
    model = Detector(tiny_config())
    groups = model.param_groups()
    assert set(groups) == {"global", "internal"}
    ids_g = [id(p) for p in groups["global"]]
    ids_i = [id(p) for p in groups["internal"]]
    assert len(ids_g) == len(set(ids_g)) and len(ids_i) == len(set(ids_i))
    assert not set(ids_g) & set(ids_i)
    assert set(ids_g) | set(ids_i) == {id(p) for p in model.parameters()}
    names = {id(p): n for n, p in model.named_parameters()}
    assert names[id(model.fusion.cfam.beta)] in {names[i] for i in ids_g}
    assert all(names[i].split(".")[0] in ("cls_backbone", "fusion") for i in ids_g)
    assert all(names[i].split(".")[0] in ("loc_backbone", "frame_head") for i in ids_i)


def _grads_after(model: Detector, loss_fn) -> dict[str, torch.Tensor | None]:
    model.zero_grad(set_to_none=True)
    torch.manual_seed(1)
    out = model.train()(torch.randn(2, 3, 4, 64, 64))
    loss_fn(out).backward()
    return {n: p.grad for n, p in model.named_parameters()}


def _nonzero(g: torch.Tensor | None) -> bool:
    return g is not None and bool(g.abs().sum() > 0)


def test_global_loss_reaches_only_branches_1_and_3():
    model = Detector(tiny_config())
    grads = _grads_after(model, lambda out: (out.key * torch.randn_like(out.key)).sum())
    group_of = {id(p): g for g, ps in model.param_groups().items() for p in ps}
    for name, p in model.named_parameters():
        if group_of[id(p)] == "internal":
            assert not _nonzero(grads[name]), name
        else:  # no dead parameter in the global group
            assert _nonzero(grads[name]), name


def test_internal_loss_reaches_only_branches_2_and_4():
    model = Detector(tiny_config())

    def internal_loss(out):
        return ((out.frames * torch.randn_like(out.frames)).sum()
                + out.frame_features.pow(2).mean())

    grads = _grads_after(model, internal_loss)
    group_of = {id(p): g for g, ps in model.param_groups().items() for p in ps}
    for name, p in model.named_parameters():
        if group_of[id(p)] == "global":
            assert not _nonzero(grads[name]), name
        else:  # every internal parameter (incl. the part producing F01) is trained
            assert _nonzero(grads[name]), name


def test_cfam_identity_at_init_and_f01_is_detached_location_map():
    model = Detector(tiny_config()).eval()
    with torch.no_grad():
        inter = model.forward_intermediates(torch.randn(1, 3, 4, 64, 64))
    assert model.fusion.cfam.beta.item() == 0.0
    assert torch.equal(inter.fc, inter.fb)
    assert inter.f01.shape == (1, 4, 2, 2)
    torch.testing.assert_close(inter.f01, location_maps(inter.output.frames))
    assert inter.f11.shape == (1, model.cls_backbone.out_channels, 2, 2)


def test_location_maps_known_answer():
    frames = torch.zeros(1, 2, 3, 5, 1, 1)  # B=1, N=2, A=3
    frames[0, 0, :, 4, 0, 0] = torch.tensor([-1.0, 2.0, 0.0])
    frames[0, 1, :, 4, 0, 0] = torch.tensor([-3.0, -2.0, -4.0])
    expected = torch.tensor([1 / (1 + math.exp(-2.0)), 1 / (1 + math.exp(2.0))])
    torch.testing.assert_close(location_maps(frames)[0, :, 0, 0], expected)


def test_initial_confidences_near_prior():
    torch.manual_seed(0)
    model = Detector(tiny_config(prior_prob=0.02)).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 4, 64, 64))
    for t in (out.key[:, :, 4], out.key[:, :, 5:], out.frames[:, :, :, 4]):
        p = t.sigmoid()
        assert 0.01 < p.mean() < 0.04 and p.max() < 0.1
    assert out.key[:, :, :4].abs().max() < 1.0  # box offsets start near 0


def test_input_validation():
    model = Detector(tiny_config()).eval()
    with pytest.raises(ValueError, match="clip_len=4"):
        model(torch.randn(1, 3, 5, 64, 64))
    with pytest.raises(ValueError, match="multiples of 32"):
        model(torch.randn(1, 3, 4, 64, 80))
    with pytest.raises(ValueError, match=r"\[B, 3, N, H, W\]"):
        model(torch.randn(3, 4, 64, 64))


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"loc_backbone": BackboneConfig.resnet(10, width=8)}, "keep every frame"),
        ({"img_size": 100}, "img_size"),
        ({"anchors": ()}, "anchors"),
        ({"anchors": ((0.2, 1.5),)}, r"anchors\[0\]"),
        ({"num_classes": 0}, "num_classes"),
        ({"cls_frame_diff": True}, r"set cls_backbone.in_channels=6"),
        ({"cls_backbone": BackboneConfig.resnet(10, width=8, in_channels=6)},
         r"set cls_backbone.in_channels=3"),
        ({"loc_frame_diff": True}, r"set loc_backbone.in_channels=6"),
        ({"loc_backbone": BackboneConfig.resnet(10, width=8, temporal_strides=(1, 1, 1, 1),
                                                in_channels=6)},
         r"set loc_backbone.in_channels=3"),
        ({"cls_flow": True}, r"cls_flow=True feed branch 1 5 channels.*in_channels=5"),
        ({"cls_flow": True, "cls_frame_diff": True}, r"set cls_backbone.in_channels=8"),
        ({"loc_flow": True}, r"set loc_backbone.in_channels=5"),
    ],
)
def test_config_validation(kw, match):
    with pytest.raises(ValueError, match=match):
        tiny_config(**kw)


@pytest.mark.parametrize("factory", [detector_demo, detector_small, detector_paper])
def test_config_round_trip_json_yaml_asdict(factory):
    cfg = factory(num_classes=21, anchors=ANCHORS)
    assert DetectorConfig.from_dict(dataclasses.asdict(cfg)) == cfg
    assert DetectorConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert DetectorConfig.from_dict(yaml.safe_load(yaml.safe_dump(cfg.to_dict()))) == cfg
    with pytest.raises(ValueError, match="unknown field"):
        DetectorConfig.from_dict({**cfg.to_dict(), "fusion": 3})


def test_default_config_is_paper_size():
    cfg = DetectorConfig()
    assert cfg == detector_paper(num_classes=24, anchors=cfg.anchors)
    assert cfg.num_anchors == 5


def test_two_step_forward_equals_forward():
    import torch

    from weaktube.model import build_detector, detector_demo

    torch.manual_seed(0)
    m = build_detector(detector_demo(3, ((0.2, 0.4), (0.4, 0.8)), clip_len=4, img_size=64)).eval()
    x = torch.randn(2, 3, 4, 64, 64)
    with torch.no_grad():
        out = m(x)
        frames, feats = m.forward_location(x)
        key = m.forward_global(x, frames)
    torch.testing.assert_close(key, out.key)
    torch.testing.assert_close(frames, out.frames)
    torch.testing.assert_close(feats, out.frame_features)


def test_with_frame_difference_known_answer():
    clip = torch.zeros(1, 3, 3, 2, 2)
    clip[:, :, 1] = 0.5  # frame 1 brighter than frame 0 by 0.5, frame 2 back to 0
    out = with_frame_difference(clip)
    assert out.shape == (1, 6, 3, 2, 2)
    assert torch.equal(out[:, :3], clip)
    assert torch.all(out[:, 3:, 0] == 0)  # no difference before the first frame
    assert torch.allclose(out[:, 3:, 1], torch.full((1, 3, 2, 2), 2.0))  # 4 x (+0.5)
    assert torch.allclose(out[:, 3:, 2], torch.full((1, 3, 2, 2), -2.0))


@pytest.mark.parametrize("name", ["cls", "loc"])
def test_frame_diff_option_feeds_six_channels_to_its_branch_only(name):
    """``cls_frame_diff`` / ``loc_frame_diff``: that branch sees the clip and its frame
    difference, the other one the clip; a config saved without the flag rebuilds RGB only."""
    torch.manual_seed(0)
    strides = (1, 1, 1, 1) if name == "loc" else (1, 2, 2, 2)
    cfg = tiny_config(**{f"{name}_frame_diff": True, f"{name}_backbone": BackboneConfig.resnet(
        10, width=8, stem_width=8, temporal_strides=strides, in_channels=6)})
    model = build_detector(cfg).eval()
    channels = {"cls": 3, "loc": 3} | {name: 6}  # what each branch must see
    assert model.cls_backbone.conv1.weight.shape[1] == channels["cls"]
    assert model.loc_backbone.conv1.weight.shape[1] == channels["loc"]
    clip = torch.randn(2, 3, 4, 64, 64)
    inputs = {3: clip, 6: with_frame_difference(clip)}  # [B, 3, N, H, W] -> [B, 6, N, H, W]
    with torch.no_grad():
        inter = model.forward_intermediates(clip)
        assert model.branch1_input(clip).shape[1] == channels["cls"]
        assert model.branch2_input(clip).shape[1] == channels["loc"]
        f11 = model.cls_backbone(inputs[channels["cls"]]).mean(dim=2)
        s50 = model.loc_backbone(inputs[channels["loc"]])  # [B, D', N, H', W']
    _check_output(inter.output, 2, 4, 2, 3, 64, (2, 2))
    assert torch.allclose(inter.f11, f11, atol=1e-5)
    assert torch.allclose(inter.output.frame_features, s50.transpose(1, 2), atol=1e-5)
    old = cfg.to_dict()
    old.pop(f"{name}_frame_diff")
    old[f"{name}_backbone"]["in_channels"] = 3
    assert not getattr(DetectorConfig.from_dict(old), f"{name}_frame_diff")


@pytest.mark.parametrize("cls_flow, loc_flow", [(True, False), (False, True), (True, True)])
def test_flow_option_takes_a_five_channel_clip_and_feeds_the_flow_to_its_branch(cls_flow,
                                                                                 loc_flow):
    """``cls_flow`` / ``loc_flow``: the clip is RGB + 2 flow channels; a branch with the option
    sees RGB (+ its frame difference) + the flow, a branch without it sees RGB only."""
    torch.manual_seed(0)
    cfg = tiny_config(
        cls_frame_diff=True, cls_flow=cls_flow, loc_flow=loc_flow,
        cls_backbone=BackboneConfig.resnet(10, width=8, stem_width=8,
                                           in_channels=6 + 2 * cls_flow),
        loc_backbone=BackboneConfig.resnet(10, width=8, stem_width=8,
                                           temporal_strides=(1, 1, 1, 1),
                                           in_channels=3 + 2 * loc_flow))
    assert cfg.uses_flow and cfg.input_channels == 5
    model = build_detector(cfg).eval()
    clip = torch.randn(2, 5, 4, 64, 64)  # [B, RGB + (dx, dy), N, H, W]
    rgb, flow = clip[:, :3], clip[:, 3:]
    want1 = torch.cat([with_frame_difference(rgb)] + [flow] * cls_flow, dim=1)
    want2 = torch.cat([rgb] + [flow] * loc_flow, dim=1)
    assert torch.equal(model.branch1_input(clip), want1)
    assert torch.equal(model.branch2_input(clip), want2)
    with torch.no_grad():
        inter = model.forward_intermediates(clip)
        f11 = model.cls_backbone(want1).mean(dim=2)
        s50 = model.loc_backbone(want2)
    _check_output(inter.output, 2, 4, 2, 3, 64, (2, 2))
    assert torch.allclose(inter.f11, f11, atol=1e-5)
    assert torch.allclose(inter.output.frame_features, s50.transpose(1, 2), atol=1e-5)
    # the flow changes what a branch with the option computes, and nothing else
    moved = clip.clone()
    moved[:, 3:] += 1.0
    with torch.no_grad():
        other = model.forward_intermediates(moved)
    assert (not torch.allclose(other.f11, inter.f11)) == cls_flow
    assert (not torch.allclose(other.output.frames, inter.output.frames)) == loc_flow
    with pytest.raises(ValueError, match=r"\[B, 5, N, H, W\] \(RGB \+ optical flow"):
        model(rgb)
    rgb_model = build_detector(tiny_config()).eval()
    with pytest.raises(ValueError, match=r"\[B, 3, N, H, W\] \(RGB\)"):
        rgb_model(clip)


def test_branch_input_without_options_is_the_clip_itself():
    clip = torch.randn(1, 3, 4, 32, 32)
    assert branch_input(clip, frame_diff=False, flow=False) is clip
    assert branch_input(clip, frame_diff=True, flow=False).shape[1] == 6


def test_demo_variant_alone_feeds_branch1_the_frame_difference():
    # the demo variant uses it on branch 1; the paper's model does not (RGB, as in the paper);
    # no variant uses it on branch 2 (measured on B->A, docs/RESULTS.md §8 session 10)
    demo = detector_demo(num_classes=3, anchors=ANCHORS)
    paper = detector_paper(num_classes=3, anchors=ANCHORS)
    assert demo.cls_frame_diff and not paper.cls_frame_diff
    assert not demo.loc_frame_diff and not paper.loc_frame_diff


def test_stem_pool_is_a_config_choice_and_old_configs_rebuild_hara_stems():
    """Every variant keeps Hara's stem (Kinetics weights; the demo's stride-4 branch-1 stem was
    measured and not adopted, docs/MODEL.md); ``model.overrides`` can switch it per branch, and
    a checkpoint's config saved before the option existed rebuilds Hara's stem."""
    demo = detector_demo(num_classes=3, anchors=ANCHORS)
    assert demo.cls_backbone.stem_pool and demo.loc_backbone.stem_pool
    strided = apply_overrides(demo, {"cls_backbone": {"stem_pool": False}})
    m = build_detector(strided)
    assert m.cls_backbone.conv1.stride == (1, 4, 4) and m.loc_backbone.conv1.stride == (1, 2, 2)
    assert isinstance(m.cls_backbone.maxpool, torch.nn.Identity)
    with torch.no_grad():
        out = m.eval()(torch.randn(2, 3, 8, 64, 64))
    assert out.key.shape == (2, 5, 5 + 3, 2, 2) and torch.isfinite(out.key).all()
    old = strided.to_dict()
    del old["cls_backbone"]["stem_pool"], old["loc_backbone"]["stem_pool"]
    assert DetectorConfig.from_dict(old).cls_backbone.stem_pool


def test_paper_variant_on_meta_device_for_flop_counting():
    """benchmarks/speed.py counts FLOPs on the ``meta`` device (no memory, no compute): every
    module must accept meta tensors (the CFAM's autocast switch once refused them)."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        model = build_detector(detector_paper(24, ANCHORS)).eval()
        clip = torch.empty(1, 3, 16, 224, 224)
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        out = model(clip)
    assert out.key.shape == (1, 5, 24 + 5, 7, 7)  # [B, A, K + 5, H, W]
    assert fc.get_total_flops() > 5e10  # the paper-size pair: tens of GFLOPs per clip
