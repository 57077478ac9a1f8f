"""Scripted demonstrator of the stacking task: pick the green cube, place it on the red one, retreat.

The plan is a chain of segments, each moving the end effector (the TCP between the fingertips) from the end of
the previous one to a new pose along a minimum-jerk profile, with the gripper target held constant per segment.
With ``blend`` above 0, a move starts before the previous one has ended wherever the gripper target stays the
same (the displacements add up), so the arm passes its waypoints without stopping. It still comes to rest where
the gripper closes and opens. (Made to test whether a re-querying policy hovers where the expert stops; it did not
change the trained policy's success: docs/results.md.) With ``grasp_dwell_s`` above 0 the expert holds still at the
grasp pose with the gripper open for that long (times the episode's tempo) before it closes, so the close follows
the hand's arrival instead of coinciding with it.
The gripper points down throughout; its yaw turns to the green cube's faces for the grasp and to the red cube's
for the placement. Heights, speeds and small waypoint offsets are drawn from the episode's random generator so
demonstrations differ while staying consistent. Poses are ``[x, y, z, qw, qx, qy, qz]`` in the world frame.
"""

import itertools
from dataclasses import dataclass

import numpy as np

from positronic import geom
from positronic.sim.world import CUBE_HALF_HEIGHT, World, gripper_down_quat

OPEN, CLOSED = 0.0, 1.0
MAX_BLEND = 0.5
"""Largest ``blend``: at most two moves are under way at any time."""
MAX_GRASP_DWELL_S = 2.0
"""Longest ``grasp_dwell_s``: an episode must still end well inside an evaluation's 15 s."""
IDENTITY_QUAT = np.array([1.0, 0.0, 0.0, 0.0])
REOPEN_S = 0.4
"""How long a re-grasping expert holds still while its gripper opens (the fingers open fully in about 0.3 s)."""


@dataclass(frozen=True)
class ExpertRanges:
    """Ranges (uniform) of the per-episode randomization; lengths in metres, times in seconds."""

    approach_height: tuple[float, float] = (0.07, 0.11)
    """TCP height above the green cube's centre before descending to grasp."""
    grasp_offset: tuple[float, float] = (-0.002, 0.003)
    """TCP height relative to the green cube's centre when the gripper closes."""
    carry_height: tuple[float, float] = (0.09, 0.13)
    """TCP height above the table-resting cube centre while carrying."""
    place_clearance: tuple[float, float] = (0.002, 0.005)
    """Gap between the green cube's bottom and the red cube's top at release."""
    retreat_height: tuple[float, float] = (0.17, 0.22)
    """TCP rise after release."""
    waypoint_jitter: float = 0.008
    """Largest horizontal offset of the approach and carry waypoints from the cube centres."""
    travel_speed: tuple[float, float] = (0.18, 0.26)
    """Mean TCP speed of the long moves (m/s); minimum-jerk peaks at 1.875x this."""
    tempo: tuple[float, float] = (0.9, 1.15)
    """Factor on the durations of the short moves and the waits."""


@dataclass(frozen=True)
class Segment:
    """One move: from the previous segment's end pose to ``pose`` in ``duration_s`` with gripper target ``grip``."""

    pose: np.ndarray
    duration_s: float
    grip: float
    rest: bool = False
    """Whether the expert holds still here before a gripper event (the grasp dwell)."""


def _number_up_to(value: object, largest: float) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0.0 <= value <= largest


def valid_blend(value: object) -> bool:
    """Whether ``value`` is a number (not a bool) a ``StackingExpert`` accepts as ``blend``: 0 to ``MAX_BLEND``."""
    return _number_up_to(value, MAX_BLEND)


def valid_grasp_dwell(value: object) -> bool:
    """Whether ``value`` is a number (not a bool) a ``StackingExpert`` accepts as ``grasp_dwell_s``."""
    return _number_up_to(value, MAX_GRASP_DWELL_S)


def min_jerk(s: float) -> float:
    """Minimum-jerk progress ``10 s^3 - 15 s^4 + 6 s^5`` of a normalized time ``s`` in [0, 1]."""
    s = min(max(s, 0.0), 1.0)
    return s * s * s * (10.0 + s * (-15.0 + 6.0 * s))


