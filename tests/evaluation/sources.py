"""A real model source for evaluation tests: a hold policy served over protocol v1, with injected faults.

The model answers every observation with ``chunk_size`` copies of "stay where you are" (the measured
end-effector pose, gripper open). ``fail_calls`` / ``delay_calls`` (0-based, counted over the whole
server) make chosen requests raise or answer late, to exercise the client's fault handling.
"""

import threading
import time
from collections.abc import Mapping
from typing import Any

from positronic import keys
from positronic.offboard.models import ModelNotFoundError
from positronic.policy.action import cartesian_action

MODEL_ID = 'hold'
INJECTED_ERROR = 'injected failure'


class HoldModel:
    def __init__(self, source: 'HoldSource'):
        self._source = source

    @property
    def meta(self) -> Mapping[str, Any]:
        return {'type': 'hold', 'chunk_size': self._source.chunk_size}

    def warm_up(self) -> None:
        pass

    def infer(self, observation: Mapping[str, Any]) -> list[dict[str, Any]]:
        source = self._source
        with source.lock:
            call = source.calls
            source.calls += 1
            source.observed_keys.append(sorted(observation))
        time.sleep(source.delay_calls.get(call, 0.0))
        if call in source.fail_calls:
            raise RuntimeError(f'{INJECTED_ERROR} on call {call}')
        return [cartesian_action(observation[keys.ROBOT_EE_POSE], 0.0)] * source.chunk_size

    def unload(self) -> None:
        pass


class HoldSource:
    """A ``ModelSource`` with the single model ``hold``."""

    def __init__(self, chunk_size: int = 5, fail_calls=(), delay_calls: Mapping[int, float] | None = None):
        self.chunk_size = chunk_size
        self.fail_calls = set(fail_calls)
        self.delay_calls = dict(delay_calls or {})
        self.calls = 0
        self.observed_keys: list[list[str]] = []
        self.lock = threading.Lock()

    def model_ids(self) -> list[str]:
        return [MODEL_ID]

    def resolve(self, model_id: str | None) -> str:
        if model_id not in (None, MODEL_ID):
            raise ModelNotFoundError(f'no model {model_id!r}')
        return MODEL_ID

    def load(self, model_id: str) -> HoldModel:
        return HoldModel(self)
