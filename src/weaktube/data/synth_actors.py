"""Articulated actors for the synthetic benchmark: pose vector, motions, kinematics, drawing.

Body frame, in units of the actor's height ``H`` (1.0 = head top to feet when standing):
``x`` toward the actor's left (image right when the actor faces the camera), ``y`` up, ``z``
forward (toward the camera at yaw 0). The camera is orthographic and looks along ``-z``; a
larger ``z`` is nearer and is drawn later.

A pose is a float vector of :data:`NUM_DOF` values (layout in :data:`DOF_NAMES`):

* ``root_x``, ``root_y``: sideways step and jump height, body heights;
* ``yaw`` (turn about the vertical axis, 0 faces the camera), ``bow`` (torso pitched forward),
  ``lean`` (torso rolled sideways), radians;
* for each of the 8 limb segments an elevation ``el`` and azimuth ``az`` (radians) giving its
  direction in its parent frame (the torso for arms, the pelvis for legs)::

      d(el, az) = (side * sin(el) * cos(az), -cos(el), sin(el) * sin(az)),  side = +1 left, -1 right

  ``el = 0`` hangs straight down, ``pi / 2`` is horizontal, ``pi`` points straight up;
  ``az = 0`` swings out to the side, ``pi / 2`` forward, ``pi`` across the body, ``-pi / 2``
  backward. Any ``el`` is valid (negative swings the other way; ``0 .. 2 pi`` is a full circle).

An action class is a *motion*: a function ``motion(t, params, rest) -> pose`` (``t [T]`` seconds
since the instance began, ``rest [T, NUM_DOF]`` the actor's idle pose, result ``[T, NUM_DOF]``)
that overrides the joints it drives and leaves the others idle. :data:`MOTIONS` maps class names
to motions. Classes differ only in how the joints move, never in colour or shape.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

DEG = np.pi / 180.0

# ------------------------------------------------------------------------------ pose layout
ROOT_X, ROOT_Y, YAW, BOW, LEAN = range(5)
L_UARM, L_FARM, R_UARM, R_FARM, L_THIGH, L_SHIN, R_THIGH, R_SHIN = range(8)
LIMB_NAMES = ("l_upper_arm", "l_forearm", "r_upper_arm", "r_forearm",
              "l_thigh", "l_shin", "r_thigh", "r_shin")
EL = tuple(5 + 2 * k for k in range(len(LIMB_NAMES)))  # pose index of each limb's elevation
AZ = tuple(6 + 2 * k for k in range(len(LIMB_NAMES)))  # pose index of each limb's azimuth
NUM_DOF = 5 + 2 * len(LIMB_NAMES)
DOF_NAMES = ("root_x", "root_y", "yaw", "bow", "lean") + tuple(
    f"{n}_{a}" for n in LIMB_NAMES for a in ("el", "az"))
FIRST_ANGLE_DOF = YAW  # pose[:, YAW:] are angles (wrapped when blending), the rest are lengths

# Mirroring a pose swaps the left and right limbs and negates the sideways quantities.
_MIRROR_INDEX = np.arange(NUM_DOF)
for _l, _r in ((L_UARM, R_UARM), (L_FARM, R_FARM), (L_THIGH, R_THIGH), (L_SHIN, R_SHIN)):
    _MIRROR_INDEX[[EL[_l], AZ[_l], EL[_r], AZ[_r]]] = [EL[_r], AZ[_r], EL[_l], AZ[_l]]
_MIRROR_SIGN = np.ones(NUM_DOF)
_MIRROR_SIGN[[ROOT_X, YAW, LEAN]] = -1.0

# ---------------------------------------------------------------------------------- joints
(PELVIS, NECK, HEAD, L_SHOULDER, L_ELBOW, L_HAND, R_SHOULDER, R_ELBOW, R_HAND,
 L_HIP, L_KNEE, L_FOOT, R_HIP, R_KNEE, R_FOOT) = range(15)
NUM_JOINTS = 15


def mirror_pose(pose: np.ndarray) -> np.ndarray:
    """``[T, NUM_DOF] -> [T, NUM_DOF]``: the same motion done with the other side's limbs."""
    return pose[:, _MIRROR_INDEX] * _MIRROR_SIGN


