"""``positronic-data-collection``: record demonstrations into a raw dataset.

    positronic-data-collection sim --output_dir=~/datasets/stack_cubes_raw --num_episodes=50 --seed=0 \\
        [--keep_failed=False] [--show_gui=False] [--fps=30] [--camera_size=[320,240]] [--command_noise_m=0.02] \\
        [--command_noise_time_s=0.5] [--command_noise_fade_s=1.0] [--expert_blend=0.0] [--grasp_miss_rate=0.0] \\
        [--grasp_dwell_s=0.0]

``sim`` runs the scripted :class:`~positronic.sim.StackingExpert` in the simulated world; episode ``i`` uses
seed ``seed + i`` for both the cube placement and the expert's randomization. Every tick (``1 / fps`` of sim
time) records the observation and the command issued after seeing it, both at the sim time of the
observation, then steps the world. With ``--command_noise_m`` the robot executes the command moved by a smooth
random offset while the recorded command stays the expert's (see :mod:`positronic.sim.command_noise`).
With ``--expert_blend`` the expert starts each move before the previous one has ended wherever the gripper stays
as it is, so it passes its waypoints without stopping, and with ``--grasp_dwell_s`` it holds still at the grasp
pose, open, before closing (see :mod:`positronic.sim.expert`). With
``--grasp_miss_rate`` some episodes close the executed gripper early, and the expert grasps again after each
miss (see :mod:`positronic.sim.grasp_misses`).
Episodes whose final stacking score is below 1 are discarded unless ``--keep_failed=True``. An existing output
directory is appended to. Ctrl+C keeps the finished episodes and discards the interrupted one.

    positronic-data-collection discard_unfinished --output_dir=~/datasets/stack_cubes_raw

deletes the episodes a killed recorder left marked ``.unfinished`` (readers skip them; a recording in progress is
kept).
"""

import math
import queue
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import configuronic as cfn
import numpy as np
from tqdm import tqdm

from positronic import keys
from positronic.command import DataError, UsageError, run_command
from positronic.dataset import LocalDatasetWriter
from positronic.dataset.episode_writer import EpisodeWriter
from positronic.dataset.local import discard_unfinished as discard_interrupted_episodes
from positronic.sim import StackingExpert, UnreachablePoseError, World
from positronic.sim.command_noise import CommandNoise
from positronic.sim.expert import CLOSED, MAX_BLEND, MAX_GRASP_DWELL_S, valid_blend, valid_grasp_dwell
from positronic.sim.grasp_misses import MAX_REPLANS, GraspMisses, missed, replan_rng

PROG = 'positronic-data-collection'
STATIC_SEED = 'simulation.seed'
"""Static item: the seed of the episode's cube placement and expert randomization (int)."""
STATIC_SUCCESS = 'simulation.stacking_success'
"""Static item: the stacking score in [0, 1] at the end of the episode (float)."""
STATIC_NOISE = 'simulation.command_noise_m'
"""Static item: the standard deviation (m) of the offset added to the executed position (float, 0 = none)."""
STATIC_NOISE_TIME = 'simulation.command_noise_time_s'
"""Static item: how long (s) that offset takes to forget its value, the noise's time constant (float)."""
STATIC_NOISE_FADE = 'simulation.command_noise_fade_s'
"""Static item: how long (s) around the grasp and the release that offset fades to zero (float, 0 = no fade)."""
STATIC_DWELL = 'simulation.grasp_dwell_s'
"""Static item: how long (s, times the episode's tempo) the expert held still at the grasp pose before closing."""
STATIC_BLEND = 'simulation.expert_blend'
"""Static item: the expert's move overlap, ``StackingExpert``'s ``blend`` (float, 0 = it stops at every waypoint)."""
STATIC_MISS_RATE = 'simulation.grasp_miss_rate'
"""Static item (only with ``--grasp_miss_rate``): the share of episodes whose executed gripper closes early."""
STATIC_EARLY_CLOSE = 'simulation.early_close'
"""Static item (only with ``--grasp_miss_rate``): whether this episode's executed gripper closed early (bool)."""
STATIC_REPLANS = 'simulation.replans'
"""Static item (only with ``--grasp_miss_rate``): how often the expert planned anew after a missed grasp (int)."""
SUCCESS_SCORE = 1.0
"""Final stacking score an episode must reach to count as a successful demonstration."""
SETTLE_S = 0.5
"""Sim time recorded after the expert finished, so the score is judged on a resting stack."""
NO_NOISE = CommandNoise()
NO_MISSES = GraspMisses()
_QUEUE_TICKS = 64
"""Ticks the simulation may run ahead of the writer thread."""


