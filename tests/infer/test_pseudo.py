"""Pseudo-tubes from detections inside weak segments (weaktube.infer.pseudo, `pseudo-label`)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tests.infer.test_link import clean_single_tube_videos, clutter, dets_of, track
from weaktube.cli import main
from weaktube.infer.pseudo import PseudoConfig, pseudo_tubes, segment_tube, tube_agreement
from weaktube.structures import AnnotationSet, Detections, Segment, Tube, VideoRecord


def moving_box(n: int, x0: float = 20.0, dx: float = 2.0) -> np.ndarray:
    """``[n, 4]`` a 40x80 box moving right by ``dx`` pixels per frame."""
    x = x0 + dx * np.arange(n)
    return np.stack([x, np.full(n, 30.0), x + 40, np.full(n, 110.0)], axis=1)


def test_segment_tube_follows_the_chain_not_the_single_best_box():
    truth = moving_box(20)
    rows = track("v", 0, 10, truth, 0.6, skip=(14, 15, 16))  # 3 missed frames
    # a distractor scoring higher in a few frames, far away: the chain's IoU gains beat it
    far = np.array([200.0, 10.0, 240.0, 90.0])
    rows += [("v", f, 1, 0.9, far + [0, 3 * (f % 2), 0, 0]) for f in (11, 18, 25)]
    d = dets_of(rows)
    boxes, score = segment_tube(d.frames, d.scores.astype(np.float64), d.boxes, 10, 30,
                                320, 240, PseudoConfig(smooth=1))
    assert boxes.shape == (20, 4)
    np.testing.assert_allclose(boxes, truth, atol=1e-4)  # the gap is linear: interpolated exactly
    assert score == pytest.approx(0.6)


def test_segment_tube_holds_the_end_boxes_and_clips_to_the_frame():
    box = np.array([[-5.0, 10.0, 50.0, 130.0]])  # sticks out left and bottom of a 100x120 frame
    d = dets_of(track("v", 2, 5, np.repeat(box, 2, 0), 0.5))
    boxes, _ = segment_tube(d.frames, d.scores.astype(np.float64), d.boxes, 0, 10, 100, 120,
                            PseudoConfig(smooth=3))
    assert boxes.shape == (10, 4)
    np.testing.assert_allclose(boxes, np.repeat([[0.0, 10.0, 50.0, 120.0]], 10, 0))  # [0, W]
    assert segment_tube(d.frames[:0], d.scores[:0], d.boxes[:0], 0, 10, 100, 120,
                        PseudoConfig()) is None


def test_smoothing_reduces_jitter():
    rng = np.random.default_rng(0)
    truth = moving_box(40)
    noisy = truth + rng.normal(0, 3, truth.shape)
    d = dets_of(track("v", 0, 0, noisy, 0.7))
    err = {}
    for k in (1, 5):
        boxes, _ = segment_tube(d.frames, d.scores.astype(np.float64), d.boxes, 0, 40, 400, 200,
                                PseudoConfig(smooth=k))
        err[k] = np.abs(boxes - truth)[3:-3].mean()
    assert err[5] < 0.7 * err[1]


def weak_set() -> AnnotationSet:
    def video(name: str, split: str, tubes=(), segments=()) -> VideoRecord:
        return VideoRecord(name, 40, 320, 240, 20.0, split, list(tubes), list(segments))

    test_tube = Tube(1, 0, moving_box(10).astype(np.float32))
    return AnnotationSet(["a", "b"], [
        video("found", "train", segments=[Segment(0, 0.5, 1.5), Segment(1, 1.5, 1.8)]),
        video("unseen", "train", segments=[Segment(1, 0.0, 1.0)]),
        video("weakly_seen", "train", segments=[Segment(0, 0.0, 1.0)]),
        video("ambiguous", "train", segments=[Segment(0, 0.0, 1.0, ambiguous=True)]),
        video("test0", "test", tubes=[test_tube], segments=[Segment(1, 0.0, 0.5)]),
    ])


def weak_detections():
    rows = track("found", 3, 10, moving_box(20), 0.8)  # segment 0: frames 10-29
    rows += track("found", 0, 30, moving_box(6, x0=60), 0.4)  # segment 1: frames 30-35
    rows += track("found", 1, 0, moving_box(5, x0=200), 0.9)  # before both segments: ignored
    rows += track("weakly_seen", 0, 0, moving_box(20), 0.05)
    return dets_of(rows)


def test_pseudo_tubes_labels_segments_and_leaves_out_what_it_cannot():
    ann = weak_set()
    out, report = pseudo_tubes(ann, weak_detections(), PseudoConfig(smooth=1, min_score=0.1))
    found = out["found"]
    assert [(t.label, t.start_frame, len(t.boxes)) for t in found.tubes] == [(0, 10, 20),
                                                                           (1, 30, 6)]
    np.testing.assert_allclose(found.tubes[0].boxes, moving_box(20), atol=1e-4)
    assert found.segments == ann["found"].segments  # the weak labels are kept
    assert "unseen" not in out and "no detection" in report.dropped["unseen"]
    assert "weakly_seen" not in out and "min_score" in report.dropped["weakly_seen"]
    assert "ambiguous" not in out and "ambiguous" in report.dropped["ambiguous"]
    assert out["test0"] is ann["test0"]  # other splits copied
    assert (report.videos_in, report.videos_out, report.tubes) == (4, 1, 2)
    assert report.mean_path_score == pytest.approx(0.6)
    out.validate()


def test_tube_agreement_of_identical_and_of_wider_tubes():
    ann = weak_set()
    out, _ = pseudo_tubes(ann, weak_detections(), PseudoConfig(smooth=1))
    same = tube_agreement(out, out)
    assert same["mean_iou"] == pytest.approx(1.0) and same["iou_ge_0.5"] == 1.0
    assert same["mean_log_w"] == pytest.approx(0.0) and same["missed_true_boxes"] == 0
    wide = AnnotationSet(out.classes, [VideoRecord(
        v.name, v.num_frames, v.width, v.height, v.fps, v.split,
        [Tube(t.label, t.start_frame, t.boxes + [-10, 0, 10, 0]) for t in v.tubes], v.segments)
        for v in out.videos])
    got = tube_agreement(wide, out)
    assert got["mean_log_w"] == pytest.approx(np.log(60 / 40), abs=1e-6)  # width = x2 - x1
    assert got["mean_log_h"] == pytest.approx(0.0) and got["mean_iou"] < 0.7


def test_real_ucf24_tubes_come_back_from_their_own_boxes_among_clutter(shared_data: Path):
    """The real UCF101-24 annotations, made weak: perfect detections of the actors among
    low-scoring clutter give back the true tubes, one per segment."""
    from weaktube.data.readers import read_ucf24_pyannot

    ann = read_ucf24_pyannot(shared_data / "ucf24" / "annotations"
                             / "pyannot_with_class_names.pkl")
    videos = clean_single_tube_videos(ann, 20)
    truth = AnnotationSet(ann.classes, videos)
    rng = np.random.default_rng(0)
    rows = []
    for v in videos:
        t = v.tubes[0]
        rows += track(v.name, t.label, t.start_frame, t.boxes, rng.uniform(0.5, 0.95,
                                                                           len(t.boxes)))
        rows += clutter(rng, v.name, v.num_frames, 3, ann.num_classes)
    weak = truth.without_boxes(split="test")
    out, report = pseudo_tubes(weak, dets_of(rows), PseudoConfig(split="test", smooth=1))
    assert report.videos_out == len(videos) == 20 and not report.dropped
    agreement = tube_agreement(out, truth, split="test")
    assert agreement["missed_true_boxes"] == 0
    assert agreement["iou_ge_0.5"] == 1.0 and agreement["mean_iou"] > 0.99


def test_cli_pseudo_label_writes_a_trainable_file(tmp_path: Path, capsys):
    weak, dets, out = tmp_path / "weak.json", tmp_path / "dets.json", tmp_path / "pseudo.json"
    weak_set().save(weak)
    weak_detections().save(dets)
    rc = main(["pseudo-label", "--annotations", str(weak), "--detections", str(dets),
               "--out", str(out), "--smooth", "1", "--min-score", "0.1", "--json"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "1 of 4 train videos labelled" in text and "left out unseen" in text
    assert json.loads(text.strip().splitlines()[-1])["tubes"] == 2
    pseudo = AnnotationSet.load(out)
    assert [t.label for t in pseudo["found"].tubes] == [0, 1]
    # --gt: agreement with a file holding the true tubes (here the output itself)
    rc = main(["pseudo-label", "--annotations", str(weak), "--detections", str(dets),
               "--out", str(tmp_path / "again.json"), "--smooth", "1", "--gt", str(out),
               "--json"])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["agreement"]["missed_true_boxes"] == 0
    assert summary["agreement"]["mean_iou"] == pytest.approx(1.0)


def test_cli_pseudo_label_rejects_an_empty_split(tmp_path: Path, capsys):
    weak, dets = tmp_path / "weak.json", tmp_path / "dets.json"
    weak_set().save(weak)
    weak_detections().save(dets)
    rc = main(["pseudo-label", "--annotations", str(weak), "--detections", str(dets),
               "--out", str(tmp_path / "p.json"), "--split", "val"])
    assert rc != 0
    assert "split 'val' has no videos" in capsys.readouterr().err
    assert not (tmp_path / "p.json").exists()


def figure_on_texture(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(image [120, 160, 3] uint8 RGB, true box [4])``: a red figure (head, body) on grey
    noise."""
    rng = np.random.default_rng(seed)
    img = rng.integers(60, 140, (120, 160, 3)).astype(np.uint8)
    img[40:100, 70:90] = (200, 30, 30)  # body
    img[28:40, 74:86] = (210, 40, 40)  # head
    return img, np.array([70.0, 28.0, 90.0, 100.0])


