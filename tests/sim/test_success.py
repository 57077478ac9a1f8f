import numpy as np
import pytest

from positronic.sim.success import (
    STACKING_CHECKS,
    StackingState,
    box_distance,
    soft_less,
    stacking_checks,
    stacking_score,
)

RED = np.array([0.5, 0.0, 0.31])
STACKED_GREEN = np.array([0.5, 0.0, 0.33])
HAND_AWAY = np.array([0.5, 0.0, 0.60])
STILL = np.zeros(3)


def score(red=RED, green=STACKED_GREEN, start=RED[:2], angvel=STILL, hand=HAND_AWAY) -> float:
    return stacking_score(StackingState(red, green, start, angvel, hand))


def test_soft_less_is_linear_in_a_band_around_the_threshold():
    assert soft_less(0.0, 1.0, 0.2) == 1.0
    assert soft_less(2.0, 1.0, 0.2) == 0.0
    assert soft_less(1.0, 1.0, 0.2) == pytest.approx(0.5)
    assert soft_less(1.05, 1.0, 0.2) == pytest.approx(0.25)


def test_green_resting_on_red_with_the_hand_away_scores_one():
    assert score() == 1.0
    assert set(stacking_checks(StackingState(RED, STACKED_GREEN, RED[:2], STILL, HAND_AWAY))) == set(STACKING_CHECKS)


@pytest.mark.parametrize(
    ('change', 'failing'),
    [
        ({'start': np.add(RED[:2], [0.06, 0.0])}, 'red_stable'),
        ({'red': np.add(RED, [0, 0, 0.1]), 'green': np.add(STACKED_GREEN, [0, 0, 0.1])}, 'red_on_table'),
        ({'green': np.add(STACKED_GREEN, [0.04, 0.0, 0.0])}, 'xy_aligned'),
        ({'green': np.array([0.5, 0.0, 0.36])}, 'z_stacked'),
        ({'angvel': np.array([0.0, 0.05, 0.0])}, 'green_stable'),
        ({'hand': np.add(STACKED_GREEN, [0, 0, 0.08])}, 'gripper_clear'),
    ],
)
def test_each_check_alone_brings_the_score_to_zero(change, failing):
    args = {'red': RED, 'green': STACKED_GREEN, 'start': RED[:2], 'angvel': STILL, 'hand': HAND_AWAY} | change
    checks = stacking_checks(StackingState(args['red'], args['green'], args['start'], args['angvel'], args['hand']))
    assert checks[failing] == 0.0
    assert all(v == 1.0 for k, v in checks.items() if k != failing)
    assert score(**args) == 0.0


def test_score_is_the_minimum_of_the_checks_inside_the_soft_band():
    # 0.025 m xy offset is exactly the tolerance: half credit.
    assert score(green=np.add(STACKED_GREEN, [0.025, 0.0, 0.0])) == pytest.approx(0.5)
    # hand 0.12 m from the green cube: half credit for clearance.
    assert score(hand=np.add(STACKED_GREEN, [0.0, 0.0, 0.12])) == pytest.approx(0.5)


def test_box_distance_is_euclidean_between_centres():
    assert box_distance(RED, np.add(RED, [0.03, 0.04, 0.0])) == pytest.approx(0.05)