def _checked_output_dir(output_dir: str | Path) -> Path:
    """``output_dir`` with ``~`` expanded, made absolute, created if missing and proven writable."""
    root = Path(str(output_dir)).expanduser().absolute()
    if root.exists() and not root.is_dir():
        raise DataError(f'--output_dir={root} is a file; expected a dataset directory (new or existing)')
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=root):
            pass
    except OSError as error:
        raise DataError(f'--output_dir={root} is not a writable directory: {error.strerror or error}') from error
    return root


def _checked_args(
    num_episodes: Any, fps: Any, camera_size: Any, seed: Any, flags: dict[str, Any]
) -> tuple[int, int, tuple[int, int]]:
    for name, value in flags.items():
        if not isinstance(value, bool):
            raise UsageError(f'--{name} must be True or False, got {value!r}')
    if isinstance(num_episodes, bool) or not isinstance(num_episodes, int) or num_episodes <= 0:
        raise UsageError(f'--num_episodes must be a positive integer, got {num_episodes!r}')
    if isinstance(fps, bool) or not isinstance(fps, int) or fps <= 0:
        raise UsageError(f'--fps must be a positive integer (frames per second), got {fps!r}')
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise UsageError(f'--seed must be a non-negative integer, got {seed!r}')
    return num_episodes, fps, checked_camera_size(camera_size)


def checked_camera_size(camera_size: Any) -> tuple[int, int]:
    """``(width, height)`` of ``--camera_size``; UsageError unless it is two even positive integers."""
    size = tuple(camera_size) if isinstance(camera_size, list | tuple) else ()
    if len(size) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 and v % 2 == 0 for v in size):
        raise UsageError(f'--camera_size must be [width,height] with even positive integers, got {camera_size!r}')
    return size


class _BackgroundAppender:
    """Appends records to one episode writer in a thread, so video encoding overlaps the simulation."""

    def __init__(self, writer: EpisodeWriter):
        self._writer = writer
        self._queue: queue.Queue = queue.Queue(maxsize=_QUEUE_TICKS)
        self._error: BaseException | None = None
        self._cancelled = False
        self._thread = threading.Thread(target=self._run, name='episode-appender', daemon=True)
        self._thread.start()

    def append(self, records: list[tuple[str, Any]], ts_ns: int) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put((records, ts_ns))

    def join(self) -> None:
        """Wait for every queued record to be written; re-raises a writer error."""
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error

    def cancel(self) -> None:
        """Drop the queued records and wait until the thread no longer touches the episode."""
        self._cancelled = True
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is None and not self._cancelled:
                records, ts_ns = item
                try:
                    for name, value in records:
                        self._writer.append(name, value, ts_ns)
                except BaseException as error:  # surfaced to the simulation thread
                    self._error = error


