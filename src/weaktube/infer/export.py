"""Export a trained detector for deployment: ``torch.export`` (``.pt2``) or ONNX (``.onnx``).

The exported graph is :class:`DeployedDetector`: the network with its input normalisation and
the keyframe head's decoding inside, so that a runtime without weaktube needs only resized
frames in and a threshold + NMS out.

* input ``clip``: ``[B, N, S, S, 3]`` uint8 RGB — N = ``clip_len`` frames, ``frame_stride``
  frames apart, ending at the keyframe (clamped at the video's start, as
  :func:`weaktube.data.dataset.clip_indices`), each resized (stretched) to S × S = ``img_size``
  with bilinear interpolation (``cv2.resize(..., INTER_LINEAR)``); B free;
* outputs ``boxes [B, M, 4]`` (x1, y1, x2, y2 as fractions of the keyframe's width and height,
  not clipped to [0, 1]), ``objectness [B, M]`` and ``class_probs [B, M, K]``, M = A·H'·W'
  anchor boxes. The score of class k for box m is ``objectness[m] * class_probs[m, k]``;
  weaktube then keeps the ``top_classes`` best per box, drops scores below
  ``conf_threshold``, clips the boxes to [0, 1] and runs per-class NMS
  (:func:`weaktube.model.decode.select_detections`); its settings are in the side-car JSON.

Next to the model, ``<out>.json`` (``weaktube/export@1``) records the classes, the clip
geometry, the post-processing settings, the input and output layouts and the largest difference
between the saved model and the eager network measured at export. Both files are written
atomically; the export is refused if the saved model disagrees with the eager network.
Models that read optical flow (``cls_flow`` / ``loc_flow``) cannot be exported: the flow is
computed by OpenCV outside the network.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from weaktube.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from weaktube.fileio import atomic_path, atomic_write_json
from weaktube.model.decode import decode_keyframe

EXPORT_FORMAT = "weaktube/export@1"
FORMATS = {".pt2": "torch.export", ".onnx": "onnx"}
TOLERANCE = 1e-4  # largest absolute difference accepted between the saved model and eager


class ExportError(ValueError):
    """A checkpoint that cannot be exported, an unknown output format or a missing package."""


class DeployedDetector(nn.Module):
    """A :class:`~weaktube.model.Detector` from uint8 frames to decoded keyframe boxes.

    ``forward(clip [B, N, S, S, 3] uint8 RGB) -> (boxes [B, M, 4] normalised xyxy,
    objectness [B, M], class_probs [B, M, K])``: ImageNet normalisation in float32 (the same
    values as :func:`weaktube.data.transforms.to_tensor_layout`), the network, then
    :func:`~weaktube.model.decode.decode_keyframe`.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        if model.cfg.uses_flow:
            raise ExportError("the model reads optical flow (model.cls_flow / model.loc_flow), "
                              "which OpenCV computes outside the network: only RGB models "
                              "can be exported")
        self.model = model
        self.register_buffer("mean", torch.from_numpy(IMAGENET_MEAN).view(1, 3, 1, 1, 1))
        self.register_buffer("std", torch.from_numpy(IMAGENET_STD).view(1, 3, 1, 1, 1))

    def forward(self, clip: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = clip.permute(0, 4, 1, 2, 3).float()  # [B, N, S, S, 3] -> [B, 3, N, S, S]
        x = (x - self.mean) / self.std
        key = self.model(x).key  # [B, A, 5 + K, H', W']
        return decode_keyframe(key, self.model.anchors)


def example_clips(batch: int, clip_len: int, img_size: int, seed: int = 0) -> torch.Tensor:
    """``[batch, clip_len, img_size, img_size, 3]`` uint8 of a seeded generator (tracing and
    checking inputs; never the global RNG)."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (batch, clip_len, img_size, img_size, 3), dtype=torch.uint8,
                         generator=gen)


def _export_pt2(deployed: DeployedDetector, example: torch.Tensor, tmp: Path) -> None:
    batch = torch.export.Dim("batch", min=1, max=4096)
    program = torch.export.export(deployed, (example,), dynamic_shapes={"clip": {0: batch}})
    torch.export.save(program, tmp)


def _run_pt2(path: Path, clip: torch.Tensor) -> list[np.ndarray]:
    module = torch.export.load(path).module()
    with torch.no_grad():
        return [t.numpy() for t in module(clip)]


def _export_onnx(deployed: DeployedDetector, example: torch.Tensor, tmp: Path) -> None:
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as e:
        raise ExportError(f"ONNX export needs the onnx and onnxscript packages ({e}): "
                          "pip install 'weaktube[export]'") from None
    batch = torch.export.Dim("batch", min=1, max=4096)
    with warnings.catch_warnings():  # torch.onnx's own use of a deprecated pytree class
        warnings.filterwarnings("ignore", message=".*LeafSpec.*", category=FutureWarning)
        torch.onnx.export(deployed, (example,), str(tmp), dynamo=True, external_data=False,
                          dynamic_shapes={"clip": {0: batch}}, input_names=["clip"],
                          output_names=["boxes", "objectness", "class_probs"], verbose=False)


def _run_onnx(path: Path, clip: torch.Tensor) -> list[np.ndarray] | None:
    try:
        import onnxruntime
    except ImportError:
        return None  # exported but not checked: the side-car says so
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"clip": clip.numpy()})


def export_checkpoint(checkpoint: str | os.PathLike, out: str | os.PathLike,
                      check_batch: int = 3) -> dict:
    """Export ``checkpoint``'s inference weights (the weight average when the run kept one) to
    ``out`` (``.pt2``: ``torch.export``; ``.onnx``: ONNX, opset of the installed exporter),
    check the saved file against the eager network on ``check_batch`` seeded clips (a batch
    size other than the traced one, so the free batch axis is exercised) and write
    ``<out>.json``. Returns the side-car's content."""
    from weaktube.infer.detect import postprocess_from_checkpoint
    from weaktube.train.checkpoint import inference_model, load_checkpoint

    out = Path(out)
    fmt = FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise ExportError(f"{str(out)!r}: unknown export format {out.suffix!r}; expected one "
                          f"of {sorted(FORMATS)}")
    ckpt = load_checkpoint(checkpoint, map_location="cpu")
    model = inference_model(ckpt).float()
    deployed = DeployedDetector(model).eval()
    dcfg = model.cfg
    clip_len, img_size = dcfg.clip_len, dcfg.img_size
    with atomic_path(out) as tmp:
        if fmt == "torch.export":
            _export_pt2(deployed, example_clips(2, clip_len, img_size, seed=0), tmp)
            run = _run_pt2
        else:
            _export_onnx(deployed, example_clips(2, clip_len, img_size, seed=0), tmp)
            run = _run_onnx
        probe = example_clips(check_batch, clip_len, img_size, seed=1)
        with torch.no_grad():
            want = [t.numpy() for t in deployed(probe)]
        got = run(tmp, probe)
        diff = None if got is None else max(float(np.abs(w - g).max()) for w, g in zip(want, got))
        if diff is not None and not diff <= TOLERANCE:
            raise ExportError(f"{str(out)!r}: the exported model differs from the eager network "
                              f"by {diff:.3g} (tolerance {TOLERANCE}); nothing was written")
    post = dataclasses.asdict(postprocess_from_checkpoint(ckpt))
    meta = {
        "format": EXPORT_FORMAT,
        "model_format": fmt,
        "model": out.name,
        "checkpoint": str(checkpoint),
        "classes": list(ckpt["classes"]),
        "clip_len": clip_len,
        "frame_stride": int(ckpt["config"]["data"]["frame_stride"]),
        "img_size": img_size,
        "num_anchors": dcfg.num_anchors,
        "anchor_boxes": int(want[0].shape[1]),
        "input": {"clip": f"[B, {clip_len}, {img_size}, {img_size}, 3] uint8 RGB, frames "
                          "frame_stride apart ending at the keyframe, each resized (stretched, "
                          "bilinear) to img_size"},
        "outputs": {"boxes": "[B, M, 4] x1, y1, x2, y2 as fractions of the frame (not clipped)",
                    "objectness": "[B, M]", "class_probs": "[B, M, K]; score = objectness x "
                                                           "class_probs"},
        "postprocess": post,  # weaktube's own settings (PostprocessConfig), for reference
        "checked_batch": check_batch,
        "max_abs_diff": diff,
        "checked": diff is not None,
        "torch": torch.__version__,
    }
    atomic_write_json(out.with_name(out.name + ".json"), meta, indent=2)
    return meta

