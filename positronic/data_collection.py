"""``positronic-data-collection``: record demonstrations into a raw dataset.

    positronic-data-collection sim --output_dir=~/datasets/stack_cubes_raw --num_episodes=50 --seed=0 \\
        [--keep_failed=False] [--show_gui=False] [--fps=30] [--camera_size=[320,240]]

``sim`` runs the scripted :class:`~positronic.sim.StackingExpert` in the simulated world; episode ``i`` uses
seed ``seed + i`` for both the cube placement and the expert's randomization. Every tick (``1 / fps`` of sim
time) records the observation and the command issued after seeing it, both at the sim time of the
observation, then steps the world. Episodes whose final stacking score is below 1 are discarded unless
``--keep_failed=True``. An existing output directory is appended to. Ctrl+C keeps the finished episodes and
discards the interrupted one.

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
from positronic.sim import StackingExpert, World

PROG = 'positronic-data-collection'
STATIC_SEED = 'simulation.seed'
"""Static item: the seed of the episode's cube placement and expert randomization (int)."""
STATIC_SUCCESS = 'simulation.stacking_success'
"""Static item: the stacking score in [0, 1] at the end of the episode (float)."""
SUCCESS_SCORE = 1.0
"""Final stacking score an episode must reach to count as a successful demonstration."""
SETTLE_S = 0.5
"""Sim time recorded after the expert finished, so the score is judged on a resting stack."""
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
    size = tuple(camera_size) if isinstance(camera_size, list | tuple) else ()
    if len(size) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 and v % 2 == 0 for v in size):
        raise UsageError(f'--camera_size must be [width,height] with even positive integers, got {camera_size!r}')
    return num_episodes, fps, size


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


def record_episode(world: World, writer: EpisodeWriter, seed: int, fps: int) -> float:
    """Reset ``world`` with ``seed``, run the expert to completion while recording into ``writer``.

    Returns the final stacking score. The statics (task, seed, score) are set; finalizing is the caller's.
    """
    world.reset(seed)
    expert = StackingExpert.for_world(world, np.random.default_rng(seed))
    appender = _BackgroundAppender(writer)
    try:
        for tick in range(math.ceil((expert.duration_s + SETTLE_S) * fps)):
            pose, grip = expert.command(tick / fps)
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
            world.command(pose, grip)
            world.step(1 / fps)
    except BaseException:
        appender.cancel()
        raise
    appender.join()
    score = world.stacking_success()
    writer.set_static(keys.TASK, keys.STACK_CUBES_TASK)
    writer.set_static(STATIC_SEED, seed)
    writer.set_static(STATIC_SUCCESS, score)
    return score


@cfn.config(num_episodes=50, seed=0, keep_failed=False, show_gui=False, fps=30, camera_size=[320, 240])
def sim(
    output_dir: str,
    num_episodes: int = 50,
    seed: int = 0,
    keep_failed: bool = False,
    show_gui: bool = False,
    fps: int = 30,
    camera_size: Sequence[int] = (320, 240),
) -> None:
    """Record scripted stacking demonstrations in the MuJoCo simulator into the raw dataset at --output_dir.

    --num_episodes: episodes to attempt (episode i uses seed --seed + i); --keep_failed: also keep episodes whose
    final stacking score is below 1; --show_gui: watch in a window (needs a display); --fps: recording rate;
    --camera_size: [width,height] of both cameras. An existing --output_dir is appended to.
    """
    flags = {'keep_failed': keep_failed, 'show_gui': show_gui}
    num_episodes, fps, size = _checked_args(num_episodes, fps, camera_size, seed, flags)
    root = _checked_output_dir(output_dir)
    dataset = LocalDatasetWriter(root)
    kept = succeeded = attempted = 0
    start = time.perf_counter()
    world = World(seed=seed, camera_size=size, show_gui=show_gui)
    try:
        with tqdm(total=num_episodes, unit='episode', desc=f'sim -> {root.name}', dynamic_ncols=True) as bar:
            for i in range(num_episodes):
                with dataset.new_episode() as episode:
                    score = record_episode(world, episode, seed + i, fps)
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
