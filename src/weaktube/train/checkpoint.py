"""Atomic, resumable checkpoints that carry the resolved configuration."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from weaktube.fileio import atomic_path

CHECKPOINT_FORMAT = "weaktube/checkpoint@1"


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, unreadable or not a weaktube checkpoint."""


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """``torch.save`` to a temporary file, then rename: a killed run never leaves half a file."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            torch.save({"format": CHECKPOINT_FORMAT, **state}, f)
            f.flush()
            os.fsync(f.fileno())  # on disk before the rename makes it the checkpoint


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint written by :func:`save_checkpoint`.

    Keys: ``model`` (state dict), ``config`` (resolved experiment config as a dict),
    ``detector`` (DetectorConfig as a dict), ``classes``, and for resuming ``optimizer``,
    ``scheduler``, ``epoch``, ``iteration``, ``history`` and ``train_seconds`` (the epochs so
    far), ``scaler`` (CUDA float16 runs); ``ema`` when ``train.ema_decay`` > 0, ``weak`` (the
    target stage's mean teacher).

    Loaded with ``weights_only=True``: tensors, numbers, strings and containers only, so a
    checkpoint from elsewhere cannot run code when it is opened.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r}: file not found")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means a bad file
        raise CheckpointError(f"checkpoint {str(path)!r}: cannot be read ({e})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"checkpoint {str(path)!r}: not a {CHECKPOINT_FORMAT} file")
    return ckpt


def inference_weights(ckpt: dict) -> dict[str, torch.Tensor]:
    """The state dict to detect with, export or start another stage from: the weight average
    (``ema``) when the run kept one, else the trained weights (``model``, which resuming uses)."""
    ema = ckpt.get("ema")
    return ema["state"] if ema else ckpt["model"]


def inference_model(ckpt: dict):
    """The :class:`~weaktube.model.Detector` a checkpoint describes (``ckpt["detector"]``) with
    :func:`inference_weights` loaded, in eval mode, on the device its tensors were loaded to."""
    from weaktube.model import DetectorConfig, build_detector

    model = build_detector(DetectorConfig.from_dict(ckpt["detector"]))
    state = inference_weights(ckpt)
    device = next(iter(state.values())).device if state else torch.device("cpu")
    model.to(device).load_state_dict(state)
    return model.eval()
