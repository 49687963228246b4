"""Real video, end to end, at small size: the six UCF101-24 clips in ../shared/data are decoded,
turned into clips, a tiny detector trains a few iterations, then detect -> tubes -> evaluate,
and one clip is rendered with ground truth and predictions. (No accuracy target: there are no
pretrained weights on this machine.)"""

import json

import cv2
import numpy as np

from weaktube.cli import main
from weaktube.data.video import find_video
from weaktube.structures import AnnotationSet


def test_real_clips_train_detect_link_evaluate_render(shared_data, ucf24_videos, tmp_path):
    ann_path = tmp_path / "ucf6.json"
    src = shared_data / "ucf24" / "annotations" / "pyannot_with_class_names.pkl"
    assert main(["data", "convert", str(src), "--videos", str(ucf24_videos), "--only-present",
                 "--out", str(ann_path)]) == 0
    ann = AnnotationSet.load(ann_path)
    assert len(ann.videos) == 6
    # boxes were rescaled from the 320x240 annotation frame to the 340x256 clips
    fencing = ann["Fencing/v_Fencing_g01_c06"]
    assert (fencing.width, fencing.height) == (340, 256) and len(fencing.tubes) == 2
    assert fencing.tubes[0].boxes[:, 2].max() > 320 * 0.5
    # four videos train, two test (the real split puts all six in test)
    test_names = {"Basketball/v_Basketball_g07_c04", "CliffDiving/v_CliffDiving_g03_c01"}
    for v in ann.videos:
        v.split = "test" if v.name in test_names else "train"
    ann.save(ann_path)

    run = tmp_path / "run"
    sets = ["model.clip_len=4", "model.img_size=64", "model.num_anchors=3",
            "data.frame_stride=2", "train.epochs=1", "train.clips_per_epoch=16",
            "train.batch_size=4", "train.optimizer=adamw", "train.lr=0.001",
            "train.warmup_iters=1", "eval.keyframe_stride=8", "train.device=cpu"]
    args = ["train", "--annotations", str(ann_path), "--videos", str(ucf24_videos),
            "--out", str(run)]
    for s in sets:
        args += ["--set", s]
    assert main(args) == 0
    results = json.loads((run / "results.json").read_text())
    assert results["iterations"] == 4
    assert 0.0 <= results["metrics"]["frame_mAP@0.5"] <= 100.0
    for name in ("last.pt", "metrics.jsonl", "detections.json", "tubes.json", "segments.json"):
        assert (run / name).is_file(), name

    dets = tmp_path / "d.json"
    assert main(["detect", "--checkpoint", str(run / "last.pt"), "--annotations",
                 str(ann_path), "--videos", str(ucf24_videos), "--keyframe-stride", "8",
                 "--device", "cpu", "--out", str(dets)]) == 0
    assert main(["evaluate", "--gt", str(ann_path), "--detections", str(dets), "--tubes",
                 str(tmp_path / "d.tubes.json"), "--segments", str(tmp_path / "d.segments.json"),
                 "--json"]) == 0
    # every prediction file records the label space it was made in (the run's and detect's)
    for path in (run / "detections.json", run / "tubes.json", dets, tmp_path / "d.tubes.json",
                 tmp_path / "d.segments.json"):
        assert json.loads(path.read_text())["classes"] == ann.classes, path

    # one real video file -> detections, tubes and the video with its tubes drawn
    clip = find_video(ucf24_videos, "Basketball/v_Basketball_g07_c04")
    rendered = tmp_path / "tubes.mp4"
    assert main(["detect", "--checkpoint", str(run / "last.pt"), "--video", str(clip),
                 "--keyframe-stride", "8", "--device", "cpu", "--render", str(rendered),
                 "--render-min-score", "0", "--out", str(tmp_path / "one.json")]) == 0
    assert (tmp_path / "one.tubes.json").is_file()
    cap = cv2.VideoCapture(str(rendered))
    expected = ann["Basketball/v_Basketball_g07_c04"].num_frames
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == expected

    from weaktube.data.video import read_video
    from weaktube.structures import Detections
    from weaktube.viz.render import render_video

    video = ann["Basketball/v_Basketball_g07_c04"]
    frames = read_video(find_video(ucf24_videos, video.name))
    out = tmp_path / "render.mp4"
    render_video(out, frames, video, Detections.load(dets), ann.classes, fps=25.0,
                 min_score=0.0)
    cap = cv2.VideoCapture(str(out))
    n = 0
    ok, first = cap.read()
    while ok:
        n += 1
        ok, _ = cap.read()
    assert n == video.num_frames and first.shape[:2] == (2 * 256, 2 * 340)
    # the ground-truth box (green) is drawn on a frame inside the tube
    cap = cv2.VideoCapture(str(out))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
    frames_out = [cap.read()[1] for _ in range(video.tubes[0].start_frame + 1)]
    g = frames_out[-1].astype(int)
    greenish = (g[..., 1] > 180) & (g[..., 0] < 80) & (g[..., 2] < 80)
    assert np.count_nonzero(greenish) > 50