def slerp(a: np.ndarray, b: np.ndarray, s: float) -> np.ndarray:
    """Spherical interpolation of unit quaternions ``[w, x, y, z]`` along the short arc, result in a's hemisphere."""
    dot = float(np.dot(a, b))
    if dot < 0:
        b, dot = -b, -dot
    if dot > 0.9995:
        q = a + s * (b - a)
        return q / np.linalg.norm(q)
    theta = np.arccos(dot)
    return (np.sin((1 - s) * theta) * a + np.sin(s * theta) * b) / np.sin(theta)


def grasp_yaw(cube_quat: np.ndarray) -> float:
    """Gripper yaw (rad, in [-pi/4, pi/4)) that puts the fingers on two faces of a cube with this orientation."""
    w, _, _, z = cube_quat
    yaw = 2.0 * np.arctan2(z, w)
    return float((yaw + np.pi / 4) % (np.pi / 2) - np.pi / 4)


class StackingExpert:
    """Scripted demonstrator planned from the true cube poses at the start of an episode.

    Args:
        red_pose, green_pose: cube centre pose7 at the start.
        start_pose: end-effector pose7 at the start.
        rng: source of the per-episode randomization.
        ranges: randomization ranges.
        blend: fraction (0 to 0.5) of the shorter of two consecutive moves with the same gripper target that they
            overlap; 0 stops at every waypoint.
        grasp_dwell_s: how long (s, 0 to ``MAX_GRASP_DWELL_S``, times the episode's tempo) the expert holds still at
            the grasp pose with the gripper open before closing; 0 closes on arrival.
        regrasp: plan for a gripper that closed on nothing near the green cube: open where it is (``REOPEN_S``),
            then move straight to the grasp pose, without the approach point above the cube; the rest as usual.
    """

    def __init__(
        self,
        red_pose: np.ndarray,
        green_pose: np.ndarray,
        start_pose: np.ndarray,
        rng: np.random.Generator,
        ranges: ExpertRanges = ExpertRanges(),
        blend: float = 0.0,
        regrasp: bool = False,
        grasp_dwell_s: float = 0.0,
    ):
        if not valid_blend(blend):
            raise ValueError(f'blend must be between 0 and {MAX_BLEND}, got {blend!r}')
        if not valid_grasp_dwell(grasp_dwell_s):
            raise ValueError(f'grasp_dwell_s must be between 0 and {MAX_GRASP_DWELL_S} s, got {grasp_dwell_s!r}')
        start_pose = np.asarray(start_pose, dtype=np.float64)
        self.start_pose = np.concatenate(
            [start_pose[:3], geom.canonical_quaternions(start_pose[3:] / np.linalg.norm(start_pose[3:]))]
        )
        red, green = np.asarray(red_pose, float), np.asarray(green_pose, float)
        self.segments = _plan(red, green, self.start_pose, rng, ranges, regrasp, float(grasp_dwell_s))
        self._starts = _start_times(self.segments, blend)
        self._ends = self._starts + np.array([seg.duration_s for seg in self.segments])

    @classmethod
    def for_world(
        cls,
        world: World,
        rng: np.random.Generator,
        blend: float = 0.0,
        regrasp: bool = False,
        grasp_dwell_s: float = 0.0,
    ) -> 'StackingExpert':
        """An expert for the world's current cube poses and end-effector pose."""
        cubes = world.cube_poses()
        return cls(
            cubes['red'],
            cubes['green'],
            world.ee_pose(),
            rng,
            blend=blend,
            regrasp=regrasp,
            grasp_dwell_s=grasp_dwell_s,
        )

    @property
    def duration_s(self) -> float:
        """Time (s) after which the expert has finished: released the cube, retreated and paused."""
        return float(self._ends[-1])

    @property
    def grip_changes_s(self) -> list[float]:
        """Times (s) at which the gripper target changes: the grasp and the release."""
        grips = [seg.grip for seg in self.segments]
        return [float(self._starts[i]) for i in range(1, len(grips)) if grips[i] != grips[i - 1]]

    @property
    def on_pose_s(self) -> list[float]:
        """Times (s) at which the hand must be on its planned pose: the arrival at the grasp pose where the expert
        rests there first (``grasp_dwell_s``), the grasp and the release."""
        rest = [float(self._starts[i]) for i in range(1, len(self.segments)) if self.segments[i].rest]
        return sorted(rest + self.grip_changes_s)

    def command(self, t_s: float) -> tuple[np.ndarray, float]:
        """``(pose7, target_grip)`` at ``t_s`` seconds since the expert started; the final pose is held after."""
        done = int(np.searchsorted(self._ends, t_s, side='right'))
        if done >= len(self.segments):
            last = self.segments[-1]
            return last.pose.copy(), last.grip
        started = int(np.searchsorted(self._starts, t_s, side='right'))
        base = self.segments[done - 1].pose if done > 0 else self.start_pose
        pos, quat = base[:3].copy(), base[3:]
        for i in range(done, started):
            seg, begin = self.segments[i], self.segments[i - 1].pose if i > 0 else self.start_pose
            # from its end, like the plan without blend, so a recording without blend is the same to the bit
            s = min_jerk((t_s - (self._ends[i] - seg.duration_s)) / seg.duration_s)
            pos += s * (seg.pose[:3] - begin[:3])
            if i == done:
                quat = slerp(begin[3:], seg.pose[3:], s)
            else:  # an overlapping move turns on from where the earlier one has got to
                turn = geom.quat_multiply(geom.quat_conjugate(begin[3:]), seg.pose[3:])
                quat = geom.quat_multiply(quat, slerp(IDENTITY_QUAT, turn, s))
        return np.concatenate([pos, quat]), self.segments[started - 1].grip


