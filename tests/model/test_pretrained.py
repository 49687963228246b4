"""Loading Hara-layout checkpoints (DataParallel prefix, fc, old BN buffers, bad shapes/files)."""

from __future__ import annotations

import pytest
import torch

from weaktube.model import load_hara_checkpoint, resnet3d_10


def _small(**kw):
    return resnet3d_10(width=8, stem_width=8, **kw)


def _hara_checkpoint(model: torch.nn.Module, n_classes: int = 400) -> dict:
    """What Hara's training script saves: DataParallel keys, a classifier, an optimizer."""
    sd = {f"module.{k}": v.clone() for k, v in model.state_dict().items()}
    sd["module.fc.weight"] = torch.randn(n_classes, model.out_channels)
    sd["module.fc.bias"] = torch.randn(n_classes)
    return {"epoch": 200, "arch": "resnet-10", "state_dict": sd, "optimizer": {"state": {}}}


def _assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def test_strict_load_of_hara_layout(tmp_path):
    torch.manual_seed(0)
    source = _small()
    with torch.no_grad():  # make BN buffers non-trivial too
        for m in source.modules():
            if isinstance(m, torch.nn.BatchNorm3d):
                m.running_mean.normal_()
                m.running_var.uniform_(0.5, 2.0)
    path = tmp_path / "resnet-10-kinetics.pth"
    torch.save(_hara_checkpoint(source), path)

    torch.manual_seed(1)
    target = _small()
    assert not torch.equal(target.conv1.weight, source.conv1.weight)
    report = load_hara_checkpoint(target, path, strict=True)
    assert report.ok
    assert report.missing == [] and report.unexpected == [] and report.shape_mismatch == []
    _assert_same_weights(target, source)


def test_bare_state_dict_without_prefix_and_old_bn_buffers(tmp_path):
    source = _small()
    sd = {k: v for k, v in source.state_dict().items() if not k.endswith("num_batches_tracked")}
    path = tmp_path / "bare.pth"
    torch.save(sd, path)
    target = _small()
    report = load_hara_checkpoint(target, path, strict=True)
    assert report.ok
    torch.testing.assert_close(target.layer4[0].conv2.weight, source.layer4[0].conv2.weight)


def test_shape_mismatch_reported_and_rest_loaded(tmp_path):
    source = _small()
    ckpt = _hara_checkpoint(source)
    bad = "module.layer2.0.conv1.weight"
    ckpt["state_dict"][bad] = torch.zeros(16, 8, 1, 3, 3)  # model has [16, 8, 3, 3, 3]
    path = tmp_path / "bad_shape.pth"
    torch.save(ckpt, path)

    target = _small()
    before = target.layer2[0].conv1.weight.clone()
    report = load_hara_checkpoint(target, path)
    assert report.shape_mismatch == [
        ("layer2.0.conv1.weight", (16, 8, 1, 3, 3), (16, 8, 3, 3, 3))
    ]
    assert report.missing == [] and report.unexpected == [] and not report.ok
    assert torch.equal(target.layer2[0].conv1.weight, before)  # skipped, not overwritten
    assert torch.equal(target.conv1.weight, source.conv1.weight)  # the rest loaded

    with pytest.raises(ValueError, match=r"bad_shape\.pth(.|\n)*layer2\.0\.conv1\.weight"):
        load_hara_checkpoint(_small(), path, strict=True)


def test_missing_and_unexpected_keys(tmp_path):
    # shortcut "A" checkpoint (old Hara ResNet-18/34) into a shortcut "B" model and back
    path_a = tmp_path / "shortcut_a.pth"
    torch.save(_hara_checkpoint(_small(shortcut="A")), path_a)
    report = load_hara_checkpoint(_small(shortcut="B"), path_a)
    assert "layer2.0.downsample.0.weight" in report.missing
    assert report.unexpected == []

    path_b = tmp_path / "shortcut_b.pth"
    torch.save(_hara_checkpoint(_small(shortcut="B")), path_b)
    report = load_hara_checkpoint(_small(shortcut="A"), path_b)
    assert "layer2.0.downsample.1.running_mean" in report.unexpected
    assert not any(k.startswith("fc.") for k in report.unexpected)
    with pytest.raises(ValueError, match="unexpected"):
        load_hara_checkpoint(_small(shortcut="A"), path_b, strict=True)


def test_unreadable_files_name_the_file(tmp_path):
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"this is not a checkpoint")
    with pytest.raises(ValueError, match="garbage.pth"):
        load_hara_checkpoint(_small(), garbage)
    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        load_hara_checkpoint(_small(), tmp_path / "nowhere.pth")
    not_sd = tmp_path / "list.pth"
    torch.save([1, 2, 3], not_sd)
    with pytest.raises(ValueError, match="list.pth.*state dict"):
        load_hara_checkpoint(_small(), not_sd)
