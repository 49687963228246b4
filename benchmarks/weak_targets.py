"""How good are the target stage's box targets? Measured against the truth the weak stage never
sees: run a checkpoint's branches 2 + 4 on augmented training clips of an annotation file *with*
boxes, pick seeds and run the tracker exactly as ``WeakLoss`` does, and compare with the
ground-truth boxes (first box of each frame):

* own boxes: the network's top box per frame (what SCEL self-labels, what seeds the tracker);
* tracker targets: the boxes ``L_TRB`` pulls towards, and the own boxes on those same frames;
* geometry of the own boxes: mean log(width / true width), log(height / true height), and the
  centre offset in true widths / heights.

Usage: ``python benchmarks/weak_targets.py CKPT ANN.json VIDEOS [--clips 128] [--out F.json]``.
Units: IoU in [0, 1]; boxes normalised to the square network input.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from weaktube.config import from_dict
from weaktube.data.dataset import ClipDataset, FrameStore, collate_clips, keyframe_index
from weaktube.fileio import atomic_write_json
from weaktube.model.box_ops import torch_iou_paired
from weaktube.structures import AnnotationSet
from weaktube.train.checkpoint import inference_model, load_checkpoint
from weaktube.train.weak import WeakConfig, run_tracker, select_seeds, top_frame_boxes


def _geometry(own: torch.Tensor, gt: torch.Tensor) -> dict:
    """``own, gt [F, 4]`` xyxy -> mean log size ratios and centre offsets (in true sizes)."""
    w, h = (own[:, 2] - own[:, 0]).clamp(min=1e-4), (own[:, 3] - own[:, 1]).clamp(min=1e-4)
    gw, gh = (gt[:, 2] - gt[:, 0]).clamp(min=1e-4), (gt[:, 3] - gt[:, 1]).clamp(min=1e-4)
    dx = ((own[:, 0] + own[:, 2]) - (gt[:, 0] + gt[:, 2])) / 2 / gw
    dy = ((own[:, 1] + own[:, 3]) - (gt[:, 1] + gt[:, 3])) / 2 / gh
    return {"log_w_ratio": float(torch.log(w / gw).mean()),
            "log_h_ratio": float(torch.log(h / gh).mean()),
            "abs_dx_in_widths": float(dx.abs().mean()), "abs_dy_in_heights": float(dy.abs().mean())}


def measure(ckpt_path: str, ann_path: str, videos: str, clips: int = 128, seed: int = 0,
            weak: WeakConfig | None = None) -> dict:
    weak = weak or WeakConfig()
    ckpt = load_checkpoint(ckpt_path)
    model = inference_model(ckpt)
    dcfg = model.cfg
    ann = AnnotationSet.load(ann_path).split("train")
    store = FrameStore(videos)
    store.preload(ann)
    index = keyframe_index(ann)
    positives = np.nonzero(index.positive)[0]
    data = from_dict(ckpt["config"]).data  # the run's frame stride and augmentation
    ds = ClipDataset(ann, store, index, dcfg.clip_len, data.frame_stride, dcfg.img_size,
                     data.augment, seed=seed, with_pixels=True, flow=dcfg.uses_flow)
    rng = np.random.default_rng(seed)
    own_all, gt_all, trk_iou, own_on_trk = [], [], [], []
    for start in range(0, clips, 16):
        b = collate_clips([ds[int(i)] for i in rng.choice(positives, min(16, clips - start))])
        with torch.no_grad():
            frames, _ = model.forward_location(b["clip"])
            boxes, conf, _ = top_frame_boxes(frames.float(), model.anchors)  # [B, N, 4], [B, N]
        covered = torch.ones_like(conf, dtype=torch.bool)  # positive keyframes: inside a tube
        seeds = select_seeds(boxes, conf, covered, weak)
        t = run_tracker(b["pixels"].numpy(), boxes.numpy(), seeds.numpy(), covered.numpy(), weak)
        valid = b["frame_valid"][:, :, 0]  # [B, N] frames with a true box
        gt = b["frame_boxes"][:, :, 0]  # [B, N, 4]
        own_all.append(boxes[valid])
        gt_all.append(gt[valid])
        tv = t.frame_valid[:, :, 0] & valid
        trk_iou.append(torch_iou_paired(t.frame_boxes[:, :, 0][tv], gt[tv]))
        own_on_trk.append(torch_iou_paired(boxes[tv], gt[tv]))
    own, gt = torch.cat(own_all), torch.cat(gt_all)
    iou_own = torch_iou_paired(own, gt)
    trk, own_t = torch.cat(trk_iou), torch.cat(own_on_trk)
    def share(x: torch.Tensor) -> float | None:
        return float((x >= 0.5).float().mean()) if len(x) else None

    return {"checkpoint": ckpt_path, "clips": clips, "frames": len(iou_own),
            "own_mean_iou": float(iou_own.mean()), "own_correct@0.5": share(iou_own),
            "tracked_frames": len(trk),
            "tracker_mean_iou": float(trk.mean()) if len(trk) else None,
            "tracker_correct@0.5": share(trk), "own_correct@0.5_on_tracked": share(own_t),
            "own_geometry": _geometry(own, gt)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("checkpoint")
    p.add_argument("annotations", help="a file whose train split HAS boxes (e.g. target.json)")
    p.add_argument("videos")
    p.add_argument("--clips", type=int, default=128)
    p.add_argument("--out")
    a = p.parse_args()
    r = measure(a.checkpoint, a.annotations, a.videos, a.clips)
    for k, v in r.items():
        print(f"{k}: {v}")
    if a.out:
        atomic_write_json(a.out, r, indent=2)


if __name__ == "__main__":
    main()