def wrap_angle(a: np.ndarray) -> np.ndarray:
    """Angles wrapped into ``[-pi, pi)``."""
    return (a + np.pi) % (2 * np.pi) - np.pi


# ---------------------------------------------------------------------------- body and look
@dataclass(frozen=True)
class BodyShape:
    """Segment lengths and thicknesses, in body heights (thickness = full width of the part)."""

    torso: float = 0.30  # pelvis -> neck
    neck: float = 0.085  # neck -> head centre
    head_radius: float = 0.07
    shoulder: float = 0.105  # half the shoulder width
    hip: float = 0.06  # half the hip width
    upper_arm: float = 0.16
    forearm: float = 0.15
    thigh: float = 0.245
    shin: float = 0.245
    torso_width: float = 0.10  # the spine stroke, gives the torso depth when seen side-on
    upper_arm_width: float = 0.05
    forearm_width: float = 0.042
    thigh_width: float = 0.07
    shin_width: float = 0.06


def sample_body_shape(rng: np.random.Generator) -> BodyShape:
    """A slightly different build per actor: widths x0.85-1.2, limb lengths x0.95-1.05."""
    base = BodyShape()
    build = rng.uniform(0.85, 1.2)
    limbs = rng.uniform(0.95, 1.05)
    return BodyShape(
        torso=base.torso, neck=base.neck, head_radius=base.head_radius * rng.uniform(0.9, 1.1),
        shoulder=base.shoulder * build, hip=base.hip * build,
        upper_arm=base.upper_arm * limbs, forearm=base.forearm * limbs,
        thigh=base.thigh * limbs, shin=base.shin * limbs,
        torso_width=base.torso_width * build, upper_arm_width=base.upper_arm_width * build,
        forearm_width=base.forearm_width * build, thigh_width=base.thigh_width * build,
        shin_width=base.shin_width * build)


@dataclass(frozen=True)
class Look:
    """Colours (BGR, 0..255) of one actor."""

    shirt: tuple[int, int, int]
    pants: tuple[int, int, int]
    skin: tuple[int, int, int]
    long_sleeves: bool = False


# ---------------------------------------------------------------------------- rest and idle
@dataclass(frozen=True)
class RestStyle:
    """How one actor stands while idle (angles in radians, frequencies in Hz)."""

    yaw: float = 0.0  # view angle of the body relative to the camera
    arm: float = 8 * DEG  # upper arm elevation, out to the side
    elbow: float = 10 * DEG  # extra forearm elevation, slightly forward
    stance: float = 4 * DEG  # leg elevation, out to the side
    sway: float = 1.5 * DEG  # torso lean amplitude
    sway_hz: float = 0.25
    phase: float = 0.0


def sample_rest_style(rng: np.random.Generator, yaw: float) -> RestStyle:
    return RestStyle(yaw=yaw, arm=rng.uniform(4, 14) * DEG, elbow=rng.uniform(3, 20) * DEG,
                     stance=rng.uniform(2, 7) * DEG, sway=rng.uniform(0.8, 2.0) * DEG,
                     sway_hz=rng.uniform(0.15, 0.4), phase=rng.uniform(0, 2 * np.pi))


def set_limb(pose: np.ndarray, limb: int, el: np.ndarray | float | None = None,
             az: np.ndarray | float | None = None) -> None:
    """Set ``limb``'s elevation and/or azimuth (radians) in ``pose [T, NUM_DOF]`` in place."""
    if el is not None:
        pose[:, EL[limb]] = el
    if az is not None:
        pose[:, AZ[limb]] = az


def rest_pose(t: np.ndarray, s: RestStyle) -> np.ndarray:
    """``t [T]`` seconds -> ``[T, NUM_DOF]``: standing, breathing and swaying a little."""
    w = 2 * np.pi * t
    q = np.zeros((len(t), NUM_DOF))
    q[:, YAW] = s.yaw
    q[:, LEAN] = s.sway * np.sin(w * s.sway_hz + s.phase)
    q[:, BOW] = 1.0 * DEG * np.sin(w * 0.3 + 2 * s.phase)  # breathing
    for side, ua, fa, th, sh in ((1, L_UARM, L_FARM, L_THIGH, L_SHIN),
                                 (-1, R_UARM, R_FARM, R_THIGH, R_SHIN)):
        swing = 2.0 * DEG * np.sin(w * s.sway_hz * 1.3 + s.phase + side)
        set_limb(q, ua, s.arm + swing, 0.0)
        set_limb(q, fa, s.arm + s.elbow + swing, 60 * DEG)
        set_limb(q, th, s.stance, 0.0)
        set_limb(q, sh, s.stance, 0.0)
    return q