def record_episode(
    world: World,
    writer: EpisodeWriter,
    seed: int,
    fps: int,
    noise: CommandNoise = NO_NOISE,
    blend: float = 0.0,
    misses: GraspMisses = NO_MISSES,
    grasp_dwell_s: float = 0.0,
) -> float:
    """Reset ``world`` with ``seed``, run the expert (with move overlap ``blend`` and ``grasp_dwell_s`` at the
    grasp pose before closing) to completion while recording into ``writer``.

    The robot executes the expert's command plus ``noise``'s offset, and with ``misses`` the gripper closed early
    in some episodes; the recorded command is the expert's. With ``misses`` enabled, a grasp that closed on nothing
    makes the expert plan anew from the current state (at most ``MAX_REPLANS`` times; the noise is off from then
    on). Returns the final stacking score. The statics (task, seed, score, re-plans) are set; finalizing is the
    caller's.
    """
    world.reset(seed)
    expert = StackingExpert.for_world(world, np.random.default_rng(seed), blend=blend, grasp_dwell_s=grasp_dwell_s)
    ticks = math.ceil((expert.duration_s + SETTLE_S) * fps)
    offsets = noise.offsets(seed, ticks, 1 / fps, quiet_at_s=expert.on_pose_s)
    planned_close_s = expert.grip_changes_s[0]
    early_close_s = misses.early_close_s(seed, planned_close_s)
    closes_early = early_close_s is not None
    plan_start, replans, executed_grip = 0, 0, 0.0
    appender = _BackgroundAppender(writer)
    reached_end = True
    try:
        tick = 0
        while tick < ticks:
            if misses.enabled and replans < MAX_REPLANS and missed(executed_grip, world.grip()):
                replans += 1
                expert = StackingExpert.for_world(
                    world, replan_rng(seed, replans), blend=blend, regrasp=True, grasp_dwell_s=grasp_dwell_s
                )
                plan_start, early_close_s = tick, None
                ticks = tick + math.ceil((expert.duration_s + SETTLE_S) * fps)
                offsets = np.zeros((ticks, 3))
            pose, grip = expert.command((tick - plan_start) / fps)
            executed_grip = grip
            if early_close_s is not None and early_close_s <= tick / fps < planned_close_s:
                executed_grip = CLOSED
            state = world.robot_state()
            records = [
                (keys.ROBOT_Q, state[keys.ROBOT_Q]),
                (keys.ROBOT_DQ, state[keys.ROBOT_DQ]),
                (keys.ROBOT_EE_POSE, state[keys.ROBOT_EE_POSE]),
                (keys.GRIP, state[keys.GRIP]),
                (keys.COMMAND_POSE, pose),
                (keys.TARGET_GRIP, float(grip)),
                *world.render().items(),
            ]
            appender.append(records, world.time_ns)
            if not _execute(world, pose, offsets[tick], executed_grip):
                reached_end = False
                break
            world.step(1 / fps)
            tick += 1
    except BaseException:
        appender.cancel()
        raise
    appender.join()
    score = world.stacking_success() if reached_end else 0.0
    writer.set_static(keys.TASK, keys.STACK_CUBES_TASK)
    writer.set_static(STATIC_SEED, seed)
    writer.set_static(STATIC_SUCCESS, score)
    writer.set_static(STATIC_NOISE, noise.std_m)
    writer.set_static(STATIC_NOISE_TIME, noise.time_constant_s)
    writer.set_static(STATIC_NOISE_FADE, noise.fade_s)
    writer.set_static(STATIC_BLEND, blend)
    if grasp_dwell_s:
        writer.set_static(STATIC_DWELL, grasp_dwell_s)
    if misses.enabled:
        writer.set_static(STATIC_MISS_RATE, misses.rate)
        writer.set_static(STATIC_EARLY_CLOSE, closes_early)
        writer.set_static(STATIC_REPLANS, replans)
    return score


def _execute(world: World, pose: np.ndarray, offset: np.ndarray, grip: float) -> bool:
    """Command ``pose`` moved by ``offset``, or the clean pose where the moved one is out of the arm's reach.

    False when a perturbed episode left the arm where the clean pose is unreachable too (the episode has failed).
    """
    if not offset.any():
        world.command(pose, grip)
        return True
    for target in (np.concatenate([pose[:3] + offset, pose[3:]]), pose):
        try:
            world.command(target, grip)
            return True
        except UnreachablePoseError:
            continue
    return False


