"""The synthetic benchmark: determinism, exact boxes, annotation files, motions that differ."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from weaktube.data import synth_actors as act
from weaktube.data import synthetic as syn
from weaktube.structures import AnnotationSet

# Everything switched on, tiny: 6 + 6 short videos per domain (each class once per split).
TINY = dict(num_train=6, num_test=6, num_frames=(44, 56), instance_frames=(14, 20),
            min_idle_frames=4, min_gap_frames=4, two_instance_prob=0.5,
            distractor_actors=(1, 1), objects=(1, 2), occluder_prob=1.0, jitter_px=1.0,
            blur_prob=0.5, noise_std=2.0)
# Nothing but the acting actor on one flat colour: every changed pixel is the actor.
PLAIN = dict(texture_contrast=0.0, distractor_actors=(0, 0), objects=(0, 0), occluder_prob=0.0,
             jitter_px=0.0, blur_prob=0.0, noise_std=0.0)


def _decode(path: Path) -> np.ndarray:
    """``[T, H, W, 3]`` uint8: every frame OpenCV decodes, counted by reading until it fails."""
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened(), path
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return np.stack(frames)


def _bbox(mask: np.ndarray) -> np.ndarray:
    """``[H, W]`` bool -> ``[4]`` xyxy box (exclusive right/bottom) of the True pixels."""
    ys, xs = np.nonzero(mask)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)


def _plain_domains() -> tuple[syn.DomainConfig, syn.DomainConfig]:
    """Both domains' classes on mid grey, with clothes and skin far from grey in every channel."""
    look = dict(textures=("noise",), background_colors=((128, 128, 128),),
                shirt_colors=((20, 20, 20),), pants_colors=((235, 235, 235),),
                skin_colors=((30, 40, 60),))
    return (dataclasses.replace(syn.source_domain(), **look),
            dataclasses.replace(syn.target_domain(), **look))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> syn.SynthOutput:
    return syn.generate(syn.SynthConfig(**TINY), seed=7,
                        out_dir=tmp_path_factory.mktemp("tiny"), progress=False)


# ------------------------------------------------------------------------- files and labels
def test_same_seed_gives_identical_bytes(tiny, tmp_path):
    again = syn.generate(syn.SynthConfig(**TINY), seed=7, out_dir=tmp_path, progress=False)
    first = sorted(p.relative_to(tiny.root) for p in tiny.root.rglob("*") if p.is_file())
    second = sorted(p.relative_to(again.root) for p in again.root.rglob("*") if p.is_file())
    assert first == second
    assert len(first) == 24 + 5  # 2 domains x 12 videos, 4 annotation files, synth.json
    for rel in first:
        assert (tiny.root / rel).read_bytes() == (again.root / rel).read_bytes(), rel


def test_other_seed_gives_other_videos(tiny, tmp_path):
    cfg = syn.SynthConfig(**{**TINY, "num_train": 1, "num_test": 1})
    other = syn.generate(cfg, seed=8, out_dir=tmp_path, progress=False)
    a = (tiny.videos / "src_train_0000.mp4").read_bytes()
    assert a != (other.videos / "src_train_0000.mp4").read_bytes()


def test_annotation_files_load_and_cover_every_class(tiny):
    cfg = syn.SynthConfig(**TINY)
    for path, dom in ((tiny.source, cfg.source), (tiny.target, cfg.target)):
        ann = AnnotationSet.load(path)
        assert ann.classes == list(dom.classes)
        assert len(ann) == 12
        for split in ("train", "test"):
            part = ann.split(split)
            assert len(part) == 6
            labels = [t.label for v in part.videos for t in v.tubes]
            assert sorted(set(labels)) == list(range(6))
        for v in ann.videos:
            assert v.name.startswith(f"{dom.prefix}_{v.split}_")
            assert (v.width, v.height, v.fps) == (160, 120, 25.0)
            assert 1 <= len(v.tubes) <= 2 and len(v.segments) == len(v.tubes)
            assert len({t.label for t in v.tubes}) == 1  # one action class per video