def walk_pose(t: np.ndarray, s: RestStyle, hz: float, gait: float) -> np.ndarray:
    """``[T, NUM_DOF]``: a plain walk (legs and arms swing ``gait`` radians, ``hz`` steps/s).

    Used by wandering distractors; no action class looks like it (march lifts the knees 4x
    higher and stays in place).
    """
    q = rest_pose(t, s)
    c = np.sin(2 * np.pi * hz * t + s.phase)
    for side, ua, fa, th, sh in ((1, L_UARM, L_FARM, L_THIGH, L_SHIN),
                                 (-1, R_UARM, R_FARM, R_THIGH, R_SHIN)):
        set_limb(q, th, side * gait * c, 90 * DEG)
        set_limb(q, sh, side * gait * c - 0.5 * gait * (1 + side * c), 90 * DEG)
        set_limb(q, ua, -side * 0.6 * gait * c, 90 * DEG)
        set_limb(q, fa, -side * 0.6 * gait * c + s.elbow, 90 * DEG)
    return q


# ------------------------------------------------------------------------------- motions
@dataclass(frozen=True)
class MotionParams:
    """Per-instance variation of a motion."""

    speed: float = 1.0  # multiplies the class's base frequency
    amplitude: float = 1.0  # multiplies the joint excursions (circles and spins: unused)
    phase: float = 0.0  # radians of cycle already done at t = 0
    side: int = 1  # +1: the left limb leads (one-sided classes); -1: mirrored


Motion = Callable[[np.ndarray, MotionParams, np.ndarray], np.ndarray]


def _cycle(t: np.ndarray, p: MotionParams, hz: float) -> np.ndarray:
    """``[T]`` cycle phase in radians: ``2 pi * hz * speed * t + phase``."""
    return 2 * np.pi * hz * p.speed * t + p.phase


def _rise(theta: np.ndarray) -> np.ndarray:
    """0 -> 1 -> 0 once per cycle, 0 at ``theta = 0``."""
    return 0.5 - 0.5 * np.cos(theta)


def wave(t, p, rest):
    """One arm raised overhead, the forearm swinging side to side (2.0 Hz)."""
    q = rest.copy()
    th = _cycle(t, p, 2.0)
    a = p.amplitude
    set_limb(q, L_UARM, 130 * DEG + 12 * DEG * a * np.sin(th), 10 * DEG)
    set_limb(q, L_FARM, 170 * DEG + 50 * DEG * a * np.sin(th), 0.0)
    return q


def clap(t, p, rest):
    """Both arms forward, forearms swinging in until the hands meet (2.2 Hz)."""
    q = rest.copy()
    th = _cycle(t, p, 2.2)
    a = p.amplitude
    for ua, fa in ((L_UARM, L_FARM), (R_UARM, R_FARM)):
        set_limb(q, ua, 55 * DEG, 60 * DEG + 20 * DEG * a * np.cos(th))
        set_limb(q, fa, 85 * DEG, 100 * DEG + 55 * DEG * a * np.cos(th))
    return q


def _guard(q: np.ndarray, extend: np.ndarray, ua: int, fa: int) -> None:
    """Boxing guard (fist at the chin) blended toward a straight arm thrust forward."""
    e = np.clip(extend, 0.0, 1.0)
    set_limb(q, ua, (30 + 60 * e) * DEG, (-30 + 115 * e) * DEG)
    set_limb(q, fa, (140 - 50 * e) * DEG, (80 + 5 * e) * DEG)


def punch(t, p, rest):
    """Guard with both fists up; one arm thrusts straight forward and back (1.6 Hz)."""
    q = rest.copy()
    e = _rise(_cycle(t, p, 1.6)) ** 1.5 * p.amplitude
    _guard(q, e, L_UARM, L_FARM)
    _guard(q, np.zeros_like(t), R_UARM, R_FARM)
    return q