def test_tighten_box_shrinks_a_wide_box_to_the_figure():
    from weaktube.boxes import np_iou_paired
    from weaktube.infer.pseudo import tighten_box

    img, truth = figure_on_texture()
    wide = np.array([50.0, 25.0, 112.0, 104.0])  # 3x too wide, a little too high
    got = tighten_box(img, wide)
    assert np_iou_paired(got[None], truth[None])[0] > 0.85
    assert np_iou_paired(wide[None], truth[None])[0] < 0.4
    # nothing but texture inside: unchanged
    texture = np.array([5.0, 5.0, 30.0, 40.0])
    np.testing.assert_array_equal(tighten_box(img, texture), texture)


def test_tighten_box_leaves_what_it_cannot_separate(monkeypatch):
    import cv2

    from weaktube.infer.pseudo import tighten_box

    img, truth = figure_on_texture()  # 160 x 120
    calls = []
    real = cv2.grabCut
    monkeypatch.setattr(cv2, "grabCut", lambda *a: calls.append(1) or real(*a))
    tiny = np.array([10.0, 10.0, 12.0, 40.0])  # 2 px wide: GrabCut is not even asked
    np.testing.assert_array_equal(tighten_box(img, tiny), tiny)
    assert calls == []
    for full in ([0.0, 0.0, 160.0, 120.0], [2.0, 2.0, 158.0, 118.0]):  # no background left
        np.testing.assert_array_equal(tighten_box(img, np.array(full)), full)
    assert calls == []
    # a margin past the old half-box context still leaves background: runs, no crash
    got = tighten_box(img, truth, margin=0.6)
    assert len(calls) == 1 and got.shape == (4,)
    assert got[0] >= truth[0] - 0.6 * 20 and got[2] <= truth[2] + 0.6 * 20