def test_tubes_and_segments_agree_and_leave_idle_frames(tiny):
    for path in (tiny.source, tiny.target):
        for v in AnnotationSet.load(path).videos:
            tubes = sorted(v.tubes, key=lambda t: t.start_frame)
            assert tubes[0].start_frame >= TINY["min_idle_frames"]  # idle before
            assert tubes[-1].end_frame <= v.num_frames - TINY["min_idle_frames"]  # idle after
            for a, b in zip(tubes[:-1], tubes[1:], strict=True):
                assert b.start_frame - a.end_frame >= TINY["min_gap_frames"]  # idle between
            for t, s in zip(v.tubes, v.segments, strict=True):
                assert s.label == t.label
                assert s.frame_range(v.fps) == (t.start_frame, t.end_frame)
                assert s.start == pytest.approx(t.start_frame / v.fps)
                assert s.end == pytest.approx(t.end_frame / v.fps)
            assert (v.segment_labels() >= 0).sum() == sum(len(t.boxes) for t in v.tubes)


def test_weak_files_drop_train_tubes_only(tiny):
    for full_path, weak_path in ((tiny.source, tiny.source_weak), (tiny.target, tiny.target_weak)):
        full, weak = AnnotationSet.load(full_path), AnnotationSet.load(weak_path)
        assert weak.classes == full.classes
        for v in weak.videos:
            ref = full[v.name]
            assert [s.to_dict() for s in v.segments] == [s.to_dict() for s in ref.segments]
            assert len(v.segments) >= 1
            if v.split == "train":
                assert v.tubes == []
            else:
                assert len(v.tubes) == len(ref.tubes) >= 1


def test_video_names_unique_across_domains_and_meta(tiny):
    names = [v.name for p in (tiny.source, tiny.target) for v in AnnotationSet.load(p).videos]
    assert len(set(names)) == len(names) == 24
    assert sorted(p.stem for p in tiny.videos.glob("*.mp4")) == sorted(names)
    meta = json.loads(tiny.meta.read_text())
    assert meta["format"] == syn.SYNTH_FORMAT and meta["seed"] == 7
    assert meta["config"]["num_train"] == 6
    assert meta["classes"]["source"] == list(syn.source_domain().classes)


def test_decoded_frame_count_and_size_match_annotation(tiny):
    ann = AnnotationSet.load(tiny.target)
    for v in ann.videos[:4]:
        frames = _decode(tiny.videos / f"{v.name}.mp4")
        assert frames.shape == (v.num_frames, v.height, v.width, 3)


# ------------------------------------------------------------------------------ config
def test_default_domains_are_disjoint_with_six_classes_each():
    for factory in syn.PRESETS.values():
        cfg = factory()
        cfg.validate()
        assert len(cfg.source.classes) >= 6 and len(cfg.target.classes) >= 6
        assert not set(cfg.source.classes) & set(cfg.target.classes)
        assert set(cfg.source.classes) | set(cfg.target.classes) <= set(act.MOTIONS)
    assert syn.bench_preset().num_train > syn.demo_preset().num_train


@pytest.mark.parametrize("change, field", [
    ({"target": dataclasses.replace(syn.target_domain(), classes=("wave", "jump"))},
     "target.classes"),
    ({"source": dataclasses.replace(syn.source_domain(), classes=("moonwalk",))},
     "source.classes"),
    ({"num_frames": (30, 40), "instance_frames": (24, 30)}, "num_frames"),
    ({"speed": (1.4, 0.7)}, "speed"),
    ({"actor_height": (0.5, 0.95)}, "actor_height"),
    ({"fps": 30.0}, "fps"),
])
def test_validate_names_the_bad_field(change, field):
    with pytest.raises(ValueError, match=rf"SynthConfig\.{field}"):
        syn.SynthConfig(**change).validate()


def test_instances_fit_with_idle_gaps_for_many_seeds():
    cfg = syn.bench_preset()
    for i in range(300):
        rng = np.random.default_rng(i)
        n = int(rng.integers(cfg.num_frames[0], cfg.num_frames[1] + 1))
        spans = syn._plan_instances(cfg, n, rng)
        assert 1 <= len(spans) <= 2
        assert spans[0][0] >= cfg.min_idle_frames
        assert spans[-1][1] <= n - cfg.min_idle_frames
        for a, b in zip(spans[:-1], spans[1:], strict=True):
            assert b[0] - a[1] >= cfg.min_gap_frames
        for s, e in spans:
            assert cfg.instance_frames[0] <= e - s <= cfg.instance_frames[1]


