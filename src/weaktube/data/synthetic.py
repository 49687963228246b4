"""Synthetic action-tube benchmark: untrimmed videos of articulated actors with exact ground truth.

Each video shows one acting actor who stands idle, performs 1-2 instances of one action class
(see :data:`weaktube.data.synth_actors.MOTIONS`; a class is a way of moving, not a look) and
idles again, among optional distractors: idle or wandering people, moving balls and boxes, an
occluder passing in front, camera shake, blur and sensor noise. Two domains with disjoint class
sets and different looks (palettes, background textures) give a source -> target transfer task.

Ground truth is exact: the box of frame ``f`` is the bounding box of the pixels the acting
actor's body parts cover in that frame (drawn into a mask by the same OpenCV calls that paint
them, before anything nearer is drawn over them), in absolute pixels ``[x1, y1, x2, y2)``. A
tube covers an action instance and nothing else; its segment runs from ``start_frame / fps`` to
``end_frame / fps`` seconds.

Layout written by :func:`generate` (documented in ``docs/SYNTHETIC.md``)::

    out_dir/videos/{src,tgt}_{train,test}_NNNN.mp4
    out_dir/source.json, target.json            tubes and segments, both splits
    out_dir/source_weak.json, target_weak.json  the same without the train split's tubes
    out_dir/synth.json                          resolved config, seed, class lists
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from weaktube.config import ConfigError
from weaktube.data import synth_actors as act
from weaktube.fileio import atomic_path, atomic_write_json
from weaktube.structures import AnnotationSet, Segment, Tube, VideoRecord

SYNTH_FORMAT = "weaktube/synth@1"
SPLITS = ("train", "test")
BGR = tuple[int, int, int]


# ------------------------------------------------------------------------------ configuration
@dataclass
class DomainConfig:
    """Class set and look of one domain. Colours are BGR 0..255."""

    prefix: str  # video-name prefix, e.g. "src" -> src_train_0007
    classes: tuple[str, ...]  # keys of synth_actors.MOTIONS; label = index in this tuple
    textures: tuple[str, ...]  # background styles, keys of TEXTURES, one picked per video
    background_colors: tuple[BGR, ...]
    shirt_colors: tuple[BGR, ...]
    pants_colors: tuple[BGR, ...]
    skin_colors: tuple[BGR, ...]
    texture_scale: tuple[float, float] = (0.08, 0.3)  # feature size, fraction of frame width


def source_domain() -> DomainConfig:
    """Warm indoor look: beige/brown/orange rooms, smooth noise, gradients and blobs."""
    return DomainConfig(
        prefix="src",
        classes=("wave", "clap", "jumping_jack", "squat", "kick", "bow"),
        textures=("noise", "gradient", "blobs"),
        background_colors=((180, 200, 220), (120, 160, 200), (60, 90, 140), (60, 140, 220),
                           (200, 225, 240), (50, 80, 170)),
        shirt_colors=((40, 40, 200), (200, 80, 30), (60, 170, 60), (40, 200, 230),
                      (150, 50, 120), (235, 235, 235)),
        pants_colors=((100, 50, 20), (30, 30, 30), (110, 110, 110), (110, 160, 180)),
        skin_colors=((140, 170, 220), (90, 130, 180), (60, 90, 130), (170, 195, 235)),
        texture_scale=(0.15, 0.4),
    )


def target_domain() -> DomainConfig:
    """Cool outdoor look: grass/sky/slate colours, stripes, blobs and fine noise."""
    return DomainConfig(
        prefix="tgt",
        classes=("punch", "jump", "arm_circles", "march", "side_step", "reach_up"),
        textures=("stripes", "blobs", "noise"),
        background_colors=((60, 140, 70), (70, 120, 110), (210, 170, 110), (120, 110, 100),
                           (130, 140, 40), (150, 150, 150)),
        shirt_colors=((180, 120, 240), (220, 220, 60), (30, 140, 250), (40, 70, 120),
                      (40, 40, 40), (60, 230, 170)),
        pants_colors=((40, 30, 110), (120, 120, 20), (170, 200, 210), (150, 100, 60)),
        skin_colors=((120, 150, 200), (80, 110, 160), (160, 185, 225)),
        texture_scale=(0.05, 0.2),
    )


@dataclass
class SynthConfig:
    """Everything that shapes a synthetic benchmark. Ranges are inclusive ``(low, high)``."""

    # ---- size
    num_train: int = 40  # videos per domain in the train split
    num_test: int = 12  # videos per domain in the test split
    num_frames: tuple[int, int] = (60, 150)  # video length, frames
    width: int = 160  # pixels
    height: int = 120  # pixels
    fps: float = 25.0
    # ---- domains (class sets must be disjoint)
    source: DomainConfig = field(default_factory=source_domain)
    target: DomainConfig = field(default_factory=target_domain)
    # ---- action instances
    two_instance_prob: float = 0.4  # chance of 2 instances instead of 1 (if the video fits 2)
    # chance that a second instance is of another class than the video's first: breaks the
    # link between a video's look (background, clothes) and its class, which a small network
    # otherwise memorises instead of learning the motion (measured: docs/RESULTS.md)
    mixed_class_prob: float = 0.0
    instance_frames: tuple[int, int] = (24, 60)  # length of one instance, frames
    min_idle_frames: int = 6  # idle frames before the first and after the last instance
    min_gap_frames: int = 10  # idle frames between two instances
    ramp_frames: int = 3  # frames blending idle <-> action at each end (inside the tube)
    speed: tuple[float, float] = (0.7, 1.4)  # x the class's base frequency, per instance
    amplitude: tuple[float, float] = (0.8, 1.15)  # x the joint excursions, per instance
    # ---- actors
    actor_height: tuple[float, float] = (0.40, 0.75)  # head-to-feet, fraction of frame height
    view_yaw_deg: tuple[float, float] = (15.0, 45.0)  # |body yaw| to the camera, random sign
    idle_drift_px: float = 3.0  # amplitude of the slow (8-16 s) sideways drift when idle, px
    distractor_actors: tuple[int, int] = (0, 1)  # other people (never acting), per video
    wander_prob: float = 0.5  # chance a distractor person walks back and forth (else idles)
    wander_speed: tuple[float, float] = (10.0, 30.0)  # px/s
    wander_gait_deg: float = 15.0  # leg swing of walking distractors, degrees
    # ---- objects and occlusion
    objects: tuple[int, int] = (0, 1)  # bouncing balls / boxes, per video
    object_speed: tuple[float, float] = (10.0, 50.0)  # px/s
    object_front_prob: float = 0.3  # chance an object passes in front of the people
    occluder_prob: float = 0.1  # chance a wall-like box slides across in front of the actor
    # ---- camera and image
    texture_contrast: float = 0.7  # 0 = flat background of one colour, 1 = full texture
    jitter_px: float = 0.5  # std of the camera shake (global shift), px; 0 = static camera
    blur_prob: float = 0.2  # chance a video is Gaussian-blurred
    blur_sigma: tuple[float, float] = (0.5, 1.0)  # px
    noise_std: float = 0.0  # per-frame sensor noise, grey levels

    def validate(self) -> None:
        """Raise ``ConfigError`` (a ``ValueError``) naming the first inconsistent field."""
        def bad(name: str, why: str) -> ConfigError:
            return ConfigError(f"SynthConfig.{name}: {why}")

        for name in ("num_frames", "instance_frames", "speed", "amplitude", "actor_height",
                     "view_yaw_deg", "distractor_actors", "wander_speed", "objects",
                     "object_speed", "blur_sigma"):
            lo, hi = getattr(self, name)
            if not lo <= hi:
                raise bad(name, f"needs low <= high, got ({lo}, {hi})")
            if lo < 0:
                raise bad(name, f"must not be negative, got ({lo}, {hi})")
        if self.num_train < 0 or self.num_test < 0:
            raise bad("num_train", "video counts must not be negative")
        if self.width < 32 or self.height < 32 or not self.fps > 0:
            raise bad("width", f"need a frame of at least 32x32 and fps > 0, got "
                      f"{self.width}x{self.height} at {self.fps}")
        ticks = 10_000 / self.fps  # segments are saved in seconds with 4 decimals
        if abs(ticks - round(ticks)) > 1e-6:
            raise bad("fps", f"must divide 10000 (e.g. 25, 50, 20) so that frame / fps survives "
                      f"the 4-decimal seconds of the annotation file exactly, got {self.fps}")
        if not (0 < self.actor_height[0] and self.actor_height[1] <= 0.85):
            raise bad("actor_height", f"must lie in (0, 0.85], got {self.actor_height}")
        if self.instance_frames[0] < 2 * self.ramp_frames + 2:
            raise bad("instance_frames", f"shortest instance must exceed 2 * ramp_frames + 1 "
                      f"= {2 * self.ramp_frames + 1}")
        if self.min_idle_frames < 1:
            raise bad("min_idle_frames", "every video needs idle frames before and after")
        if self.num_frames[0] < self.instance_frames[0] + 2 * self.min_idle_frames:
            raise bad("num_frames", f"shortest video ({self.num_frames[0]}) cannot hold one "
                      f"instance ({self.instance_frames[0]}) and 2 x {self.min_idle_frames} "
                      "idle frames")
        for dname in ("source", "target"):
            d: DomainConfig = getattr(self, dname)
            if not d.classes or len(set(d.classes)) != len(d.classes):
                raise bad(f"{dname}.classes", f"need distinct class names, got {d.classes}")
            unknown = [c for c in d.classes if c not in act.MOTIONS]
            if unknown:
                raise bad(f"{dname}.classes", f"unknown {unknown}; known: {sorted(act.MOTIONS)}")
            unknown = [x for x in d.textures if x not in TEXTURES]
            if not d.textures or unknown:
                raise bad(f"{dname}.textures", f"unknown {unknown}; known: {sorted(TEXTURES)}")
            for cname in ("background_colors", "shirt_colors", "pants_colors", "skin_colors"):
                if not getattr(d, cname):
                    raise bad(f"{dname}.{cname}", "needs at least one colour")
        shared = set(self.source.classes) & set(self.target.classes)
        if shared:
            raise bad("target.classes", f"must be disjoint from source.classes, share "
                      f"{sorted(shared)}")
        if self.source.prefix == self.target.prefix:
            raise bad("target.prefix", "must differ from source.prefix (video names)")


def demo_preset() -> SynthConfig:
    """Mild: 100 train + 20 test videos per domain, 80-160 frames, 160x120 @ 25 fps; most
    videos hold two instances, often of two classes."""
    return SynthConfig(num_train=100, num_test=20, num_frames=(80, 160), two_instance_prob=0.8,
                       mixed_class_prob=0.6, actor_height=(0.55, 0.8), speed=(0.85, 1.15),
                       amplitude=(0.9, 1.1), view_yaw_deg=(10.0, 30.0), distractor_actors=(0, 1),
                       objects=(0, 1), occluder_prob=0.05, blur_prob=0.1)


def bench_preset() -> SynthConfig:
    """Larger and harder: 120 train + 40 test per domain, more distractors, occlusion, shake."""
    return SynthConfig(
        num_train=120, num_test=40, num_frames=(80, 180), two_instance_prob=0.8,
        mixed_class_prob=0.6,
        instance_frames=(20, 64), view_yaw_deg=(0.0, 60.0), idle_drift_px=5.0,
        distractor_actors=(0, 2), wander_prob=0.6, objects=(0, 3), object_front_prob=0.4,
        occluder_prob=0.35, texture_contrast=1.0, jitter_px=1.5, blur_prob=0.4,
        blur_sigma=(0.6, 1.4), noise_std=3.0)


PRESETS = {"demo": demo_preset, "bench": bench_preset}


# ------------------------------------------------------------------------------ backgrounds
def _value_noise(rng: np.random.Generator, h: int, w: int, scale: float) -> np.ndarray:
    """``[h, w]`` float32 smooth noise in [0, 1] with features about ``scale`` pixels wide."""
    out = np.zeros((h, w), np.float32)
    for octave, weight in ((1.0, 0.7), (3.0, 0.3)):
        gh = max(2, int(h * octave / scale) + 2)
        gw = max(2, int(w * octave / scale) + 2)
        grid = rng.random((gh, gw), dtype=np.float32)
        out += weight * cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    return _normalise(out)


def _normalise(x: np.ndarray) -> np.ndarray:
    lo, hi = float(x.min()), float(x.max())
    return ((x - lo) / max(hi - lo, 1e-6)).astype(np.float32)


def _texture_noise(rng, h, w, scale):
    return _value_noise(rng, h, w, scale)


def _texture_gradient(rng, h, w, scale):
    a = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ramp = _normalise(np.cos(a) * xx + np.sin(a) * yy)
    return _normalise(0.75 * ramp + 0.25 * _value_noise(rng, h, w, scale))


def _texture_stripes(rng, h, w, scale):
    a = rng.uniform(0, np.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    wave = np.sin(2 * np.pi * (np.cos(a) * xx + np.sin(a) * yy) / max(scale, 3.0)
                  + rng.uniform(0, 2 * np.pi))
    return _normalise(0.8 * np.tanh(2.0 * wave) + 0.2 * _value_noise(rng, h, w, scale))


def _texture_blobs(rng, h, w, scale):
    canvas = np.full((h, w), 0.5, np.float32)
    for _ in range(int(rng.integers(6, 16))):
        center = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        axes = (int(rng.uniform(0.4, 1.2) * scale) + 1, int(rng.uniform(0.4, 1.2) * scale) + 1)
        cv2.ellipse(canvas, center, axes, float(rng.uniform(0, 180)), 0, 360,
                    float(rng.random()), -1)
    return _normalise(cv2.GaussianBlur(canvas, (0, 0), max(scale * 0.15, 0.5)))


# Background styles: name -> f(rng, h, w, feature size px) -> [h, w] float32 field in [0, 1].
TEXTURES = {"noise": _texture_noise, "gradient": _texture_gradient,
            "stripes": _texture_stripes, "blobs": _texture_blobs}


def _pick(rng: np.random.Generator, options: tuple) -> tuple:
    return tuple(options[int(rng.integers(len(options)))])


def make_background(rng: np.random.Generator, domain: DomainConfig, h: int, w: int,
                    frame_width: int, contrast: float) -> np.ndarray:
    """``[h, w, 3]`` uint8 BGR: a textured wall above a darker textured floor.

    The texture blends two of the domain's colours; ``contrast`` 0 gives one flat colour.
    """
    style = domain.textures[int(rng.integers(len(domain.textures)))]
    scale = rng.uniform(*domain.texture_scale) * frame_width
    c1, c2, c3 = (np.array(_pick(rng, domain.background_colors), np.float32) for _ in range(3))
    mean = 0.5 * (c1 + c2)
    wall = TEXTURES[style](rng, h, w, scale)  # [h, w] in [0, 1]
    img = mean + contrast * ((c1 - mean) + (wall[..., None] * (c2 - c1)))  # [h, w, 3]
    floor_tex = _value_noise(rng, h, w, scale * 0.5)[..., None]  # [h, w, 1]
    floor = mean + contrast * (0.6 * c3 - mean + 40.0 * (floor_tex - 0.5))
    horizon = int(rng.uniform(0.35, 0.6) * h)
    img[horizon:] = floor[horizon:]
    return np.clip(img, 0, 255).astype(np.uint8)


# ------------------------------------------------------------------------------- the plan
@dataclass
class Person:
    """One actor in a video: body, look and per-frame pose and anchor."""

    shape: act.BodyShape
    sprite: act.ActorSprite
    height_px: float
    anchor: np.ndarray  # [T, 2] scene pixels: x of the pelvis, y of the ground under the feet
    pose: np.ndarray  # [T, NUM_DOF]


@dataclass
class MovingThing:
    """A ball (circle) or box (rectangle) moving over the video."""

    kind: str  # "ball" or "box"
    color: BGR
    size: tuple[float, float]  # half width, half height (px); a ball uses the first
    center: np.ndarray  # [T, 2] scene pixels
    in_front: bool  # drawn over the people


@dataclass
class Instance:
    """One action instance: frames ``[start, end)`` and how it is performed."""

    start: int
    end: int
    params: act.MotionParams
    label: int  # class index within the domain


@dataclass
class VideoPlan:
    """Everything random about one video, drawn before any pixel is rendered."""

    name: str
    split: str
    label: int
    class_name: str
    num_frames: int
    width: int
    height: int
    fps: float
    instances: list[Instance]
    people: list[Person]  # people[0] acts; the rest are distractors
    things: list[MovingThing]  # balls, boxes and the occluder
    background: np.ndarray  # [height + 2 m, width + 2 m, 3] uint8, m = margin
    margin: int  # px of background beyond each frame edge, for the camera shake
    camera: np.ndarray  # [T, 2] int (dx, dy) camera offset in scene pixels, |d| <= margin
    blur_sigma: float  # 0 = no blur
    noise: np.ndarray | None  # [K, height, width, 3] int16 sensor noise, frame t uses t % K


def _plan_instances(cfg: SynthConfig, n_frames: int, rng: np.random.Generator) -> list[tuple]:
    """Frame ranges ``[(start, end)]`` of 1-2 instances with idle gaps before/between/after."""
    lo, hi = cfg.instance_frames
    n = 2 if rng.random() < cfg.two_instance_prob else 1
    if n == 2 and n_frames < 2 * lo + 2 * cfg.min_idle_frames + cfg.min_gap_frames:
        n = 1
    min_idle = 2 * cfg.min_idle_frames + (n - 1) * cfg.min_gap_frames
    lengths = rng.integers(lo, hi + 1, size=n)
    room = n_frames - min_idle
    if lengths.sum() > room:  # shrink the part above the shortest length to fit
        excess = lengths - lo
        lengths = lo + np.floor(excess * (room - n * lo) / excess.sum()).astype(int)
    slack = n_frames - min_idle - int(lengths.sum())
    extra = rng.multinomial(slack, rng.dirichlet(np.ones(n + 1)))  # [n + 1] extra idle frames
    out, f = [], 0
    for i in range(n):
        f += int(extra[i]) + (cfg.min_idle_frames if i == 0 else cfg.min_gap_frames)
        out.append((f, f + int(lengths[i])))
        f += int(lengths[i])
    return out


def _ramp_weights(n: int, ramp: int) -> np.ndarray:
    """``[n]`` blend weights: smooth 0 -> 1 over ``ramp`` frames, 1, then 1 -> 0; all > 0."""
    w = np.ones(n)
    k = np.arange(1, ramp + 1) / (ramp + 1)
    s = k * k * (3 - 2 * k)  # smoothstep
    w[:ramp] = s
    w[n - ramp:] = np.minimum(w[n - ramp:], s[::-1])
    return w


def _bounce(start: np.ndarray, velocity: np.ndarray, t: np.ndarray, lo: np.ndarray,
            hi: np.ndarray) -> np.ndarray:
    """``[T, D]`` positions of a point moving at ``velocity`` and reflecting off ``[lo, hi]``."""
    span = np.maximum(hi - lo, 1e-6)
    u = (start - lo + velocity * t[:, None]) % (2 * span)  # [T, D]
    return lo + span - np.abs(u - span)


def _make_person(rng: np.random.Generator, cfg: SynthConfig, domain: DomainConfig,
                 pose: np.ndarray | None, t: np.ndarray, x: float, ground: float,
                 height_px: float, yaw: float) -> Person:
    shape = act.sample_body_shape(rng)
    look = act.Look(_pick(rng, domain.shirt_colors), _pick(rng, domain.pants_colors),
                    _pick(rng, domain.skin_colors), bool(rng.random() < 0.4))
    if pose is None:
        pose = act.rest_pose(t, act.sample_rest_style(rng, yaw))
    drift = cfg.idle_drift_px * rng.uniform(0.3, 1.0) * np.sin(
        2 * np.pi * t / rng.uniform(8.0, 16.0) + rng.uniform(0, 2 * np.pi))  # [T] px, slow
    anchor = np.stack([x + drift, np.full_like(t, ground)], axis=1)  # [T, 2]
    return Person(shape, act.make_sprite(shape, look, height_px), height_px, anchor, pose)


def plan_video(cfg: SynthConfig, domain: DomainConfig, label: int, name: str, split: str,
               rng: np.random.Generator) -> VideoPlan:
    """Draw every random choice of one video of class ``domain.classes[label]`` from ``rng``."""
    W, H, fps = cfg.width, cfg.height, cfg.fps
    n_frames = int(rng.integers(cfg.num_frames[0], cfg.num_frames[1] + 1))
    t = np.arange(n_frames) / fps  # [T] seconds
    class_name = domain.classes[label]

    def sample_height() -> float:
        return rng.uniform(*cfg.actor_height) * H

    def sample_yaw() -> float:
        return rng.uniform(*cfg.view_yaw_deg) * act.DEG * rng.choice([-1.0, 1.0])

    def ground_for(h_px: float) -> float:
        return rng.uniform(min(h_px * 1.15 + 2, H - 2), H - 2)

    # -- the acting actor: idle pose with the action instances blended in
    height_px, yaw = sample_height(), sample_yaw()
    pose = act.rest_pose(t, act.sample_rest_style(rng, yaw))
    instances = []
    for k, (start, end) in enumerate(_plan_instances(cfg, n_frames, rng)):
        p = act.MotionParams(speed=rng.uniform(*cfg.speed), amplitude=rng.uniform(*cfg.amplitude),
                             phase=rng.uniform(0, 0.6 * np.pi), side=int(rng.choice([-1, 1])))
        inst_label = label
        if k > 0 and rng.random() < cfg.mixed_class_prob:  # a later instance of another class
            others = [c for c in range(len(domain.classes)) if c != label]
            inst_label = int(others[int(rng.integers(len(others)))])
        seg = slice(start, end)
        action = act.action_pose(domain.classes[inst_label], t[seg] - t[start], p, pose[seg])
        pose[seg] = act.blend(pose[seg], action, _ramp_weights(end - start, cfg.ramp_frames))
        instances.append(Instance(start, end, p, inst_label))
    x = rng.uniform(0.35 * height_px, W - 0.35 * height_px)
    people = [_make_person(rng, cfg, domain, pose, t, x, ground_for(height_px), height_px, yaw)]

    # -- distractor people: idle, or walking back and forth with a plain gait
    for _ in range(int(rng.integers(cfg.distractor_actors[0], cfg.distractor_actors[1] + 1))):
        h_px = sample_height()
        xs = rng.uniform(0.3 * h_px, W - 0.3 * h_px, size=8)
        xd = float(xs[np.argmax(np.abs(xs - x))])  # keep away from the actor when possible
        if rng.random() < cfg.wander_prob:
            speed = rng.uniform(*cfg.wander_speed) * rng.choice([-1.0, 1.0])
            lo, hi = np.array([0.2 * h_px]), np.array([W - 0.2 * h_px])
            path = _bounce(np.array([xd]), np.array([speed]), t, lo, hi)[:, 0]  # [T]
            heading = np.sign(np.gradient(path))  # [T] +1 walking right, -1 left
            heading[heading == 0] = 1.0
            style = act.sample_rest_style(rng, 0.0)
            gait = act.walk_pose(t, style, hz=abs(speed) / (0.5 * h_px),
                                 gait=cfg.wander_gait_deg * act.DEG)
            gait[:, act.YAW] = heading * rng.uniform(60, 80) * act.DEG  # face the way walked
            person = _make_person(rng, cfg, domain, gait, t, 0.0, ground_for(h_px), h_px, 0.0)
            person.anchor[:, 0] = path
        else:
            person = _make_person(rng, cfg, domain, None, t, xd, ground_for(h_px), h_px,
                                  sample_yaw())
        people.append(person)

    # -- balls and boxes bouncing around, and the occluder
    things = []
    for _ in range(int(rng.integers(cfg.objects[0], cfg.objects[1] + 1))):
        r = rng.uniform(0.03, 0.08) * H
        size = (r, r) if rng.random() < 0.5 else (r * rng.uniform(0.6, 1.6), r)
        speed = rng.uniform(*cfg.object_speed)
        ang = rng.uniform(0, 2 * np.pi)
        lo, hi = np.array(size), np.array([W - size[0], H - size[1]])
        center = _bounce(rng.uniform(lo, hi), speed * np.array([np.cos(ang), np.sin(ang)]),
                         t, lo, hi)
        things.append(MovingThing("ball" if size[0] == size[1] else "box",
                                  tuple(int(c) for c in rng.integers(20, 236, 3)), size, center,
                                  bool(rng.random() < cfg.object_front_prob)))
    if rng.random() < cfg.occluder_prob:
        inst = instances[int(rng.integers(len(instances)))]
        t_cross = rng.uniform(t[inst.start], t[inst.end - 1])  # passes the actor mid-action
        v = rng.uniform(20, 50) * rng.choice([-1.0, 1.0])
        half_w = rng.uniform(0.12, 0.25) * height_px
        half_h = rng.uniform(0.18, 0.35) * height_px
        ground = people[0].anchor[0, 1]
        cy = ground + rng.uniform(0.0, 0.1) * height_px - half_h
        center = np.stack([x + v * (t - t_cross), np.full_like(t, cy)], axis=1)  # [T, 2]
        color = tuple(int(c * 0.5) for c in _pick(rng, domain.background_colors))
        things.append(MovingThing("box", color, (half_w, half_h), center, True))

    # -- camera, background, blur, noise
    margin = int(math.ceil(3 * cfg.jitter_px))
    shake = np.zeros((n_frames, 2))
    if cfg.jitter_px > 0:
        e = rng.normal(size=(n_frames, 2))
        shake[0] = e[0]
        for i in range(1, n_frames):  # AR(1): smooth hand-held shake with unit variance
            shake[i] = 0.8 * shake[i - 1] + 0.6 * e[i]
    camera = np.clip(np.round(shake * cfg.jitter_px), -margin, margin).astype(np.int64)
    background = make_background(rng, domain, H + 2 * margin, W + 2 * margin, W,
                                 cfg.texture_contrast)
    blur = float(rng.uniform(*cfg.blur_sigma)) if rng.random() < cfg.blur_prob else 0.0
    noise = None
    if cfg.noise_std > 0:
        noise = np.round(rng.normal(0.0, cfg.noise_std, (4, H, W, 3))).astype(np.int16)
    return VideoPlan(name, split, label, class_name, n_frames, W, H, fps, instances, people,
                     things, background, margin, camera, blur, noise)


# ------------------------------------------------------------------------------- rendering
@dataclass
class RenderedVideo:
    """``frames [T, H, W, 3]`` uint8 BGR and ``boxes [T, 4]`` float32 xyxy px (NaN: no box)."""

    frames: np.ndarray
    boxes: np.ndarray


def _draw_thing(img: np.ndarray, th: MovingThing, center: np.ndarray) -> None:
    one = 1 << act.SHIFT
    cx, cy = (int(round(v * one)) for v in center)
    hw, hh = (int(round(v * one)) for v in th.size)
    if th.kind == "ball":
        cv2.circle(img, (cx, cy), hw, th.color, -1, cv2.LINE_8, act.SHIFT)
    else:
        cv2.rectangle(img, (cx - hw, cy - hh), (cx + hw, cy + hh), th.color, -1, cv2.LINE_8,
                      act.SHIFT)


def render_video(plan: VideoPlan) -> RenderedVideo:
    """Render every frame and measure the acting actor's box inside the instances."""
    n, W, H, m = plan.num_frames, plan.width, plan.height, plan.margin
    in_tube = np.zeros(n, bool)
    for inst in plan.instances:
        in_tube[inst.start:inst.end] = True
    # Joint positions of everyone, in frame pixels: [T, J, 2] and depth [T, J].
    people = []
    for p in sorted(plan.people, key=lambda q: q.anchor[0, 1]):  # far (higher ground) first
        j = act.forward_kinematics(p.pose, p.shape)  # [T, J, 3] body heights
        xy = np.stack([j[:, :, 0], -j[:, :, 1]], axis=-1) * p.height_px  # [T, J, 2]
        xy += (p.anchor - plan.camera)[:, None, :]
        people.append((p, xy, j[:, :, 2]))
    things = [(th, th.center - plan.camera) for th in plan.things]

    frames = np.empty((n, H, W, 3), np.uint8)
    boxes = np.full((n, 4), np.nan, np.float32)
    mask = np.zeros((H, W), np.uint8)
    for f in range(n):
        dx, dy = plan.camera[f]
        img = frames[f]
        img[:] = plan.background[m + dy:m + dy + H, m + dx:m + dx + W]
        for th, c in things:
            if not th.in_front:
                _draw_thing(img, th, c[f])
        for p, xy, depth in people:
            acting = p is plan.people[0] and in_tube[f]
            if acting:
                mask[:] = 0
            act.draw_actor(img, xy[f], depth[f], p.sprite, mask if acting else None)
            if acting:
                x, y, w, h = cv2.boundingRect(mask)
                if w == 0:
                    raise RuntimeError(f"video {plan.name!r}, frame {f}: the acting actor is "
                                       "outside the frame")
                boxes[f] = (x, y, x + w, y + h)
        for th, c in things:
            if th.in_front:
                _draw_thing(img, th, c[f])
        if plan.noise is not None:
            noisy = img.astype(np.int16) + plan.noise[f % len(plan.noise)]
            img[:] = np.clip(noisy, 0, 255).astype(np.uint8)
        if plan.blur_sigma > 0:
            img[:] = cv2.GaussianBlur(img, (0, 0), plan.blur_sigma)
    return RenderedVideo(frames, boxes)