@cfn.config(
    num_episodes=50,
    seed=0,
    keep_failed=False,
    show_gui=False,
    fps=30,
    camera_size=[320, 240],
    command_noise_m=0.0,
    command_noise_time_s=0.5,
    command_noise_fade_s=1.0,
    expert_blend=0.0,
    grasp_miss_rate=0.0,
    grasp_dwell_s=0.0,
)
def sim(
    output_dir: str,
    num_episodes: int = 50,
    seed: int = 0,
    keep_failed: bool = False,
    show_gui: bool = False,
    fps: int = 30,
    camera_size: Sequence[int] = (320, 240),
    command_noise_m: float = 0.0,
    command_noise_time_s: float = 0.5,
    command_noise_fade_s: float = 1.0,
    expert_blend: float = 0.0,
    grasp_miss_rate: float = 0.0,
    grasp_dwell_s: float = 0.0,
) -> None:
    """Record scripted stacking demonstrations in the MuJoCo simulator into the raw dataset at --output_dir.

    --num_episodes: episodes to attempt (episode i uses seed --seed + i); --keep_failed: also keep episodes whose
    final stacking score is below 1; --show_gui: watch in a window (needs a display); --fps: recording rate;
    --camera_size: [width,height] of both cameras. An existing --output_dir is appended to.
    --command_noise_m: standard deviation (m) of a smooth random offset added to the position the robot executes
    but not to the recorded command (0 = none; 0.02 in docs/results.md), so the demonstrations show how to get
    back onto the path; it fades to zero around the grasp and the release and stays zero after the release.
    --command_noise_time_s: how long (s) the offset takes to forget its value. --command_noise_fade_s: how long
    (s) before and after the grasp and the release the offset fades to zero over (0: no fade, noise up to the
    release; episodes whose grasp the noise spoils are then discarded like any failed one).
    --expert_blend: how much (0 to 0.5 of the shorter move) the expert overlaps consecutive moves that keep the
    gripper as it is, so the arm passes its waypoints without stopping and comes to rest only where the gripper
    closes and opens (0 = it stops at every waypoint). What 0.5 did for a trained policy: docs/results.md.
    --grasp_miss_rate: share (0 to 1) of the episodes whose executed gripper closes 0.2-0.5 s before the expert's
    grasp while the recorded command stays the expert's; whenever the fingers close on nothing, the expert opens
    and grasps again from where it is, so the demonstrations show how to get a missed grasp back (0 = none, and
    no re-planning either; see positronic/sim/grasp_misses.py). 0.3 made the trained policy much worse (11/50
    against 36/50): docs/results.md.
    --grasp_dwell_s: how long (s, 0 to 2, times the episode's tempo factor of 0.9-1.15) the expert holds still at
    the grasp pose with the gripper open before it closes (0 = it closes as the hand arrives). A policy whose
    ensembled commands do not quite reach the bottom of the descent closes above the cube; with a dwell the close
    comes after the hand has settled. What it did for a trained policy: docs/results.md.
    """
    flags = {'keep_failed': keep_failed, 'show_gui': show_gui}
    num_episodes, fps, size = _checked_args(num_episodes, fps, camera_size, seed, flags)
    noise = checked_noise(command_noise_m, command_noise_time_s, command_noise_fade_s)
    blend = checked_blend(expert_blend)
    misses = checked_misses(grasp_miss_rate)
    dwell = checked_grasp_dwell(grasp_dwell_s)
    root = _checked_output_dir(output_dir)
    dataset = LocalDatasetWriter(root)
    kept = succeeded = attempted = 0
    start = time.perf_counter()
    world = World(seed=seed, camera_size=size, show_gui=show_gui)
    try:
        with tqdm(total=num_episodes, unit='episode', desc=f'sim -> {root.name}', dynamic_ncols=True) as bar:
            for i in range(num_episodes):
                with dataset.new_episode() as episode:
                    score = record_episode(world, episode, seed + i, fps, noise, blend, misses, dwell)
                    attempted += 1
                    ok = score >= SUCCESS_SCORE
                    succeeded += ok
                    if ok or keep_failed:
                        kept += 1
                    else:
                        episode.abort()
                bar.set_postfix_str(f'{succeeded}/{attempted} succeeded')
                bar.update(1)
    except KeyboardInterrupt:
        print(f'interrupted: the unfinished episode was discarded; {_summary(root, attempted, succeeded, kept)}')
        sys.exit(130)
    finally:
        world.close()
    print(f'{_summary(root, attempted, succeeded, kept)} in {time.perf_counter() - start:.0f} s')