# --------------------------------------------------------------------- exact ground truth
def test_box_is_the_tight_box_of_the_drawn_actor(tmp_path):
    src, tgt = _plain_domains()
    cfg = syn.SynthConfig(**PLAIN, source=src, target=tgt)
    for d, dom in enumerate((src, tgt)):
        for label in (0, 3):
            plan = syn.plan_video(cfg, dom, label, f"v{d}{label}", "test",
                                  syn.video_rng(3, d, 1, label))
            video = syn.render_video(plan)
            bg = plan.background[0, 0].astype(int)
            assert (plan.background == plan.background[0, 0]).all()  # flat
            changed = (video.frames.astype(int) != bg).any(-1)  # [T, H, W] actor pixels
            path = tmp_path / f"{plan.name}.mp4"
            syn.write_video(path, video.frames, cfg.fps)
            decoded = _decode(path)
            strong = (np.abs(decoded.astype(int) - bg).max(-1) > 50)  # [T, H, W]
            n_tube = 0
            for f in range(plan.num_frames):
                box = video.boxes[f]
                if np.isnan(box).any():
                    continue
                n_tube += 1
                # Rendered: the box is exactly the bounding box of the drawn pixels.
                np.testing.assert_array_equal(_bbox(changed[f]), box)
                # Decoded: compression moves the visible extent by at most 2 px.
                assert np.abs(_bbox(strong[f]) - box).max() <= 2, (plan.name, f)
            assert n_tube == sum(i.end - i.start for i in plan.instances)


def test_boxes_ignore_occluders_and_stay_in_frame(tiny):
    for path in (tiny.source, tiny.target):
        for v in AnnotationSet.load(path).videos:
            for t in v.tubes:
                b = t.boxes
                assert (b[:, 0] >= 0).all() and (b[:, 1] >= 0).all()
                assert (b[:, 2] <= v.width).all() and (b[:, 3] <= v.height).all()
                assert (b[:, 2] - b[:, 0] >= 4).all() and (b[:, 3] - b[:, 1] >= 10).all()


def test_occluder_hides_part_of_the_actor_but_not_the_box():
    cfg = syn.SynthConfig(**{**PLAIN, "occluder_prob": 1.0})
    plan = syn.plan_video(cfg, cfg.source, 2, "occ", "train", syn.video_rng(5, 0, 0, 0))
    occluder = plan.things[-1]
    video = syn.render_video(plan)
    plan.things = []
    clean = syn.render_video(plan)
    np.testing.assert_array_equal(video.boxes, clean.boxes)  # amodal: same boxes
    actor = (clean.frames != plan.background[0, 0]).any(-1)  # [T, H, W] actor pixels
    hidden = (actor & (video.frames != clean.frames).any(-1)).sum(axis=(1, 2))  # [T]
    assert occluder.in_front and hidden.max() > 20


# ------------------------------------------------------------------------------- motions
def test_rest_pose_kinematics_known_answer():
    shape = act.BodyShape()
    q = np.zeros((1, act.NUM_DOF))
    j = act.forward_kinematics(q, shape)[0]
    legs = shape.thigh + shape.shin
    np.testing.assert_allclose(j[act.PELVIS], [0, legs, 0])
    np.testing.assert_allclose(j[act.HEAD], [0, legs + shape.torso + shape.neck, 0])
    np.testing.assert_allclose(
        j[act.L_HAND], [shape.shoulder, legs + shape.torso - shape.upper_arm - shape.forearm, 0])
    np.testing.assert_allclose(j[act.R_FOOT], [-shape.hip, 0, 0], atol=1e-12)
    # Arm straight forward, body turned 90 deg to the left: the hand points to image right.
    q[0, act.YAW] = np.pi / 2
    act.set_limb(q, act.L_UARM, np.pi / 2, np.pi / 2)
    act.set_limb(q, act.L_FARM, np.pi / 2, np.pi / 2)
    j = act.forward_kinematics(q, shape)[0]
    np.testing.assert_allclose(j[act.L_HAND, :2],
                               [shape.upper_arm + shape.forearm, legs + shape.torso], atol=1e-12)
    np.testing.assert_allclose(j[act.L_HAND, 2], -shape.shoulder, atol=1e-12)


def test_mirror_reflects_the_body():
    t = np.arange(20) / 25.0
    rest = act.rest_pose(t, act.RestStyle(yaw=0.3))
    q = act.action_pose("kick", t, act.MotionParams(), rest)
    np.testing.assert_allclose(act.mirror_pose(act.mirror_pose(q)), q)
    shape = act.BodyShape()
    j, jm = act.forward_kinematics(q, shape), act.forward_kinematics(act.mirror_pose(q), shape)
    swap = [act.PELVIS, act.NECK, act.HEAD, act.R_SHOULDER, act.R_ELBOW, act.R_HAND,
            act.L_SHOULDER, act.L_ELBOW, act.L_HAND, act.R_HIP, act.R_KNEE, act.R_FOOT,
            act.L_HIP, act.L_KNEE, act.L_FOOT]
    np.testing.assert_allclose(jm[:, swap] * [-1, 1, 1], j, atol=1e-9)