def video_record(plan: VideoPlan, boxes: np.ndarray) -> VideoRecord:
    """The annotation of a rendered video: one tube and one segment per instance."""
    tubes, segments = [], []
    for inst in plan.instances:
        tubes.append(Tube(inst.label, inst.start, boxes[inst.start:inst.end].copy()))
        segments.append(Segment(inst.label, inst.start / plan.fps, inst.end / plan.fps))
    return VideoRecord(plan.name, plan.num_frames, plan.width, plan.height, plan.fps,
                       plan.split, tubes, segments)


def write_video(path: str | Path, frames: np.ndarray, fps: float) -> None:
    """Write ``frames [T, H, W, 3]`` uint8 BGR as MPEG-4 Part 2 (``mp4v``) atomically."""
    n, h, w, _ = frames.shape
    with atomic_path(path) as tmp:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
        if not writer.isOpened():
            raise OSError(f"OpenCV cannot open an mp4v writer for {str(path)!r}")
        try:
            for f in range(n):
                writer.write(frames[f])
        finally:
            writer.release()


# ------------------------------------------------------------------------------ generation
@dataclass
class SynthOutput:
    """Paths written by :func:`generate`."""

    root: Path
    videos: Path  # folder of <name>.mp4
    source: Path  # full annotations (tubes + segments), both splits
    target: Path
    source_weak: Path  # train split without tubes
    target_weak: Path
    meta: Path  # synth.json