def boxing(t, p, rest):
    """Guard, alternating jabs with both arms, swaying sideways (1.8 Hz)."""
    q = rest.copy()
    th = _cycle(t, p, 1.8)
    _guard(q, np.maximum(np.sin(th), 0) ** 2 * p.amplitude, L_UARM, L_FARM)
    _guard(q, np.maximum(-np.sin(th), 0) ** 2 * p.amplitude, R_UARM, R_FARM)
    q[:, ROOT_X] += 0.03 * np.sin(th / 2)
    return q


def jumping_jack(t, p, rest):
    """Arms sweep from the sides to overhead while the legs spread, hopping (1.3 Hz)."""
    q = rest.copy()
    th = _cycle(t, p, 1.3)
    e = _rise(th) * p.amplitude
    for ua, fa, thigh, shin in ((L_UARM, L_FARM, L_THIGH, L_SHIN),
                                (R_UARM, R_FARM, R_THIGH, R_SHIN)):
        set_limb(q, ua, (12 + 150 * e) * DEG, 0.0)
        set_limb(q, fa, (22 + 150 * e) * DEG, 0.0)
        set_limb(q, thigh, (4 + 20 * e) * DEG, 0.0)
        set_limb(q, shin, (4 + 20 * e) * DEG, 0.0)
    q[:, ROOT_Y] = 0.04 * p.amplitude * np.abs(np.sin(th))
    return q


def squat(t, p, rest):
    """Knees bend until the thighs are level, arms rise forward, torso tilts (0.9 Hz)."""
    q = rest.copy()
    e = np.minimum(_rise(_cycle(t, p, 0.9)) * p.amplitude, 1.1)
    for ua, fa, thigh, shin in ((L_UARM, L_FARM, L_THIGH, L_SHIN),
                                (R_UARM, R_FARM, R_THIGH, R_SHIN)):
        set_limb(q, thigh, 85 * DEG * e, 80 * DEG)
        set_limb(q, shin, 25 * DEG * e, -90 * DEG)
        set_limb(q, ua, (10 + 70 * e) * DEG, 90 * DEG)
        set_limb(q, fa, (10 + 75 * e) * DEG, 90 * DEG)
    q[:, BOW] = 25 * DEG * e
    return q


def kick(t, p, rest):
    """One leg swings forward and up, the knee straightening at the top (1.1 Hz)."""
    q = rest.copy()
    e = _rise(_cycle(t, p, 1.1))
    lift = 80 * DEG * p.amplitude * e
    set_limb(q, L_THIGH, lift, 90 * DEG)
    set_limb(q, L_SHIN, lift * e ** 1.5, 90 * DEG)
    for ua in (L_UARM, R_UARM):
        set_limb(q, ua, (25 + 20 * e) * DEG, 0.0)
    q[:, BOW] = -10 * DEG * e
    return q


def jump(t, p, rest):
    """Vertical hops: crouch, take off with the arms swinging up, land (1.5 Hz)."""
    q = rest.copy()
    th = _cycle(t, p, 1.5)
    air, crouch = np.maximum(np.sin(th), 0), np.maximum(-np.sin(th), 0)
    q[:, ROOT_Y] = 0.13 * p.amplitude * air
    for ua, fa, thigh, shin in ((L_UARM, L_FARM, L_THIGH, L_SHIN),
                                (R_UARM, R_FARM, R_THIGH, R_SHIN)):
        set_limb(q, thigh, 45 * DEG * crouch, 90 * DEG)
        set_limb(q, shin, 35 * DEG * crouch, -90 * DEG)
        set_limb(q, ua, (15 + 70 * air) * DEG, 90 * DEG)
        set_limb(q, fa, (20 + 70 * air) * DEG, 90 * DEG)
    q[:, BOW] = 15 * DEG * crouch
    return q


def bow(t, p, rest):
    """The torso pitches forward from the hips and back up, arms hanging (0.9 Hz)."""
    q = rest.copy()
    q[:, BOW] = np.minimum(70 * DEG * p.amplitude * _rise(_cycle(t, p, 0.9)), 85 * DEG)
    return q


