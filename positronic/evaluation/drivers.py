"""Drivers decide when iterations start and stop: ``TimedDriver`` (fixed sim time, fixed count) and
``KeyboardDriver`` (an operator at a terminal).

A driver's ``run(start_episode, idle)`` yields each kept iteration's result. ``start_episode(i)`` resets the
scene for iteration ``i`` (seed ``seed + i``) and returns the running ``EpisodeRun``; ``idle()`` keeps the
window alive while nothing runs.
"""

import contextlib
import os
import select
import sys
import termios
import time
import tty
from collections.abc import Callable, Iterator
from typing import Protocol

from tqdm import tqdm

from positronic.evaluation.episode import EpisodeRun
from positronic.evaluation.results import IterationResult

StartEpisode = Callable[[int], EpisodeRun]
TIME_EPSILON_S = 1e-6
"""Slack when comparing sim time with a limit (ticks are a whole number of physics steps)."""


def _time_up(episode: EpisodeRun, limit_s: float | None) -> bool:
    return limit_s is not None and episode.elapsed_s + TIME_EPSILON_S >= limit_s


class TimedDriver:
    """``num_iterations`` iterations of ``simulation_time`` sim seconds each (one ends early on a fault).
    ``show_gui`` opens the live camera window. Shows a progress bar in sim seconds (its rate is the speed
    relative to real time)."""

    def __init__(self, num_iterations: int = 1, simulation_time: float = 15.0, show_gui: bool = False):
        if num_iterations < 1:
            raise ValueError(f'driver.num_iterations must be at least 1, got {num_iterations}')
        if not simulation_time > 0:
            raise ValueError(f'driver.simulation_time must be positive (sim seconds), got {simulation_time}')
        self.num_iterations = int(num_iterations)
        self.simulation_time = float(simulation_time)
        self.show_gui = bool(show_gui)

    def run(self, start_episode: StartEpisode, idle: Callable[[], None]) -> Iterator[IterationResult]:
        del idle
        total_s = self.num_iterations * self.simulation_time
        with tqdm(total=round(total_s, 3), unit='sim s', desc='evaluation', dynamic_ncols=True, disable=None) as bar:
            for iteration in range(self.num_iterations):
                episode = start_episode(iteration)
                done_s = iteration * self.simulation_time
                while not _time_up(episode, self.simulation_time) and episode.tick():
                    bar.update(round(done_s + min(episode.elapsed_s, self.simulation_time), 3) - bar.n)
                bar.update(round(done_s + self.simulation_time, 3) - bar.n)
                yield episode.finish(keep=True)


class KeySource(Protocol):
    """Single key presses, polled without blocking."""

    def poll(self) -> str | None:
        """The next pressed key (lower-case), or None when none is waiting."""
        ...


class NotATerminalError(RuntimeError):
    """The keyboard driver was started without a terminal to read keys from."""


def _stdin_fd() -> int:
    """The file descriptor of stdin, or -1 when stdin is closed or not a real file."""
    try:
        return sys.stdin.fileno()
    except (AttributeError, OSError, ValueError):
        return -1


class TerminalKeys:
    """Keys typed on the terminal ``fd`` (default: stdin), read unbuffered and unechoed while in use.

    Use as a context manager; the terminal's settings are restored on exit.
    """

    def __init__(self, fd: int | None = None):
        self.fd = _stdin_fd() if fd is None else fd
        if self.fd < 0 or not os.isatty(self.fd):
            raise NotATerminalError(
                'the keyboard driver reads keys from a terminal, but stdin is not a TTY; run it in an interactive '
                'terminal (with docker: `docker compose run` or `docker run -it`), or use the timed driver'
            )
        self._saved: list | None = None

    def __enter__(self) -> 'TerminalKeys':
        self._saved = termios.tcgetattr(self.fd)
        tty.setcbreak(self.fd)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._saved is not None:
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
            self._saved = None

    def poll(self) -> str | None:
        if not select.select([self.fd], [], [], 0)[0]:
            return None
        data = os.read(self.fd, 1)
        return data.decode(errors='replace').lower() if data else None


KEY_HELP = 'keys: [s] start  [p] stop and keep  [r] reset and discard  [q] quit'
IDLE_POLL_S = 0.02


class KeyboardDriver:
    """An operator drives iterations from the terminal: ``s`` starts one, ``p`` stops it and keeps it, ``r``
    stops it and discards it (the next start reuses its seed), ``q`` keeps the running one and quits.

    An iteration also ends by itself after ``simulation_time`` sim seconds (None: no limit) or on a fault.
    ``keys`` reads the key presses (default: the terminal on stdin, which must be a TTY; checked here, so a
    run without one stops before anything is loaded).
    """

    def __init__(self, simulation_time: float | None = None, show_gui: bool = False, keys: KeySource | None = None):
        if simulation_time is not None and not simulation_time > 0:
            raise ValueError(f'driver.simulation_time must be positive or None, got {simulation_time}')
        self.simulation_time = simulation_time
        self.show_gui = bool(show_gui)
        self._keys = keys if keys is not None else TerminalKeys()

    def run(self, start_episode: StartEpisode, idle: Callable[[], None]) -> Iterator[IterationResult]:
        with contextlib.ExitStack() as stack:
            keys = self._keys
            if isinstance(keys, TerminalKeys):
                stack.enter_context(keys)
            print(KEY_HELP, flush=True)
            iteration = 0
            episode: EpisodeRun | None = None
            while True:
                key = keys.poll()
                if episode is None:
                    if key == 'q':
                        return
                    if key == 's':
                        episode = start_episode(iteration)
                        print(f'iteration {iteration} started (seed {episode.seed})', flush=True)
                    else:
                        idle()
                        time.sleep(IDLE_POLL_S)
                    continue
                if key == 'r':
                    episode.finish(keep=False)
                    episode = None
                    print(f'iteration {iteration} discarded; [s] starts it again', flush=True)
                elif key in ('p', 'q') or _time_up(episode, self.simulation_time) or not episode.tick():
                    yield episode.finish(keep=True)
                    episode = None
                    iteration += 1
                    if key == 'q':
                        return