def checked_noise(std_m: Any, time_s: Any, fade_s: Any) -> CommandNoise:
    """The ``--command_noise_m/_time_s/_fade_s`` flags as a ``CommandNoise``; UsageError naming the first bad one."""
    for name, value in (('command_noise_m', std_m), ('command_noise_time_s', time_s), ('command_noise_fade_s', fade_s)):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise UsageError(f'--{name} must be a number, got {value!r}')
    if not 0 <= std_m <= 0.05:
        raise UsageError(f'--command_noise_m must be in [0, 0.05] metres, got {std_m!r}')
    if not time_s > 0:
        raise UsageError(f'--command_noise_time_s must be > 0 seconds, got {time_s!r}')
    if not (math.isfinite(fade_s) and fade_s >= 0):
        raise UsageError(f'--command_noise_fade_s must be >= 0 seconds, got {fade_s!r}')
    return CommandNoise(float(std_m), float(time_s), float(fade_s))


def checked_misses(rate: Any) -> GraspMisses:
    """``--grasp_miss_rate`` as ``GraspMisses``; UsageError unless it is a number in [0, 1]."""
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
        raise UsageError(f'--grasp_miss_rate must be a number in [0, 1] (a share of the episodes), got {rate!r}')
    return GraspMisses(float(rate))


def checked_blend(blend: Any) -> float:
    """``--expert_blend`` as a float; UsageError unless it is a number in [0, ``MAX_BLEND``]."""
    if not valid_blend(blend):
        raise UsageError(f'--expert_blend must be a number in [0, {MAX_BLEND}], got {blend!r}')
    return float(blend)


def checked_grasp_dwell(dwell: Any) -> float:
    """``--grasp_dwell_s`` as a float; UsageError unless it is a number of seconds in [0, ``MAX_GRASP_DWELL_S``]."""
    if not valid_grasp_dwell(dwell):
        raise UsageError(f'--grasp_dwell_s must be a number of seconds in [0, {MAX_GRASP_DWELL_S}], got {dwell!r}')
    return float(dwell)


def _summary(root: Path, attempted: int, succeeded: int, kept: int) -> str:
    return f'{succeeded}/{attempted} demonstrations succeeded; kept {kept} episodes in {root}'


@cfn.config()
def discard_unfinished(output_dir: str) -> None:
    """Delete the episodes of the raw dataset at --output_dir whose recording was interrupted (still marked
    .unfinished with no live recorder; readers skip them). A recording in progress is kept."""
    root = Path(str(output_dir)).expanduser().absolute()
    if not root.is_dir():
        raise UsageError(f'--output_dir={root} is not a raw dataset directory')
    removed = discard_interrupted_episodes(root)
    for path in removed:
        print(f'deleted {path}')
    print(f'{root}: deleted {len(removed)} interrupted episode(s)')


COMMANDS = {'sim': sim, 'discard_unfinished': discard_unfinished}


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``positronic-data-collection``; ``argv`` replaces the command line (for tests)."""
    run_command(PROG, COMMANDS, argv)


if __name__ == '__main__':
    main()