def test_pseudo_tubes_skip_segments_without_a_frame_and_drop_boxes_of_no_area():
    v = VideoRecord("v", 40, 320, 240, 20.0, "train",
                    segments=[Segment(0, 0.5, 1.0), Segment(1, 1.01, 1.04)])  # 2nd: no frame
    ann = AnnotationSet(["a", "b"], [v])
    out, report = pseudo_tubes(ann, dets_of(track("v", 0, 10, moving_box(10), 0.8)),
                               PseudoConfig(smooth=1))
    assert [(t.label, t.start_frame) for t in out["v"].tubes] == [(0, 10)]
    assert report.dropped == {}
    outside = np.repeat([[330.0, 10.0, 350.0, 60.0]], 10, 0)  # right of a 320-wide frame
    out, report = pseudo_tubes(ann, dets_of(track("v", 0, 10, outside, 0.8)),
                               PseudoConfig(smooth=1))
    assert "v" not in out and "no area" in report.dropped["v"]


def still_figure_video(root: Path, box: tuple = (50.0, 25.0, 112.0, 104.0)
                       ) -> tuple[AnnotationSet, Detections, np.ndarray]:
    """A still figure for 12 frames under ``root/still/``, its weak labels, detections of
    ``box`` (default: too wide) in every frame, and the figure's true box ``[4]``."""
    import cv2

    img, truth = figure_on_texture()
    folder = root / "still"
    folder.mkdir(parents=True)
    for i in range(12):
        cv2.imwrite(str(folder / f"{i + 1:05d}.png"), img[:, :, ::-1])
    ann = AnnotationSet(["a"], [VideoRecord("still", 12, 160, 120, 10.0, "train",
                                            segments=[Segment(0, 0.2, 1.0)])])
    return ann, dets_of(track("still", 0, 0, np.repeat([box], 12, 0), 0.9)), truth