def video_rng(seed: int, domain_index: int, split_index: int, index: int) -> np.random.Generator:
    """The generator of one video, a pure function of its coordinates in the benchmark."""
    return np.random.default_rng([seed, domain_index, split_index, 1, index])


def split_labels(seed: int, domain_index: int, split_index: int, count: int,
                 num_classes: int) -> np.ndarray:
    """``[count]`` labels: each class ``count // K`` or one more times, in shuffled order."""
    rng = np.random.default_rng([seed, domain_index, split_index, 2])
    return rng.permutation(np.arange(count) % num_classes)


def generate(cfg: SynthConfig, seed: int, out_dir: str | Path, progress: bool = True
             ) -> SynthOutput:
    """Render both domains' train and test videos and write their annotations.

    The same ``cfg`` and ``seed`` give byte-identical files: every video draws its randomness
    from :func:`video_rng`, never from global state.
    """
    cfg.validate()
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    root = Path(out_dir)
    videos_dir = root / "videos"
    domains = (cfg.source, cfg.target)
    counts = {"train": cfg.num_train, "test": cfg.num_test}
    jobs = [(d, s, i) for d in range(2) for s in range(2) for i in range(counts[SPLITS[s]])]
    labels = {(d, s): split_labels(seed, d, s, counts[SPLITS[s]], len(domains[d].classes))
              for d in range(2) for s in range(2)}
    records: list[list[VideoRecord]] = [[], []]
    for d, s, i in tqdm(jobs, desc="synth", unit="video", disable=not progress):
        dom, split = domains[d], SPLITS[s]
        name = f"{dom.prefix}_{split}_{i:04d}"
        plan = plan_video(cfg, dom, int(labels[d, s][i]), name, split, video_rng(seed, d, s, i))
        video = render_video(plan)
        write_video(videos_dir / f"{name}.mp4", video.frames, cfg.fps)
        records[d].append(video_record(plan, video.boxes))

    out = SynthOutput(root, videos_dir, root / "source.json", root / "target.json",
                      root / "source_weak.json", root / "target_weak.json", root / "synth.json")
    for dom, recs, full, weak in ((cfg.source, records[0], out.source, out.source_weak),
                                  (cfg.target, records[1], out.target, out.target_weak)):
        ann = AnnotationSet(list(dom.classes), recs)
        ann.save(full)
        ann.without_boxes("train").save(weak)
    atomic_write_json(out.meta, {
        "format": SYNTH_FORMAT, "seed": int(seed), "config": dataclasses.asdict(cfg),
        "classes": {"source": list(cfg.source.classes), "target": list(cfg.target.classes)},
        "files": {"videos": "videos", "source": out.source.name, "target": out.target.name,
                  "source_weak": out.source_weak.name, "target_weak": out.target_weak.name},
    }, indent=2)
    return out
