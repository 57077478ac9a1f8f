import os
import time

import pytest

from positronic.evaluation.drivers import KeyboardDriver, NotATerminalError, TerminalKeys, TimedDriver
from positronic.evaluation.episode import EpisodeRun, LoopSettings
from positronic.sim import World
from tests.evaluation.policies import hold


@pytest.fixture(scope='module')
def world():
    with World(camera_size=(64, 48)) as w:
        yield w


def starter(world, policy, started: list):
    def start_episode(iteration: int) -> EpisodeRun:
        episode = EpisodeRun(world, policy, LoopSettings(), iteration, seed=40 + iteration)
        started.append(episode)
        return episode

    return start_episode


def test_timed_driver_runs_each_iteration_for_simulation_time(world):
    started = []
    results = list(
        TimedDriver(num_iterations=3, simulation_time=0.5).run(starter(world, hold(), started), lambda: None)
    )
    assert [(r.iteration, r.seed) for r in results] == [(0, 40), (1, 41), (2, 42)]
    assert all(r.duration_s == pytest.approx(0.5, abs=1 / 15) and len(r.scores) == 8 for r in results)


def test_timed_driver_rejects_nonsense_settings():
    with pytest.raises(ValueError, match=r'driver\.num_iterations'):
        TimedDriver(num_iterations=0)
    with pytest.raises(ValueError, match=r'driver\.simulation_time'):
        TimedDriver(simulation_time=-1)


class ScriptedKeys:
    """Key presses at given poll counts (a stand-in for the operator; ``TerminalKeys`` is tested on a pty)."""

    def __init__(self, script: dict[int, str]):
        self.script = script
        self.polls = 0

    def poll(self):
        key = self.script.get(self.polls)
        self.polls += 1
        return key


def test_keyboard_start_stop_reset_and_quit(world):
    started = []
    idles = []
    #  s: start 0 -> p: keep it; s: start 1 -> r: discard; s: restart 1 (same seed) -> q: keep it and quit
    keys = ScriptedKeys({2: 's', 8: 'p', 10: 's', 14: 'r', 15: 's', 20: 'q'})
    driver = KeyboardDriver(keys=keys)
    results = list(driver.run(starter(world, hold(), started), lambda: idles.append(1)))
    assert [(r.iteration, r.seed) for r in results] == [(0, 40), (1, 41)]
    assert [e.seed for e in started] == [40, 41, 41]
    assert [len(r.scores) for r in results] == [5, 4]
    assert idles  # the window is refreshed while no iteration runs


def test_keyboard_iterations_end_by_themselves_at_simulation_time(world):
    keys = ScriptedKeys({0: 's', 20: 'q'})
    results = list(KeyboardDriver(simulation_time=0.4, keys=keys).run(starter(world, hold(), []), lambda: None))
    assert len(results) == 1 and results[0].duration_s == pytest.approx(0.4, abs=1 / 15)


def test_terminal_keys_reads_single_unechoed_keys_from_a_terminal():
    leader, follower = os.openpty()
    try:
        with TerminalKeys(follower) as keys:
            assert keys.poll() is None
            os.write(leader, b'sP')
            deadline = time.monotonic() + 2
            seen = []
            while len(seen) < 2 and time.monotonic() < deadline:
                key = keys.poll()
                if key is not None:
                    seen.append(key)
            assert seen == ['s', 'p']
    finally:
        os.close(leader)
        os.close(follower)


def test_the_keyboard_driver_needs_a_terminal(tmp_path):
    with open(tmp_path / 'not-a-tty', 'w+') as f, pytest.raises(NotATerminalError, match='not a TTY'):
        TerminalKeys(f.fileno())
