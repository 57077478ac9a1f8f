import numpy as np
import pytest

from positronic.evaluation.ensemble import TemporalEnsemble
from positronic.policy.action import CartesianAction
from positronic.sim.world import gripper_down_quat


def at(x: float, grip: float = 0.0, yaw: float = 0.0) -> CartesianAction:
    return CartesianAction(np.concatenate([[x, 0.0, 0.4], gripper_down_quat(yaw)]), grip)


def test_a_single_chunk_is_executed_as_predicted():
    ensemble = TemporalEnsemble(0.01)
    ensemble.add([at(0.1), at(0.2), at(0.3)])
    assert [ensemble.pop().pose[0] for _ in range(3)] == pytest.approx([0.1, 0.2, 0.3])
    with pytest.raises(IndexError):
        ensemble.pop()


def test_overlapping_predictions_are_averaged_with_the_oldest_weighing_most():
    plain = TemporalEnsemble(0.0)
    plain.add([at(0.0), at(0.1, grip=0.0)])
    plain.pop()
    plain.add([at(0.3, grip=1.0)])  # second prediction for the same tick
    mean = plain.pop()
    assert mean.pose[0] == pytest.approx(0.2) and mean.grip == pytest.approx(0.5)

    trusting_old = TemporalEnsemble(1.0)
    trusting_old.add([at(0.0), at(0.1)])
    trusting_old.pop()
    trusting_old.add([at(0.3)])
    w_new = np.exp(-1.0) / (1 + np.exp(-1.0))
    assert trusting_old.pop().pose[0] == pytest.approx(0.1 + w_new * 0.2)


def test_orientations_average_on_the_sphere_whatever_the_quaternion_sign():
    ensemble = TemporalEnsemble(0.0)
    first = at(0.1, yaw=0.2)
    flipped = CartesianAction(np.concatenate([first.pose[:3], -gripper_down_quat(0.4)]), 0.0)
    ensemble.add([first])
    ensemble.add([flipped])  # a second prediction for the same tick, with the other sign
    pose = ensemble.pop().pose
    assert np.linalg.norm(pose[3:]) == pytest.approx(1.0)
    assert abs(pose[3:] @ gripper_down_quat(0.3)) == pytest.approx(1.0, abs=1e-6)


def test_a_negative_coefficient_trusts_the_newest_prediction_most_without_overflow():
    trusting_new = TemporalEnsemble(-1.0)
    trusting_new.add([at(0.0), at(0.1)])
    trusting_new.pop()
    trusting_new.add([at(0.3)])
    w_new = 1 / (1 + np.exp(-1.0))
    assert trusting_new.pop().pose[0] == pytest.approx(0.1 + w_new * 0.2)

    steep = TemporalEnsemble(-50.0)  # exp(50 * 39) would overflow unshifted
    for step in range(40):
        steep.add([at(0.01 * step)] * 40)
        last = steep.pop()
    assert np.isfinite(last.pose).all() and last.pose[0] == pytest.approx(0.39)


@pytest.mark.parametrize('coeff', [float('nan'), float('inf'), float('-inf')])
def test_a_non_finite_coefficient_is_refused(coeff):
    with pytest.raises(ValueError, match='coefficient must be a finite number'):
        TemporalEnsemble(coeff)