def test_blend_takes_the_short_way_round():
    rest = np.zeros((1, act.NUM_DOF))
    action = np.zeros((1, act.NUM_DOF))
    action[0, act.YAW] = 4 * np.pi + 0.2  # two full turns and a bit
    action[0, act.ROOT_X] = 0.4  # a length: not wrapped
    out = act.blend(rest, action, np.array([0.5]))
    assert out[0, act.YAW] == pytest.approx(0.1)
    assert out[0, act.ROOT_X] == pytest.approx(0.2)


def _signature(pose: np.ndarray) -> np.ndarray:
    """``[NUM_DOF]`` how far each joint moves (range over time); root offsets x4 (body -> rad)."""
    r = np.ptp(pose, axis=0)
    r[[act.ROOT_X, act.ROOT_Y]] *= 4.0
    return r


def test_every_class_moves_its_own_way_and_unlike_idle():
    t = np.arange(50) / 25.0  # 2 s: at least one cycle of every class at speed 1
    rest = act.rest_pose(t, act.RestStyle(yaw=0.4))
    p = act.MotionParams()
    poses = {n: act.action_pose(n, t, p, rest) for n in act.MOTIONS}
    idle = _signature(rest)
    sig = {n: _signature(q) for n, q in poses.items()}
    names = sorted(poses)
    for i, a in enumerate(names):
        assert np.abs(sig[a] - idle).sum() > 3 * idle.sum(), a
        for b in names[i + 1:]:
            assert np.abs(poses[a] - poses[b]).mean() > 2 * act.DEG, (a, b)
            assert np.abs(sig[a] - sig[b]).sum() > 3 * idle.sum(), (a, b)


def test_every_class_departs_from_idle_within_12_frames_at_slowest_speed():
    t = np.arange(12) / 25.0
    shape = act.BodyShape()
    rest = act.rest_pose(t, act.RestStyle(yaw=0.4))
    idle_travel = np.ptp(act.forward_kinematics(rest, shape)[:, :, :2], axis=0).max()
    for name in act.MOTIONS:
        q = act.action_pose(name, t, act.MotionParams(speed=0.7, amplitude=0.8), rest)
        travel = np.ptp(act.forward_kinematics(q, shape)[:, :, :2], axis=0).max()  # body h
        assert travel > 0.05 and travel > 10 * idle_travel, name


def test_idle_moves_less_than_action_inside_the_box():
    cfg = syn.SynthConfig(**{**PLAIN, "two_instance_prob": 0.0})
    for d, dom in enumerate((cfg.source, cfg.target)):
        for label in range(len(dom.classes)):
            plan = syn.plan_video(cfg, dom, label, "e", "train", syn.video_rng(11, d, 0, label))
            video = syn.render_video(plan)
            inst = plan.instances[0]
            boxes = video.boxes[inst.start:inst.end]
            x1, y1 = np.floor(boxes[:, :2].min(0)).astype(int)
            x2, y2 = np.ceil(boxes[:, 2:].max(0)).astype(int)
            crop = video.frames[:, y1:y2, x1:x2].astype(np.float32)  # [T, h, w, 3]
            energy = np.abs(np.diff(crop, axis=0)).mean(axis=(1, 2, 3))  # [T - 1]
            action = energy[inst.start:inst.end - 1].mean()
            idle = np.r_[energy[:inst.start - 1], energy[inst.end:]].mean()
            assert action > 2.5 * idle, (dom.classes[label], action, idle)


def test_two_classes_same_seed_differ_only_in_motion():
    cfg = syn.SynthConfig(**PLAIN)
    a = syn.plan_video(cfg, cfg.target, 0, "a", "train", syn.video_rng(2, 1, 0, 0))
    b = syn.plan_video(cfg, cfg.target, 3, "b", "train", syn.video_rng(2, 1, 0, 0))
    assert a.people[0].sprite == b.people[0].sprite  # same look
    assert [(i.start, i.end) for i in a.instances] == [(i.start, i.end) for i in b.instances]
    inside = np.zeros(a.num_frames, bool)
    for i in a.instances:
        inside[i.start:i.end] = True
    diff = np.abs(a.people[0].pose - b.people[0].pose).max(axis=1)  # [T] radians / heights
    assert (diff[~inside] == 0).all()  # idle frames identical
    assert diff[inside].mean() > 10 * act.DEG
