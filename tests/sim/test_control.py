import numpy as np
import pytest

from positronic.sim.control import CartesianController, UnreachablePoseError, pose_error
from positronic.sim.world import HOME_Q, World, gripper_down_quat


@pytest.fixture(scope='module')
def world():
    with World(seed=0) as w:
        yield w


def test_pose_error_is_zero_at_the_target_and_sign_invariant_in_the_quaternion():
    target = np.concatenate([[0.5, 0.1, 0.4], gripper_down_quat(0.2)])
    assert np.allclose(pose_error(target, target[:3], target[3:]), 0.0)
    assert np.allclose(pose_error(target, target[:3], -target[3:]), 0.0, atol=1e-9)
    err = pose_error(target, target[:3] - [0.01, 0, 0], gripper_down_quat(0.0))
    assert err[:3] == pytest.approx([0.01, 0.0, 0.0])
    assert np.linalg.norm(err[3:]) == pytest.approx(0.2)


@pytest.mark.parametrize('yaw', [-0.3, -0.01, 0.01, 0.3])
def test_pose_error_is_the_same_for_either_sign_of_the_target_quaternion(yaw):
    """q and -q are one rotation; the wire form's matrix -> quaternion picks w >= 0, so both signs reach the IK."""
    target = np.concatenate([[0.5, 0.1, 0.4], gripper_down_quat(yaw)])
    flipped = np.concatenate([target[:3], -target[3:]])
    current = gripper_down_quat(0.0)
    err = pose_error(target, target[:3], current)
    assert np.allclose(pose_error(flipped, target[:3], current), err, atol=1e-12)
    assert err[5] == pytest.approx(yaw)  # a yaw about world z, in the direction of the target


@pytest.mark.parametrize('sign', [1.0, -1.0])
def test_world_reaches_a_downward_pose_given_with_either_quaternion_sign(world, sign):
    world.reset(seed=0)
    pose = np.concatenate([[0.45, 0.0, 0.5], sign * gripper_down_quat(-0.05)])
    world.command(pose, 0.0)
    world.step(1.0)
    reached = world.ee_pose()
    assert np.linalg.norm(reached[:3] - pose[:3]) < 5e-3
    assert np.linalg.norm(pose_error(pose, reached[:3], reached[3:])[3:]) < 0.02


def test_solution_puts_the_site_on_the_target_within_joint_limits(world):
    ctrl = CartesianController(world.model, 'tcp', [f'joint{i}' for i in range(1, 8)], HOME_Q)
    target = np.concatenate([[0.6, -0.2, 0.33], gripper_down_quat(-0.5)])
    q = ctrl.solve(target, HOME_Q)
    reached = ctrl.forward(q)
    assert np.linalg.norm(reached[:3] - target[:3]) < 1e-3
    assert np.linalg.norm(pose_error(target, reached[:3], reached[3:])[3:]) < 1e-2
    lower, upper = world.model.jnt_range[:7].T
    assert np.all(q >= lower) and np.all(q <= upper)


@pytest.mark.parametrize(
    'target',
    [
        [0.40, 0.15, 0.45, 0.0],
        [0.62, -0.20, 0.33, 0.6],
        [0.50, 0.00, 0.60, -0.7],
    ],
)
def test_world_reaches_a_commanded_pose_within_5_mm(world, target):
    world.reset(seed=0)
    pose = np.concatenate([target[:3], gripper_down_quat(target[3])])
    world.command(pose, 0.0)
    world.step(1.5)
    reached = world.ee_pose()
    assert np.linalg.norm(reached[:3] - pose[:3]) < 5e-3
    assert np.linalg.norm(pose_error(pose, reached[:3], reached[3:])[3:]) < 0.02


@pytest.mark.parametrize(
    ('pose', 'message'),
    [
        ([1.5, 0.0, 0.4, 0.0, 1.0, 0.0, 0.0], 'unreachable'),
        ([np.nan, 0.0, 0.4, 0.0, 1.0, 0.0, 0.0], 'finite'),
        ([0.5, 0.0, 0.4], 'finite'),
        ([0.5, 0.0, 0.4, 0.0, 0.0, 0.0, 0.0], 'zero norm'),
    ],
)
def test_bad_or_unreachable_pose_raises_and_keeps_the_previous_target(world, pose, message):
    world.reset(seed=0)
    before = world.ee_pose()
    with pytest.raises(UnreachablePoseError, match=message):
        world.command(np.array(pose), 1.0)
    world.step(0.3)
    assert np.linalg.norm(world.ee_pose()[:3] - before[:3]) < 1e-3
    assert world.grip() < 0.05  # the grip target was not applied either


def test_unnormalized_quaternion_is_accepted(world):
    world.reset(seed=0)
    pose = np.concatenate([[0.5, 0.05, 0.45], 3.0 * gripper_down_quat(0.1)])
    world.command(pose, 0.0)
    world.step(1.0)
    assert np.linalg.norm(world.ee_pose()[:3] - pose[:3]) < 5e-3
