"""The robot command a policy returns, in protocol v1's wire form.

One action is ``{"robot_command": {"type": "cartesian_pos", "pose": float64 (12,)}, "target_grip": float}``
where ``pose`` is translation then the row-major rotation matrix (see ``positronic.geom``) and
``target_grip`` is in [0, 1] (0 open, 1 closed).
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from positronic import geom

ROBOT_COMMAND = 'robot_command'
TARGET_GRIP = 'target_grip'
"""Wire field of an action (protocol v1): the commanded gripper, recorded as the signal ``keys.TARGET_GRIP``."""
COMMAND_TYPE = 'type'
CARTESIAN_POS = 'cartesian_pos'
POSE = 'pose'


class InvalidActionError(ValueError):
    """An action that a robot must not execute (malformed, non-finite, or of an unsupported type)."""


@dataclass(frozen=True)
class CartesianAction:
    """An absolute end-effector target: pose ``[x, y, z, qw, qx, qy, qz]`` and gripper closure in [0, 1]."""

    pose: np.ndarray
    grip: float


def cartesian_action(pose: np.ndarray, grip: float) -> dict[str, Any]:
    """Wire-form action for an absolute pose target (7-vector) and a gripper closure."""
    return {
        ROBOT_COMMAND: {COMMAND_TYPE: CARTESIAN_POS, POSE: geom.pose_to_wire(pose)},
        TARGET_GRIP: float(grip),
    }


def parse_action(action: Mapping[str, Any]) -> CartesianAction:
    """Validate a wire-form action and return it as a pose target; raises InvalidActionError naming the fault."""
    if not isinstance(action, Mapping) or ROBOT_COMMAND not in action or TARGET_GRIP not in action:
        raise InvalidActionError(f'action must be a mapping with {ROBOT_COMMAND!r} and {TARGET_GRIP!r}, got {action!r}')
    command = action[ROBOT_COMMAND]
    if not isinstance(command, Mapping) or command.get(COMMAND_TYPE) != CARTESIAN_POS:
        raise InvalidActionError(f'only {CARTESIAN_POS!r} robot commands are supported, got {command!r}')
    wire = np.asarray(command.get(POSE), dtype=np.float64)
    if wire.shape != (12,):
        raise InvalidActionError(f'{CARTESIAN_POS} pose must have 12 numbers, got shape {wire.shape}')
    grip = float(action[TARGET_GRIP])
    if not (np.all(np.isfinite(wire)) and np.isfinite(grip)):
        raise InvalidActionError(f'action has non-finite values: pose={wire.tolist()}, target_grip={grip}')
    rotation = wire[3:].reshape(3, 3)
    if not np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-3):
        raise InvalidActionError(f'{CARTESIAN_POS} rotation is not orthonormal: {rotation.tolist()}')
    return CartesianAction(pose=geom.wire_to_pose(wire), grip=float(np.clip(grip, 0.0, 1.0)))