def arm_circles(t, p, rest):
    """Windmill: both straight arms circle in the body plane, half a turn apart (1.0 Hz)."""
    q = rest.copy()
    th = _cycle(t, p, 1.0)
    set_limb(q, L_UARM, th, 0.0)
    set_limb(q, L_FARM, th + 8 * DEG, 0.0)
    set_limb(q, R_UARM, th + np.pi, 0.0)
    set_limb(q, R_FARM, th + np.pi + 8 * DEG, 0.0)
    return q


def march(t, p, rest):
    """Marching in place: knees alternately up to hip height, arms swinging (1.4 Hz)."""
    q = rest.copy()
    th = _cycle(t, p, 1.4)
    a = p.amplitude
    set_limb(q, L_THIGH, 75 * DEG * a * np.maximum(np.sin(th), 0), 90 * DEG)
    set_limb(q, R_THIGH, 75 * DEG * a * np.maximum(-np.sin(th), 0), 90 * DEG)
    set_limb(q, L_SHIN, 0.0, 0.0)
    set_limb(q, R_SHIN, 0.0, 0.0)
    for side, ua, fa in ((1, L_UARM, L_FARM), (-1, R_UARM, R_FARM)):
        swing = -side * 30 * DEG * a * np.sin(th)
        set_limb(q, ua, swing, 90 * DEG)
        set_limb(q, fa, swing + 35 * DEG, 90 * DEG)
    return q


def side_step(t, p, rest):
    """Stepping sideways and back, the legs opening and closing with each step (0.7 Hz)."""
    q = rest.copy()
    th = _cycle(t, p, 0.7)
    q[:, ROOT_X] = 0.22 * p.amplitude * np.sin(th)
    spread = np.abs(np.cos(th))
    for ua, thigh, shin in ((L_UARM, L_THIGH, L_SHIN), (R_UARM, R_THIGH, R_SHIN)):
        set_limb(q, thigh, (3 + 16 * spread) * DEG, 0.0)
        set_limb(q, shin, (3 + 16 * spread) * DEG, 0.0)
        set_limb(q, ua, (15 + 15 * spread) * DEG, 0.0)
    return q


def reach_up(t, p, rest):
    """Both straight arms rise forward to overhead, up on the toes, and back (0.9 Hz)."""
    q = rest.copy()
    e = _rise(_cycle(t, p, 0.9))
    el = (10 + 160 * np.minimum(e * p.amplitude, 1.0)) * DEG
    for ua, fa in ((L_UARM, L_FARM), (R_UARM, R_FARM)):
        set_limb(q, ua, el, 90 * DEG)
        set_limb(q, fa, el + 5 * DEG, 90 * DEG)
    q[:, ROOT_Y] = 0.025 * e
    q[:, BOW] = -8 * DEG * e
    return q


def spin(t, p, rest):
    """Turning on the spot with the arms out to the sides (0.7 turns/s)."""
    q = rest.copy()
    q[:, YAW] = rest[:, YAW] + _cycle(t, p, 0.7) - p.phase
    for ua, fa in ((L_UARM, L_FARM), (R_UARM, R_FARM)):
        set_limb(q, ua, 80 * DEG, 0.0)
        set_limb(q, fa, 85 * DEG, 0.0)
    return q


def side_bend(t, p, rest):
    """Arms overhead, the torso bending to one side and the other (0.8 Hz)."""
    q = rest.copy()
    q[:, LEAN] = 28 * DEG * p.amplitude * np.sin(_cycle(t, p, 0.8))
    for ua, fa in ((L_UARM, L_FARM), (R_UARM, R_FARM)):
        set_limb(q, ua, 160 * DEG, 0.0)
        set_limb(q, fa, 170 * DEG, 0.0)
    return q


MOTIONS: dict[str, Motion] = {
    "wave": wave, "clap": clap, "punch": punch, "boxing": boxing,
    "jumping_jack": jumping_jack, "squat": squat, "kick": kick, "jump": jump, "bow": bow,
    "arm_circles": arm_circles, "march": march, "side_step": side_step, "reach_up": reach_up,
    "spin": spin, "side_bend": side_bend,
}


def action_pose(name: str, t: np.ndarray, p: MotionParams, rest: np.ndarray) -> np.ndarray:
    """``[T, NUM_DOF]`` pose of class ``name`` at ``t [T]`` seconds, mirrored when ``side < 0``."""
    motion = MOTIONS[name]
    if p.side < 0:
        return mirror_pose(motion(t, p, mirror_pose(rest)))
    return motion(t, p, rest)


