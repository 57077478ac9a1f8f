import numpy as np
import pytest

from positronic import geom
from positronic.policy.action import InvalidActionError, cartesian_action, parse_action


def test_cartesian_action_has_protocol_v1_form():
    pose = np.array([0.5, 0.0, 0.4, 0.0, 1.0, 0.0, 0.0])
    action = cartesian_action(pose, 0.75)
    assert action['robot_command']['type'] == 'cartesian_pos'
    assert action['robot_command']['pose'].shape == (12,)
    assert action['target_grip'] == 0.75
    parsed = parse_action(action)
    np.testing.assert_allclose(parsed.pose[:3], pose[:3])
    assert geom.quat_angle(parsed.pose[3:], pose[3:]) < 1e-9
    assert parsed.grip == 0.75


def test_parse_action_clips_grip_into_unit_range():
    action = cartesian_action(np.array([0.5, 0, 0.4, 1.0, 0, 0, 0]), 1.3)
    assert parse_action(action).grip == 1.0


@pytest.mark.parametrize(
    'action, match',
    [
        ({'target_grip': 0.0}, 'must be a mapping'),
        ({'robot_command': {'type': 'joint_pos', 'positions': np.zeros(7)}, 'target_grip': 0.0}, 'only'),
        ({'robot_command': {'type': 'cartesian_pos', 'pose': np.zeros(7)}, 'target_grip': 0.0}, '12 numbers'),
        ({'robot_command': {'type': 'cartesian_pos', 'pose': np.full(12, np.nan)}, 'target_grip': 0.0}, 'non-finite'),
        ({'robot_command': {'type': 'cartesian_pos', 'pose': np.ones(12)}, 'target_grip': 0.0}, 'orthonormal'),
    ],
)
def test_parse_action_rejects_what_a_robot_must_not_execute(action, match):
    with pytest.raises(InvalidActionError, match=match):
        parse_action(action)
