import re

import numpy as np
import pytest

from positronic import geom
from positronic.policy.action import parse_action
from positronic.policy.expert import ExpertPolicy, ExpertPolicyError
from positronic.sim import StackingExpert, World


@pytest.fixture(scope='module')
def world():
    with World(camera_size=(64, 48)) as w:
        yield w


def test_the_expert_needs_the_simulator():
    policy = ExpertPolicy()
    with pytest.raises(ExpertPolicyError, match=re.escape('positronic-inference sim --policy=.expert')):
        policy.reset({'task': 'stack'})
    with pytest.raises(ExpertPolicyError, match='reads the true cube poses from the simulator'):
        policy.select_action({})
    assert policy.meta == {'type': 'expert'}


def test_the_expert_follows_the_plan_of_the_attached_world_and_seed(world):
    world.reset(21)
    policy = ExpertPolicy()
    policy.attach_world(world, 21)
    policy.reset()
    start_ns = world.time_ns
    reference = StackingExpert.for_world(world, np.random.default_rng(21))
    for _ in range(3):
        world.step(0.5)
        (action,) = policy.select_action({})
        target = parse_action(action)
        pose, grip = reference.command((world.time_ns - start_ns) / 1e9)
        np.testing.assert_allclose(target.pose[:3], pose[:3], atol=1e-9)
        assert geom.quat_angle(target.pose[3:], pose[3:]) < 1e-6 and target.grip == grip
