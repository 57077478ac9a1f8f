import numpy as np
import pytest

from positronic import geom


def random_quat(rng):
    return geom.normalize_quat(rng.normal(size=4))


def test_quat_matrix_round_trip_preserves_rotation():
    rng = np.random.default_rng(0)
    for _ in range(200):
        q = random_quat(rng)
        back = geom.matrix_to_quat(geom.quat_to_matrix(q))
        assert geom.quat_angle(q, back) < 1e-7
        assert back[0] >= 0


def test_quat_to_matrix_is_a_proper_rotation():
    rng = np.random.default_rng(1)
    r = geom.quat_to_matrix(random_quat(rng))
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(r) == pytest.approx(1.0)


def test_half_turn_about_x_flips_z_axis():
    r = geom.quat_to_matrix(np.array([0.0, 1.0, 0.0, 0.0]))
    np.testing.assert_allclose(r @ np.array([0, 0, 1.0]), [0, 0, -1.0], atol=1e-12)


def test_quat_multiply_composes_like_matrices():
    rng = np.random.default_rng(2)
    a, b = random_quat(rng), random_quat(rng)
    np.testing.assert_allclose(
        geom.quat_to_matrix(geom.quat_multiply(a, b)), geom.quat_to_matrix(a) @ geom.quat_to_matrix(b), atol=1e-12
    )
    np.testing.assert_allclose(geom.quat_multiply(a, geom.quat_conjugate(a)), geom.IDENTITY_QUAT, atol=1e-12)


def test_quat_angle_is_sign_invariant():
    q = geom.normalize_quat(np.array([0.3, 0.1, -0.5, 0.2]))
    assert geom.quat_angle(q, -q) == pytest.approx(0.0, abs=1e-6)
    quarter = np.array([np.cos(np.pi / 4), 0, 0, np.sin(np.pi / 4)])
    assert geom.quat_angle(geom.IDENTITY_QUAT, quarter) == pytest.approx(np.pi / 2)


def test_pose_wire_round_trip_and_layout():
    pose = np.array([0.4, -0.1, 0.5, 0.0, 1.0, 0.0, 0.0])
    wire = geom.pose_to_wire(pose)
    assert wire.shape == (12,) and wire.dtype == np.float64
    np.testing.assert_allclose(wire[:3], pose[:3])
    np.testing.assert_allclose(wire[3:].reshape(3, 3), np.diag([1.0, -1.0, -1.0]), atol=1e-12)
    back = geom.wire_to_pose(wire)
    np.testing.assert_allclose(back[:3], pose[:3])
    assert geom.quat_angle(back[3:], pose[3:]) < 1e-9


@pytest.mark.parametrize('bad', [np.zeros(4), np.array([np.nan, 0, 0, 1.0])])
def test_normalize_quat_rejects_degenerate(bad):
    with pytest.raises(ValueError, match='cannot be normalized'):
        geom.normalize_quat(bad)


def test_pose_shapes_are_checked():
    with pytest.raises(ValueError, match=r'shape \(7,\)'):
        geom.pose_to_wire(np.zeros(6))
    with pytest.raises(ValueError, match=r'shape \(12,\)'):
        geom.wire_to_pose(np.zeros(7))


def test_canonical_quaternions_lie_in_the_gripper_down_hemisphere_with_the_same_rotation():
    quats = np.array([[0.1, -0.99, 0.0, 0.05], [-0.05, 0.99, 0.1, 0.0], [1.0, 0.0, 0.0, 0.0]])
    canon = geom.canonical_quaternions(quats)
    assert np.all(canon @ np.asarray(geom.DOWNWARD_QUAT) >= 0)
    np.testing.assert_allclose(np.abs(canon), np.abs(quats))
    for q, c in zip(quats, canon, strict=True):
        assert geom.quat_angle(q, c) < 1e-9


def test_canonical_quaternions_keeps_a_single_quaternion_shape_and_dtype():
    q = np.array([0.0, -1.0, 0.0, 0.0], dtype=np.float32)
    canon = geom.canonical_quaternions(q)
    assert canon.shape == (4,) and canon.dtype == np.float32
    np.testing.assert_array_equal(canon, [0.0, 1.0, 0.0, 0.0])
