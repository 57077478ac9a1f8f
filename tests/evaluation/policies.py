"""In-process policies for loop tests: they answer from the raw observation, no server involved."""

from collections.abc import Mapping
from typing import Any

import numpy as np

from positronic import keys
from positronic.policy.action import cartesian_action


class ScriptedPolicy:
    """Answers each call with ``chunk(call_index, observation)``; records what it saw."""

    def __init__(self, chunk, meta: Mapping[str, Any] | None = None):
        self._chunk = chunk
        self._meta = dict(meta or {'type': 'scripted'})
        self.observations: list[dict[str, Any]] = []
        self.resets: list[Mapping[str, Any] | None] = []
        self.closed = False

    def select_action(self, observation: Mapping[str, Any]) -> list[dict[str, Any]]:
        self.observations.append(dict(observation))
        return self._chunk(len(self.observations) - 1, observation)

    def reset(self, context: Mapping[str, Any] | None = None) -> None:
        self.resets.append(context)

    @property
    def meta(self) -> dict[str, Any]:
        return self._meta

    def close(self) -> None:
        self.closed = True


def hold(chunk_size: int = 4) -> ScriptedPolicy:
    """Stay at the measured end-effector pose with the gripper open."""
    return ScriptedPolicy(lambda _, obs: [cartesian_action(obs[keys.ROBOT_EE_POSE], 0.0)] * chunk_size)


def hold_then(bad_pose: np.ndarray, after_calls: int) -> ScriptedPolicy:
    """Hold for ``after_calls`` calls, then command ``bad_pose`` (a pose7; the wire form is built raw so NaN
    values reach the robot side)."""

    def chunk(call: int, obs: Mapping[str, Any]) -> list[dict[str, Any]]:
        if call < after_calls:
            return [cartesian_action(obs[keys.ROBOT_EE_POSE], 0.0)]
        action = cartesian_action(obs[keys.ROBOT_EE_POSE], 0.0)
        wire = action['robot_command']['pose'].copy()
        wire[:3] = bad_pose[:3]
        action['robot_command']['pose'] = wire
        return [action]

    return ScriptedPolicy(chunk)
