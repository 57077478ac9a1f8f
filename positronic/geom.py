"""Poses and rotations.

Conventions: a pose is a 7-vector ``[x, y, z, qw, qx, qy, qz]`` (metres, scalar-first unit quaternion);
a rotation matrix is 3x3 and maps vectors from the body frame to the reference frame; the wire form of a
pose (protocol v1 ``cartesian_pos``) is 12 numbers: translation, then the rotation matrix row-major.
"""

from collections.abc import Sequence

import numpy as np

IDENTITY_QUAT = np.array([1.0, 0.0, 0.0, 0.0])
DOWNWARD_QUAT = (0.0, 1.0, 0.0, 0.0)
"""Reference orientation for quaternion signs: a gripper pointing down (180 deg about x). Every quaternion the
recorder, the simulator and the codecs emit lies in this reference's hemisphere, so poses near it (any yaw in
(-180, 180) deg) vary continuously instead of flipping sign where ``qw`` crosses 0."""


def normalize_quat(q: np.ndarray) -> np.ndarray:
    """Unit quaternion ``[w, x, y, z]`` with the same rotation; raises ValueError on a zero or non-finite input."""
    q = np.asarray(q, dtype=np.float64)
    n = np.linalg.norm(q)
    if not np.isfinite(n) or n < 1e-12:
        raise ValueError(f'quaternion {q.tolist()} cannot be normalized')
    return q / n


def canonical_quaternions(quats: np.ndarray, reference: Sequence[float] = DOWNWARD_QUAT) -> np.ndarray:
    """``quats`` (..., 4) ``[w, x, y, z]`` with each sign flipped where needed so that ``dot(q, reference) >= 0``
    (same rotations, same dtype; a new array)."""
    quats = np.asarray(quats)
    signs = np.where(quats @ np.asarray(reference, dtype=quats.dtype) < 0, -1, 1).astype(quats.dtype)
    return quats * signs[..., None]


def quat_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product ``a * b`` of ``[w, x, y, z]`` quaternions (apply b, then a)."""
    aw, ax, ay, az = a
    bw, bx, by, bz = b
    return np.array(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ]
    )


def quat_conjugate(q: np.ndarray) -> np.ndarray:
    """Inverse rotation of a unit quaternion ``[w, x, y, z]``."""
    return np.array([q[0], -q[1], -q[2], -q[3]], dtype=np.float64)


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """3x3 rotation matrix of a quaternion ``[w, x, y, z]`` (normalized first)."""
    w, x, y, z = normalize_quat(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def matrix_to_quat(m: np.ndarray) -> np.ndarray:
    """Unit quaternion ``[w, x, y, z]`` (w >= 0) of a 3x3 rotation matrix."""
    m = np.asarray(m, dtype=np.float64)
    trace = m[0, 0] + m[1, 1] + m[2, 2]
    if trace > 0:
        s = 2.0 * np.sqrt(trace + 1.0)
        q = [0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s]
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = [(m[2, 1] - m[1, 2]) / s, 0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s]
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = [(m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s]
    else:
        s = 2.0 * np.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = [(m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s]
    q = normalize_quat(np.array(q))
    return q if q[0] >= 0 else -q


def quat_angle(a: np.ndarray, b: np.ndarray) -> float:
    """Angle in radians of the rotation between two quaternions (sign-invariant), in [0, pi]."""
    d = abs(float(np.dot(normalize_quat(a), normalize_quat(b))))
    return 2.0 * float(np.arccos(min(1.0, d)))


def pose_to_wire(pose: np.ndarray) -> np.ndarray:
    """Protocol-v1 12-vector ``[tx, ty, tz, r00, r01, ..., r22]`` (float64) of a 7-vector pose."""
    pose = np.asarray(pose, dtype=np.float64)
    if pose.shape != (7,):
        raise ValueError(f'pose must have shape (7,) [x, y, z, qw, qx, qy, qz], got {pose.shape}')
    return np.concatenate([pose[:3], quat_to_matrix(pose[3:]).reshape(-1)])


def wire_to_pose(wire: np.ndarray) -> np.ndarray:
    """7-vector pose ``[x, y, z, qw, qx, qy, qz]`` of a protocol-v1 12-vector (translation, row-major rotation)."""
    wire = np.asarray(wire, dtype=np.float64)
    if wire.shape != (12,):
        raise ValueError(f'wire pose must have shape (12,) [t(3), R row-major(9)], got {wire.shape}')
    return np.concatenate([wire[:3], matrix_to_quat(wire[3:].reshape(3, 3))])
