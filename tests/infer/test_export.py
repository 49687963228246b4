"""weaktube export: the saved model (torch.export .pt2, ONNX) gives what weaktube's own
inference decodes, on a trained checkpoint and a rendered video; bad input writes nothing."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from weaktube.cli import EXIT_BAD_INPUT, main
from weaktube.data.dataset import clip_indices
from weaktube.data.video import find_video, read_video
from weaktube.fileio import temporaries_of
from weaktube.infer import export as export_mod
from weaktube.infer.detect import decode_frames, resize_frames
from weaktube.infer.export import DeployedDetector, ExportError, export_checkpoint
from weaktube.model import build_detector, detector_demo
from weaktube.structures import AnnotationSet, keyframe_indices
from weaktube.train.checkpoint import inference_model, load_checkpoint


@pytest.fixture(scope="module")
def video_and_reference(tiny_run):
    """A test video of the tiny run's benchmark, its exported-model input (every keyframe's
    clip, uint8) and weaktube's own decoded output on it (``decode_frames``)."""
    data, run = tiny_run
    ckpt = load_checkpoint(run / "last.pt")
    model = inference_model(ckpt)
    stride = ckpt["config"]["data"]["frame_stride"]
    video = AnnotationSet.load(data / "source.json").split("test").videos[0]
    frames = read_video(find_video(data / "videos", video.name))  # [T, H, W, 3] RGB
    ref = decode_frames(model, frames, clip_len=model.clip_len, frame_stride=stride,
                        img_size=model.cfg.img_size, batch_size=8)
    small, _ = resize_frames(frames, model.cfg.img_size)  # [T, S, S, 3]
    keys = keyframe_indices(len(small), 1)
    clips = np.stack([small[clip_indices(int(k), model.clip_len, stride, len(small))]
                      for k in keys])  # [T', N, S, S, 3]
    return run, torch.from_numpy(clips), ref


@pytest.mark.parametrize("suffix", [".pt2", ".onnx"])
def test_exported_model_decodes_as_weaktube(video_and_reference, tmp_path, suffix):
    run, clips, ref = video_and_reference
    out = tmp_path / f"model{suffix}"
    meta = export_checkpoint(run / "last.pt", out)
    assert meta["checked"] and meta["max_abs_diff"] <= export_mod.TOLERANCE
    side = json.loads((tmp_path / f"model{suffix}.json").read_text())
    assert side == json.loads(json.dumps(meta))
    assert side["format"] == "weaktube/export@1" and side["classes"]
    assert side["anchor_boxes"] == ref.boxes.shape[1]
    if suffix == ".pt2":
        module = torch.export.load(out).module()
        with torch.no_grad():
            got = [t.numpy() for t in module(clips)]
    else:
        import onnxruntime

        sess = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        got = sess.run(None, {"clip": clips.numpy()})
    # every keyframe of the video in one batch (the traced batch was 2): the free batch axis
    for g, want in zip(got, (ref.boxes, ref.obj, ref.cls)):
        assert g.shape == tuple(want.shape)
        np.testing.assert_allclose(g, want.numpy(), atol=2e-5, rtol=1e-4)
    assert not temporaries_of(out)


def test_cli_export_and_bad_input(tiny_run, tmp_path, capsys):
    _, run = tiny_run
    out = tmp_path / "m.pt2"
    assert main(["export", "--checkpoint", str(run / "last.pt"), "--out", str(out)]) == 0
    assert "max |saved - eager|" in capsys.readouterr().out and out.is_file()

    bad = tmp_path / "m.tflite"
    assert main(["export", "--checkpoint", str(run / "last.pt"), "--out", str(bad)]) \
        == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "m.tflite" in err and ".pt2" in err and not bad.exists()

    missing = tmp_path / "nope.pt"
    assert main(["export", "--checkpoint", str(missing), "--out", str(tmp_path / "x.pt2")]) \
        == EXIT_BAD_INPUT
    assert "nope.pt" in capsys.readouterr().err and not (tmp_path / "x.pt2").exists()


def test_a_disagreeing_export_writes_nothing(tiny_run, tmp_path, monkeypatch):
    _, run = tiny_run
    monkeypatch.setattr(export_mod, "TOLERANCE", -1.0)  # any difference, even 0, fails
    out = tmp_path / "m.pt2"
    with pytest.raises(ExportError, match="differs from the eager network"):
        export_checkpoint(run / "last.pt", out)
    assert not out.exists() and not temporaries_of(out)
    assert not (tmp_path / "m.pt2.json").exists()


def test_flow_models_are_refused():
    cfg = detector_demo(3, ((0.2, 0.4),), clip_len=4, img_size=64)
    cfg = dataclasses.replace(cfg, cls_flow=True, cls_backbone=dataclasses.replace(
        cfg.cls_backbone, in_channels=8))
    with pytest.raises(ExportError, match="optical flow"):
        DeployedDetector(build_detector(cfg))
