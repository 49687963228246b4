"""Where the class is lost: linear probes on a trained detector's features against its own head.

For a checkpoint (its inference weights: the weight average when the run kept one) and a
canonical annotation file, samples keyframe clips ending on a ground-truth
box (``--train-clips`` from the train split, ``--test-clips`` from the test split; no
augmentation), runs :meth:`Detector.forward_intermediates` and takes, at the grid cell of the
first ground-truth box's centre:

* ``f11``: branch 1's feature (``[C']``, after the temporal mean);
* ``fc``: the fusion feature after the channel attention (``[C]``), what the keyframe head reads.

It then reports three accuracies of the keyframe's class, each on the train and the test clips:

* ``head``: the network's own class (argmax of the class probabilities) at its most confident
  decoded box with IoU >= 0.5 with the ground truth (no such box: wrong);
* ``probe_f11`` / ``probe_fc``: a linear softmax classifier (L-BFGS, L2 1e-3, standardised
  features) fitted on the train clips' features and applied to both;
* ``responsible``: the class at the anchor that training assigns the box to (the cell of its
  centre, the anchor of best shape; the only anchor whose class YOLO's rule trains), whatever
  box that anchor decodes.

and ``top_is_responsible``: the share of clips whose most confident box (IoU >= 0.5) comes from
that anchor. A head far better at the responsible anchor than at the top box loses the class
at the decoding, to anchors whose class was never trained on this person.

A probe far above the head on train clips says the head or the training of it loses what the
features hold; a probe test accuracy as low as the head's says the features themselves do not
generalise to new videos.

    .venv/bin/python benchmarks/class_probe.py RUN/last.pt DATA/source.json DATA/videos \\
        --frame-stride 2 --out probe.json
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from weaktube.boxes import np_iou
from weaktube.data.dataset import ClipDataset, FrameStore, collate_clips, keyframe_index
from weaktube.fileio import atomic_write_json
from weaktube.losses.detection import assign_targets
from weaktube.model.decode import decode_keyframe
from weaktube.structures import AnnotationSet
from weaktube.train.checkpoint import inference_model, load_checkpoint


def features(model, ann: AnnotationSet, store: FrameStore, split: str, n: int,
             frame_stride: int, rng: np.random.Generator, batch: int = 32) -> dict:
    """``{"f11": [M, C'], "fc": [M, C], "y": [M], "head", "responsible",
    "top_is_responsible": [M] bool}`` over ``n`` positive keyframe clips of ``split``
    (M <= n: clips whose keyframe has a box)."""
    sub = ann.subset([v.name for v in ann.videos if v.split == split])
    index = keyframe_index(sub)
    pos = np.flatnonzero(index.positive)
    if len(pos) == 0:
        raise ValueError(f"{split} split: no keyframe with a ground-truth box")
    pick = rng.choice(pos, size=min(n, len(pos)), replace=False)
    ds = ClipDataset(sub, store, index, model.clip_len, frame_stride, model.cfg.img_size, None,
                     flow=model.cfg.uses_flow)
    f11, fc, y, head, resp, same = [], [], [], [], [], []
    for s in range(0, len(pick), batch):
        b = collate_clips([ds[int(i)] for i in pick[s:s + batch]])
        with torch.no_grad():
            inter = model.forward_intermediates(b["clip"])
            boxes, obj, cls = decode_keyframe(inter.output.key, model.anchors)
        g = inter.f11.shape[-1]  # grid side H' = W'
        for j in range(len(b["key_labels"])):
            if len(b["key_labels"][j]) == 0:
                continue
            gt = b["key_boxes"][j][0].numpy()  # [4] normalised xyxy
            cx = min(g - 1, int((gt[0] + gt[2]) / 2 * g))
            cy = min(g - 1, int((gt[1] + gt[3]) / 2 * g))
            label = int(b["key_labels"][j][0])
            f11.append(inter.f11[j, :, cy, cx].float().numpy())
            fc.append(inter.fc[j, :, cy, cx].float().numpy())
            y.append(label)
            asg = assign_targets(b["key_boxes"][j][None, :1], torch.tensor([[label]]),
                                 model.anchors, g, g)
            r = int(asg.obj[0].flatten().nonzero()[0, 0])  # [A, H', W'] flat: decode order
            resp.append(int(np.argmax(cls[j, r].numpy())) == label)
            hit = np_iou(boxes[j].numpy(), gt[None])[:, 0] >= 0.5  # [A*H'*W']
            if hit.any():
                k = np.flatnonzero(hit)[np.argmax(obj[j].numpy()[hit])]
                head.append(int(np.argmax(cls[j].numpy()[k])) == label)
                same.append(k == r)
            else:
                head.append(False)
                same.append(False)
    return {"f11": np.stack(f11), "fc": np.stack(fc), "y": np.array(y),
            "head": np.array(head), "responsible": np.array(resp),
            "top_is_responsible": np.array(same)}


def linear_probe(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
                 y_test: np.ndarray, num_classes: int) -> tuple[float, float]:
    """Train and test accuracy of a softmax classifier fitted on ``x_train [M, D]``."""
    mu, sd = x_train.mean(0), x_train.std(0) + 1e-6
    xt = torch.tensor((x_train - mu) / sd, dtype=torch.float32)
    xe = torch.tensor((x_test - mu) / sd, dtype=torch.float32)
    yt = torch.tensor(y_train)
    torch.manual_seed(0)
    lin = torch.nn.Linear(xt.shape[1], num_classes)
    opt = torch.optim.LBFGS(lin.parameters(), max_iter=300)

    def closure():
        opt.zero_grad()
        loss = (torch.nn.functional.cross_entropy(lin(xt), yt)
                + 1e-3 * lin.weight.pow(2).sum())
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return (float((lin(xt).argmax(1).numpy() == y_train).mean()),
                float((lin(xe).argmax(1).numpy() == y_test).mean()))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint")
    p.add_argument("annotations")
    p.add_argument("videos")
    p.add_argument("--frame-stride", type=int, default=2, help="the run's data.frame_stride")
    p.add_argument("--train-clips", type=int, default=1600)
    p.add_argument("--test-clips", type=int, default=800)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", help="write the figures as JSON here")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    ckpt = load_checkpoint(a.checkpoint)
    model = inference_model(ckpt)  # the weight average when the run kept one
    ann = AnnotationSet.load(a.annotations)
    store = FrameStore(a.videos)
    rng = np.random.default_rng(a.seed)
    tr = features(model, ann, store, "train", a.train_clips, a.frame_stride, rng)
    te = features(model, ann, store, "test", a.test_clips, a.frame_stride, rng)
    k = len(ann.classes)
    result = {"checkpoint": a.checkpoint, "clips": {"train": len(tr["y"]), "test": len(te["y"])},
              **{name: {"train": float(tr[name].mean()), "test": float(te[name].mean())}
                 for name in ("head", "responsible", "top_is_responsible")}}
    for key in ("f11", "fc"):
        acc_tr, acc_te = linear_probe(tr[key], tr["y"], te[key], te["y"], k)
        result[f"probe_{key}"] = {"dim": int(tr[key].shape[1]), "train": acc_tr, "test": acc_te}
    for name in ("head", "responsible", "probe_f11", "probe_fc"):
        r = result[name]
        print(f"{name:11s} class accuracy  train {r['train']:.3f}  test {r['test']:.3f}")
    r = result["top_is_responsible"]
    print(f"top box from the responsible anchor  train {r['train']:.3f}  test {r['test']:.3f}")
    if a.out:
        atomic_write_json(a.out, result, indent=2)


if __name__ == "__main__":
    main()
