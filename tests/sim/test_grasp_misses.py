import numpy as np
import pytest

from positronic.sim.grasp_misses import MISSED_GRIP, GraspMisses, missed, replan_rng


def test_no_misses_never_close_early():
    misses = GraspMisses()
    assert not misses.enabled
    assert all(misses.early_close_s(seed, 2.5) is None for seed in range(100))


def test_every_episode_closes_early_by_the_lead_and_repeats_per_seed():
    misses = GraspMisses(rate=1.0, lead_s=(0.2, 0.5))
    times = [misses.early_close_s(seed, 2.5) for seed in range(200)]
    assert all(2.0 <= t <= 2.3 for t in times)
    assert times == [misses.early_close_s(seed, 2.5) for seed in range(200)]
    assert len(set(times)) > 150  # drawn per episode
    assert misses.early_close_s(0, 0.1) == 0.0  # never before the episode starts


def test_the_rate_is_the_share_of_episodes_that_close_early():
    misses = GraspMisses(rate=0.3)
    share = np.mean([misses.early_close_s(seed, 2.5) is not None for seed in range(4000)])
    assert share == pytest.approx(0.3, abs=0.03)


@pytest.mark.parametrize('kwargs', [{'rate': -0.1}, {'rate': 1.5}, {'rate': float('nan')}, {'lead_s': (0.0, 0.5)}])
def test_out_of_range_settings_are_refused(kwargs):
    with pytest.raises(ValueError, match='grasp miss'):
        GraspMisses(**kwargs)


def test_a_miss_is_a_closed_command_with_the_fingers_past_the_cube():
    assert missed(1.0, MISSED_GRIP + 0.05)
    assert not missed(1.0, 0.5)  # stopped by the cube: holding it
    assert not missed(0.0, 0.95)  # commanded open: still opening


def test_each_replan_draws_its_own_plan():
    first, second = replan_rng(7, 1).uniform(size=4), replan_rng(7, 2).uniform(size=4)
    assert not np.allclose(first, second)
    assert np.array_equal(first, replan_rng(7, 1).uniform(size=4))
