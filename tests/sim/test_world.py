import ctypes
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from positronic import keys
from positronic.sim import World
from positronic.sim.world import TABLE_TOP_Z, gripper_down_quat


@pytest.fixture(scope='module')
def world():
    with World(seed=0, camera_size=(96, 64)) as w:
        yield w


def rollout(world: World, seed: int) -> np.ndarray:
    world.reset(seed)
    pose = np.concatenate([[0.5, 0.1, 0.4], gripper_down_quat(0.3)])
    for _ in range(10):
        world.command(pose, 0.5)
        world.step(1 / 30)
    return np.concatenate([world.robot_state()[keys.ROBOT_Q], *world.cube_poses().values()])


def test_same_seed_gives_the_same_placement_and_rollout(world):
    first = rollout(world, 7)
    assert np.array_equal(rollout(world, 8), rollout(world, 8))
    assert np.array_equal(first, rollout(world, 7))
    assert not np.allclose(first, rollout(world, 8))


def test_cubes_rest_apart_on_the_table_within_reach(world):
    for seed in range(20):
        world.reset(seed)
        cubes = world.cube_poses()
        for pose in cubes.values():
            assert 0.3 < pose[0] < 0.7 and -0.3 < pose[1] < 0.3
            assert pose[2] == pytest.approx(TABLE_TOP_Z + 0.01, abs=1e-3)
            assert np.linalg.norm(pose[3:]) == pytest.approx(1.0)
        assert np.linalg.norm(cubes['red'][:2] - cubes['green'][:2]) >= 0.1
        assert world.box_distance() == pytest.approx(np.linalg.norm(cubes['red'][:3] - cubes['green'][:3]))


def test_sim_time_advances_in_exact_frame_periods_and_survives_reset(world):
    world.reset(0)
    start = world.time_ns
    for _ in range(30):
        world.step(1 / 30)
    assert world.time_ns - start == 1_000_000_000
    world.reset(1)
    assert world.time_ns == start + 1_000_000_000
    with pytest.raises(ValueError, match='duration_s'):
        world.step(0.0)


def test_robot_state_has_the_contract_types(world):
    world.reset(0)
    state = world.robot_state()
    assert state[keys.ROBOT_Q].dtype == np.float32 and state[keys.ROBOT_Q].shape == (7,)
    assert state[keys.ROBOT_DQ].dtype == np.float32 and state[keys.ROBOT_DQ].shape == (7,)
    ee = state[keys.ROBOT_EE_POSE]
    assert ee.dtype == np.float64 and ee.shape == (7,)
    assert np.linalg.norm(ee[3:]) == pytest.approx(1.0)
    assert ee[4] > 0.99  # home: gripper pointing down, quaternion in the [0, 1, 0, 0] hemisphere
    assert isinstance(state[keys.GRIP], float) and state[keys.GRIP] < 0.05  # open after reset


def test_gripper_closes_fully_on_nothing(world):
    world.reset(0)
    world.command(world.ee_pose(), 1.0)
    world.step(0.5)
    assert world.grip() > 0.95


def test_cameras_render_the_scene_at_the_requested_size(world):
    world.reset(0)
    obs = world.observation()
    for key in (keys.IMAGE_WRIST, keys.IMAGE_EXTERIOR):
        assert obs[key].dtype == np.uint8 and obs[key].shape == (64, 96, 3)
        assert obs[key].std() > 10  # not a blank frame
    exterior = obs[keys.IMAGE_EXTERIOR].astype(int)
    red = (exterior[..., 0] > 150) & (exterior[..., 1] < 60) & (exterior[..., 2] < 60)
    green = (exterior[..., 1] > 120) & (exterior[..., 0] < 60) & (exterior[..., 2] < 60)
    assert red.sum() > 0 and green.sum() > 0  # both cubes are in view
    assert keys.ROBOT_Q in obs


@pytest.mark.parametrize(
    ('message', 'raised'),
    [
        ('argument 1: KeyboardInterrupt: ', KeyboardInterrupt),
        ('argument 1: TypeError: wrong type', ctypes.ArgumentError),
    ],
)
def test_a_ctrl_c_inside_an_egl_call_stops_rendering_as_a_ctrl_c(world, monkeypatch, message, raised):
    # Where SIGINT lands is a race; this is what ctypes raises when it lands inside an argument conversion.
    world.render()

    def interrupted(*args, **kwargs):
        raise ctypes.ArgumentError(message)

    monkeypatch.setattr(world._renderer, 'render', interrupted)
    with pytest.raises(raised):
        world.render()


def test_fresh_scene_is_not_stacked(world):
    world.reset(0)
    assert world.stacking_success() == 0.0


def test_no_viewer_without_show_gui(world):
    assert not world.viewer_is_open


def test_invalid_camera_size_is_rejected():
    with pytest.raises(ValueError, match='camera_size'):
        World(camera_size=(0, 240))


@pytest.mark.slow
@pytest.mark.skipif(shutil.which('xvfb-run') is None, reason='needs xvfb-run for a virtual display')
def test_show_gui_opens_a_viewer_window_on_a_display():
    script = (
        'import time\n'
        'from positronic.sim import World\n'
        'w = World(show_gui=True, camera_size=(64, 48))\n'
        'assert w.viewer_is_open\n'
        'start = time.perf_counter()\n'
        'w.step(0.5)\n'
        'w.step(0.5)\n'
        'assert time.perf_counter() - start > 0.4, "the window paces the simulation to real time"\n'
        'assert w.render()["image.wrist"].std() > 10\n'
        'w.close()\n'
        'print("viewer ok")\n'
    )
    env = {k: v for k, v in os.environ.items() if k not in ('MUJOCO_GL', 'PYOPENGL_PLATFORM', 'DISPLAY')}
    command = ['xvfb-run', '-a', '-s', '-screen 0 640x480x24', sys.executable, '-c', script]
    for _ in range(3):  # xvfb-run -a can race other X servers for a display number
        result = subprocess.run(command, capture_output=True, text=True, timeout=60, env=env)
        if 'Xvfb failed to start' not in result.stderr:
            break
    assert 'viewer ok' in result.stdout, result.stderr[-2000:]
    # MuJoCo's viewer under Xvfb's software GL sometimes segfaults while the interpreter tears down, after the
    # window was closed and everything above passed; any other failure still fails the test.
    assert result.returncode in (0, 139), result.stderr[-2000:]
