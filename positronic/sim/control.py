"""Cartesian control: a target end-effector pose → arm joint position targets.

Damped least-squares inverse kinematics on MuJoCo's site Jacobians, iterated on a private ``MjData`` so the
simulated state is never touched. Each solve starts from the previous joint solution, which keeps consecutive
solutions continuous; a small null-space pull towards a rest posture keeps the redundant elbow from drifting.
"""

from dataclasses import dataclass

import mujoco
import numpy as np


class UnreachablePoseError(ValueError):
    """A commanded pose that is non-finite, malformed, or that the inverse kinematics cannot reach."""


@dataclass(frozen=True)
class IKSettings:
    """Tuning of :class:`CartesianController`."""

    damping: float = 1e-2
    """Damping λ of the least-squares step (rad-equivalent); larger is steadier near singularities."""
    max_iterations: int = 60
    """Iterations of one solve."""
    max_step_rad: float = 0.25
    """Largest joint change of one iteration (inf-norm, rad)."""
    position_tolerance_m: float = 1e-4
    """Converged when the position error is below this ..."""
    rotation_tolerance_rad: float = 1e-3
    """... and the rotation error is below this."""
    reach_position_m: float = 5e-3
    """A solve whose final position error exceeds this is unreachable."""
    reach_rotation_rad: float = 0.05
    """A solve whose final rotation error exceeds this is unreachable."""
    nullspace_gain: float = 0.05
    """Fraction of the distance to the rest posture corrected per iteration, in the task's null space."""


def pose_error(target: np.ndarray, pos: np.ndarray, quat: np.ndarray) -> np.ndarray:
    """6-vector ``[dp (m), dr (rad)]`` taking the frame (pos, quat) to ``target`` pose7, both in the world frame."""
    dp = target[:3] - pos
    q_err = np.empty(4)
    inverse = np.empty(4)
    mujoco.mju_negQuat(inverse, quat)  # the conjugate: the inverse of a unit quaternion
    mujoco.mju_mulQuat(q_err, target[3:], inverse)
    if q_err[0] < 0:  # -q is the same rotation as q: take the short way round
        q_err = -q_err
    dr = np.empty(3)
    mujoco.mju_quat2Vel(dr, q_err, 1.0)
    return np.concatenate([dp, dr])


class CartesianController:
    """Solves pose targets of one site for a chain of hinge joints.

    Args:
        model: the MuJoCo model.
        site: name of the controlled site (the end effector).
        joints: names of the controlled hinge joints, in actuator order.
        rest_q: rest posture (rad, shape (n,)) the redundant degrees of freedom are pulled towards.
        settings: solver tuning.
    """

    def __init__(
        self,
        model: mujoco.MjModel,
        site: str,
        joints: list[str],
        rest_q: np.ndarray,
        settings: IKSettings | None = None,
    ):
        self.model = model
        self.settings = settings or IKSettings()
        self._data = mujoco.MjData(model)
        self._site = model.site(site).id
        self._qadr = np.array([model.joint(j).qposadr[0] for j in joints])
        self._dofadr = np.array([model.joint(j).dofadr[0] for j in joints])
        self._lower = np.array([model.joint(j).range[0] for j in joints])
        self._upper = np.array([model.joint(j).range[1] for j in joints])
        self.rest_q = np.asarray(rest_q, dtype=np.float64).copy()
        self._jacp = np.zeros((3, model.nv))
        self._jacr = np.zeros((3, model.nv))

    def forward(self, q: np.ndarray) -> np.ndarray:
        """Site pose7 ``[x, y, z, qw, qx, qy, qz]`` (world frame) at joint positions ``q`` (rad)."""
        self._set_q(q)
        quat = np.empty(4)
        mujoco.mju_mat2Quat(quat, self._data.site_xmat[self._site])
        return np.concatenate([self._data.site_xpos[self._site], quat])

    def solve(self, target: np.ndarray, q_init: np.ndarray) -> np.ndarray:
        """Joint positions (rad, shape (n,), within limits) that put the site at ``target`` pose7.

        Starts from ``q_init``. Raises UnreachablePoseError if the target is malformed or not reached within
        ``settings.reach_position_m`` / ``settings.reach_rotation_rad``.
        """
        target = np.asarray(target, dtype=np.float64)
        if target.shape != (7,) or not np.all(np.isfinite(target)):
            raise UnreachablePoseError(f'pose must be 7 finite numbers [x, y, z, qw, qx, qy, qz], got {target!r}')
        norm = np.linalg.norm(target[3:])
        if norm < 1e-6:
            raise UnreachablePoseError(f'pose quaternion {target[3:].tolist()} has zero norm')
        target = np.concatenate([target[:3], target[3:] / norm])

        s = self.settings
        q = np.clip(np.asarray(q_init, dtype=np.float64), self._lower, self._upper)
        n = len(q)
        err = self._error(target, q)
        for _ in range(s.max_iterations):
            if np.linalg.norm(err[:3]) < s.position_tolerance_m and np.linalg.norm(err[3:]) < s.rotation_tolerance_rad:
                break
            jac = self._jacobian()
            jjt = jac @ jac.T + (s.damping**2) * np.eye(6)
            dq = jac.T @ np.linalg.solve(jjt, err)
            j_pinv = jac.T @ np.linalg.solve(jjt, np.eye(6))
            dq += (np.eye(n) - j_pinv @ jac) @ (s.nullspace_gain * (self.rest_q - q))
            largest = np.max(np.abs(dq))
            if largest > s.max_step_rad:
                dq *= s.max_step_rad / largest
            q = np.clip(q + dq, self._lower, self._upper)
            err = self._error(target, q)

        pos_err, rot_err = float(np.linalg.norm(err[:3])), float(np.linalg.norm(err[3:]))
        if pos_err > s.reach_position_m or rot_err > s.reach_rotation_rad:
            raise UnreachablePoseError(
                f'pose {np.round(target, 4).tolist()} is unreachable: best solution misses it by '
                f'{pos_err * 1000:.1f} mm and {np.degrees(rot_err):.1f} deg'
            )
        return q

    def _set_q(self, q: np.ndarray) -> None:
        self._data.qpos[self._qadr] = q
        mujoco.mj_kinematics(self.model, self._data)
        mujoco.mj_comPos(self.model, self._data)

    def _error(self, target: np.ndarray, q: np.ndarray) -> np.ndarray:
        self._set_q(q)
        quat = np.empty(4)
        mujoco.mju_mat2Quat(quat, self._data.site_xmat[self._site])
        return pose_error(target, self._data.site_xpos[self._site], quat)

    def _jacobian(self) -> np.ndarray:
        mujoco.mj_jacSite(self.model, self._data, self._jacp, self._jacr, self._site)
        return np.vstack([self._jacp[:, self._dofadr], self._jacr[:, self._dofadr]])
