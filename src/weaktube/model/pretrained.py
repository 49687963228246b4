"""Load Kinetics checkpoints of Hara et al.'s 3D-ResNets-PyTorch into a :class:`ResNet3d`.

Hara's files are ``torch.save({"epoch", "arch", "state_dict", "optimizer"})`` with the model
wrapped in ``DataParallel`` (keys prefixed ``module.``); some re-distributions are a bare state
dict. The classifier ``fc.*`` is ignored (the detector has none). Checkpoints written before
PyTorch 0.4 have no BatchNorm ``num_batches_tracked`` buffers: those are not reported missing.

Which checkpoint fits which backbone (facts from Hara's repository):
- ``resnext-101-kinetics.pth`` (the one YOWO loads): ``resnext3d_101()`` (64-channel 7x7x7 stem,
  shortcut B);
- old ``resnet-18/34-kinetics.pth``: ``resnet3d_18/34(shortcut="A")`` (no downsample weights);
- newer ``r3d{18,34,50,101}_K_200ep.pth``: ``resnet3d_*()`` (shortcut B), with the
  ``conv1_t_size`` the checkpoint was trained with (7 by default).
The temporal strides may differ from the checkpoint's (no parameter depends on them).
"""

from __future__ import annotations

import os
from typing import NamedTuple

import torch
from torch import nn


class LoadReport(NamedTuple):
    """What :func:`load_hara_checkpoint` could not match (all empty = perfect fit)."""

    missing: list[str]  # backbone keys the checkpoint lacks (left as initialised)
    unexpected: list[str]  # checkpoint keys the backbone lacks (ignored); fc.* never listed
    # (key, checkpoint shape, backbone shape) for keys present in both with different shapes
    shape_mismatch: list[tuple[str, tuple[int, ...], tuple[int, ...]]]

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.shape_mismatch)


def _read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise FileNotFoundError(f"checkpoint {os.fspath(path)!r}: no such file") from None
    except Exception as e:  # pickle, zip and torch errors all mean "not a readable checkpoint"
        raise ValueError(f"checkpoint {os.fspath(path)!r}: cannot be read as a PyTorch "
                         f"checkpoint ({type(e).__name__}: {e})") from e
    if isinstance(obj, dict) and "state_dict" in obj:
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
    ):
        raise ValueError(f"checkpoint {os.fspath(path)!r}: expected a state dict of tensors or "
                         "a dict with a 'state_dict' entry")
    return obj


def _strip_prefix(key: str, prefix: str = "module.") -> str:
    return key[len(prefix):] if key.startswith(prefix) else key


def load_hara_checkpoint(backbone: nn.Module, path: str | os.PathLike,
                         strict: bool = False) -> LoadReport:
    """Copy the matching tensors of Hara checkpoint ``path`` into ``backbone``.

    Keys are matched by name after stripping a ``module.`` prefix; ``fc.*`` is ignored. A
    tensor is copied only when its shape matches. With ``strict=True`` any missing key,
    unexpected key or shape mismatch raises ``ValueError`` (naming the file) before anything
    is copied; otherwise they are returned in the :class:`LoadReport` and the rest is loaded.
    Raises ``FileNotFoundError`` / ``ValueError`` naming the file if it cannot be read.
    """
    ckpt = {_strip_prefix(k): v for k, v in _read_state_dict(path).items()}
    ckpt = {k: v for k, v in ckpt.items() if not k.startswith("fc.")}
    own = backbone.state_dict()

    missing = [k for k in own if k not in ckpt and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in ckpt if k not in own]
    mismatch = [(k, tuple(v.shape), tuple(own[k].shape)) for k, v in ckpt.items()
                if k in own and v.shape != own[k].shape]
    report = LoadReport(missing=missing, unexpected=unexpected, shape_mismatch=mismatch)

    if strict and not report.ok:
        lines = [f"checkpoint {os.fspath(path)!r} does not fit the backbone exactly:"]
        if missing:
            lines.append(f"  missing ({len(missing)}): {missing[:10]}")
        if unexpected:
            lines.append(f"  unexpected ({len(unexpected)}): {unexpected[:10]}")
        for k, cs, ms in mismatch[:10]:
            lines.append(f"  shape mismatch {k}: checkpoint {list(cs)} vs backbone {list(ms)}")
        raise ValueError("\n".join(lines))

    bad = {k for k, _, _ in mismatch}
    subset = {k: v for k, v in ckpt.items() if k in own and k not in bad}
    backbone.load_state_dict(subset, strict=False)
    return report