def blend(rest: np.ndarray, action: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``rest + weight * (action - rest)`` per frame; angles take the short way round.

    ``rest, action [T, NUM_DOF]``, ``weight [T]`` in [0, 1].
    """
    diff = action - rest
    diff[:, FIRST_ANGLE_DOF:] = wrap_angle(diff[:, FIRST_ANGLE_DOF:])
    return rest + weight[:, None] * diff


# ----------------------------------------------------------------------------- kinematics
def limb_direction(el: np.ndarray, az: np.ndarray, side: float) -> np.ndarray:
    """``[T], [T] -> [T, 3]`` unit direction of a limb segment (see the module docstring)."""
    s = np.sin(el)
    return np.stack([side * s * np.cos(az), -np.cos(el), s * np.sin(az)], axis=-1)


def _rot_x(a: np.ndarray) -> np.ndarray:
    """``[T] -> [T, 3, 3]`` rotations about x; positive tips ``+y`` toward ``+z``."""
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([o, z, z, z, c, -s, z, s, c], axis=-1).reshape(-1, 3, 3)  # [T, 9] -> [T, 3, 3]


def _rot_z(a: np.ndarray) -> np.ndarray:
    """``[T] -> [T, 3, 3]`` rotations about z; positive tips ``+y`` toward ``-x``."""
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([c, -s, z, s, c, z, z, z, o], axis=-1).reshape(-1, 3, 3)  # [T, 9] -> [T, 3, 3]


def forward_kinematics(pose: np.ndarray, shape: BodyShape) -> np.ndarray:
    """``pose [T, NUM_DOF] -> joints [T, NUM_JOINTS, 3]`` in body heights.

    The lowest foot stands on ``y = 0`` (then ``root_y`` lifts the body) and the pelvis is at
    ``x = z = 0`` before ``root_x`` and the yaw, so ``x`` and ``-y`` map straight to image
    columns and rows once scaled by the actor's height in pixels.
    """
    n = len(pose)
    j = np.zeros((n, NUM_JOINTS, 3))
    torso = _rot_z(pose[:, LEAN]) @ _rot_x(pose[:, BOW])  # [T, 3, 3]
    up, lat = torso[:, :, 1], torso[:, :, 0]  # [T, 3] torso axes
    j[:, NECK] = shape.torso * up
    j[:, HEAD] = j[:, NECK] + shape.neck * up
    for side, sho, elb, hand, ua, fa in ((1, L_SHOULDER, L_ELBOW, L_HAND, L_UARM, L_FARM),
                                         (-1, R_SHOULDER, R_ELBOW, R_HAND, R_UARM, R_FARM)):
        d_ua = limb_direction(pose[:, EL[ua]], pose[:, AZ[ua]], side)
        d_fa = limb_direction(pose[:, EL[fa]], pose[:, AZ[fa]], side)
        j[:, sho] = j[:, NECK] + side * shape.shoulder * lat
        j[:, elb] = j[:, sho] + shape.upper_arm * np.einsum("tij,tj->ti", torso, d_ua)
        j[:, hand] = j[:, elb] + shape.forearm * np.einsum("tij,tj->ti", torso, d_fa)
    for side, hip, knee, foot, th, sh in ((1, L_HIP, L_KNEE, L_FOOT, L_THIGH, L_SHIN),
                                          (-1, R_HIP, R_KNEE, R_FOOT, R_THIGH, R_SHIN)):
        j[:, hip, 0] = side * shape.hip
        j[:, knee] = j[:, hip] + shape.thigh * limb_direction(pose[:, EL[th]], pose[:, AZ[th]],
                                                              side)
        j[:, foot] = j[:, knee] + shape.shin * limb_direction(pose[:, EL[sh]], pose[:, AZ[sh]],
                                                              side)
    j[:, :, 1] -= np.minimum(j[:, L_FOOT, 1], j[:, R_FOOT, 1])[:, None]  # stand on the ground
    j[:, :, 0] += pose[:, ROOT_X, None]
    j[:, :, 1] += pose[:, ROOT_Y, None]
    c, s = np.cos(pose[:, YAW])[:, None], np.sin(pose[:, YAW])[:, None]
    x, z = j[:, :, 0].copy(), j[:, :, 2].copy()
    j[:, :, 0] = c * x + s * z
    j[:, :, 2] = -s * x + c * z
    return j


# -------------------------------------------------------------------------------- drawing
SHIFT = 4  # OpenCV fixed-point bits: coordinates are drawn with 1/16 pixel precision
_ONE = 1 << SHIFT

# (first joint, second joint, colour slot, width attribute of BodyShape); "poly" = torso quad.
_LIMB_PARTS = (
    (L_SHOULDER, L_ELBOW, "shirt", "upper_arm_width"), (L_ELBOW, L_HAND, "sleeve", "forearm_width"),
    (R_SHOULDER, R_ELBOW, "shirt", "upper_arm_width"), (R_ELBOW, R_HAND, "sleeve", "forearm_width"),
    (L_HIP, L_KNEE, "pants", "thigh_width"), (L_KNEE, L_FOOT, "pants", "shin_width"),
    (R_HIP, R_KNEE, "pants", "thigh_width"), (R_KNEE, R_FOOT, "pants", "shin_width"),
)
_TORSO_QUAD = (L_SHOULDER, R_SHOULDER, R_HIP, L_HIP)


@dataclass(frozen=True)
class ActorSprite:
    """What :func:`draw_actor` needs besides the joint positions: pixel widths and colours."""

    widths: dict[str, int]  # BodyShape width attribute -> thickness in whole pixels (>= 1)
    head_radius: float  # pixels
    colors: dict[str, tuple[int, int, int]]  # "shirt", "sleeve", "pants", "skin"


def make_sprite(shape: BodyShape, look: Look, height_px: float) -> ActorSprite:
    names = {w for *_, w in _LIMB_PARTS} | {"torso_width"}
    widths = {w: max(1, round(getattr(shape, w) * height_px)) for w in sorted(names)}
    colors = {"shirt": look.shirt, "pants": look.pants, "skin": look.skin,
              "sleeve": look.shirt if look.long_sleeves else look.skin}
    return ActorSprite(widths, shape.head_radius * height_px, colors)


def draw_actor(img: np.ndarray, points: np.ndarray, depth: np.ndarray, sprite: ActorSprite,
               mask: np.ndarray | None = None) -> None:
    """Draw one actor in place, far parts first.

    ``img [H, W, 3]`` uint8; ``points [NUM_JOINTS, 2]`` pixel ``(x, y)`` of each joint (sub-pixel
    floats); ``depth [NUM_JOINTS]`` (larger = nearer). When ``mask [H, W]`` uint8 is given, the
    very same shapes are also drawn into it with value 255, so the mask holds exactly the
    pixels the actor covers (before anything nearer is drawn over it).
    """
    p = np.round(points * _ONE).astype(np.int32)  # [J, 2] fixed point
    pt = [tuple(xy) for xy in p.tolist()]
    col = sprite.colors
    parts = [(float(depth[[NECK, PELVIS]].mean()), 0, "torso")]
    parts += [(float(depth[[a, b]].mean()), 1 + k, "limb") for k, (a, b, *_)
              in enumerate(_LIMB_PARTS)]
    parts.sort(key=lambda x: (x[0], x[1]))
    targets = [(img, None)] if mask is None else [(img, None), (mask, 255)]
    for _, k, kind in parts:
        for canvas, value in targets:
            if kind == "torso":
                c = col["shirt"] if value is None else value
                cv2.fillPoly(canvas, [p[list(_TORSO_QUAD)]], c, cv2.LINE_8, SHIFT)
                cv2.line(canvas, pt[NECK], pt[PELVIS], c, sprite.widths["torso_width"],
                         cv2.LINE_8, SHIFT)
                cv2.circle(canvas, pt[HEAD], round(sprite.head_radius * _ONE),
                           col["skin"] if value is None else value, -1, cv2.LINE_8, SHIFT)
            else:
                a, b, slot, width = _LIMB_PARTS[k - 1]
                cv2.line(canvas, pt[a], pt[b], col[slot] if value is None else value,
                         sprite.widths[width], cv2.LINE_8, SHIFT)