def test_pseudo_tubes_tighten_uses_the_frames(tmp_path: Path):
    from weaktube.data.dataset import FrameStore

    ann, dets, truth = still_figure_video(tmp_path / "videos")
    with pytest.raises(ValueError, match="needs the videos"):
        pseudo_tubes(ann, dets, PseudoConfig(tighten=True))
    plain, _ = pseudo_tubes(ann, dets, PseudoConfig(smooth=1))
    tight, _ = pseudo_tubes(ann, dets, PseudoConfig(smooth=1, tighten=True),
                            FrameStore(tmp_path / "videos"))
    assert tight["still"].tubes[0].start_frame == 2 and len(tight["still"].tubes[0].boxes) == 8
    truth_set = AnnotationSet(["a"], [VideoRecord("still", 12, 160, 120, 10.0, "train",
                                                  [Tube(0, 2, np.repeat(truth[None], 8, 0))])])
    assert tube_agreement(plain, truth_set)["mean_iou"] < 0.4
    assert tube_agreement(tight, truth_set)["mean_iou"] > 0.85


def test_cli_tighten_needs_videos(tmp_path: Path):
    weak, dets = tmp_path / "weak.json", tmp_path / "dets.json"
    weak_set().save(weak)
    weak_detections().save(dets)
    with pytest.raises(SystemExit, match="--tighten needs --videos"):
        main(["pseudo-label", "--annotations", str(weak), "--detections", str(dets),
              "--out", str(tmp_path / "p.json"), "--tighten"])


def test_cli_tighten_margin_reaches_grabcut(tmp_path: Path):
    from weaktube.data.dataset import FrameStore

    # a box inside the figure (70, 28, 90, 100): GrabCut can grow it by the margin only
    ann, dets, _ = still_figure_video(tmp_path / "videos", (74.0, 40.0, 86.0, 88.0))
    ann.save(tmp_path / "weak.json")
    dets.save(tmp_path / "dets.json")
    base = ["pseudo-label", "--annotations", str(tmp_path / "weak.json"), "--detections",
            str(tmp_path / "dets.json"), "--smooth", "1", "--tighten", "--videos",
            str(tmp_path / "videos")]
    store = FrameStore(tmp_path / "videos")
    for margin in (0.0, 0.3):
        out = tmp_path / f"p{margin}.json"
        assert main(base + ["--out", str(out), "--tighten-margin", str(margin)]) == 0
        want, _ = pseudo_tubes(ann, dets, PseudoConfig(smooth=1, tighten=True,
                                                       tighten_margin=margin), store)
        np.testing.assert_allclose(AnnotationSet.load(out)["still"].tubes[0].boxes,
                                   want["still"].tubes[0].boxes)
    assert not np.allclose(AnnotationSet.load(tmp_path / "p0.0.json")["still"].tubes[0].boxes,
                           AnnotationSet.load(tmp_path / "p0.3.json")["still"].tubes[0].boxes)
    with pytest.raises(ValueError, match="tighten_margin"):
        PseudoConfig(tighten_margin=-0.1)


def test_tighten_names_a_video_shorter_than_its_annotation(tmp_path: Path):
    from weaktube.data.dataset import FrameStore
    from weaktube.structures import AnnotationError

    ann, dets, _ = still_figure_video(tmp_path / "videos")  # 12 frames on disk
    longer = AnnotationSet(ann.classes, [replace(ann["still"], num_frames=20)])
    with pytest.raises(AnnotationError, match="video 'still'.*(decodes to|holds) 12"):
        pseudo_tubes(longer, dets, PseudoConfig(tighten=True), FrameStore(tmp_path / "videos"))