def _start_times(segments: list[Segment], blend: float) -> np.ndarray:
    """When each segment starts: as the previous one ends, or earlier by ``blend`` of the shorter of the two where
    the gripper target stays the same (a rest never starts before the move into it has ended)."""
    starts = [0.0]
    for prev, seg in itertools.pairwise(segments):
        overlap = blend * min(prev.duration_s, seg.duration_s) if seg.grip == prev.grip and not seg.rest else 0.0
        starts.append(starts[-1] + prev.duration_s - overlap)
    return np.array(starts)


def _plan(
    red: np.ndarray,
    green: np.ndarray,
    start: np.ndarray,
    rng: np.random.Generator,
    r: ExpertRanges,
    regrasp: bool,
    grasp_dwell_s: float = 0.0,
) -> list[Segment]:
    def u(bounds: tuple[float, float]) -> float:
        return float(rng.uniform(*bounds))

    def jitter() -> np.ndarray:
        return np.append(rng.uniform(-r.waypoint_jitter, r.waypoint_jitter, size=2), 0.0)

    tempo = u(r.tempo)
    speed = u(r.travel_speed)

    def travel(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.clip(np.linalg.norm(b[:3] - a[:3]) / speed, 1.0, 3.0))

    def pose(pos: np.ndarray, yaw: float) -> np.ndarray:
        return np.concatenate([pos, gripper_down_quat(yaw)])

    def up(p: np.ndarray, dz: float) -> np.ndarray:
        return p[:3] + np.array([0.0, 0.0, dz])

    green_yaw, red_yaw = grasp_yaw(green[3:]), grasp_yaw(red[3:])
    grasp = up(green, u(r.grasp_offset))
    above_green = pose(up(green, u(r.approach_height)) + jitter(), green_yaw)
    lifted = pose(up(grasp, u(r.carry_height)), green_yaw)
    place_z = red[2] + 2 * CUBE_HALF_HEIGHT + u(r.place_clearance) + (grasp[2] - green[2])
    carry_z = max(lifted[2], place_z + 0.06)
    above_red = pose(np.array([red[0], red[1], carry_z]) + jitter(), red_yaw)
    place = pose(np.array([red[0], red[1], place_z]), red_yaw)
    retreat = pose(up(place, u(r.retreat_height)), red_yaw)

    approach = (
        Segment(start.copy(), REOPEN_S, OPEN) if regrasp else Segment(above_green, travel(start, above_green), OPEN)
    )
    descend = Segment(pose(grasp, green_yaw), tempo * u((0.9, 1.2)), OPEN)
    # no draw from rng for the dwell: a plan without one is the same to the bit as before it existed
    dwell = [Segment(descend.pose, tempo * grasp_dwell_s, OPEN, rest=True)] if grasp_dwell_s > 0 else []
    return [
        approach,
        descend,
        *dwell,
        Segment(pose(grasp, green_yaw), tempo * u((0.5, 0.7)), CLOSED),
        Segment(lifted, tempo * u((0.8, 1.0)), CLOSED),
        Segment(above_red, travel(lifted, above_red), CLOSED),
        Segment(place, tempo * u((1.0, 1.3)), CLOSED),
        Segment(place, tempo * u((0.4, 0.6)), OPEN),
        Segment(retreat, tempo * u((0.9, 1.2)), OPEN),
        Segment(retreat, 0.3, OPEN),
    ]
